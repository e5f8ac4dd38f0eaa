"""Training configuration: TOML files -> nested dataclasses, with typed ``--set`` overrides.

A run is described by one :class:`RunConfig`. ``train/configs/default.toml`` is the default
profile and ``quick.toml`` the CI-sized one; a user file is layered on top of the default,
then ``--set section.key=value`` overrides on top of that. Every key is checked against the
dataclass field it names: an unknown key or a value of the wrong type raises
:class:`ConfigError` naming the dotted key. The config actually used is written back to
``RUN/config.toml`` (:func:`dump_toml`) so a run can be repeated from its own directory.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from train.errors import TrainError

__all__ = [
    "CONFIG_DIR",
    "CVConfig",
    "ConfigError",
    "DataConfig",
    "DeployConfig",
    "DistillConfig",
    "ReportConfig",
    "RunConfig",
    "StudentTrainConfig",
    "TeacherTrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "dump_toml",
    "load_config",
    "parse_variant",
]

CONFIG_DIR: Final = Path(__file__).with_name("configs")  # shipped profiles (package data)

# Student variants a config may ask for; see :func:`parse_variant` for the grammar.
KD_WEIGHTINGS: Final = {"equal": "equal", "ca": "confidence"}  # short name -> losses' name
FUSION_MODES: Final = ("early", "mid", "late")  # what train.models.FusionTeacher accepts
CV_KINDS: Final = ("loso", "forward", "fixed")
TASKS: Final = ("3class", "binary")


class ConfigError(TrainError):
    """A configuration key is unknown or its value invalid; ``key`` is the dotted path."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(f"config key {key!r}: {message}")
        self.key = key


# -- sections ----------------------------------------------------------------------------------
@dataclass
class DataConfig:
    """What is read and how it is windowed."""

    task: str = "3class"  # "3class" (baseline/stress/amusement) or "binary" (stress vs rest)
    window_s: float = 60.0  # WESAD practice; becomes the contract's window_s
    hop_s: float = 5.0  # the hub's decision interval; becomes the contract's hop_s
    # keep every k-th training window: 60 s windows at a 5 s hop overlap by 92 %, so the
    # neighbours add little but cost linearly in epoch time (3: one window per 15 s, which
    # scored as well as 2 on synthetic LOSO). Test windows are never thinned.
    train_stride: int = 3
    # the modalities the wearable has; the deployable student sees only these (those present)
    student_modalities: list[str] = field(default_factory=lambda: ["bvp", "eda", "temp", "acc"])
    # subjects never seen by the deployable student (its held-out windows and demo recording);
    # empty: the last subject id in sorted order
    holdout_subjects: list[str] = field(default_factory=list)


@dataclass
class CVConfig:
    """How the evaluation splits the data."""

    kind: str = "loso"  # "loso" | "forward" (forward-chaining in time) | "fixed" (arrays' split)
    max_folds: int = 0  # evaluate only the first k folds (0: all); the quick profile uses 2
    n_splits: int = 4  # forward chaining: number of test blocks after the first train block
    forward_scope: str = "subject"  # forward chaining per subject's own time, or "global"
    # drop training windows whose span reaches into a test block (overlapping windows share
    # samples; without this purge forward chaining leaks the first test window into training)
    purge: bool = True


