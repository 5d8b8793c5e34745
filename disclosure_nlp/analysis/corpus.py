"""Reciprocity across a corpus: per-conversation figures against chance, pooled with CIs.

Why this exists
---------------
One conversation's reciprocity index cannot tell a reviewer whether people in a corpus answer
disclosure with disclosure: every figure needs a chance level (:mod:`disclosure_nlp.analysis.baselines`)
and a corpus-wide summary with its uncertainty. :func:`analyze_corpus` reads transcripts
conversation by conversation, computes for each the existing figures
(:func:`~disclosure_nlp.analysis.reciprocity.analyze_conversation`, unchanged), their shuffle and
surrogate baselines, turn-level rLSM and coordination counts (:mod:`disclosure_nlp.analysis.matching`),
keeps a few numbers of it (:class:`ConversationSummary`), and at the end reports:

* the distribution of the reciprocity index, with percentile-bootstrap 95% CIs of its mean and
  median (resampling conversations, the unit that is independent);
* the share of conversations above chance: observed RI above its surrogate baseline at
  one-sided empirical p < 0.05 (and the same for the within-speaker shuffle and for lag-1 r);
* coordination per depth threshold, pooled over all ordered speaker pairs of all
  conversations (with a bootstrap CI over conversations) and per pair of speaker names (names
  recur when they are roles: seeker/supporter, A/B), each pair against its own base rate (see
  :mod:`disclosure_nlp.analysis.matching`);
* deepening over turns: the pooled within-conversation slope of turn depth on turn position,
  ``Σ_c Sxy_c / Σ_c Sxx_c`` (each conversation centred on itself, so long and short
  conversations with different overall depths do not fake a trend), and the mean of the
  per-conversation slopes, each with a bootstrap CI over conversations; also per speaker name.

Memory: one conversation (or one labeling window of them) at a time, 23 numbers per
conversation (what the corpus figures and the plot need), per-name sums for at most 50
speaker names, and the surrogate reservoir of fixed size. Each conversation's full figures go
to an unnamed temporary file and are streamed into the JSON output at the end. Labels are read from a
``layer`` column (and ``depth`` when present, e.g. ``disclosure annotate`` output) or, for a file
without a ``layer`` column, computed on the fly by the classifier as ``annotate`` does.

Why one module of ~700 lines: the corpus figures share one streaming pass and one memory budget
(the reservoir, the position bins, the per-name sums); split, each part would need the others'
state passed through, and the budget would no longer be visible in one place.
"""

from __future__ import annotations

import json
import math
import tempfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .baselines import ConversationBaselines, Skeleton, SurrogateReservoir, conversation_baselines
from ..errors import DataError, DisclosureError
from ..layers import LAYERS
from .matching import THRESHOLDS, Coordination, SpeakerMatching, ThresholdCounts, coordination, speaker_matching, turn_matches
from .reciprocity import LabeledMessage, Turn, analyze_conversation
from ..io.transcripts import ColumnMap, Message, iter_conversations, read_messages
from .rounding import ROUND_DIGITS, fields_dict, rounded as _rounded  # noqa: F401  (ROUND_DIGITS stays importable from here)

MAX_POSITION = 40
"""Turn positions shown in depth-by-position (later turns are pooled into the last bin)."""
MAX_NAME_PAIRS = 50
"""Speaker-name pairs pooled separately; past this many, names are not roles and only the
overall pooled figures are kept (bounded memory on corpora with unique speaker names)."""
MAX_NAMES = 20
LABEL_WINDOW = 512
"""Messages classified per call when labeling on the fly (bounded memory, efficient batches)."""
UNKNOWN_SPEAKER = "(unknown)"
BOOTSTRAP_BLOCK_VALUES = 250_000
"""Resampled values drawn per bootstrap block (about 2 MB of indices): memory does not grow
with the number of conversations."""


# --------------------------------------------------------------------------- per conversation


@dataclass
class Trend:
    """Within-conversation least-squares sums of depth on turn position (pool by adding)."""

    n: int = 0
    sxx: float = 0.0
    sxy: float = 0.0

    @classmethod
    def of(cls, positions: Sequence[float], depths: Sequence[float]) -> Trend:
        if len(positions) < 2:
            return cls(len(positions), 0.0, 0.0)
        mx, my = math.fsum(positions) / len(positions), math.fsum(depths) / len(depths)
        return cls(len(positions), math.fsum((x - mx) ** 2 for x in positions),
                   math.fsum((x - mx) * (y - my) for x, y in zip(positions, depths)))

    @property
    def slope(self) -> float | None:
        return self.sxy / self.sxx if self.sxx > 0 else None


