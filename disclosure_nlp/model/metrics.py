"""Evaluation figures for predicted layers against gold layers.

Besides the usual classification figures, the layers are ordered, so a model that calls a
``core`` message ``intermediate`` is less wrong than one that calls it ``none``: the ordinal
figures (mean absolute layer error, within-one accuracy, Spearman correlation of the continuous
depth score with the gold layer) show that difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

from ..layers import LAYERS


@dataclass(frozen=True)
class LayerScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport:
    """Figures of one system (the model or the baseline) on one labeled set."""

    system: str
    n: int
    accuracy: float
    macro_f1: float
    per_layer: dict[str, LayerScores]
    confusion: list[list[int]] = field(repr=False)
    """Rows are gold layers, columns predicted layers, both in depth order."""
    mean_abs_error: float
    within_one: float
    spearman: float | None
    """Spearman rho of the depth score with the gold layer; ``None`` if either is constant."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(LAYERS)
        return data


def compute_report(
    gold: Sequence[int],
    predicted: Sequence[int],
    depth: Sequence[float] | None = None,
    *,
    system: str = "model",
) -> EvaluationReport:
    """Compute every figure from gold and predicted layer ids (and depth scores if given).

    Without depth scores the predicted layer id stands in for the depth, which is what a
    system without probabilities can offer.
    """
    import numpy as np
    from scipy.stats import spearmanr
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("cannot evaluate on an empty set")
    y_true = np.asarray(gold, dtype=int)
    y_pred = np.asarray(predicted, dtype=int)
    labels = list(range(len(LAYERS)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    present = support > 0
    per_layer = {
        name: LayerScores(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, name in enumerate(LAYERS)
    }
    scores = np.asarray(depth, dtype=float) if depth is not None else y_pred.astype(float)
    if len(scores) != len(y_true):
        raise ValueError(f"{len(y_true)} gold labels but {len(scores)} depth scores")
    rho = None
    if np.ptp(scores) > 0 and np.ptp(y_true) > 0:
        rho = float(spearmanr(scores, y_true).statistic)
    errors = np.abs(y_true - y_pred)
    return EvaluationReport(
        system=system,
        n=int(len(y_true)),
        accuracy=float(np.mean(y_true == y_pred)),
        # Macro-F1 over the layers that occur in the gold set: a layer absent from a small
        # evaluation set would otherwise count as a zero and hide how the others fare.
        macro_f1=float(np.mean(f1[present])),
        per_layer=per_layer,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        mean_abs_error=float(np.mean(errors)),
        within_one=float(np.mean(errors <= 1)),
        spearman=rho,
    )
