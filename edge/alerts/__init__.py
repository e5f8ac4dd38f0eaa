"""Alerts for carers: rules over derived states (sustained stress, off the wrist, out of reach,
battery low, hub unhealthy), each alert an event record every sink stores and publishes.

A facade over two modules: :mod:`~edge.alerts.options` (:class:`AlertConfig`, the
``[alerts]`` section; imports nothing of the hub, so reading a configuration stays light)
and :mod:`~edge.alerts.rules` (:class:`AlertRules`), resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from edge.alerts.options import AlertConfig

if TYPE_CHECKING:
    from edge.alerts.rules import ALERT_KINDS, RULES, AlertRules, describe

__all__ = ["ALERT_KINDS", "RULES", "AlertConfig", "AlertRules", "describe"]

_HOME: Final = {"ALERT_KINDS": "rules", "RULES": "rules", "AlertRules": "rules",
                "describe": "rules"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # resolved once
    return value