@dataclass
class TeacherTrainConfig:
    """Teachers: one per modality group plus a fusion teacher over every modality."""

    # group name -> modalities; a group with a modality missing from the data is skipped
    groups: dict[str, list[str]] = field(
        default_factory=lambda: {
            "bvp": ["bvp"],
            "eda_temp": ["eda", "temp"],
            "acc": ["acc"],
            "ecg_resp": ["ecg", "resp"],
            "emg_eda_temp": ["emg", "c_eda", "c_temp"],
        }
    )
    # the fusion teacher that joins the distillation mixture: late scored best on synthetic
    # 10-subject LOSO (late 0.904, mid 0.893, early 0.637 macro-F1, seed 7)
    fusion: str = "late"
    # fusion modes trained for the ablation only (the mixture uses `fusion`); [] skips them.
    # "early" is left out of the default run for time (it scored 0.637; add it to compare)
    fusion_ablation: list[str] = field(default_factory=lambda: ["mid"])
    epochs: int = 6  # the CNN teachers plateau after ~5 epochs on ~1.2k windows per fold
    batch_size: int = 64  # small enough for many updates per epoch on CPU
    lr: float = 3e-3  # AdamW; one-cycle schedule below
    weight_decay: float = 1e-3  # mild: subjects differ more than windows, dropout does the rest
    # overrides for train.models.TeacherConfig (checked against its fields when a model is built)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudentTrainConfig:
    """The compact wrist-only Transformer and the variants compared in the ablation."""

    # "alone" (cross-entropy only), "kd_equal", "kd_ca" (confidence-adaptive teacher weights),
    # with suffixes "_ulgm" (unimodal label generation heads) and "_hint" (feature hints)
    variants: list[str] = field(
        default_factory=lambda: ["alone", "kd_equal", "kd_ca", "kd_ca_ulgm"]
    )
    epochs: int = 10  # the student learns from soft targets more slowly than a teacher
    batch_size: int = 64  # as the teachers
    lr: float = 2e-3  # AdamW; Transformers want a little less than the CNN teachers
    weight_decay: float = 1e-2  # Transformers overfit subjects easily
    # overrides for train.models.StudentConfig.from_contract (checked against its fields)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class DistillConfig:
    """Multi-teacher distillation (MODEL_NOTES.md): alpha*CE + (1-alpha)*T^2*KL to the mixture."""

    # weight of the hard-label CE; the rest goes to the teachers. 0.8: the mixture includes
    # weak teachers (acc, eda_temp) whose near-one-hot soft targets pull the student off;
    # best distilled macro-F1 0.811 at 0.5 vs 0.826 at 0.8 (10-subject LOSO, seed 7, chosen
    # on those same folds, where one fold's sd is ~0.1)
    alpha: float = 0.8
    temperature: float = 3.0  # softens teacher distributions; 2-5 is the usual range
    # teachers in the mixture: group names, "fusion", or ["all"] for every trained teacher
    teachers: list[str] = field(default_factory=lambda: ["all"])
    hint_weight: float = 0.1  # weight of the feature-hint loss in "_hint" variants
    ulgm_weight: float = 0.3  # weight of the auxiliary unimodal heads in "_ulgm" variants
    ulgm_momentum: float = 0.9  # momentum of the generated unimodal labels across epochs


@dataclass
class DeployConfig:
    """The deployable student written to RUN/student.pt after the evaluation."""

    variant: str = "best"  # a student variant, or "best": highest cross-validated macro-F1
    calib_windows: int = 512  # windows of training subjects kept for int8 calibration
    # the deployable student gets the same epochs as in the evaluation unless set (> 0)
    epochs: int = 0


@dataclass
class ReportConfig:
    """Human-facing outputs."""

    plots: bool = True  # PNG plots beside report.md (matplotlib, Agg backend)


