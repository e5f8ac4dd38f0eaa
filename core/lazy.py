"""Lazy package attributes: a package names where each public name lives and imports that
module on first use, so importing the package stays cheap on a hub (bleak, sqlite, aiomqtt
load only when their part runs)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, homes: Mapping[str, str], namespace: dict[str, Any]
                    ) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is read from the submodule
    ``package.homes[name]`` once, then kept in ``namespace`` (the package's ``globals()``)."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value  # resolved once
        return value

    return __getattr__
