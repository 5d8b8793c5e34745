"""The two pictures of a corpus reciprocity run, as PNGs.

Why this exists
---------------
A share of conversations "above chance" hides how far above; a pooled slope hides where in a
conversation depth changes. Two plots show both: each conversation's observed reciprocity index
against its surrogate baseline (points above the diagonal reciprocate more than chance
partners would), and mean turn depth by turn position with the number of turns at each
position. Written with matplotlib's Agg backend (no display needed) and atomically through
:func:`~disclosure_nlp.io.outputs.write_bytes_atomic`, refusing to overwrite without ``force``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .corpus import CorpusReciprocity
from ..io.outputs import write_bytes_atomic

PLOT_NAMES: dict[str, str] = {
    "index_vs_surrogate": "reciprocity_vs_surrogate.png",
    "depth_by_position": "depth_by_position.png",
}


def plot_paths(directory: str | Path) -> dict[str, Path]:
    """Where :func:`write_plots` writes, so callers can check the paths before any work."""
    return {name: Path(directory) / file for name, file in PLOT_NAMES.items()}


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    image = io.BytesIO()
    fig.tight_layout()
    fig.savefig(image, dpi=110, format="png")
    plt.close(fig)
    return image.getvalue()


def write_plots(result: CorpusReciprocity, directory: str | Path, *, force: bool = False,
                title: str = "corpus") -> list[Path]:
    """Write both PNGs into ``directory`` (which must exist) and return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = plot_paths(directory)
    points = result.points[~np.isnan(result.points[:, :2]).any(axis=1)]
    observed, baseline = points[:, 0].tolist(), points[:, 1].tolist()
    significant = (points[:, 2] < 0.05).tolist()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="observed = baseline")
    for flag, colour, label in ((False, "tab:blue", "not above chance"), (True, "tab:red", "above chance (p<0.05)")):
        xs = [x for x, f in zip(baseline, significant) if f is flag]
        ys = [y for y, f in zip(observed, significant) if f is flag]
        ax.scatter(xs, ys, s=10, alpha=0.6, color=colour, label=f"{label}: {len(xs)}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("surrogate-partner baseline (mean RI)")
    ax.set_ylabel("observed reciprocity index")
    ax.set_title(f"{title}: {len(observed)} conversations")
    ax.legend(loc="upper left", fontsize=8)
    write_bytes_atomic(paths["index_vs_surrogate"], _png(fig), force=force)

    rows = result.depth_by_position
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    xs = list(range(len(rows)))
    top.plot(xs, [r["mean_depth"] for r in rows], marker="o", markersize=3)
    top.set_ylim(0, 3)
    top.set_ylabel("mean turn depth (0-3)")
    slope = result.deepening["pooled_slope"]
    label = "undefined" if slope["value"] is None else f"{slope['value']:+.4f}/turn"
    top.set_title(f"{title}: depth by turn position (pooled slope {label})")
    bottom.bar(xs, [r["turns"] for r in rows], color="grey")
    bottom.set_ylabel("turns")
    bottom.set_xlabel("turn position (last bin pools later turns)")
    bottom.set_xticks(xs[:: max(1, len(xs) // 10)])
    bottom.set_xticklabels([str(rows[i]["position"]) for i in xs[:: max(1, len(xs) // 10)]])
    write_bytes_atomic(paths["depth_by_position"], _png(fig), force=force)
    return list(paths.values())


__all__ = ["PLOT_NAMES", "plot_paths", "write_plots"]
