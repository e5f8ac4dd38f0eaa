"""The simulation's figures as PNGs: the shared head over rounds (with ε and bytes), and each
hub's residents with the shared head and with their own.

matplotlib is a host package (the ``host`` extra), imported inside the functions here; the
simulation is a host command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.errors import EdgeError

__all__ = ["PlotUnavailable", "plot_hubs", "plot_rounds"]


class PlotUnavailable(EdgeError):
    """matplotlib is not installed (it comes with the host extra)."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotUnavailable("plots need matplotlib: pip install 'wearable-edge[host]'") from e
    return plt


def _f1_curve(result: dict[str, Any]) -> tuple[list[int], list[float]]:
    xs = [0] + [r["round"] for r in result["rounds"]]
    ys = [result["initial_macro_f1"]] + [r["global_macro_f1"] for r in result["rounds"]]
    return xs, ys


def plot_rounds(out: Path, result: dict[str, Any], twin: dict[str, Any] | None, title: str) -> Path:
    """Global macro-F1 per round (and the no-DP twin's), cumulative ε, bytes sent per round."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    ax = axes[0]
    xs, ys = _f1_curve(result)
    dp = result["rounds"][-1]["epsilon"] is not None
    ax.plot(xs, ys, "o-", label="with DP" if dp else "federated")
    if twin is not None:
        tx, ty = _f1_curve(twin)
        ax.plot(tx, ty, "s--", label="same run without DP")
    ax.set_xlabel("round (0 = the student's own head)")
    ax.set_ylabel("macro-F1, all hubs' later windows")
    ax.set_title("shared head")
    ax.set_xticks(xs)
    ax.legend(loc="lower right")
    ax = axes[1]
    rounds = [r["round"] for r in result["rounds"]]
    if dp:
        ax.plot(rounds, [r["epsilon"] for r in result["rounds"]], "o-", color="C3")
        ax.set_ylabel(f"cumulative ε (δ = {result['config']['dp_delta']:g})")
    else:
        ax.text(
            0.5, 0.5, "no differential privacy", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_ylabel("cumulative ε")
    ax.set_xlabel("round")
    ax.set_title("privacy spent (Rényi DP account)")
    ax.set_xticks(rounds)
    ax = axes[2]
    ax.bar(rounds, [r["bytes_up"] / 1024 for r in result["rounds"]], color="C2")
    ax.set_xlabel("round")
    ax.set_ylabel("KiB sent by all hubs")
    ax.set_title("upload per round")
    ax.set_xticks(rounds)
    fig.suptitle(title)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_hubs(out: Path, result: dict[str, Any], title: str) -> Path:
    """Per hub: macro-F1 of the student's head, the final shared head, and personalized."""
    plt = _pyplot()
    hubs = result["hubs"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(hubs) + 2), 4), constrained_layout=True)
    width = 0.27
    for j, (key, label) in enumerate(
        (
            ("initial_macro_f1", "student's head (before federation)"),
            ("baseline_macro_f1", "shared head after federation"),
            ("personalized_macro_f1", "personalized per resident"),
        )
    ):
        xs = [i + (j - 1) * width for i in range(len(hubs))]
        ax.bar(xs, [h[key] for h in hubs], width, label=label)
    ax.set_xticks(
        range(len(hubs)), [f"{h['hub']}\n{len(h['residents'])} residents" for h in hubs], fontsize=8
    )
    ax.set_ylabel("macro-F1 on the residents' later windows")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
