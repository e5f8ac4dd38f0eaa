"""Training configuration: TOML files -> nested dataclasses, with typed ``--set`` overrides.

A run is described by one :class:`RunConfig`. ``train/configs/default.toml`` is the default
profile and ``quick.toml`` the CI-sized one; a user file is layered on top of the default,
then ``--set section.key=value`` overrides on top of that. Every key is checked against the
dataclass field it names: an unknown key or a value of the wrong type raises
:class:`ConfigError` naming the dotted key. The config actually used is written back to
``RUN/config.toml`` (:func:`dump_toml`) so a run can be repeated from its own directory.

Reading, layering, type checks and the TOML writer are the kernel's one config engine
(:mod:`core.config`), shared with the hub; this module keeps the dataclasses and the rules
only training knows (:meth:`RunConfig.validate`, the variant grammar).
"""

# ruff: noqa: RUF009  (RunConfig's sections are _section(...) fields, each a default_factory)
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from core import config as engine
from core.errors import ConfigError
from train.budget import VAL_BY

__all__ = [
    "CONFIG_DIR",
    "CVConfig",
    "DataConfig",
    "DeployConfig",
    "DistillConfig",
    "LoopConfig",
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
FUSION_MODES: Final = ("early", "mid", "late")  # what train.teachers.FusionTeacher accepts
CV_KINDS: Final = ("auto", "loso", "forward", "fixed")
TASKS: Final = ("3class", "binary")
DATA_KINDS: Final = ("wrist", "hr")  # what the data adds: nothing, or the rr beats modality
RR_SOURCES: Final = ("ecg", "bvp")  # train.hr_data.RR_SOURCES
_T = TypeVar("_T")


def _section(cls: type[_T]) -> _T:
    """A table of the config file as a field of :class:`RunConfig`: a fresh copy of its
    defaults for every run (``field(default_factory=cls)``; ruff's RUF009 cannot see that,
    hence the file-level exemption above)."""
    return field(default_factory=cls)


# -- sections ----------------------------------------------------------------------------------
@dataclass
class DataConfig:
    """What is read and how it is windowed."""

    task: str = "3class"  # "3class" (baseline/stress/amusement) or "binary" (stress vs rest)
    window_s: float = 60.0  # WESAD practice; becomes the contract's window_s
    hop_s: float = 5.0  # the hub's decision interval; becomes the contract's hop_s
    # keep every k-th training window (test windows are never thinned). 1: training cost
    # is a step budget, not a pass over the windows, so more windows only add variety
    train_stride: int = 1
    # the modalities the wearable has; the deployable student sees only these (those present)
    student_modalities: list[str] = field(default_factory=lambda: ["bvp", "eda", "temp", "acc"])
    # subjects never seen by the deployable student (its held-out windows and demo recording);
    # empty: the last subject id in sorted order
    holdout_subjects: list[str] = field(default_factory=list)
    # "wrist": the wrist service's signals (and the chest's for teachers); "hr": also the
    # `rr` beats modality, RR intervals found in `rr_source` (train/configs/hr.toml: the
    # student of stock heart-rate straps and watches)
    kind: str = "wrist"
    # where the beats come from: "ecg" (chest ECG R peaks: a chest strap) or "bvp" (wrist
    # BVP pulse peaks: a watch)
    rr_source: str = "ecg"


@dataclass
class CVConfig:
    """How the evaluation splits the data."""

    # "auto": the data's own train/test split if it carries one, else LOSO over its subjects;
    # "loso" | "forward" (forward-chaining in time) | "fixed" (the data's split)
    kind: str = "auto"
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
    # LOSO (scores in train/RESULTS.md)
    fusion: str = "late"
    # fusion modes trained for the ablation only (the mixture uses `fusion`); [] skips them.
    # The default run trains none, for time (its compute goes to the students; "mid" and
    # "early" scored below "late"); the quick profile trains both to exercise them
    fusion_ablation: list[str] = field(default_factory=list)
    # at most this many optimizer steps (early stopping may end sooner): hundreds of passes
    # over a 50-case benchmark of short series
    steps: int = 300
    # training compute per teacher, in billions of multiply-accumulates: what caps the steps
    # on long multi-sensor windows (a WESAD fold's fusion teacher gets about 120)
    budget_gmacs: float = 120.0
    batch_size: int = 64  # the largest batch; a small set's is about an eighth of it
    lr: float = 3e-3  # AdamW at batch_size (scaled by sqrt(batch / batch_size)); cosine decay
    weight_decay: float = 1e-3  # mild: subjects differ more than windows, dropout does the rest
    # overrides for train.teachers.TeacherConfig (checked against its fields when a model is built)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudentTrainConfig:
    """The compact wrist-only Transformer and the variants compared in the ablation."""

    # "alone" (cross-entropy only), "kd_equal", "kd_ca" (confidence-adaptive teacher weights),
    # with suffixes "_ulgm" (unimodal label generation heads) and "_hint" (feature hints)
    variants: list[str] = field(
        default_factory=lambda: ["alone", "kd_equal", "kd_ca", "kd_ca_ulgm"]
    )
    steps: int = 800  # at most; the student learns from soft targets more slowly than a teacher
    # training compute per student variant (billions of MACs): about 150 steps on a WESAD fold
    budget_gmacs: float = 120.0
    batch_size: int = 64  # as the teachers
    lr: float = 2e-3  # AdamW; Transformers want a little less than the CNN teachers
    weight_decay: float = 1e-2  # Transformers overfit subjects easily
    # overrides for train.models.StudentConfig.from_contract (checked against its fields)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoopConfig:
    """Early stopping and augmentation, shared by every model of a run."""

    # share of the job's training windows held out for early stopping (never its test windows)
    val_fraction: float = 0.1
    # "time": the last part of each subject's windows of each class (overlapping neighbours
    # dropped), so every person stays in training; "subject": whole subjects; "rows": random
    # rows of each class (what data without subjects always gets)
    val_by: str = "time"
    # fewer validation windows than this pick a checkpoint by chance: then no early stopping,
    # every model trains its whole budget on all training windows (small benchmarks)
    min_val_windows: int = 20
    evals: int = 20  # validation passes over a full budget
    patience: int = 5  # passes without a better score before stopping
    min_fraction: float = 0.5  # never stop before this share of the budget
    select: str = "loss"  # what "better" means: "loss" (class-balanced CE) or "f1"
    refit: bool = False  # then retrain on training + validation rows for the best step count
    # sensor augmentation (train.augment); strengths in normalized units. Off by default:
    # at these strengths it cost the WESAD twin's student and did not help the public
    # benchmarks on average (train/RESULTS.md)
    augment: bool = False
    aug_p: float = 0.5  # probability that each augmentation touches a window
    jitter: float = 0.03  # sd of additive noise
    scale: float = 0.1  # sd of a channel's gain
    magnitude_warp: float = 0.1  # sd of the knots of a smooth gain curve
    time_warp: float = 0.1  # sd of log speed; mild: a 10 % stretch moves heart rate as much
    crop_min: float = 0.9  # shortest random crop (stretched back to the window), 1: none


@dataclass
class DistillConfig:
    """Multi-teacher distillation (train.losses): alpha*CE + (1-alpha)*T^2*KL to the mixture."""

    # weight of the hard-label CE; the rest goes to the teachers. 0.5 with T = 2: against
    # early-stopped teachers this beat 0.8 with T = 3 for equal and confidence-adaptive
    # weights alike, the student's initial weights and batches held equal (train/RESULTS.md).
    # T = 3 over-softens teachers that early stopping already left unsure
    alpha: float = 0.5
    temperature: float = 2.0  # softens teacher distributions; 2-5 is the usual range
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
    # "full", or "quick": the report says its acceptance figures are not meant to pass
    profile: str = "full"


@dataclass
class RunConfig:
    """One training run."""

    seed: int = 0  # every random draw derives from this; same seed -> identical metrics
    # processes that train whole folds (and load subjects) side by side: one per core. The
    # metrics do not depend on it (each fold is seeded by its own name).
    workers: int = 2
    # torch (and BLAS) threads per process. 1: these models are too small to split across
    # threads, and OpenMP threads spinning on a shared CPU slow every step many times over
    threads: int = 1
    deterministic: bool = True  # torch.use_deterministic_algorithms
    data: DataConfig = _section(DataConfig)  # what is read and how it is windowed
    cv: CVConfig = _section(CVConfig)  # how the evaluation splits the data
    teachers: TeacherTrainConfig = _section(TeacherTrainConfig)  # per-group and fusion teachers
    student: StudentTrainConfig = _section(StudentTrainConfig)  # the student and its variants
    distill: DistillConfig = _section(DistillConfig)  # the multi-teacher distillation loss
    loop: LoopConfig = _section(LoopConfig)  # early stopping and augmentation
    deploy: DeployConfig = _section(DeployConfig)  # the student written for the hub
    report: ReportConfig = _section(ReportConfig)  # human-facing outputs

    def validate(self) -> RunConfig:
        """Check values that a type alone cannot; raises :class:`ConfigError`."""
        engine.require_choice(self.data.task, TASKS, "data.task")
        engine.require_choice(self.data.kind, DATA_KINDS, "data.kind")
        engine.require_choice(self.data.rr_source, RR_SOURCES, "data.rr_source")
        engine.require_choice(self.cv.kind, CV_KINDS, "cv.kind")
        engine.require_choice(self.cv.forward_scope, ("subject", "global"), "cv.forward_scope")
        engine.require_choice(self.teachers.fusion, FUSION_MODES, "teachers.fusion")
        for i, mode in enumerate(self.teachers.fusion_ablation):
            engine.require_choice(mode, FUSION_MODES, f"teachers.fusion_ablation[{i}]")
        for key, value in (
            ("data.window_s", self.data.window_s),
            ("data.hop_s", self.data.hop_s),
            ("teachers.lr", self.teachers.lr),
            ("student.lr", self.student.lr),
            ("distill.temperature", self.distill.temperature),
        ):
            engine.require_positive(value, key)  # finite already: the engine refuses inf/nan
        for key, value in (
            ("teachers.budget_gmacs", self.teachers.budget_gmacs),
            ("student.budget_gmacs", self.student.budget_gmacs),
        ):
            engine.require_positive(value, key)
        for key, ivalue, lo in (
            ("threads", self.threads, 1),
            ("workers", self.workers, 1),
            ("data.train_stride", self.data.train_stride, 1),
            ("cv.max_folds", self.cv.max_folds, 0),
            ("cv.n_splits", self.cv.n_splits, 1),
            ("teachers.steps", self.teachers.steps, 1),
            ("teachers.batch_size", self.teachers.batch_size, 2),
            ("student.steps", self.student.steps, 1),
            ("student.batch_size", self.student.batch_size, 2),
            ("deploy.calib_windows", self.deploy.calib_windows, 1),
            ("deploy.epochs", self.deploy.epochs, 0),
            ("loop.evals", self.loop.evals, 1),
            ("loop.min_val_windows", self.loop.min_val_windows, 1),
            ("loop.patience", self.loop.patience, 1),
        ):
            engine.require_at_least(ivalue, lo, key)
        engine.require_choice(self.loop.val_by, VAL_BY, "loop.val_by")
        engine.require_choice(self.report.profile, ("full", "quick"), "report.profile")
        engine.require_choice(self.loop.select, ("loss", "f1"), "loop.select")
        for key, value, hi in (
            ("loop.val_fraction", self.loop.val_fraction, 0.5),
            ("loop.min_fraction", self.loop.min_fraction, 1.0),
            ("loop.aug_p", self.loop.aug_p, 1.0),
        ):
            if not 0.0 <= value <= hi:
                raise ConfigError(f"must be in [0, {hi}], got {value}", key=key)
        if not 0.0 < self.loop.crop_min <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {self.loop.crop_min}", key="loop.crop_min")
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


# -- reading and writing: the kernel's config engine (core.config) ------------------------------
def config_from_dict(values: Mapping[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from nested mappings (missing keys keep their defaults); validated."""
    return engine.build(RunConfig, values).validate()


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    return engine.to_dict(cfg)


def apply_overrides(values: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``values`` (nested mappings) with ``section.key=value`` strings applied: a new dict.

    A value is read as a TOML literal (a bare ``a,b`` is a list of strings); for a list field
    a single value is a one-item list, and a string that is a number is refused by the type
    check, naming the key.
    """
    cfg = engine.build(RunConfig, values)
    return engine.to_dict(engine.apply_overrides(cfg, map(engine.parse_override, overrides)))


def load_config(
    path: str | Path | None = None,
    *,
    quick: bool = False,
    overrides: Iterable[str] = (),
) -> RunConfig:
    """default.toml, then quick.toml (if ``quick``), then ``path``, then ``overrides``."""
    files = [CONFIG_DIR / "default.toml"]
    if quick:
        files.append(CONFIG_DIR / "quick.toml")
    if path is not None:
        files.append(Path(path))
    cfg = engine.load(RunConfig, *files)
    return engine.apply_overrides(cfg, map(engine.parse_override, overrides)).validate()


def dump_toml(cfg: RunConfig, path: str | Path | None = None) -> str:
    """The config as TOML text (and written to ``path`` when given); reads back identically."""
    text = engine.dump_toml(cfg, header="written by edge-train fit: the full config of this run")
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
