"""Turn-level depth matching (rLSM style) and coordination per depth threshold.

Why this exists
---------------
The reciprocity index of :mod:`disclosure_nlp.analysis.reciprocity` sums a whole conversation into one
number, and the ``match`` label of each turn only says *whether* an answer stayed on its
prompt's layer. Two figures from the style-matching and coordination literature fill the gap,
both computed from the turns that :func:`~disclosure_nlp.analysis.reciprocity.analyze_conversation`
already built, so neither changes any existing figure.

Turn-level matching (rLSM)
--------------------------
Müller-Frommeyer, Frommeyer & Kauffeld (2019) score linguistic style matching turn by turn
("reciprocal LSM") as ``1 - |p - a| / (p + a + ε)``, where p and a are the prompt's and the
answer's rates of a word category. Here p and a are the two turns' disclosure depths (0–3)::

    rlsm(p, a) = 1 - |p - a| / (p + a + ε),   ε = 1e-4

It is 1 when the answer goes exactly as deep as its prompt and falls toward 0 as one side
discloses and the other does not; unlike ``depth_gap`` it is relative, so a 0.5 gap between two
core turns counts less than the same gap between two small-talk turns.

*Both turns at depth 0*: the formula gives ``1 - 0/ε = 1``, a perfect match, and that is kept
on purpose. It is what Ireland & Pennebaker's ε was chosen to do (two texts that both lack a
category match on it), and an answer of small talk to small talk *is* matched in depth. What
it is not is evidence that disclosure is returned; that is why each speaker also gets
``rlsm_disclosing``, the mean over exchanges where either side discloses (``p + a > 0``), the
same exchanges the reciprocity index keeps. Both means are reported, with their counts.

Per speaker, rLSM is averaged over the exchanges where the speaker *answers*: it measures how
closely that speaker follows what they answer, the side that chooses to match or not.

Coordination per depth threshold
--------------------------------
Danescu-Niculescu-Mizil, Lee, Pang & Kleinberg (2012, "Echoes of power", the measure ConvoKit
implements) define B's coordination to A on a marker m as ``P(B's reply shows m | A's
utterance shows m) - P(B's reply shows m)``, over B's replies to A. Here the marker is "reaches
layer k" for k = 1 (surface), 2 (intermediate), 3 (core), on the turns' layers::

    C_k(A→B) = P(answer layer ≥ k | prompt layer ≥ k) - P(answer layer ≥ k)

over the exchanges where B's turn answers a turn of A. A positive value means B goes to layer k
more often right after A did than B does in general: B adapts to A. Counts are kept rather than
probabilities, so every probability is printed with its n; a probability whose denominator is
0 is ``None`` with a reason.

*Pooling* (over the pairs of a conversation, over conversations) compares each pair's answers
with *that pair's own* base rate, never with a pooled one::

    C_k(pooled) = Σ_pairs (both_k - prompts_k · answers_k / n) / Σ_pairs prompts_k

i.e. the mean of the pairs' C_k weighted by their prompts reaching k. Pooling raw counts
instead would be wrong through Simpson's paradox: when seekers disclose more than supporters,
the prompts reaching a layer are mostly seekers', answered by supporters who rarely go there,
and the pooled conditional falls below the pooled base rate although every pair coordinates
positively (on ESConv this turned +0.01…+0.06 per role pair into −0.08 pooled). Under
independence ``both_k`` has expectation ``prompts_k · answers_k / n`` exactly (a
hypergeometric draw), so the pooled figure is 0 in expectation for any mix of pairs. The
printed ``p_expected`` is ``Σ prompts_k · answers_k / n / Σ prompts_k``: how often the
answerers reach k after such prompts by their own base rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..layers import LAYERS, layer_id
from .reciprocity import Turn
from .rounding import ROUND_DIGITS, rounded as _rounded  # noqa: F401  (ROUND_DIGITS stays importable from here)

EPSILON: float = 1e-4
"""Ireland & Pennebaker's ε: keeps the ratio defined, and makes 0 vs 0 a perfect match."""
THRESHOLDS: tuple[int, ...] = tuple(range(1, len(LAYERS)))
"""Layers whose reaching is a coordination marker: surface (1), intermediate (2), core (3)."""


def rlsm(prompt_depth: float, answer_depth: float) -> float:
    """Turn-level matching of one exchange, in [0, 1] (1 also when both depths are 0)."""
    return 1.0 - abs(prompt_depth - answer_depth) / (prompt_depth + answer_depth + EPSILON)


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


# --------------------------------------------------------------------------- rLSM


@dataclass(frozen=True)
class TurnMatch:
    """rLSM of one answering turn, beside the ``match`` label it refines."""

    index: int
    speaker: str
    prompt_depth: float
    answer_depth: float
    match: str
    rlsm: float


@dataclass(frozen=True)
class SpeakerMatching:
    """How closely one speaker's answers follow the depth of what they answer."""

    exchanges: int
    rlsm_mean: float | None
    disclosing_exchanges: int
    rlsm_disclosing: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchanges": self.exchanges,
            "rlsm_mean": _rounded(self.rlsm_mean),
            "disclosing_exchanges": self.disclosing_exchanges,
            "rlsm_disclosing": _rounded(self.rlsm_disclosing),
        }