@dataclass
class ConversationSummary:
    """The few numbers kept per conversation."""

    conversation_id: str
    n_messages: int
    n_turns: int
    n_exchanges: int
    n_speakers: int
    reciprocity_index: float | None
    lag1_correlation: float | None
    trajectory_slope: float | None
    baselines: ConversationBaselines
    rlsm: dict[str, SpeakerMatching]
    coordination: Coordination
    trend: Trend
    speaker_trends: dict[str, Trend]
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        figures = ("reciprocity_index", "lag1_correlation", "trajectory_slope")
        return {
            **fields_dict(self, ("conversation_id", "n_messages", "n_turns", "n_exchanges", "n_speakers", *figures),
                          rounded_names=figures),
            "baselines": self.baselines.to_dict(),
            "rlsm": {name: m.to_dict() for name, m in self.rlsm.items()},
            "coordination": self.coordination.to_dict()["pairs"],
            "reasons": dict(self.reasons),
        }


def summarize_conversation(
    conversation_id: str,
    messages: Sequence[LabeledMessage],
    *,
    reservoir: SurrogateReservoir | None,
    draws: int,
    rng: np.random.Generator,
) -> tuple[ConversationSummary, list[Turn]]:
    """Every corpus figure of one labelled conversation; the turns are returned for the
    caller's position bins and the reservoir, then dropped."""
    result = analyze_conversation(messages, conversation_id, permutations=0)
    turns = result.turns
    observed = {"reciprocity_index": result.reciprocity_index, "lag1_correlation": result.lag1_correlation}
    baselines = conversation_baselines(turns, observed, reservoir=reservoir, draws=draws, rng=rng)
    matches = turn_matches(turns)
    speakers: dict[str, list[Turn]] = {}
    for t in turns:
        speakers.setdefault(t.speaker, []).append(t)
    reasons = {k: v for k, v in result.reasons.items() if k in ("reciprocity_index", "lag1_correlation", "trajectory_slope")}
    summary = ConversationSummary(
        conversation_id=conversation_id,
        n_messages=result.n_messages,
        n_turns=result.n_turns,
        n_exchanges=len(matches),
        n_speakers=result.n_speakers,
        reciprocity_index=result.reciprocity_index,
        lag1_correlation=result.lag1_correlation,
        trajectory_slope=result.trajectory_slope,
        baselines=baselines,
        rlsm=speaker_matching(matches),
        coordination=coordination(turns),
        trend=Trend.of([float(t.index) for t in turns], [t.depth for t in turns]),
        speaker_trends={name: Trend.of([float(t.index) for t in own], [t.depth for t in own])
                        for name, own in speakers.items()},
        reasons=reasons,
    )
    return summary, turns


# --------------------------------------------------------------------------- corpus figures


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile-bootstrap 95% CI over conversations."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"value": _rounded(self.value), "ci95": [_rounded(self.low), _rounded(self.high)], "n": self.n}
        if self.reason:
            out["reason"] = self.reason
        return out


def bootstrap_statistic(values: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], resamples: int,
                        rng: np.random.Generator) -> Estimate:
    """``statistic`` of ``values`` (applied along axis 1 of a matrix of resamples) with a 95%
    percentile CI; resampled in blocks of ``BOOTSTRAP_BLOCK_VALUES`` so memory stays a few MB."""
    n = len(values)
    if n == 0:
        return Estimate(None, None, None, 0, "no conversation where the figure is defined")
    point = float(statistic(values[None, ...])[0])
    if resamples <= 0 or n < 2:
        return Estimate(point, None, None, n, "no bootstrap" if resamples <= 0 else "one conversation: no CI")
    estimates = []
    block = max(1, BOOTSTRAP_BLOCK_VALUES // n)
    for start in range(0, resamples, block):
        idx = rng.integers(0, n, size=(min(block, resamples - start), n))
        estimates.append(statistic(values[idx]))
    pooled = np.concatenate(estimates)
    pooled = pooled[~np.isnan(pooled)]
    low, high = (float(np.percentile(pooled, 2.5)), float(np.percentile(pooled, 97.5))) if pooled.size else (None, None)
    return Estimate(point, low, high, n)


def _mean_rows(m: np.ndarray) -> np.ndarray:
    return m.mean(axis=-1)


def _median_rows(m: np.ndarray) -> np.ndarray:
    return np.median(m, axis=-1)


def _ratio_rows(m: np.ndarray) -> np.ndarray:
    """Pooled slope of resampled (sxy, sxx) pairs: Σsxy / Σsxx per row."""
    sums = m.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums[..., 1] > 0, sums[..., 0] / sums[..., 1], np.nan)


