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


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval (``level`` is its coverage, e.g. 0.9)."""

    low: float
    high: float
    level: float

    def to_dict(self) -> dict:
        return asdict(self)


def _macro_f1_from_counts(gold, predicted, n_labels: int) -> float:
    import numpy as np

    counts = np.bincount(gold * n_labels + predicted, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    true_pos = np.diag(counts)
    support, said = counts.sum(axis=1), counts.sum(axis=0)
    denominator = support + said
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros(n_labels), where=denominator > 0)
    return float(f1[support > 0].mean())  # the layers present, as compute_report counts them


def macro_f1_interval(
    gold: Sequence[int],
    predicted: Sequence[int],
    reference: Sequence[int] | None = None,
    *,
    level: float = 0.9,
    resamples: int = 1000,
    seed: int = 0,
) -> Interval:
    """How far macro-F1 could move on another draw of messages like these: a bootstrap over the
    messages. With ``reference`` (another system's layers for the same messages), the interval
    of the difference ``predicted - reference``, both scored on the same resamples, which is how
    two systems on one test set are compared fairly: on a few hundred messages a gap of one or
    two points is often inside it.
    """
    import numpy as np

    y_true, y_pred = np.asarray(gold, dtype=int), np.asarray(predicted, dtype=int)
    y_ref = None if reference is None else np.asarray(reference, dtype=int)
    if len(y_true) != len(y_pred) or (y_ref is not None and len(y_ref) != len(y_true)):
        raise ValueError("gold, predicted and reference layers must be as many")
    if not len(y_true):
        raise ValueError("cannot bootstrap an empty set")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    n_labels = len(LAYERS)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y_true), len(y_true))
        value = _macro_f1_from_counts(y_true[idx], y_pred[idx], n_labels)
        if y_ref is not None:
            value -= _macro_f1_from_counts(y_true[idx], y_ref[idx], n_labels)
        values.append(value)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), level)
