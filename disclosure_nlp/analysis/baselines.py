"""Reciprocity against chance: within-speaker shuffles and surrogate pairings.

Why this exists
---------------
A reciprocity index of 0.6 means little on its own: two people who both disclose a lot score
high whether or not they answer each other. Style-matching work compares each observed score
with what the same material gives when the turn-by-turn link is broken: rLSM's authors
(Müller-Frommeyer et al. 2019) and ALIGN's surrogate analysis (Duran, Paxton & Fusaroli 2019)
pair a speaker with a partner from *another* conversation. Two such baselines are computed for
the reciprocity index (RI) and the lag-1 correlation r of each conversation.

(a) **Shuffled within speaker.** Each speaker's turn depths are permuted among that speaker's
own positions; who speaks when, and which turn answers which, stay as they were. This keeps
each person's depth distribution and the conversation's shape and destroys only the order, so
it asks: *does this person's depth follow the depth of the turn they answer, beyond their
overall level?*

(b) **Surrogate pairings.** For each speaker X, every other speaker's turns are replaced by the
turn depths (in their own order) of a speaker from an earlier conversation of the same corpus,
preferring one with the same speaker name (a seeker is replaced by a seeker when names are
roles) and else any. A donor shorter than the positions to fill is repeated from its start, a
longer one is cut. X's depths and the turn skeleton are kept. This asks: *is X's partner
closer to X than a partner from elsewhere in the corpus would be?*

For each statistic: the observed value, the baseline mean and standard deviation over the
draws (draws where the statistic is undefined, e.g. r with no variance, are left out and
counted), ``z = (observed - mean) / sd`` (``None`` when sd = 0), and a one-sided empirical p::

    p = (#{ baseline >= observed - 1e-12 } + 1) / (draws + 1)

one-sided because the question is whether matching is *above* chance; the +1 counts the
observed arrangement as a draw, so p is never 0, and a conversation with no variance (every
shuffle equals the observation) gets p = 1.

Streaming
---------
Surrogates need other conversations, but a corpus is read one conversation at a time. The
:class:`SurrogateReservoir` keeps a fixed-size uniform sample (Vitter's algorithm R) of earlier
conversations' per-speaker depth sequences, each cut at ``MAX_SEQUENCE`` turns: memory is
bounded by that size whatever the corpus length. The first conversation of a corpus has no
donor, so its surrogate baseline is ``None`` with a reason. Everything is drawn from generators
seeded by the caller's seed, so a run is reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .reciprocity import Turn
from .rounding import ROUND_DIGITS, rounded as _rounded  # noqa: F401  (ROUND_DIGITS stays importable from here)

TOLERANCE: float = 1e-12
MAX_SEQUENCE: int = 500
"""Turns kept per donor sequence in the reservoir: bounds the reservoir's memory."""


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Skeleton:
    """A conversation's shape: who speaks each turn and which turn each exchange answers."""

    speakers: tuple[str, ...]
    depths: np.ndarray
    prompts: np.ndarray
    answers: np.ndarray

    @classmethod
    def from_turns(cls, turns: Sequence[Turn]) -> Skeleton:
        pairs = [(t.prompt_turn, t.index) for t in turns if t.prompt_turn is not None]
        return cls(
            speakers=tuple(t.speaker for t in turns),
            depths=np.array([t.depth for t in turns], dtype=np.float64),
            prompts=np.array([p for p, _ in pairs], dtype=np.intp),
            answers=np.array([a for _, a in pairs], dtype=np.intp),
        )

    def positions(self, speaker: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.speakers) if s == speaker], dtype=np.intp)

    def speaker_order(self) -> list[str]:
        return list(dict.fromkeys(self.speakers))