@dataclass
class RunConfig:
    """One training run."""

    seed: int = 0  # every random draw derives from this; same seed -> identical metrics
    # processes that train whole folds (and load subjects) side by side: one per core. The
    # metrics do not depend on it (each fold is seeded by its own name).
    workers: int = 2
    # torch (and BLAS) threads per process. 1: these models are too small to split across
    # threads, and spinning OpenMP threads on a shared CPU made steps 10-30x slower
    threads: int = 1
    deterministic: bool = True  # torch.use_deterministic_algorithms
    data: DataConfig = field(default_factory=DataConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    teachers: TeacherTrainConfig = field(default_factory=TeacherTrainConfig)
    student: StudentTrainConfig = field(default_factory=StudentTrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def validate(self) -> RunConfig:
        """Check values that a type alone cannot; raises :class:`ConfigError`."""
        _choice(self.data.task, TASKS, "data.task")
        _choice(self.cv.kind, CV_KINDS, "cv.kind")
        _choice(self.cv.forward_scope, ("subject", "global"), "cv.forward_scope")
        _choice(self.teachers.fusion, FUSION_MODES, "teachers.fusion")
        for i, mode in enumerate(self.teachers.fusion_ablation):
            _choice(mode, FUSION_MODES, f"teachers.fusion_ablation[{i}]")
        for key, value in (
            ("data.window_s", self.data.window_s),
            ("data.hop_s", self.data.hop_s),
            ("teachers.lr", self.teachers.lr),
            ("student.lr", self.student.lr),
            ("distill.temperature", self.distill.temperature),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"must be positive, got {value!r}", key=key)
        for key, ivalue, lo in (
            ("threads", self.threads, 1),
            ("workers", self.workers, 1),
            ("data.train_stride", self.data.train_stride, 1),
            ("cv.max_folds", self.cv.max_folds, 0),
            ("cv.n_splits", self.cv.n_splits, 1),
            ("teachers.epochs", self.teachers.epochs, 1),
            ("teachers.batch_size", self.teachers.batch_size, 2),
            ("student.epochs", self.student.epochs, 1),
            ("student.batch_size", self.student.batch_size, 2),
            ("deploy.calib_windows", self.deploy.calib_windows, 1),
            ("deploy.epochs", self.deploy.epochs, 0),
        ):
            if ivalue < lo:
                raise ConfigError(f"must be >= {lo}, got {ivalue}", key=key)
        if self.data.hop_s > self.data.window_s:
            raise ConfigError("hop_s must not exceed window_s", key="data.hop_s")
        if not 0.0 <= self.distill.alpha <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {self.distill.alpha}", key="distill.alpha")
        if not 0.0 <= self.distill.ulgm_momentum < 1.0:
            raise ConfigError("must be in [0, 1)", key="distill.ulgm_momentum")
        if not self.data.student_modalities:
            raise ConfigError("needs at least one modality", key="data.student_modalities")
        if not self.student.variants:
            raise ConfigError("needs at least one variant", key="student.variants")
        for i, v in enumerate(self.student.variants):
            parse_variant(v, key=f"student.variants[{i}]")
        if len(set(self.student.variants)) != len(self.student.variants):
            raise ConfigError("duplicate variants", key="student.variants")
        if self.deploy.variant != "best" and self.deploy.variant not in self.student.variants:
            raise ConfigError(
                f"{self.deploy.variant!r} is not 'best' nor one of {self.student.variants}",
                key="deploy.variant",
            )
        for name, mods in self.teachers.groups.items():
            if not mods:
                raise ConfigError("a teacher group needs a modality", key=f"teachers.groups.{name}")
        return self


def _choice(value: str, allowed: Iterable[str], key: str) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{value!r} is not one of {allowed}", key=key)


@dataclass(frozen=True)
class Variant:
    """A parsed student variant name."""

    name: str
    weighting: str | None  # None: no distillation; else the losses' weighting name
    ulgm: bool
    hint: bool


def parse_variant(name: str, *, key: str = "student.variants") -> Variant:
    """``alone|kd_equal|kd_ca`` followed by any of ``_ulgm``, ``_hint`` (hints need KD)."""
    rest, ulgm, hint = name, False, False
    while True:
        if rest.endswith("_ulgm") and not ulgm:
            rest, ulgm = rest[: -len("_ulgm")], True
        elif rest.endswith("_hint") and not hint:
            rest, hint = rest[: -len("_hint")], True
        else:
            break
    if rest == "alone":
        if hint:
            raise ConfigError(f"{name!r}: hints need a teacher (use kd_*_hint)", key=key)
        return Variant(name, None, ulgm, hint)
    if rest.startswith("kd_") and rest[3:] in KD_WEIGHTINGS:
        return Variant(name, KD_WEIGHTINGS[rest[3:]], ulgm, hint)
    raise ConfigError(
        f"{name!r} is not alone|kd_equal|kd_ca with optional _ulgm/_hint suffixes", key=key
    )


# -- dict <-> dataclass with type checking -------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; returns it (ints widen to float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a table, got {type(value).__name__}", key=key)
        return _build(tp, value, key)
    if origin in (types.UnionType, typing.Union):
        errors = []
        for arm in typing.get_args(tp):
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, arm, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", key=key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected a list, got {type(value).__name__}", key=key)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a table, got {type(value).__name__}", key=key)
        return {_coerce(k, key_tp, key): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true/false, got {value!r}", key=key)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", key=key)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", key=key)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", key=key)
        return value
    raise ConfigError(f"unsupported field type {_type_name(tp)}", key=key)  # pragma: no cover


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    known = {f.name for f in dataclasses.fields(cls)}
    for k, v in values.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in known:
            raise ConfigError(f"unknown key; known keys: {sorted(known)}", key=key)
        kwargs[k] = _coerce(v, hints[k], key)
    return cls(**kwargs)