def turn_matches(turns: list[Turn]) -> list[TurnMatch]:
    """rLSM of every turn that answers a prompt, in turn order."""
    return [
        TurnMatch(t.index, t.speaker, turns[t.prompt_turn].depth, t.depth, t.match,
                  rlsm(turns[t.prompt_turn].depth, t.depth))
        for t in turns
        if t.prompt_turn is not None
    ]


def speaker_matching(matches: Iterable[TurnMatch]) -> dict[str, SpeakerMatching]:
    """Mean rLSM of each answering speaker (order of first answer), over all exchanges and
    over exchanges with any disclosure; a mean over no exchange is ``None``."""
    every: dict[str, list[float]] = {}
    disclosing: dict[str, list[float]] = {}
    for m in matches:
        every.setdefault(m.speaker, []).append(m.rlsm)
        if m.prompt_depth + m.answer_depth > 0:
            disclosing.setdefault(m.speaker, []).append(m.rlsm)
    return {
        name: SpeakerMatching(len(values), _mean(values), len(disclosing.get(name, [])),
                              _mean(disclosing.get(name, [])))
        for name, values in every.items()
    }


# --------------------------------------------------------------------------- coordination


@dataclass
class ThresholdCounts:
    """Counts behind C_k for one ordered pair and threshold k, or a pool of such pairs.

    ``expected`` is ``None`` for one pair (it is then ``prompts · answers_reaching / answers``,
    from its own counts) and the sum of its pairs' expectations for a pool (see the module).
    """

    answers: int = 0
    answers_reaching: int = 0
    prompts_reaching: int = 0
    both_reaching: int = 0
    expected: float | None = None

    @classmethod
    def pool(cls) -> ThresholdCounts:
        return cls(expected=0.0)

    def expected_both(self) -> float:
        """Answers reaching k after prompts reaching k that the answerers' base rates predict."""
        if self.expected is not None:
            return self.expected
        return self.prompts_reaching * self.answers_reaching / self.answers if self.answers else 0.0

    def add(self, other: ThresholdCounts) -> None:
        """Pool ``other`` (a pair or a pool) into this pool, each pair against its own base rate."""
        self.expected = self.expected_both() + other.expected_both()
        self.answers += other.answers
        self.answers_reaching += other.answers_reaching
        self.prompts_reaching += other.prompts_reaching
        self.both_reaching += other.both_reaching

    def coordination(self) -> float | None:
        if not self.prompts_reaching or not self.answers:
            return None
        return (self.both_reaching - self.expected_both()) / self.prompts_reaching

    def figures(self) -> dict[str, Any]:
        """P(answer ≥ k | prompt ≥ k), the probability the base rates predict, C_k, each with its n;
        ``None`` plus a reason when a denominator is 0. ``p_answer`` is the plain share of
        answers reaching k (for one pair, ``p_expected`` equals it)."""
        reasons: dict[str, str] = {}
        conditional = expected = None
        if self.prompts_reaching:
            conditional = self.both_reaching / self.prompts_reaching
            expected = self.expected_both() / self.prompts_reaching
        else:
            reasons["p_given_prompt"] = "no prompt reached this layer"
        if not self.answers:
            reasons["p_answer"] = "no exchange"
        value = self.coordination()
        if value is None:
            reasons["coordination"] = reasons.get("p_given_prompt") or reasons["p_answer"]
        return {
            "coordination": _rounded(value),
            "p_given_prompt": _rounded(conditional),
            "n_prompts_reaching": self.prompts_reaching,
            "p_expected": _rounded(expected),
            "p_answer": _rounded(self.answers_reaching / self.answers) if self.answers else None,
            "n_answers": self.answers,
            "reasons": reasons,
        }


@dataclass
class Coordination:
    """Coordination counts per ordered pair ``(prompt speaker, answer speaker)`` and threshold."""

    pairs: dict[tuple[str, str], dict[int, ThresholdCounts]] = field(default_factory=dict)

    def count(self, prompt_speaker: str, answer_speaker: str, prompt_layer: int, answer_layer: int) -> None:
        by_k = self.pairs.setdefault((prompt_speaker, answer_speaker), {k: ThresholdCounts() for k in THRESHOLDS})
        for k, counts in by_k.items():
            counts.answers += 1
            counts.answers_reaching += answer_layer >= k
            counts.prompts_reaching += prompt_layer >= k
            counts.both_reaching += prompt_layer >= k and answer_layer >= k

    def pooled(self) -> dict[int, ThresholdCounts]:
        """All pairs pooled per threshold, each against its own base rate: the overall C_k."""
        total = {k: ThresholdCounts.pool() for k in THRESHOLDS}
        for by_k in self.pairs.values():
            for k, counts in by_k.items():
                total[k].add(counts)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "pooled": {LAYERS[k]: c.figures() for k, c in self.pooled().items()},
            "pairs": {f"{a}→{b}": {LAYERS[k]: c.figures() for k, c in by_k.items()}
                      for (a, b), by_k in self.pairs.items()},
        }


def coordination(turns: list[Turn]) -> Coordination:
    """Coordination counts of one conversation, from its turns' layers."""
    result = Coordination()
    for t in turns:
        if t.prompt_turn is not None:
            prompt = turns[t.prompt_turn]
            result.count(prompt.speaker, t.speaker, layer_id(prompt.layer), layer_id(t.layer))
    return result


__all__ = [
    "Coordination",
    "SpeakerMatching",
    "ThresholdCounts",
    "TurnMatch",
    "coordination",
    "rlsm",
    "speaker_matching",
    "turn_matches",
]