def reciprocity_indices(depths: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """RI of each row of ``depths`` (draws × turns) on the skeleton's exchanges; NaN where no
    exchange discloses. Exchanges with max 0 add 0 to both sums, so they need no mask."""
    p, a = depths[:, skeleton.prompts], depths[:, skeleton.answers]
    denominator = np.maximum(p, a).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ri = np.minimum(p, a).sum(axis=1) / denominator
    ri[denominator <= 0] = np.nan
    return np.clip(ri, 0.0, 1.0)


def lag1_correlations(depths: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Pearson r of prompt vs answer depth per row; NaN with < 3 exchanges or no variance."""
    rows = depths.shape[0]
    if len(skeleton.answers) < 3:
        return np.full(rows, np.nan)
    p, a = depths[:, skeleton.prompts], depths[:, skeleton.answers]
    pc = p - p.mean(axis=1, keepdims=True)
    ac = a - a.mean(axis=1, keepdims=True)
    spread_p, spread_a = np.ptp(p, axis=1), np.ptp(a, axis=1)
    scale = np.sqrt((pc * pc).sum(axis=1) * (ac * ac).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * ac).sum(axis=1) / scale
    r[(spread_p <= TOLERANCE) | (spread_a <= TOLERANCE)] = np.nan
    return np.clip(r, -1.0, 1.0)


STATISTICS = {"reciprocity_index": reciprocity_indices, "lag1_correlation": lag1_correlations}


@dataclass(frozen=True)
class Baseline:
    """One statistic against one kind of chance."""

    observed: float | None
    mean: float | None
    sd: float | None
    z: float | None
    p: float | None
    draws: int
    reason: str | None = None

    @property
    def above_chance(self) -> bool:
        return self.p is not None and self.p < 0.05

    def to_dict(self) -> dict[str, Any]:
        out = {"observed": _rounded(self.observed), "baseline_mean": _rounded(self.mean),
               "baseline_sd": _rounded(self.sd), "z": _rounded(self.z), "p": _rounded(self.p),
               "draws": self.draws}
        if self.reason:
            out["reason"] = self.reason
        return out


def compare(observed: float | None, draws: np.ndarray, why_no_observed: str = "not defined") -> Baseline:
    """Observed value against the defined values among ``draws`` (z and one-sided p)."""
    values = draws[~np.isnan(draws)]
    if observed is None:
        return Baseline(None, None, None, None, None, 0, f"observed value {why_no_observed}")
    if values.size == 0:
        return Baseline(observed, None, None, None, None, 0, "no baseline draw where the figure is defined")
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    z = (observed - mean) / sd if sd > TOLERANCE else None
    p = (int(np.count_nonzero(values >= observed - TOLERANCE)) + 1) / (values.size + 1)
    reason = None if z is not None else "baseline has no spread: z undefined"
    return Baseline(observed, mean, sd, z, p, int(values.size), reason)


# --------------------------------------------------------------------------- (a) shuffles


def shuffled_depths(skeleton: Skeleton, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` rows of the conversation's depths, each speaker's permuted among their turns."""
    out = np.broadcast_to(skeleton.depths, (draws, len(skeleton.depths))).copy()
    for speaker in skeleton.speaker_order():
        where = skeleton.positions(speaker)
        if len(where) > 1:
            out[:, where] = rng.permuted(out[:, where], axis=1)
    return out


# --------------------------------------------------------------------------- (b) surrogates


@dataclass
class SurrogateReservoir:
    """A fixed-size uniform sample of earlier conversations' speaker depth sequences."""

    size: int = 500
    seed: int = 0
    entries: list[tuple[str, tuple[float, ...]]] = field(default_factory=list)
    offered: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def offer(self, skeleton: Skeleton) -> None:
        """Add each speaker's depth sequence of a finished conversation (algorithm R)."""
        for speaker in skeleton.speaker_order():
            sequence = tuple(float(d) for d in skeleton.depths[skeleton.positions(speaker)][:MAX_SEQUENCE])
            self.offered += 1
            if len(self.entries) < self.size:
                self.entries.append((speaker, sequence))
            else:
                slot = self._rng.randrange(self.offered)
                if slot < self.size:
                    self.entries[slot] = (speaker, sequence)

    def donors(self, speaker: str) -> list[tuple[float, ...]]:
        """Sequences of the same speaker name if any, else all: a role stands in for a role."""
        same = [seq for name, seq in self.entries if name == speaker]
        return same or [seq for _, seq in self.entries]


def surrogate_depths(
    skeleton: Skeleton, draws: int, reservoir: SurrogateReservoir, rng: np.random.Generator
) -> np.ndarray | None:
    """``draws`` rows where, speaker by speaker in turn, the other speakers' depths come from
    reservoir donors; ``None`` when the reservoir is empty or there is one speaker."""
    speakers = skeleton.speaker_order()
    if len(speakers) < 2 or not reservoir.entries:
        return None
    positions = {s: skeleton.positions(s) for s in speakers}
    donors = {s: reservoir.donors(s) for s in speakers}
    out = np.broadcast_to(skeleton.depths, (draws, len(skeleton.depths))).copy()
    for row in range(draws):
        kept = speakers[row % len(speakers)]
        for other in speakers:
            if other == kept:
                continue
            pool = donors[other]
            donor = pool[int(rng.integers(len(pool)))]
            where = positions[other]
            out[row, where] = np.resize(np.asarray(donor, dtype=np.float64), len(where))
    return out


# --------------------------------------------------------------------------- one conversation


@dataclass(frozen=True)
class ConversationBaselines:
    """Both statistics against both baselines for one conversation."""

    shuffled: dict[str, Baseline]
    surrogate: dict[str, Baseline]

    def to_dict(self) -> dict[str, Any]:
        return {"shuffled_within_speaker": {k: v.to_dict() for k, v in self.shuffled.items()},
                "surrogate_partner": {k: v.to_dict() for k, v in self.surrogate.items()}}


def _none_baselines(observed: dict[str, float | None], reason: str) -> dict[str, Baseline]:
    return {name: Baseline(observed[name], None, None, None, None, 0, reason) for name in STATISTICS}


def conversation_baselines(
    turns: Sequence[Turn],
    observed: dict[str, float | None],
    *,
    reservoir: SurrogateReservoir | None,
    draws: int,
    rng: np.random.Generator,
) -> ConversationBaselines:
    """Shuffle and surrogate baselines of one conversation (``observed`` holds the figures of
    :func:`analyze_conversation`, so the existing values are the ones compared).

    The reservoir is read, not updated: the caller offers the conversation afterwards, so a
    conversation is never its own surrogate.
    """
    skeleton = Skeleton.from_turns(turns)
    if len(set(skeleton.speakers)) < 2:
        reason = "only one speaker" if turns else "empty conversation"
        return ConversationBaselines(_none_baselines(observed, reason), _none_baselines(observed, reason))
    if len(skeleton.answers) == 0:
        return ConversationBaselines(_none_baselines(observed, "no exchanges"), _none_baselines(observed, "no exchanges"))
    shuffled = shuffled_depths(skeleton, draws, rng)
    shuffled_figures = {name: compare(observed[name], fn(shuffled, skeleton)) for name, fn in STATISTICS.items()}
    surrogates = surrogate_depths(skeleton, draws, reservoir, rng) if reservoir is not None else None
    if surrogates is None:
        surrogate_figures = _none_baselines(observed, "no earlier conversation in the reservoir yet")
    else:
        surrogate_figures = {name: compare(observed[name], fn(surrogates, skeleton)) for name, fn in STATISTICS.items()}
    return ConversationBaselines(shuffled_figures, surrogate_figures)


def finite(value: float) -> float | None:
    """A NumPy float as a Python float, NaN as ``None``."""
    return None if math.isnan(value) else float(value)


__all__ = [
    "Baseline",
    "ConversationBaselines",
    "Skeleton",
    "SurrogateReservoir",
    "compare",
    "conversation_baselines",
    "lag1_correlations",
    "reciprocity_indices",
    "shuffled_depths",
    "surrogate_depths",
]
