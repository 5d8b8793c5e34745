"""Turn-by-turn disclosure reciprocity of one conversation.

Why this exists
---------------
Labelling single messages tells us how deep each person goes; it does not tell us whether
people answer each other's openness. Social penetration theory (Altman & Taylor 1973,
*Social Penetration: The Development of Interpersonal Relationships*) describes relationships
as moving from the periphery of the self toward its core, layer by layer, and the
disclosure-reciprocity literature (Jourard 1971, the "dyadic effect"; Derlega, Metts, Petronio
& Margulis 1993, *Self-Disclosure*; Dindia 2002, the meta-analysis of reciprocity in
*Interpersonal Communication Research*) holds that disclosure tends to be answered with
disclosure of similar depth. This module turns the labelled messages of a conversation into
figures that let those claims be checked on chat data. It is a pure function of the ordered,
labelled messages: no model. Only the permutation test uses NumPy (all its shuffles at once, as
one matrix product): done one shuffle at a time in Python it took most of the time ``annotate``
spent outside the model.

Units
-----
*Turn*: consecutive messages of one speaker. Chat users split one thought over several
messages, so reciprocity is measured between turns, not messages. A turn's layer is its
deepest message's layer (the codebook's "a message that mixes layers takes its deepest one",
lifted to the turn), and its depth is the highest depth score among its messages.

*Prompt*: the turn a turn answers. When the turn's messages carry a ``reply_to`` that points to
a message in an earlier turn of another speaker, the first such target decides; this matters in
group chats, where an answer can skip back past the latest turn. Otherwise (no ``reply_to``, an
unknown id, a target in the same or a later turn, or a target of the same speaker) the prompt is
the previous turn of another speaker. Only one hop is followed, so cyclic or dangling
``reply_to`` chains can neither loop nor fail.

*Exchange*: a pair (prompt depth p, answer depth a) for every turn that has a prompt.

Per-turn fields
---------------
``depth_gap = a - p`` (in [-3, 3]) and ``match``: ``matched`` when both turns share a layer,
``escalated`` when the answer goes to a deeper layer, ``declined`` when it stays shallower,
``none`` when the turn has no prompt. These are the disclosure analogue of the turn-by-turn
matching scores used for linguistic style matching (Niederhoffer & Pennebaker 2002; Ireland &
Pennebaker 2010): what is borrowed from that work is the idea of scoring each reply against
the utterance it answers, and of summing those local matches into a bounded conversation-level
score. The quantity matched here is disclosure depth, not function-word rates.

Conversation figures
--------------------
``reciprocity_index`` (RI, in [0, 1]): over exchanges where at least one side discloses
(``max(p, a) > 0``)::

    RI = sum(min(p, a)) / sum(max(p, a))

the Ruzicka (generalized Jaccard) similarity of the prompt-depth and answer-depth vectors.
It is 1 when every answer matches its prompt's depth and 0 when one side discloses and the
other never does. Exchanges where neither side discloses are left out because small talk
answered by small talk says nothing about whether disclosure is returned. Pooled sums rather
than a mean of per-exchange ratios give deeper exchanges more weight, as the theory cares most
about whether intimate disclosure is answered.

``lag1_correlation``: Pearson's r between prompt depth and answer depth over all exchanges,
the usual lag-1 (sequential) operationalisation of the dyadic effect. ``lag1_p_value``: a
two-sided permutation test of r = 0 that shuffles the answer depths ``permutations`` times with
NumPy's ``default_rng(seed)``::

    p = (#{ |r_perm| >= |r_obs| - 1e-12 } + 1) / (permutations + 1)

The +1 counts the observed ordering as one of the permutations, so p is never 0; a
permutation test is used because exchanges within one chat are few and far from normal.
Both are ``None`` with fewer than 3 exchanges or when either side has zero variance.

``trajectory_slope``: the ordinary least-squares slope of turn depth on turn index, in layers
per turn: social penetration theory predicts a positive slope as a conversation goes deeper.

Per speaker (``SpeakerFigures``): number of turns, ``mean_depth`` (mean turn depth),
``max_layer``, ``disclosure_share`` (share of turns at ``surface`` or deeper) and the layers the
speaker led: for each layer L from ``surface`` to ``core``, the speaker of the earliest turn at
layer L or deeper leads L. Leading captures who opens each layer of the onion first, which
reciprocity alone cannot show.

``asymmetry`` (in [0, 1]): ``(max - min of the speakers' mean_depth) / 3``, the spread of how
deep people go, on the layer scale; ``most_disclosing`` is the speaker with the highest
mean depth, ties going to the first to speak.

Every figure that cannot be computed (an empty conversation, a single speaker, too few
exchanges, no variance) is ``None``, and ``reasons`` says why, so batch analyses over many
conversations never fail on a degenerate one.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Union

from ..layers import LAYERS, layer_id, layer_name
from .rounding import ROUND_DIGITS, fields_dict, rounded as _rounded  # noqa: F401  (ROUND_DIGITS stays importable from here)

MAX_DEPTH: float = float(len(LAYERS) - 1)
_TOLERANCE: float = 1e-12

MATCHED, ESCALATED, DECLINED, NO_MATCH = "matched", "escalated", "declined", "none"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class LabeledMessage:
    """One labelled chat message; validated on creation so bad rows fail where they enter.

    ``layer`` may be given as a name or an id and is stored as the canonical name, because
    upstream tools disagree on which they write.
    """

    id: str
    speaker: str
    layer: str | int
    depth: float
    reply_to: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", str(self.id))
        object.__setattr__(self, "speaker", str(self.speaker))
        reply_to = None if self.reply_to in (None, "") else str(self.reply_to)
        object.__setattr__(self, "reply_to", reply_to)
        object.__setattr__(self, "layer", _checked_layer(self.id, self.layer))
        object.__setattr__(self, "depth", _checked_depth(self.id, self.depth))

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> LabeledMessage:
        """Build a message from a JSON-like row; a missing depth falls back to the layer id,
        since hand-labelled data often has a layer but no model score."""
        message_id = row.get("id")
        if message_id is None:
            raise ValueError(f"message {row!r}: missing field 'id'")
        message_id = str(message_id)
        for key in ("speaker", "layer"):
            if row.get(key) is None:
                raise ValueError(f"message {message_id!r}: missing field {key!r}")
        layer = _checked_layer(message_id, row["layer"])
        depth = row.get("depth")
        return cls(
            id=message_id,
            speaker=row["speaker"],
            layer=layer,
            depth=float(layer_id(layer)) if depth is None else depth,
            reply_to=row.get("reply_to"),
        )


MessageInput = Union[LabeledMessage, Mapping[str, Any]]


def _checked_layer(message_id: str, layer: Any) -> str:
    try:
        return layer_name(layer)
    except ValueError as error:
        raise ValueError(f"message {message_id!r}: field 'layer': {error}") from None


def _checked_depth(message_id: str, depth: Any) -> float:
    if isinstance(depth, bool) or not isinstance(depth, (int, float)):
        raise ValueError(f"message {message_id!r}: field 'depth' must be a number, got {depth!r}")
    value = float(depth)
    if not 0.0 <= value <= MAX_DEPTH:  # also rejects NaN
        raise ValueError(
            f"message {message_id!r}: field 'depth' must be in [0, {MAX_DEPTH:g}], got {depth!r}"
        )
    return value


def _to_message(item: MessageInput) -> LabeledMessage:
    if isinstance(item, LabeledMessage):
        return item
    if isinstance(item, Mapping):
        return LabeledMessage.from_mapping(item)
    raise TypeError(f"expected a LabeledMessage or a mapping, got {type(item).__name__}")


def _to_messages(messages: Iterable[MessageInput]) -> list[LabeledMessage]:
    """Normalise the input and reject duplicate ids, which would make reply_to ambiguous."""
    result = [_to_message(item) for item in messages]
    seen: set[str] = set()
    for message in result:
        if message.id in seen:
            raise ValueError(f"message {message.id!r}: field 'id' is not unique")
        seen.add(message.id)
    return result


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Turn:
    """A run of one speaker's consecutive messages, with how it answers its prompt."""

    index: int
    speaker: str
    message_ids: tuple[str, ...]
    layer: str
    depth: float
    prompt_turn: int | None = None
    depth_gap: float | None = None
    match: str = NO_MATCH

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "speaker": self.speaker,
            "message_ids": list(self.message_ids),
            "layer": self.layer,
            "depth": _rounded(self.depth),
            "prompt_turn": self.prompt_turn,
            "depth_gap": _rounded(self.depth_gap),
            "match": self.match,
        }