def deepening(trends: list[Trend], resamples: int, rng: np.random.Generator) -> dict[str, Any]:
    """Pooled within-conversation slope and mean per-conversation slope, each with its CI."""
    usable = [t for t in trends if t.sxx > 0]
    if not usable:
        empty = Estimate(None, None, None, 0, "no conversation with 2 or more turns")
        return {"pooled_slope": empty.to_dict(), "mean_conversation_slope": empty.to_dict(), "turns": 0}
    pairs = np.array([[t.sxy, t.sxx] for t in usable], dtype=np.float64)
    pooled = bootstrap_statistic(pairs, _ratio_rows, resamples, rng)
    slopes = np.array([t.sxy / t.sxx for t in usable])
    mean = bootstrap_statistic(slopes, _mean_rows, resamples, rng)
    return {"pooled_slope": pooled.to_dict(), "mean_conversation_slope": mean.to_dict(),
            "turns": sum(t.n for t in usable)}


@dataclass
class CorpusReciprocity:
    """Corpus-level reciprocity figures.

    Every conversation's full figures are spooled to an unnamed temporary file while the corpus
    is read (``keep_conversations``), not held in memory: :meth:`iter_conversations` reads them
    back one at a time, and :func:`write_corpus_json` streams them into the output.
    ``points`` keeps three numbers per conversation for the plot: observed RI, its surrogate
    baseline mean and its surrogate p (NaN where undefined).
    """

    inputs: list[str]
    labels: str
    seed: int
    draws: int
    reservoir_size: int
    resamples: int
    n_conversations: int
    n_messages: int
    n_unlabeled_messages: int
    reciprocity_index: dict[str, Any]
    above_chance: dict[str, Any]
    coordination: dict[str, Any]
    rlsm: dict[str, Any]
    deepening: dict[str, Any]
    depth_by_position: list[dict[str, Any]]
    points: np.ndarray
    spool: IO[str] | None = None

    def figures(self) -> dict[str, Any]:
        """The corpus figures without the per-conversation list."""
        return {
            "inputs": list(self.inputs),
            "labels": self.labels,
            "settings": {"seed": self.seed, "baseline_draws": self.draws, "reservoir_size": self.reservoir_size,
                         "bootstrap_resamples": self.resamples},
            "n_conversations": self.n_conversations,
            "n_messages": self.n_messages,
            "n_unlabeled_messages": self.n_unlabeled_messages,
            "reciprocity_index": self.reciprocity_index,
            "above_chance": self.above_chance,
            "coordination": self.coordination,
            "rlsm": self.rlsm,
            "deepening": self.deepening,
            "depth_by_position": self.depth_by_position,
        }

    def iter_conversations(self) -> Iterator[dict[str, Any]]:
        """Each conversation's figures (:meth:`ConversationSummary.to_dict`), in input order."""
        if self.spool is None:
            return
        self.spool.seek(0)
        for line in self.spool:
            yield json.loads(line)

    def to_dict(self) -> dict[str, Any]:
        """Everything as one dict (holds every conversation: for files of any size use
        :func:`write_corpus_json`)."""
        return {**self.figures(), "conversations": list(self.iter_conversations())}


def write_corpus_json(result: CorpusReciprocity, path: str | Path, *, force: bool = False) -> None:
    """Write ``result.to_dict()``'s document, streaming the conversations from the spool, so
    memory does not grow with the corpus; the file appears only when complete."""
    from ..io.outputs import open_json_object

    with open_json_object(path, force=force) as out:
        for key, value in result.figures().items():
            out.add(key, value)
        out.add_array("conversations", result.iter_conversations())