def config_from_dict(values: Mapping[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from nested mappings (missing keys keep their defaults)."""
    cfg: RunConfig = _build(RunConfig, values, "")
    return cfg.validate()


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _merge(base: Mapping[str, Any], top: Mapping[str, Any], tp: Any = None) -> dict[str, Any]:
    """Layer ``top`` over ``base``: config sections merge key by key; a free-form table
    (teacher groups, model overrides) is replaced whole, so a profile can drop a group."""
    tp = RunConfig if tp is None else tp
    hints = typing.get_type_hints(tp) if dataclasses.is_dataclass(tp) else {}
    out = dict(base)
    for k, v in top.items():
        sub = hints.get(k)
        if (
            isinstance(v, Mapping)
            and isinstance(out.get(k), Mapping)
            and dataclasses.is_dataclass(sub)
        ):
            out[k] = _merge(out[k], v, sub)
        else:
            out[k] = v
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", key="<file>") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", key="<file>") from e


def _parse_value(text: str) -> Any:
    """A TOML literal (``3``, ``0.5``, ``true``, ``["a", "b"]``, ``"s"``), else a bare string.

    A bare comma list ``a,b`` becomes a list of strings, so ``--set
    student.variants=alone,kd_ca`` works without shell-quoting TOML brackets.
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if "," in text:
        return [p.strip() for p in text.split(",") if p.strip()]
    return text


def apply_overrides(values: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to nested mappings (checked later by type).

    A value is read as a TOML literal; for a list field, a single value is wrapped in a
    list and a string that is a number is refused by the type check, naming the key.
    """
    out = _merge({}, values)  # a copy of the section tables
    for item in overrides:
        if "=" not in item:
            raise ConfigError("expected key=value", key=item)
        dotted, text = item.split("=", 1)
        dotted = dotted.strip()
        parts = dotted.split(".")
        if not all(parts):
            raise ConfigError("empty path component", key=dotted)
        value = _parse_value(text.strip())
        # walk the dataclass tree to find the field type so "a" can become ["a"] for lists
        tp: Any = RunConfig
        for i, p in enumerate(parts):
            if dataclasses.is_dataclass(tp) and isinstance(tp, type):
                hints = typing.get_type_hints(tp)
                if p not in hints:
                    where = ".".join(parts[:i]) or "<top>"
                    known = sorted(hints)
                    raise ConfigError(f"unknown key in {where}; known keys: {known}", key=dotted)
                tp = hints[p]
            elif typing.get_origin(tp) is dict:
                tp = typing.get_args(tp)[1]
            else:
                raise ConfigError(f"{'.'.join(parts[:i])} is not a table", key=dotted)
        if typing.get_origin(tp) is list and not isinstance(value, list):
            value = [value]
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            node[p] = dict(child) if isinstance(child, Mapping) else {}
            node = node[p]
        node[parts[-1]] = value
    return out


def load_config(
    path: str | Path | None = None,
    *,
    quick: bool = False,
    overrides: Iterable[str] = (),
) -> RunConfig:
    """default.toml, then quick.toml (if ``quick``), then ``path``, then ``overrides``."""
    values = _read_toml(CONFIG_DIR / "default.toml")
    if quick:
        values = _merge(values, _read_toml(CONFIG_DIR / "quick.toml"))
    if path is not None:
        values = _merge(values, _read_toml(Path(path)))
    values = apply_overrides(values, overrides)
    return config_from_dict(values)


# -- TOML writer (tomllib only reads) ----------------------------------------------------------
def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_scalar(k)


def _toml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_scalar(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_scalar(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_table(d: Mapping[str, Any], name: str, lines: list[str]) -> None:
    scalars = {k: v for k, v in d.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in d.items() if isinstance(v, Mapping)}
    if name and (scalars or not tables):
        lines.append(f"[{name}]")
    for k, v in scalars.items():
        lines.append(f"{_toml_key(k)} = {_toml_scalar(v)}")
    if scalars or (name and not tables):
        lines.append("")
    for k, v in tables.items():
        _toml_table(v, f"{name}.{_toml_key(k)}" if name else _toml_key(k), lines)


def dump_toml(cfg: RunConfig, path: str | Path | None = None) -> str:
    """The config as TOML text (and written to ``path`` when given); reads back identically."""
    lines: list[str] = ["# written by edge-train fit: the full config of this run", ""]
    _toml_table(config_to_dict(cfg), "", lines)
    text = "\n".join(lines).rstrip() + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