@dataclass(frozen=True)
class SpeakerFigures:
    """How deep one speaker goes and which layers they opened first."""

    turns: int
    mean_depth: float
    max_layer: str
    disclosure_share: float
    layers_led: int
    led: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "mean_depth": _rounded(self.mean_depth),
            "max_layer": self.max_layer,
            "disclosure_share": _rounded(self.disclosure_share),
            "layers_led": self.layers_led,
            "led": list(self.led),
        }


@dataclass
class ConversationReciprocity:
    """All reciprocity figures of one conversation; ``None`` figures are explained in reasons."""

    conversation_id: str | None
    n_messages: int
    n_turns: int
    n_speakers: int
    turns: list[Turn]
    speakers: dict[str, SpeakerFigures]
    reciprocity_index: float | None
    lag1_correlation: float | None
    lag1_p_value: float | None
    trajectory_slope: float | None
    asymmetry: float | None
    most_disclosing: str | None
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; floats rounded so outputs diff cleanly across runs and machines."""
        figures = ("reciprocity_index", "lag1_correlation", "lag1_p_value", "trajectory_slope", "asymmetry")
        return {
            **fields_dict(self, ("conversation_id", "n_messages", "n_turns", "n_speakers", *figures, "most_disclosing"),
                          rounded_names=figures),
            "speakers": {name: figures.to_dict() for name, figures in self.speakers.items()},
            "turns": [turn.to_dict() for turn in self.turns],
            "reasons": dict(self.reasons),
        }


# --------------------------------------------------------------------------- turns


@dataclass
class _TurnDraft:
    speaker: str
    messages: list[LabeledMessage]


def _group_turns(messages: list[LabeledMessage]) -> list[_TurnDraft]:
    drafts: list[_TurnDraft] = []
    for message in messages:
        if drafts and drafts[-1].speaker == message.speaker:
            drafts[-1].messages.append(message)
        else:
            drafts.append(_TurnDraft(message.speaker, [message]))
    return drafts


def _find_prompt(index: int, drafts: list[_TurnDraft], turn_of: dict[str, int]) -> int | None:
    """Follow one reply_to hop if it points back to another speaker, else take the last turn
    of another speaker; a single hop is what makes cycles and dangling ids harmless."""
    speaker = drafts[index].speaker
    for message in drafts[index].messages:
        target = turn_of.get(message.reply_to) if message.reply_to is not None else None
        if target is not None and target < index and drafts[target].speaker != speaker:
            return target
    for earlier in range(index - 1, -1, -1):
        if drafts[earlier].speaker != speaker:
            return earlier
    return None


def _match_label(prompt_layer: str, answer_layer: str) -> str:
    difference = layer_id(answer_layer) - layer_id(prompt_layer)
    if difference > 0:
        return ESCALATED
    if difference < 0:
        return DECLINED
    return MATCHED


def _build_turns(messages: list[LabeledMessage]) -> list[Turn]:
    drafts = _group_turns(messages)
    turn_of = {m.id: i for i, draft in enumerate(drafts) for m in draft.messages}
    base = [_base_turn(i, draft) for i, draft in enumerate(drafts)]
    return [_with_prompt(turn, base, _find_prompt(turn.index, drafts, turn_of)) for turn in base]


def _base_turn(index: int, draft: _TurnDraft) -> Turn:
    return Turn(
        index=index,
        speaker=draft.speaker,
        message_ids=tuple(m.id for m in draft.messages),
        layer=layer_name(max(layer_id(m.layer) for m in draft.messages)),
        depth=max(m.depth for m in draft.messages),
    )


def _with_prompt(turn: Turn, turns: list[Turn], prompt: int | None) -> Turn:
    if prompt is None:
        return turn
    prompt_turn = turns[prompt]
    return Turn(
        index=turn.index,
        speaker=turn.speaker,
        message_ids=turn.message_ids,
        layer=turn.layer,
        depth=turn.depth,
        prompt_turn=prompt,
        depth_gap=turn.depth - prompt_turn.depth,
        match=_match_label(prompt_turn.layer, turn.layer),
    )


def _exchanges(turns: list[Turn]) -> list[tuple[float, float]]:
    """(prompt depth, answer depth) for every turn that answers another."""
    return [(turns[t.prompt_turn].depth, t.depth) for t in turns if t.prompt_turn is not None]


# --------------------------------------------------------------------------- figures


def reciprocity_index(exchanges: list[tuple[float, float]]) -> float | None:
    """Ruzicka similarity of prompt and answer depths over exchanges with any disclosure."""
    disclosing = [(p, a) for p, a in exchanges if max(p, a) > 0]
    if not disclosing:
        return None
    numerator = math.fsum(min(p, a) for p, a in disclosing)
    denominator = math.fsum(max(p, a) for p, a in disclosing)
    return min(1.0, max(0.0, numerator / denominator))


def _centred(values: list[float]) -> list[float]:
    mean = statistics.fmean(values)
    return [v - mean for v in values]


def _has_variance(values: list[float]) -> bool:
    return max(values) - min(values) > _TOLERANCE


def _correlation(xc: list[float], yc: list[float], scale: float) -> float:
    r = math.fsum(x * y for x, y in zip(xc, yc)) / scale
    return min(1.0, max(-1.0, r))


def lag1_correlation(
    exchanges: list[tuple[float, float]], permutations: int, seed: int
) -> tuple[float | None, float | None, str | None]:
    """Pearson r of prompt vs answer depth and its permutation p-value, or a reason for None.

    Centring once and shuffling the centred answers keeps each permutation a single dot
    product, since shuffling changes neither mean nor variance.
    """
    if len(exchanges) < 3:
        return None, None, f"fewer than 3 exchanges ({len(exchanges)})"
    prompts = [p for p, _ in exchanges]
    answers = [a for _, a in exchanges]
    if not _has_variance(prompts) or not _has_variance(answers):
        return None, None, "zero variance in prompt or answer depths"
    xc, yc = _centred(prompts), _centred(answers)
    scale = math.sqrt(math.fsum(x * x for x in xc) * math.fsum(y * y for y in yc))
    observed = _correlation(xc, yc, scale)
    if permutations == 0:
        return observed, None, None
    extreme = _extreme_permutations(xc, yc, scale, abs(observed) - _TOLERANCE, permutations, seed)
    return observed, (extreme + 1) / (permutations + 1), None


PERMUTATION_BLOCK_VALUES: int = 1 << 18
"""Values (shuffles × exchanges) drawn per block: about 2 MB, however long the conversation."""


def _extreme_permutations(
    xc: list[float], yc: list[float], scale: float, threshold: float, permutations: int, seed: int
) -> int:
    """How many of ``permutations`` seeded shuffles of ``yc`` give ``|r| >= threshold``.

    Shuffles are drawn a block at a time as rows of a matrix and scored with one matrix-vector
    product per block. The block size depends only on the number of exchanges, so a given
    conversation, seed and count always draw the same shuffles, and memory stays bounded for
    conversations of any length.
    """
    import numpy as np

    rng = np.random.default_rng(abs(seed))  # random.Random's reading of a negative seed
    x = np.asarray(xc, dtype=np.float64)
    y = np.asarray(yc, dtype=np.float64)
    block = max(1, min(permutations, PERMUTATION_BLOCK_VALUES // len(y)))
    extreme = 0
    for start in range(0, permutations, block):
        rows = min(block, permutations - start)
        shuffled = rng.permuted(np.broadcast_to(y, (rows, len(y))), axis=1)
        # Rounding can put |r| a hair above 1; the threshold is at most 1 - 1e-12, so clamping
        # (as the observed r is) would change no count, and is left out.
        r = shuffled @ x / scale
        extreme += int(np.count_nonzero(np.abs(r) >= threshold))
    return extreme


def trajectory_slope(turns: list[Turn]) -> float | None:
    """OLS slope of turn depth on turn index: how fast the conversation goes deeper."""
    if len(turns) < 2:
        return None
    xc = _centred([float(t.index) for t in turns])
    yc = _centred([t.depth for t in turns])
    return math.fsum(x * y for x, y in zip(xc, yc)) / math.fsum(x * x for x in xc)


def _leaders(turns: list[Turn]) -> dict[str, str]:
    """Layer name -> speaker of the earliest turn reaching that layer or deeper."""
    leaders: dict[str, str] = {}
    for level in range(1, len(LAYERS)):
        first = next((t for t in turns if layer_id(t.layer) >= level), None)
        if first is not None:
            leaders[LAYERS[level]] = first.speaker
    return leaders


def speaker_figures(turns: list[Turn]) -> dict[str, SpeakerFigures]:
    """Figures per speaker, in order of first appearance (which is what breaks ties)."""
    by_speaker: dict[str, list[Turn]] = {}
    for turn in turns:
        by_speaker.setdefault(turn.speaker, []).append(turn)
    leaders = _leaders(turns)
    return {
        name: _one_speaker(own, [layer for layer, who in leaders.items() if who == name])
        for name, own in by_speaker.items()
    }


def _one_speaker(turns: list[Turn], led: list[str]) -> SpeakerFigures:
    ids = [layer_id(t.layer) for t in turns]
    return SpeakerFigures(
        turns=len(turns),
        mean_depth=statistics.fmean(t.depth for t in turns),
        max_layer=layer_name(max(ids)),
        disclosure_share=sum(1 for i in ids if i >= 1) / len(ids),
        layers_led=len(led),
        led=led,
    )


def asymmetry(speakers: dict[str, SpeakerFigures]) -> tuple[float | None, str | None]:
    """Spread of mean depths on the layer scale, and the deepest speaker (first wins ties)."""
    if len(speakers) < 2:
        return None, None
    means = [figures.mean_depth for figures in speakers.values()]
    spread = min(1.0, max(0.0, (max(means) - min(means)) / MAX_DEPTH))
    leader, best = None, -math.inf
    for name, figures in speakers.items():
        if figures.mean_depth > best + _TOLERANCE:
            leader, best = name, figures.mean_depth
    return spread, leader


# --------------------------------------------------------------------------- entry points


def analyze_conversation(
    messages: Iterable[MessageInput],
    conversation_id: str | None = None,
    *,
    permutations: int = 1000,
    seed: int = 0,
) -> ConversationReciprocity:
    """Compute every reciprocity figure of one ordered conversation.

    Degenerate conversations (empty, one speaker, too few exchanges) yield ``None`` figures
    with reasons rather than errors, so a corpus-wide run never stops on one odd chat; only
    malformed messages raise, since those are data errors someone must fix.
    """
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 0:
        raise ValueError(f"permutations must be a non-negative int, got {permutations!r}")
    parsed = _to_messages(messages)
    turns = _build_turns(parsed)
    speakers = speaker_figures(turns)
    exchanges = _exchanges(turns)
    ri = reciprocity_index(exchanges)
    r, p, r_reason = lag1_correlation(exchanges, permutations, seed)
    slope = trajectory_slope(turns)
    spread, most = asymmetry(speakers)
    return ConversationReciprocity(
        conversation_id=conversation_id,
        n_messages=len(parsed),
        n_turns=len(turns),
        n_speakers=len(speakers),
        turns=turns,
        speakers=speakers,
        reciprocity_index=ri,
        lag1_correlation=r,
        lag1_p_value=p,
        trajectory_slope=slope,
        asymmetry=spread,
        most_disclosing=most,
        reasons=_reasons(
            len(parsed), len(speakers), len(turns), exchanges, ri, r, p, r_reason, permutations
        ),
    )


def _reasons(
    n_messages: int,
    n_speakers: int,
    n_turns: int,
    exchanges: list[tuple[float, float]],
    ri: float | None,
    r: float | None,
    p: float | None,
    r_reason: str | None,
    permutations: int,
) -> dict[str, str]:
    """Explain each None figure, naming the most basic cause first (empty, then one speaker)."""
    if n_messages == 0:
        basic: str | None = "empty conversation"
    elif n_speakers < 2:
        basic = "only one speaker"
    else:
        basic = None
    reasons: dict[str, str] = {}
    if ri is None:
        reasons["reciprocity_index"] = basic or (
            "no exchanges" if not exchanges else "no exchange with any disclosure"
        )
    if r is None:
        reasons["lag1_correlation"] = basic or r_reason or "not computed"
    if p is None:
        reasons["lag1_p_value"] = (
            reasons["lag1_correlation"] if r is None
            else f"permutation test disabled (permutations={permutations})"
        )
    if n_turns < 2:
        reasons["trajectory_slope"] = (
            "empty conversation" if n_messages == 0 else f"fewer than 2 turns ({n_turns})"
        )
    if n_speakers < 2:
        reasons["asymmetry"] = basic or "only one speaker"
        reasons["most_disclosing"] = reasons["asymmetry"]
    return reasons


def message_fields(result: ConversationReciprocity) -> dict[str, dict[str, Any]]:
    """Per-message reciprocity columns (those of the message's turn), ready to merge into
    annotation rows; depth_gap is rounded like ``to_dict`` so both outputs agree."""
    return {
        message_id: {
            "turn": turn.index,
            "prompt_turn": turn.prompt_turn,
            "depth_gap": _rounded(turn.depth_gap),
            "match": turn.match,
        }
        for turn in result.turns
        for message_id in turn.message_ids
    }


__all__ = [
    "ConversationReciprocity",
    "LabeledMessage",
    "SpeakerFigures",
    "Turn",
    "analyze_conversation",
    "message_fields",
]
