"""Calibration: making a stated confidence of 0.8 mean right about 80% of the time.

A fine-tuned classifier trained with cross-entropy on clean, team-written text is
over-confident on real messages (before this module, 91% of its predictions on real corpora
were >= 0.9, right or wrong). Temperature scaling (Guo et al. 2017) divides the logits by one
number fitted on held-out real data; it leaves every argmax, and so every label, unchanged.
The temperature is folded into the classification layer's weights, so the calibrated model is
still a plain ``transformers`` directory: every backend and a bare ``pipeline`` see the same
calibrated probabilities, with no side file that a loader could forget to apply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, gold: Sequence[int], temperature: float = 1.0) -> float:
    probs = softmax(logits, temperature)
    picked = probs[np.arange(len(gold)), np.asarray(gold)]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, gold: Sequence[int]) -> float:
    """The temperature that minimises the negative log-likelihood of ``gold``.

    Bounded to [0.05, 20]: outside it the data are too few or the model is broken, and a
    wild value would hide that rather than fix it.
    """
    from scipy.optimize import minimize_scalar

    if len(gold) == 0:
        raise ValueError("no examples to fit a temperature on")
    result = minimize_scalar(lambda t: nll(logits, gold, t), bounds=(0.05, 20.0), method="bounded")
    return float(result.x)


@dataclass(frozen=True)
class CalibrationReport:
    """Expected calibration error and the reliability table behind it."""

    ece: float
    """Mean |accuracy - confidence| over confidence bins, weighted by bin size."""
    max_gap: float
    bins: list[dict]
    mean_confidence: float
    accuracy: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def calibration_report(probabilities: np.ndarray, gold: Sequence[int], bins: int = DEFAULT_BINS) -> CalibrationReport:
    """ECE with equal-width confidence bins (the usual definition, Naeini et al. 2015)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    gold = np.asarray(gold)
    if len(gold) == 0:
        return CalibrationReport(float("nan"), float("nan"), [], float("nan"), float("nan"), 0)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == gold).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A confidence of exactly 1.0 falls in the last bin, not past it.
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece, worst = [], 0.0, 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count == 0:
            continue
        acc, conf = float(correct[members].mean()), float(confidence[members].mean())
        gap = abs(acc - conf)
        ece += gap * count / len(gold)
        worst = max(worst, gap)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": count, "accuracy": acc, "confidence": conf})
    return CalibrationReport(float(ece), float(worst), table, float(confidence.mean()), float(correct.mean()), int(len(gold)))


def reliability_diagram(report: CalibrationReport, path: str | Path, title: str = "Reliability", *,
                        force: bool = True) -> Path:
    """Write a PNG: accuracy against confidence per bin, with the diagonal and bin sizes
    (atomically: a failed or interrupted write leaves no half image and follows no symlink)."""
    import io

    import matplotlib

    from .outputs import write_bytes_atomic

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    if report.bins:
        centers = [(b["low"] + b["high"]) / 2 for b in report.bins]
        width = report.bins[0]["high"] - report.bins[0]["low"]
        top.bar(centers, [b["accuracy"] for b in report.bins], width=width * 0.9, alpha=0.7, label="accuracy in bin")
        top.plot([b["confidence"] for b in report.bins], [b["accuracy"] for b in report.bins], "o", color="black", markersize=3,
                 label="mean confidence")
        bottom.bar(centers, [b["n"] for b in report.bins], width=width * 0.9, color="grey")
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_title(f"{title}: ECE {report.ece:.3f} (n={report.n})")
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("confidence of the predicted layer")
    bottom.set_ylabel("messages")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=110, format="png")
    plt.close(fig)
    write_bytes_atomic(path, image.getvalue(), force=force)
    return path


def classification_layer(model):
    """The final linear layer whose outputs are the logits, for folding a temperature into it."""
    import torch

    head = getattr(model, "classifier", None)
    if isinstance(head, torch.nn.Linear):
        return head
    out = getattr(head, "out_proj", None)
    if isinstance(out, torch.nn.Linear):
        return out
    raise ValueError(f"cannot find the final linear layer of {type(model).__name__} to calibrate")


def fold_temperature(model, temperature: float) -> None:
    """Divide the logits of ``model`` by ``temperature`` for good, by scaling its last layer."""
    import torch

    layer = classification_layer(model)
    with torch.no_grad():
        layer.weight.div_(temperature)
        if layer.bias is not None:
            layer.bias.div_(temperature)
