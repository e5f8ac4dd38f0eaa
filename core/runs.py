"""Where each file of a training run lives: the ``RUN/`` directory layout, as code.

``edge-train fit ... --out RUN`` writes it, ``edge-export RUN`` and the benchmarks read it;
all of them take their paths from :class:`RunLayout`, so the layout is defined once.

    RUN/config.toml            the full config used (after command-line overrides)
    RUN/metrics.json           {"task", "cv", "subjects", "models": {name: {"accuracy",
                               "macro_f1", "macro_precision", "macro_recall", "auc", "ece",
                               "per_class": {cls: {"precision","recall","f1","support"}},
                               "confusion": [[...]], "folds": [...]}}, "student": {"params",
                               "macs", ...}, "ablation": [...], "acceptance": {...},
                               "notes": [...]}
    RUN/report.md + RUN/plots/*.png
    RUN/student.pt             the deployable student: torch.save of a dict
                               {"model_args": StudentConfig as dict (rebuilds the model alone),
                                "contract": InputContract.to_dict(),
                                "state_dict": ..., "train_subjects": [...],
                                "holdout_subjects": [...], "dataset": {"kind", "path", "sha256"?},
                                "metrics": {...cross-validated summary of the student...},
                                "git_commit": str | None, "created": ISO time}
    RUN/teachers/*.pt          the same shape for each mixture teacher
    RUN/windows/calib.npz      X (N, L) float32 packed windows of TRAINING subjects only (for
                               int8 calibration), y (N,) int
    RUN/windows/heldout.npz    X (M, L), y (M,), start (M,) seconds, subject (M,) str: windows
                               of the held-out subject(s) the deployable student never saw
                               (for export parity and the quantization report)
    RUN/demo_recording.npz     (optional) the held-out subject's wrist recording in
                               ``core.recording`` .npz form, for the simulator / demo
    RUN/run.json               the run record: config, headline metrics, git commit, data
                               fingerprint and every artifact's size and sha256
    RUN/seeds/seed_<s>/metrics.json   (``--seeds N``) the further seeds' evaluations

The deployable student is trained on every subject except the held-out ones (default: the
last subject id), and evaluated on them; ``metrics.json`` holds the cross-validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory (nothing is created or read here)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def record(self) -> Path:
        """The run record (:mod:`train.tracking`)."""
        return self.root / "run.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    def plot(self, filename: str) -> Path:
        """One plot of the report, e.g. ``plot("ablation.png")``."""
        return self.plots_dir / filename

    @property
    def student_checkpoint(self) -> Path:
        return self.root / "student.pt"

    @property
    def teachers_dir(self) -> Path:
        return self.root / "teachers"

    def teacher_checkpoint(self, name: str) -> Path:
        """The checkpoint of the teacher ``name`` (e.g. ``"teacher_bvp"``)."""
        return self.teachers_dir / f"{name}.pt"

    def teacher_checkpoints(self) -> list[Path]:
        """Every teacher checkpoint present, in name order."""
        return sorted(self.teachers_dir.glob("*.pt"))

    @property
    def windows_dir(self) -> Path:
        return self.root / "windows"

    @property
    def calib_windows(self) -> Path:
        return self.windows_dir / "calib.npz"

    @property
    def heldout_windows(self) -> Path:
        return self.windows_dir / "heldout.npz"

    @property
    def demo_recording(self) -> Path:
        return self.root / "demo_recording.npz"
