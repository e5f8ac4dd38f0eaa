"""train.report's plots: full class names on the confusion matrices, an attention colour scale
that starts at zero (a near-uniform map must look uniform)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from train.report import write_plots

CLASSES = ["baseline", "stress", "amusement"]


def _model(role: str, f1: float) -> dict[str, Any]:
    return {"role": role, "macro_f1": f1, "confusion": [[5, 1, 0], [0, 6, 0], [1, 0, 4]],
            "folds": [{"fold": "S2", "macro_f1": f1}, {"fold": "S3", "macro_f1": f1}],
            "per_class": {c: {"f1": f1} for c in CLASSES}, "wrist_only": role == "student",
            "modalities": ["bvp"]}


def test_plots_name_classes_in_full_and_scale_attention_from_zero(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures: dict[str, Figure] = {}
    real_savefig = Figure.savefig

    def keep(self: Figure, fname: Any, *a: Any, **kw: Any) -> None:
        figures[Path(fname).stem] = self
        real_savefig(self, fname, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", keep)
    near_uniform = [0.0202, 0.0206, 0.0204, 0.0203]
    metrics = {"class_names": CLASSES,
               "models": {"teacher_bvp": _model("teacher", 0.8), "student_alone": _model("student", 0.7)},
               "student": {"modality_importance": {"all": {"bvp": 0.6, "eda": 0.4}},
                           "patch_importance": {"bvp": near_uniform, "eda": near_uniform},
                           "patch_s": 5.0}}
    written = write_plots(tmp_path, metrics)
    assert {"confusion", "importance"} <= set(written)
    ticks = [t.get_text() for ax in figures["confusion"].axes for t in ax.get_xticklabels()]
    assert set(CLASSES) <= set(ticks)  # never "basel / stres / amuse"
    heat = figures["importance"].axes[1].images[0]
    vmin, vmax = heat.get_clim()
    assert vmin == 0.0 and vmax >= 0.0206
