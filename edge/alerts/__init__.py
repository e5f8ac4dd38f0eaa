"""Alerts for carers: rules over derived states (sustained stress, off the wrist, out of reach,
battery low, hub unhealthy), each alert an event record every sink stores and publishes.

A facade over two modules: :mod:`~edge.alerts.options` (:class:`AlertConfig`, the
``[alerts]`` section; imports nothing of the hub, so reading a configuration stays light)
and :mod:`~edge.alerts.rules` (:class:`AlertRules`), resolved on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from core.lazy import lazy_attributes
from edge.alerts.options import AlertConfig

if TYPE_CHECKING:
    from edge.alerts.rules import ALERT_KINDS, RULES, AlertRules, describe

__all__ = ["ALERT_KINDS", "RULES", "AlertConfig", "AlertRules", "describe"]

_HOME: Final = {"ALERT_KINDS": "rules", "RULES": "rules", "AlertRules": "rules",
                "describe": "rules"}


__getattr__ = lazy_attributes(__name__, _HOME, globals())
