"""core.lazy: a package's names resolve from their home module on first use, once."""

from __future__ import annotations

import sys
import types

import pytest

from core.lazy import lazy_attributes


def test_a_name_is_imported_from_its_home_once_and_unknown_names_raise() -> None:
    pkg = types.ModuleType("lazy_pkg")
    home = types.ModuleType("lazy_pkg.home")
    home.thing = object()  # type: ignore[attr-defined]
    sys.modules["lazy_pkg"], sys.modules["lazy_pkg.home"] = pkg, home
    try:
        ns: dict[str, object] = {}
        getattr_ = lazy_attributes("lazy_pkg", {"thing": "home"}, ns)
        assert getattr_("thing") is home.thing  # type: ignore[attr-defined]
        assert ns["thing"] is home.thing  # type: ignore[attr-defined]  # kept: resolved once
        with pytest.raises(AttributeError, match="'lazy_pkg' has no attribute 'other'"):
            getattr_("other")
    finally:
        del sys.modules["lazy_pkg"], sys.modules["lazy_pkg.home"]
