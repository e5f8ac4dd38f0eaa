"""The models a hub decides with, one per kind of wearable, and which one fits a device.

A hub may hold several bundles: the wrist model (BVP, EDA, skin temperature, accelerometer
through the project's own service) and the heart-rate model (RR intervals from any
standard Heart Rate Service strap or watch). :func:`open_models` verifies each bundle and
opens its engine; :func:`choose_model` picks, for a device's HELLO, the model whose every
input the device offers (a sensor feeds a modality as the ingest routes it:
:func:`edge.sensors.sensor_mismatch`), preferring the one that uses the most of what the
device sends (a wearable with the full service gets the wrist model even when it also sends
RR intervals); or it returns the one line that says why none fits, for the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.contract import InputContract, Modality
from edge.bundle import Bundle, demo_bundle_path, demo_bundle_paths
from edge.config import DaemonConfig
from edge.errors import BundleError
from edge.inference import Engine
from edge.sensors import sensor_mismatch
from firmware_bridge.protocol import SensorInfo

__all__ = ["Model", "bundle_paths", "choose_model", "describe", "open_model", "open_models",
           "warn_dead_classes"]

log = logging.getLogger(__name__)


@dataclass
class Model:
    """One verified bundle and the engine that runs it.

    A verified update (:mod:`edge.updates`) swaps the bundle and engine in place, between
    two windows, so every device deciding with this model follows; the version it replaced
    is kept as ``previous`` (for a rollback), and windows already queued for its engine are
    still answered (:meth:`accepts`)."""

    bundle: Bundle
    engine: Engine
    engine_name: str  # "onnx:int8", for logs and the summary
    path: str = ""  # where the bundle was loaded from (a SIGHUP looks there again)
    previous: Model | None = None  # the version this one replaced, kept for a rollback

    @property
    def contract(self) -> InputContract:
        return self.bundle.contract

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    @property
    def model_version(self) -> str:
        return self.bundle.model_version

    def accepts(self, engine: Engine | None) -> bool:
        """True for this model's engine and the one it replaced (windows in flight at a swap)."""
        return engine is self.engine or (self.previous is not None and engine is self.previous.engine)

    def swap_to(self, new: Model) -> Model:
        """Become ``new`` (its bundle, engine, path), keeping what this was as ``previous``
        (which it returns). Call on the event loop: the next window submitted uses ``new``."""
        old = Model(self.bundle, self.engine, self.engine_name, self.path)
        self.bundle, self.engine, self.engine_name, self.path = (new.bundle, new.engine,
                                                                 new.engine_name, new.path)
        self.previous = old
        return old


def bundle_paths(cfg: DaemonConfig) -> list[str]:
    """The bundles ``cfg`` names (``bundle``, then ``bundles``), or the shipped demo ones."""
    if cfg.bundle:
        return [cfg.bundle, *cfg.bundles]
    demos = [str(p) for p in demo_bundle_paths()]
    if not demos:
        raise BundleError("the demo bundle is not installed; pass --bundle DIR (or build the "
                          "demo bundle with `make demo-bundle`)", path=str(demo_bundle_path()),
                          reason="not_found")
    return demos + list(cfg.bundles)


def open_model(path: str, cfg: DaemonConfig) -> Model:
    """Verify the bundle at ``path``, choose and warm up its engine (raises BundleError,
    EngineError with a message that says what to fix)."""
    from edge.engines import open_engine
    from edge.signing import load_trusted_bundle

    bundle = load_trusted_bundle(path, cfg)  # a signature by a trusted key, or refused
    warn_dead_classes(bundle)
    precision = None if cfg.precision == "auto" else cfg.precision
    engine = open_engine(bundle, cfg.backend, precision, cfg.threads)
    x = np.zeros((1, bundle.contract.input_length), np.float32)
    for _ in range(cfg.inference.warmup_runs):
        engine.run(x)  # allocations and kernel packing happen before READY
    sel = getattr(engine, "selection", None)
    if sel is not None:  # edge.engines.select logged the choice at INFO already
        log.debug("engine for %s: %s", bundle.model_id, sel.summary())
    return Model(bundle, engine, f"{engine.name}:{getattr(engine, 'key', '?')}", path=path)


def warn_dead_classes(bundle: Bundle) -> str | None:
    """Log (and return) one warning when the export found a class the model never predicts
    correctly on its held-out windows: its decisions would never show that state."""
    if not bundle.dead_classes:
        return None
    line = (f"{bundle.model_id} never predicts {', '.join(bundle.dead_classes)} correctly on "
            "its held-out windows: its decisions will not show that state (retrain it)")
    log.warning("%s", line)
    return line


def open_models(cfg: DaemonConfig) -> list[Model]:
    """Every bundle :func:`bundle_paths` names, opened; the first is the primary model."""
    models = [open_model(p, cfg) for p in bundle_paths(cfg)]
    seen: dict[str, str] = {}
    for m in models:
        if m.model_id in seen:
            raise BundleError(f"two bundles have the model id {m.model_id!r} (also "
                              f"{seen[m.model_id]}): records would not say which decided; "
                              "export one with edge-export --model-id NAME",
                              path=str(m.bundle.source), reason="manifest")
        seen[m.model_id] = str(m.bundle.source)
    return models


def describe(m: Modality) -> str:
    """A modality as a person pairing a device would recognise it."""
    if m.beats:
        return f"{m.name} (RR intervals, {m.unit})"
    return f"{m.name}[{m.unit}]"


def choose_model(models: Sequence[Model], sensors: Sequence[SensorInfo], *, device: str
                 ) -> tuple[Model | None, str]:
    """The model that fits a device offering ``sensors`` (see the module docstring), and
    ``""``; or ``None`` and one line saying why none fits."""
    fitting: list[Model] = []
    needs: list[str] = []
    for model in models:
        missing = [m for m in model.contract.modalities
                   if not any(sensor_mismatch(s, m) is None for s in sensors)]
        if missing:
            needs.append(f"{model.model_id} needs {', '.join(describe(m) for m in missing)}")
        else:
            fitting.append(model)
    if fitting:  # the richest fit; ties: the first configured
        return max(fitting, key=lambda mo: len(mo.contract.modalities)), ""
    offers = ", ".join(f"{s.kind}[{s.unit}]" for s in sensors) or "no sensors"
    hint = ""
    kinds = {s.kind for s in sensors}
    wants_rr = any(m.beats for mo in models for m in mo.contract.modalities)
    if wants_rr and "hr" in kinds and not any(m.beats and m.name in kinds
                                               for mo in models for m in mo.contract.modalities):
        hint = (" (it sends a heart rate but no RR intervals: switch on RR / HRV in the "
                "device's settings, or use a strap that sends them)")
    return None, f"{device} offers {offers}; no model fits: {'; '.join(needs)}{hint}"