# Per-conversation numbers kept in memory (NaN = undefined), in this order.
_KEPT = ("reciprocity_index", "lag1_correlation", "trend_n", "trend_sxx", "trend_sxy") + tuple(
    f"{stat}_{kind}_{part}" for kind in ("surrogate", "shuffled") for stat in ("reciprocity_index", "lag1_correlation")
    for part in ("observed", "mean", "p")) + tuple(
    f"coordination_{k}_{part}" for k in THRESHOLDS for part in ("excess", "prompts"))
_COLUMN = {name: i for i, name in enumerate(_KEPT)}
MAX_TRACKED_NAMES = 50
"""Speaker names followed separately (trends, rLSM); later new names only count in the totals."""


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


class _Accumulator:
    """What the corpus figures need, gathered conversation by conversation in fixed-size
    numbers: ``len(_KEPT)`` doubles per conversation, per-name sums for at most
    ``MAX_TRACKED_NAMES`` names and ``MAX_NAME_PAIRS`` pairs, and the position bins."""

    def __init__(self, spool: IO[str] | None) -> None:
        self.kept = array("d")
        self.n_conversations = 0
        self.n_messages = 0
        self.spool = spool
        self.position_sum = np.zeros(MAX_POSITION + 1)
        self.position_n = np.zeros(MAX_POSITION + 1, dtype=np.int64)
        self.coordination_total = {k: ThresholdCounts.pool() for k in THRESHOLDS}
        self.coordination_named: dict[tuple[str, str], dict[int, ThresholdCounts]] = {}
        self.named_overflow = False
        self.name_conversations: dict[str, int] = {}
        self.name_trends: dict[str, array] = {}
        self.rlsm_named: dict[str, list[float]] = {}
        self.rlsm_total = [0.0, 0, 0.0, 0]

    def _tracked(self, name: str) -> bool:
        return name in self.name_trends or len(self.name_trends) < MAX_TRACKED_NAMES

    def add(self, summary: ConversationSummary, turns: list[Turn]) -> None:
        self.n_conversations += 1
        self.n_messages += summary.n_messages
        if self.spool is not None:
            self.spool.write(json.dumps(summary.to_dict(), ensure_ascii=False) + "\n")
        row = [math.nan] * len(_KEPT)
        row[_COLUMN["reciprocity_index"]] = _nan(summary.reciprocity_index)
        row[_COLUMN["lag1_correlation"]] = _nan(summary.lag1_correlation)
        row[_COLUMN["trend_n"]], row[_COLUMN["trend_sxx"]], row[_COLUMN["trend_sxy"]] = (
            summary.trend.n, summary.trend.sxx, summary.trend.sxy)
        for kind in ("surrogate", "shuffled"):
            for stat, b in getattr(summary.baselines, kind).items():
                for part, value in (("observed", b.observed), ("mean", b.mean), ("p", b.p)):
                    row[_COLUMN[f"{stat}_{kind}_{part}"]] = _nan(value)
        for k, counts in summary.coordination.pooled().items():
            row[_COLUMN[f"coordination_{k}_excess"]] = counts.both_reaching - counts.expected_both()
            row[_COLUMN[f"coordination_{k}_prompts"]] = counts.prompts_reaching
        self.kept.extend(row)
        for t in turns:
            slot = min(t.index, MAX_POSITION)
            self.position_sum[slot] += t.depth
            self.position_n[slot] += 1
        for name, trend in summary.speaker_trends.items():
            if self._tracked(name):
                self.name_conversations[name] = self.name_conversations.get(name, 0) + 1
                self.name_trends.setdefault(name, array("d")).extend((trend.n, trend.sxx, trend.sxy))
        for name, m in summary.rlsm.items():
            parts = (m.rlsm_mean or 0.0) * m.exchanges, m.exchanges, (m.rlsm_disclosing or 0.0) * m.disclosing_exchanges, m.disclosing_exchanges
            targets = [self.rlsm_total] + ([self.rlsm_named.setdefault(name, [0.0, 0, 0.0, 0])] if self._tracked(name) else [])
            for target in targets:
                for i, value in enumerate(parts):
                    target[i] += value
        for pair, by_k in summary.coordination.pairs.items():
            for k, counts in by_k.items():
                self.coordination_total[k].add(counts)
            if pair not in self.coordination_named and len(self.coordination_named) >= MAX_NAME_PAIRS:
                self.named_overflow = True
                continue
            target = self.coordination_named.setdefault(pair, {k: ThresholdCounts.pool() for k in THRESHOLDS})
            for k, counts in by_k.items():
                target[k].add(counts)

    def matrix(self) -> np.ndarray:
        return np.frombuffer(self.kept, dtype=np.float64).reshape(-1, len(_KEPT)) if self.kept else np.zeros((0, len(_KEPT)))

    def roles(self) -> list[str]:
        """Speaker names found in two or more conversations (roles), most frequent first, at
        most ``MAX_NAMES``."""
        ranked = sorted((item for item in self.name_conversations.items() if item[1] >= 2), key=lambda item: -item[1])
        return [name for name, _ in ranked[:MAX_NAMES]]


