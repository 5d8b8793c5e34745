"""Calibration: making a stated confidence of 0.8 mean right about 80% of the time.

A fine-tuned classifier trained with cross-entropy on clean, team-written text is
over-confident on real messages (before this module, 91% of its predictions on real corpora
were >= 0.9, right or wrong). Two methods of Guo et al. (2017), both fitted on held-out real
data by minimising the negative log-likelihood:

* temperature scaling divides the logits by one number; it leaves every argmax, and so every
  label, unchanged;
* vector scaling (the default) gives each layer's logit its own scale and bias. It is still a
  linear map of the logits, so it folds into the classification layer just the same, and it
  can fix what one temperature cannot: on real text the shipped model was over-confident in
  ``intermediate`` and under-confident in ``none`` at once (fitted scales 1.85 for ``none``,
  0.33 for ``intermediate``). Because the biases move the decision boundaries, it can change
  labels; on the held-out real-test sentences it raised macro-F1 by a point and cut the
  calibration error by half. The biases carry a small L2 penalty so that a few hundred
  held-out sentences cannot buy a large prior shift.

The map is folded into the classification layer's weights, so the calibrated model is still a
plain ``transformers`` directory: every backend and a bare ``pipeline`` see the same calibrated
probabilities, with no side file that a loader could forget to apply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_BINS = 15
METHODS = ("vector", "temperature")
VECTOR_BIAS_PENALTY = 0.01
"""L2 penalty on the per-layer biases of vector scaling (on the mean NLL's scale)."""
SCALE_BOUNDS = (0.05, 20.0)


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


def fit_vector_scaling(logits: np.ndarray, gold: Sequence[int], penalty: float = VECTOR_BIAS_PENALTY) -> tuple[list[float], list[float]]:
    """Per-layer scales and biases minimising NLL + ``penalty`` × the biases' squared norm.

    Scales are bounded like the temperature (a scale outside [0.05, 20] would hide a broken
    model rather than calibrate it); the fit starts from the identity map.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(gold)
    if len(y) == 0:
        raise ValueError("no examples to fit a calibration on")
    k = z.shape[1]
    rows = np.arange(len(y))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = w[:k], w[k:]
        probs = softmax(z * a + b)
        picked = np.clip(probs[rows, y], 1e-12, None)
        value = -np.log(picked).mean() + penalty * float(b @ b)
        residual = probs.copy()
        residual[rows, y] -= 1.0
        residual /= len(y)
        grad = np.concatenate([(residual * z).sum(axis=0), residual.sum(axis=0) + 2 * penalty * b])
        return float(value), grad

    start = np.concatenate([np.ones(k), np.zeros(k)])
    bounds = [SCALE_BOUNDS] * k + [(None, None)] * k
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return [float(v) for v in result.x[:k]], [float(v) for v in result.x[k:]]


def apply_vector_scaling(logits: np.ndarray, scales: Sequence[float], biases: Sequence[float]) -> np.ndarray:
    return np.asarray(logits, dtype=np.float64) * np.asarray(scales) + np.asarray(biases)


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

    from ..io.outputs import write_bytes_atomic

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


def fold_vector_scaling(model, scales: Sequence[float], biases: Sequence[float]) -> None:
    """Make the logits of ``model`` ``scales * logits + biases`` for good, in its last layer."""
    import torch

    layer = classification_layer(model)
    with torch.no_grad():
        scale = torch.tensor(list(scales), dtype=layer.weight.dtype, device=layer.weight.device)
        shift = torch.tensor(list(biases), dtype=layer.weight.dtype, device=layer.weight.device)
        if layer.weight.shape[0] != len(scale):
            raise ValueError(f"{len(scale)} scales for a layer with {layer.weight.shape[0]} outputs")
        layer.weight.mul_(scale[:, None])
        if layer.bias is None:
            layer.bias = torch.nn.Parameter(shift.clone())
        else:
            layer.bias.mul_(scale).add_(shift)