def _trends(values: np.ndarray) -> list[Trend]:
    return [Trend(int(n), float(sxx), float(sxy)) for n, sxx, sxy in values.reshape(-1, 3)]


def _above_chance(kept: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("surrogate", "shuffled"):
        for stat in ("reciprocity_index", "lag1_correlation"):
            p = kept[:, _COLUMN[f"{stat}_{kind}_p"]]
            tested = ~np.isnan(p)
            observed = kept[tested, _COLUMN[f"{stat}_{kind}_observed"]]
            means = kept[tested, _COLUMN[f"{stat}_{kind}_mean"]]
            n, above = int(tested.sum()), int((p[tested] < 0.05).sum())
            out[f"{stat}_vs_{kind}"] = {
                "n_tested": n,
                "n_above": above,
                "share": _rounded(above / n) if n else None,
                "mean_observed": _rounded(float(observed.mean())) if n else None,
                "mean_baseline": _rounded(float(means.mean())) if n else None,
                **({} if n else {"reason": "no conversation with this baseline defined"}),
            }
    return out


def _rlsm_figures(a: float, n: int, b: float, nd: int) -> dict[str, Any]:
    return {"rlsm_mean": _rounded(a / n) if n else None, "exchanges": int(n),
            "rlsm_disclosing": _rounded(b / nd) if nd else None, "disclosing_exchanges": int(nd)}


def _finish(acc: _Accumulator, *, inputs: list[str], labels: str, seed: int, draws: int, reservoir_size: int,
            resamples: int, unlabeled: int) -> CorpusReciprocity:
    rng = np.random.default_rng([abs(seed), 1])
    kept = acc.matrix()
    ri = kept[:, _COLUMN["reciprocity_index"]]
    ri = ri[~np.isnan(ri)]
    distribution = {
        "n": int(ri.size),
        "undefined": acc.n_conversations - int(ri.size),
        "mean": bootstrap_statistic(ri, _mean_rows, resamples, rng).to_dict(),
        "median": bootstrap_statistic(ri, _median_rows, resamples, rng).to_dict(),
        "quartiles": [_rounded(float(q)) for q in np.percentile(ri, [25, 50, 75])] if ri.size else None,
        "histogram": _histogram(ri),
    }
    roles = acc.roles()
    trend_columns = [_COLUMN["trend_n"], _COLUMN["trend_sxx"], _COLUMN["trend_sxy"]]
    deep = deepening(_trends(kept[:, trend_columns]), resamples, rng)
    deep["by_speaker"] = {name: deepening(_trends(np.frombuffer(acc.name_trends[name])), resamples, rng)
                          for name in roles}
    named = {f"{a}→{b}": {LAYERS[k]: c.figures() for k, c in by_k.items()}
             for (a, b), by_k in acc.coordination_named.items() if a in roles and b in roles}
    pooled = {}
    for k, counts in acc.coordination_total.items():
        figures = counts.figures()
        columns = [_COLUMN[f"coordination_{k}_excess"], _COLUMN[f"coordination_{k}_prompts"]]
        estimate = bootstrap_statistic(kept[:, columns], _ratio_rows, resamples, rng) if counts.prompts_reaching else None
        figures["ci95"] = [_rounded(estimate.low), _rounded(estimate.high)] if estimate else [None, None]
        pooled[LAYERS[k]] = figures
    coord = {"pooled": pooled, "by_speaker_pair": named}
    if acc.named_overflow:
        coord["note"] = f"more than {MAX_NAME_PAIRS} speaker-name pairs: names are not roles; later pairs only pooled"
    rlsm = {"pooled": _rlsm_figures(*acc.rlsm_total),
            "by_speaker": {name: _rlsm_figures(*acc.rlsm_named[name]) for name in roles if name in acc.rlsm_named}}
    positions = [{"position": i if i < MAX_POSITION else f"{MAX_POSITION}+", "turns": int(n),
                  "mean_depth": _rounded(acc.position_sum[i] / n) if n else None}
                 for i, n in enumerate(acc.position_n) if n]
    points = kept[:, [_COLUMN["reciprocity_index_surrogate_observed"], _COLUMN["reciprocity_index_surrogate_mean"],
                      _COLUMN["reciprocity_index_surrogate_p"]]].copy()
    return CorpusReciprocity(
        inputs=inputs, labels=labels, seed=seed, draws=draws, reservoir_size=reservoir_size, resamples=resamples,
        n_conversations=acc.n_conversations, n_messages=acc.n_messages, n_unlabeled_messages=unlabeled,
        reciprocity_index=distribution, above_chance=_above_chance(kept), coordination=coord,
        rlsm=rlsm, deepening=deep, depth_by_position=positions, points=points, spool=acc.spool,
    )


def _histogram(values: np.ndarray) -> list[dict[str, Any]]:
    counts, edges = np.histogram(values, bins=10, range=(0.0, 1.0)) if values.size else (np.zeros(10), np.linspace(0, 1, 11))
    return [{"low": round(float(edges[i]), 2), "high": round(float(edges[i + 1]), 2), "n": int(counts[i])} for i in range(10)]


# --------------------------------------------------------------------------- reading


def _number(value: Any, message: Message, column: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise DataError(f"must be a number, got {value!r}", path=message.source, line=message.line, field=column)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"must be a number, got {value!r}", path=message.source, line=message.line, field=column) from None


def labeled_message(message: Message, layer_col: str = "layer", depth_col: str = "depth") -> LabeledMessage | None:
    """A message's own labels (``None`` when its layer is empty, as annotate writes for a
    message it did not label); a bad value is a :class:`DataError` naming file, line, field."""
    layer = message.fields.get(layer_col)
    if layer is None or layer == "":
        return None
    if isinstance(layer, str) and layer.strip().lstrip("-").isdigit():
        layer = int(layer)
    depth = _number(message.fields.get(depth_col), message, depth_col)
    try:
        return LabeledMessage.from_mapping({"id": message.id, "speaker": message.speaker or UNKNOWN_SPEAKER,
                                            "layer": layer, "depth": depth, "reply_to": message.reply_to})
    except ValueError as err:
        column = depth_col if "'depth'" in str(err) else layer_col
        raise DataError(str(err), path=message.source, line=message.line, field=column) from None


def has_labels(path: Path, *, format: str | None = None, columns: ColumnMap = ColumnMap(), layer_col: str = "layer") -> bool:
    """Whether the file's first message has a ``layer`` column (decides labeled vs on the fly)."""
    first = next(iter(read_messages(path, format=format, columns=columns)), None)
    return first is not None and layer_col in first.fields


def _labeled_conversations(
    paths: Sequence[Path], labeled: Sequence[bool], classifier: Any, *, format: str | None, columns: ColumnMap,
    batch_size: int, unlabeled: list[int],
) -> Iterator[tuple[str, list[LabeledMessage]]]:
    """Conversations of every input with labels, from the file or from the classifier (in
    windows of about ``LABEL_WINDOW`` messages, classified in one call). Labeling here follows
    annotate's defaults: a message not in English is left unlabeled (counted in ``unlabeled``,
    out of the figures) and a message is labeled on its first ``DEFAULT_MAX_CHARS`` characters."""
    from ..pipeline.labeling import DEFAULT_MAX_CHARS
    from ..model.classifier import Prediction
    from ..model.language import detect_language

    for path, own in zip(paths, labeled):
        conversations = iter_conversations(read_messages(path, format=format, columns=columns))
        if own:
            for cid, messages in conversations:
                kept = [m for m in (labeled_message(x) for x in messages) if m is not None]
                unlabeled[0] += len(messages) - len(kept)
                yield cid, kept
            continue
        pending: list[tuple[str, list[Message]]] = []
        waiting = 0

        def flush() -> Iterator[tuple[str, list[LabeledMessage]]]:
            english = [[detect_language(m.text[:DEFAULT_MAX_CHARS]).supported for m in ms] for _, ms in pending]
            texts = [m.text[:DEFAULT_MAX_CHARS] for (_, ms), ok in zip(pending, english) for m, yes in zip(ms, ok) if yes]
            probabilities = classifier.predict_proba(texts, batch_size=batch_size) if texts else []
            rows = probabilities.tolist() if hasattr(probabilities, "tolist") else list(probabilities)
            at = 0
            for (cid, ms), ok in zip(pending, english):
                out = []
                for m, yes in zip(ms, ok):
                    if not yes:
                        unlabeled[0] += 1
                        continue
                    prediction = Prediction.from_probabilities(rows[at])
                    at += 1
                    out.append(LabeledMessage(id=m.id, speaker=m.speaker or UNKNOWN_SPEAKER, layer=prediction.layer,
                                              depth=prediction.depth, reply_to=m.reply_to))
                yield cid, out

        for cid, messages in conversations:
            pending.append((cid, messages))
            waiting += len(messages)
            if waiting >= LABEL_WINDOW:
                yield from flush()
                pending, waiting = [], 0
        yield from flush()


def analyze_labeled(
    conversations: Iterable[tuple[str, Sequence[LabeledMessage | dict[str, Any]]]],
    *,
    seed: int = 0,
    surrogates: int = 200,
    reservoir: int = 500,
    bootstrap: int = 2000,
    inputs: Sequence[str] = (),
    labels: str = "given",
    unlabeled: list[int] | None = None,
    keep_conversations: bool = True,
) -> CorpusReciprocity:
    """The corpus figures of already-labelled conversations ``(id, messages)`` in order.

    ``surrogates`` is the number of draws of each baseline per conversation, ``reservoir`` the
    number of earlier speaker sequences kept for surrogates, ``bootstrap`` the resamples of
    each CI. The same inputs and seed give the same figures. ``keep_conversations`` spools each
    conversation's figures to a temporary file for the output (no memory cost).
    """
    for name, value in (("surrogates", surrogates), ("reservoir", reservoir), ("bootstrap", bootstrap)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if surrogates < 1 or reservoir < 1:
        raise ValueError("surrogates and reservoir must be at least 1")
    rng = np.random.default_rng(abs(seed))
    pool = SurrogateReservoir(size=reservoir, seed=abs(seed))
    acc = _Accumulator(tempfile.TemporaryFile("w+", encoding="utf-8") if keep_conversations else None)
    for cid, messages in conversations:
        summary, turns = summarize_conversation(str(cid), messages, reservoir=pool, draws=surrogates, rng=rng)
        acc.add(summary, turns)
        pool.offer(Skeleton.from_turns(turns))
    return _finish(acc, inputs=list(inputs), labels=labels, seed=seed, draws=surrogates, reservoir_size=reservoir,
                   resamples=bootstrap, unlabeled=(unlabeled or [0])[0])


def analyze_corpus(
    inputs: Sequence[str | Path],
    *,
    labeled: bool | None = None,
    model: str | Path | None = None,
    classifier: Any = None,
    backend: str = "auto",
    format: str | None = None,
    columns: ColumnMap = ColumnMap(),
    seed: int = 0,
    surrogates: int = 200,
    reservoir: int = 500,
    bootstrap: int = 2000,
    batch_size: int = 32,
    keep_conversations: bool = True,
) -> CorpusReciprocity:
    """Corpus reciprocity of transcript files, streamed conversation by conversation.

    ``labeled=None`` reads labels from a file whose first row has a ``layer`` column and labels
    the others with the model; ``True`` requires labels in every file, ``False`` labels every
    file with the model. The model is loaded only if some file needs it (``classifier`` may be
    any object with ``predict_proba(texts, batch_size=...)``, as for annotate).
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise DisclosureError("give at least one input file")
    found = [has_labels(p, format=format, columns=columns) for p in paths]
    if labeled is True:
        missing = [p for p, ok in zip(paths, found) if not ok]
        if missing:
            raise DataError("no 'layer' column (label it with disclosure annotate, or let reciprocity label it)",
                            path=missing[0], line=1, field="layer")
        use = found
    elif labeled is False:
        use = [False] * len(paths)
    else:
        use = found
    if not all(use) and classifier is None:
        from ..model.classifier import DisclosureClassifier

        classifier = DisclosureClassifier.load(model, backend=backend)
    labels = "given" if all(use) else ("model" if not any(use) else "given and model")
    unlabeled = [0]
    stream = _labeled_conversations(paths, use, classifier, format=format, columns=columns, batch_size=batch_size,
                                    unlabeled=unlabeled)
    return analyze_labeled(stream, seed=seed, surrogates=surrogates, reservoir=reservoir, bootstrap=bootstrap,
                           inputs=[str(p) for p in paths], labels=labels, unlabeled=unlabeled,
                           keep_conversations=keep_conversations)


# --------------------------------------------------------------------------- text


def _ci(estimate: dict[str, Any], digits: int = 3) -> str:
    value, (low, high) = estimate["value"], estimate["ci95"]
    if value is None:
        return f"undefined ({estimate.get('reason')})"
    ci = f" [95% CI {low:.{digits}f}, {high:.{digits}f}]" if low is not None else ""
    return f"{value:.{digits}f}{ci}"


def format_corpus(result: CorpusReciprocity) -> str:
    """The corpus figures as a few lines of text (what the CLI prints)."""
    ri = result.reciprocity_index
    lines = [f"{result.n_conversations} conversations, {result.n_messages} messages (labels: {result.labels}"
             + (f"; {result.n_unlabeled_messages} messages without a layer left out" if result.n_unlabeled_messages else "")
             + ")",
             f"reciprocity index (n={ri['n']}, undefined {ri['undefined']}): mean {_ci(ri['mean'])}, "
             f"median {_ci(ri['median'])}"]
    for key, label in (("reciprocity_index_vs_surrogate", "RI above surrogate partners"),
                       ("reciprocity_index_vs_shuffled", "RI above within-speaker shuffles"),
                       ("lag1_correlation_vs_surrogate", "lag-1 r above surrogate partners")):
        a = result.above_chance[key]
        if a["n_tested"]:
            lines.append(f"{label} (p<0.05): {a['n_above']}/{a['n_tested']} = {a['share']:.3f} "
                         f"(mean observed {a['mean_observed']:.3f} vs baseline {a['mean_baseline']:.3f})")
        else:
            lines.append(f"{label}: {a['reason']}")
    for name, f in result.coordination["pooled"].items():
        value = "undefined (" + f["reasons"].get("coordination", "") + ")" if f["coordination"] is None else f"{f['coordination']:+.3f}"
        if f["coordination"] is not None and f["ci95"][0] is not None:
            value += f" [95% CI {f['ci95'][0]:+.3f}, {f['ci95'][1]:+.3f}]"
        given = "—" if f["p_given_prompt"] is None else f"{f['p_given_prompt']:.3f}"
        expected = "—" if f["p_expected"] is None else f"{f['p_expected']:.3f}"
        lines.append(f"coordination ≥{name}: {value} = P(answer≥|prompt≥) {given} (n={f['n_prompts_reaching']}) "
                     f"- by the answerers' base rates {expected} (answers n={f['n_answers']})")
    d = result.deepening
    lines.append(f"deepening (layers per turn): pooled within-conversation slope {_ci(d['pooled_slope'], 4)}, "
                 f"mean conversation slope {_ci(d['mean_conversation_slope'], 4)}")
    for name, figures in d["by_speaker"].items():
        lines.append(f"  {name}: pooled slope {_ci(figures['pooled_slope'], 4)}")
    pooled = result.rlsm["pooled"]
    if pooled["rlsm_mean"] is not None:
        lines.append(f"rLSM: {pooled['rlsm_mean']:.3f} over {pooled['exchanges']} exchanges"
                     + (f", {pooled['rlsm_disclosing']:.3f} over the {pooled['disclosing_exchanges']} with disclosure"
                        if pooled["rlsm_disclosing"] is not None else ""))
    return "\n".join(lines)


__all__ = [
    "ConversationSummary",
    "CorpusReciprocity",
    "Estimate",
    "Trend",
    "analyze_corpus",
    "analyze_labeled",
    "format_corpus",
    "write_corpus_json",
    "summarize_conversation",
]
