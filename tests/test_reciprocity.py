"""Behaviour of the reciprocity analysis on small conversations whose figures are worked out by
hand, plus a property test that arbitrary conversations never break it."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure_nlp.analysis import reciprocity
from disclosure_nlp.layers import LAYERS, layer_id
from disclosure_nlp.analysis.reciprocity import (
    ConversationReciprocity,
    LabeledMessage,
    analyze_conversation,
    message_fields,
)

FIGURES = (
    "reciprocity_index",
    "lag1_correlation",
    "lag1_p_value",
    "trajectory_slope",
    "asymmetry",
    "most_disclosing",
)


def msg(
    message_id: str,
    speaker: str,
    layer: str | int,
    depth: float | None = None,
    reply_to: str | None = None,
) -> LabeledMessage:
    return LabeledMessage(
        id=message_id,
        speaker=speaker,
        layer=layer,
        depth=float(layer_id(layer)) if depth is None else depth,
        reply_to=reply_to,
    )


def alternating(*depths: float, speakers: str = "AB") -> list[LabeledMessage]:
    """One message per turn, speakers taking turns; layer = the depth rounded down."""
    return [
        msg(f"m{i}", speakers[i % len(speakers)], LAYERS[int(d)], d) for i, d in enumerate(depths)
    ]


def prompts(result: ConversationReciprocity) -> list[int | None]:
    return [turn.prompt_turn for turn in result.turns]


# --------------------------------------------------------------------------- turns


def test_consecutive_messages_of_a_speaker_form_one_turn() -> None:
    result = analyze_conversation(
        [
            msg("a1", "A", "surface", 1.0),
            msg("a2", "A", "core", 2.6),
            msg("a3", "A", "intermediate", 2.8),
            msg("b1", "B", "none", 0.0),
            msg("a4", "A", "none", 0.2),
        ]
    )
    assert result.n_messages == 5
    assert result.n_turns == 3
    first = result.turns[0]
    assert first.message_ids == ("a1", "a2", "a3")
    assert first.speaker == "A"
    assert first.layer == "core"  # deepest message's layer
    assert first.depth == pytest.approx(2.8)  # highest depth score, even from another message
    assert [t.index for t in result.turns] == [0, 1, 2]


def test_layer_given_as_id_is_stored_as_name() -> None:
    assert msg("x", "A", 2).layer == "intermediate"
    assert msg("x", "A", "3").layer == "core"


# --------------------------------------------------------------------------- prompts


def test_prompt_without_reply_to_is_previous_turn() -> None:
    result = analyze_conversation(alternating(0, 1, 2, 1))
    assert prompts(result) == [None, 0, 1, 2]
    assert result.turns[0].match == "none"
    assert result.turns[0].depth_gap is None


def test_reply_to_points_back_past_the_previous_turn_in_a_group_chat() -> None:
    result = analyze_conversation(
        [
            msg("a1", "A", "core", 3.0),
            msg("b1", "B", "none", 0.0),
            msg("c1", "C", "surface", 1.0),
            msg("b2", "B", "core", 2.7, reply_to="a1"),
        ]
    )
    assert prompts(result) == [None, 0, 1, 0]
    assert result.turns[3].depth_gap == pytest.approx(2.7 - 3.0)
    assert result.turns[3].match == "matched"


def test_first_resolving_reply_to_in_the_turn_decides() -> None:
    result = analyze_conversation(
        [
            msg("a1", "A", "surface"),
            msg("b1", "B", "none"),
            msg("c1", "C", "none"),
            msg("a2", "A", "surface"),
            msg("c2", "C", "none", reply_to="ghost"),  # dangling: skipped
            msg("c3", "C", "surface", reply_to="b1"),  # first that resolves
            msg("c4", "C", "none", reply_to="a1"),
        ]
    )
    assert prompts(result) == [None, 0, 1, 2, 1]


def test_dangling_and_cyclic_reply_to_fall_back_without_looping() -> None:
    result = analyze_conversation(
        [
            msg("a1", "A", "surface", reply_to="b1"),  # points to a later turn
            msg("b1", "B", "surface", reply_to="a1"),  # closes the cycle; valid
            msg("a2", "A", "none", reply_to="a2"),  # self-reference
            msg("b2", "B", "none", reply_to="nowhere"),  # dangling
        ]
    )
    assert prompts(result) == [None, 0, 1, 2]


def test_reply_to_own_speaker_or_same_turn_falls_back_to_previous_other_turn() -> None:
    result = analyze_conversation(
        [
            msg("a1", "A", "surface"),
            msg("b1", "B", "surface"),
            msg("c1", "C", "none"),
            msg("a2", "A", "none", reply_to="a1"),  # same speaker, earlier turn
            msg("b2", "B", "none"),
            msg("b3", "B", "none", reply_to="b2"),  # same turn
        ]
    )
    assert prompts(result) == [None, 0, 1, 2, 3]


# --------------------------------------------------------------------------- match / gap


def test_match_labels_and_depth_gaps() -> None:
    result = analyze_conversation(
        [
            msg("m0", "A", "surface", 1.0),
            msg("m1", "B", "surface", 1.2),
            msg("m2", "A", "core", 2.9),
            msg("m3", "B", "none", 0.1),
        ]
    )
    assert [t.match for t in result.turns] == ["none", "matched", "escalated", "declined"]
    gaps = [t.depth_gap for t in result.turns]
    assert gaps[0] is None
    assert gaps[1:] == pytest.approx([0.2, 1.7, -2.8])


# --------------------------------------------------------------------------- reciprocity index


def test_reciprocity_index_is_one_for_perfectly_matched_exchanges() -> None:
    assert analyze_conversation(alternating(2, 2, 2)).reciprocity_index == pytest.approx(1.0)


def test_reciprocity_index_is_zero_when_only_one_side_discloses() -> None:
    assert analyze_conversation(alternating(3, 0, 3, 0)).reciprocity_index == 0.0


def test_reciprocity_index_mixed_case() -> None:
    # exchanges (prompt, answer): (1, 2.5), (2.5, 2), (2, 0), (0, 0) -- the last has no
    # disclosure and is left out. RI = (1 + 2 + 0) / (2.5 + 2.5 + 2) = 3 / 7.
    result = analyze_conversation(alternating(1.0, 2.5, 2.0, 0.0, 0.0))
    assert result.reciprocity_index == pytest.approx(3 / 7)


def test_reciprocity_index_none_without_any_disclosure() -> None:
    result = analyze_conversation(alternating(0, 0, 0))
    assert result.reciprocity_index is None
    assert "disclosure" in result.reasons["reciprocity_index"]


# --------------------------------------------------------------------------- lag-1 correlation


def test_lag1_correlation_by_hand_and_permutation_p_value() -> None:
    # turn depths 0, 2, 1, 3, 1 -> prompts x = [0, 2, 1, 3], answers y = [2, 1, 3, 1].
    # centred: x = [-1.5, .5, -.5, 1.5], y = [.25, -.75, 1.25, -.75]
    # sxy = -2.5, sxx = 5, syy = 2.75  ->  r = -2.5 / sqrt(13.75)
    depths = (0, 2, 1, 3, 1)
    result = analyze_conversation(alternating(*depths), permutations=200, seed=7)
    r = -2.5 / math.sqrt(5 * 2.75)
    assert result.lag1_correlation == pytest.approx(r)
    p = result.lag1_p_value
    assert p is not None and 0 < p <= 1
    again = analyze_conversation(alternating(*depths), permutations=200, seed=7)
    assert again.lag1_p_value == p


def test_permutation_p_value_approaches_exact_permutation_distribution() -> None:
    x, y = [0.0, 2.0, 1.0, 3.0], [2.0, 1.0, 3.0, 1.0]
    observed = abs(_pearson(x, y))
    orderings = list(itertools.permutations(y))
    exact = sum(abs(_pearson(x, list(o))) >= observed - 1e-12 for o in orderings) / len(orderings)
    result = analyze_conversation(alternating(0, 2, 1, 3, 1), permutations=20000, seed=1)
    assert result.lag1_p_value == pytest.approx(exact, abs=0.02)


@pytest.mark.parametrize(
    "x, y",
    [
        ([0.0, 2.0, 1.0, 3.0, 1.0], [2.0, 1.0, 3.0, 1.0, 0.0]),
        ([0.0, 1.0, 2.0, 3.0, 2.0, 1.0], [0.0, 1.0, 2.0, 3.0, 2.0, 1.0]),  # ties among |r|
        ([0.3, 2.7, 1.1, 0.0, 2.2, 1.9], [1.4, 0.2, 2.9, 2.5, 0.7, 1.0]),
    ],
)
def test_permutation_p_value_matches_the_exact_distribution_across_blocks(monkeypatch, x, y) -> None:
    # Shuffles are drawn a block at a time; a block of two shuffles makes thousands of blocks,
    # so a miscount at block edges (or in the last, shorter block) would show.
    monkeypatch.setattr(reciprocity, "PERMUTATION_BLOCK_VALUES", 2 * len(y))
    observed = abs(_pearson(x, y))
    orderings = list(itertools.permutations(y))
    exact = sum(abs(_pearson(x, list(o))) >= observed - 1e-12 for o in orderings) / len(orderings)
    r, p, reason = reciprocity.lag1_correlation(list(zip(x, y)), permutations=19_999, seed=3)
    assert reason is None and r == pytest.approx(_pearson(x, y))
    assert p == pytest.approx(exact, abs=0.02)


def test_p_value_is_one_when_r_is_zero(monkeypatch) -> None:
    # Every shuffle is at least as extreme as r = 0, so p counts all of them: exactly 1. Blocks
    # of 3 shuffles leave a last block of 2, which must count 2, not 3.
    monkeypatch.setattr(reciprocity, "PERMUTATION_BLOCK_VALUES", 3 * 4)
    r, p, _ = reciprocity.lag1_correlation([(0, 1), (1, 0), (2, 1), (1, 2)], permutations=500, seed=0)
    assert r == pytest.approx(0.0, abs=1e-12)
    assert p == 1.0


def test_long_conversation_p_value_spans_blocks_and_is_deterministic() -> None:
    # 3,000 exchanges x 1,000 shuffles is several blocks. Answers follow prompts closely, so no
    # shuffle comes near the observed r and p is its floor, 1 / (permutations + 1).
    prompts_ = [float(i % 4) for i in range(3000)]
    exchanges = [(p, min(3.0, p + 0.1 * (i % 3))) for i, p in enumerate(prompts_)]
    assert len(exchanges) * 1000 > reciprocity.PERMUTATION_BLOCK_VALUES
    r, p, _ = reciprocity.lag1_correlation(exchanges, permutations=1000, seed=11)
    assert r > 0.9 and p == pytest.approx(1 / 1001)
    assert reciprocity.lag1_correlation(exchanges, permutations=1000, seed=11) == (r, p, None)


def test_seed_decides_the_shuffles() -> None:
    exchanges = list(zip([0.0, 2.0, 1.0, 3.0, 1.0, 2.0], [2.0, 1.0, 3.0, 1.0, 0.0, 2.0]))
    runs = {reciprocity.lag1_correlation(exchanges, permutations=300, seed=seed)[1] for seed in range(6)}
    assert len(runs) > 1  # different seeds, different shuffles
    assert reciprocity.lag1_correlation(exchanges, 300, -4) == reciprocity.lag1_correlation(exchanges, 300, 4)


def _pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def test_lag1_perfect_positive_correlation() -> None:
    result = analyze_conversation(alternating(0, 1, 2, 3), permutations=100)
    assert result.lag1_correlation == pytest.approx(1.0)


def test_lag1_none_with_too_few_exchanges_or_no_variance() -> None:
    short = analyze_conversation(alternating(0, 1, 2))
    assert short.lag1_correlation is None and short.lag1_p_value is None
    assert "fewer than 3" in short.reasons["lag1_correlation"]
    flat = analyze_conversation(alternating(1, 1, 1, 1))
    assert flat.lag1_correlation is None and flat.lag1_p_value is None
    assert "variance" in flat.reasons["lag1_correlation"]


def test_zero_permutations_keeps_r_but_not_p() -> None:
    result = analyze_conversation(alternating(0, 2, 1, 3, 1), permutations=0)
    assert result.lag1_correlation is not None
    assert result.lag1_p_value is None
    assert "permutation" in result.reasons["lag1_p_value"]


def test_negative_permutations_rejected() -> None:
    with pytest.raises(ValueError, match="permutations"):
        analyze_conversation(alternating(0, 1), permutations=-1)


# --------------------------------------------------------------------------- trajectory


def test_trajectory_slope_by_hand() -> None:
    # x centred [-1.5, -.5, .5, 1.5]; y = [0, 1, 1, 3] centred [-1.25, -.25, -.25, 1.75]
    # slope = sxy / sxx = 4.5 / 5
    result = analyze_conversation(alternating(0, 1, 1, 3))
    assert result.trajectory_slope == pytest.approx(0.9)


# --------------------------------------------------------------------------- speakers


def test_speaker_figures_and_layers_led() -> None:
    result = analyze_conversation(
        [
            msg("m0", "A", "surface", 1.0),
            msg("m1", "B", "intermediate", 2.0),
            msg("m2", "A", "none", 0.0),
            msg("m3", "B", "none", 0.5),
            msg("m4", "A", "core", 3.0),
        ]
    )
    a, b = result.speakers["A"], result.speakers["B"]
    assert list(result.speakers) == ["A", "B"]
    assert (a.turns, a.max_layer, a.led, a.layers_led) == (3, "core", ["surface", "core"], 2)
    assert a.mean_depth == pytest.approx(4 / 3)
    assert a.disclosure_share == pytest.approx(2 / 3)
    assert (b.turns, b.max_layer, b.led, b.layers_led) == (2, "intermediate", ["intermediate"], 1)
    assert b.mean_depth == pytest.approx(1.25)
    assert b.disclosure_share == pytest.approx(0.5)
    assert result.asymmetry == pytest.approx((4 / 3 - 1.25) / 3)
    assert result.most_disclosing == "A"


def test_jumping_to_core_leads_every_layer_passed() -> None:
    result = analyze_conversation(alternating(0, 3, 1))
    assert result.speakers["B"].led == ["surface", "intermediate", "core"]
    assert result.speakers["A"].layers_led == 0


def test_asymmetry_ties_and_many_speakers() -> None:
    tie = analyze_conversation(alternating(1, 1))
    assert tie.asymmetry == 0.0 and tie.most_disclosing == "A"
    group = analyze_conversation(alternating(0, 3, 1.5, 1, 0, 3, 1.5, 2, speakers="ABCD"))
    # mean depths: A (0 + 0) / 2 = 0, B 3, C 1.5, D (1 + 2) / 2 = 1.5 -> (3 - 0) / 3 = 1
    assert group.n_speakers == 4
    assert group.asymmetry == pytest.approx(1.0)
    assert group.most_disclosing == "B"
    assert all(getattr(group, name) is not None for name in FIGURES)
    assert group.reasons == {}


# --------------------------------------------------------------------------- degenerate input


def test_empty_conversation_gives_none_with_reasons() -> None:
    result = analyze_conversation([], "empty")
    assert (result.n_messages, result.n_turns, result.n_speakers) == (0, 0, 0)
    assert result.turns == [] and result.speakers == {}
    for name in FIGURES:
        assert getattr(result, name) is None
        assert result.reasons[name]
    assert message_fields(result) == {}


def test_one_speaker_gives_none_with_reasons() -> None:
    result = analyze_conversation([msg("a1", "A", "core"), msg("a2", "A", "surface")])
    assert result.n_turns == 1 and result.n_speakers == 1
    assert result.speakers["A"].mean_depth == pytest.approx(3.0)
    for name in FIGURES:
        assert getattr(result, name) is None
        assert result.reasons[name]
    assert "one speaker" in result.reasons["reciprocity_index"]
    assert "one speaker" in result.reasons["asymmetry"]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"id": "m7", "speaker": "A", "layer": "deep", "depth": 1.0}, "layer"),
        ({"id": "m7", "speaker": "A", "layer": 4}, "layer"),
        ({"id": "m7", "speaker": "A", "layer": "core", "depth": 3.5}, "depth"),
        ({"id": "m7", "speaker": "A", "layer": "none", "depth": -0.1}, "depth"),
        ({"id": "m7", "speaker": "A", "layer": "none", "depth": float("nan")}, "depth"),
        ({"id": "m7", "speaker": "A", "layer": "none", "depth": "1"}, "depth"),
        ({"id": "m7", "layer": "none"}, "speaker"),
    ],
)
def test_bad_messages_raise_naming_id_and_field(row: dict[str, Any], field: str) -> None:
    rows = [{"id": "ok", "speaker": "B", "layer": "none"}, row]
    with pytest.raises(ValueError, match=rf"'m7'.*{field}"):
        analyze_conversation(rows)


def test_bad_dataclass_message_raises_naming_id() -> None:
    with pytest.raises(ValueError, match=r"'m9'.*depth"):
        LabeledMessage(id="m9", speaker="A", layer="core", depth=3.01)
    with pytest.raises(ValueError, match=r"'m9'.*layer"):
        LabeledMessage(id="m9", speaker="A", layer="outer", depth=1.0)


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(ValueError, match="'x'"):
        analyze_conversation([msg("x", "A", 0), msg("x", "B", 1)])


# --------------------------------------------------------------------------- input forms / output


def test_mapping_input_equals_dataclass_input() -> None:
    rows = [
        {"id": "1", "speaker": "A", "layer": 1},
        {"id": "2", "speaker": "B", "layer": "intermediate", "depth": 2.4, "reply_to": "1"},
        {"id": "3", "speaker": "C", "layer": "core", "depth": 2.9},
        {"id": "4", "speaker": "A", "layer": "none", "depth": 0.3, "reply_to": "2"},
        {"id": "5", "speaker": "B", "layer": 3},
    ]
    objects = [
        msg("1", "A", "surface", 1.0),
        msg("2", "B", "intermediate", 2.4, reply_to="1"),
        msg("3", "C", "core", 2.9),
        msg("4", "A", "none", 0.3, reply_to="2"),
        msg("5", "B", "core", 3.0),
    ]
    from_rows = analyze_conversation(rows, "c1", permutations=99)
    from_objects = analyze_conversation(objects, "c1", permutations=99)
    assert from_rows == from_objects
    assert from_rows.to_dict() == from_objects.to_dict()


def test_message_fields_cover_every_message() -> None:
    messages = [
        msg("a1", "A", "surface", 1.0),
        msg("a2", "A", "none", 0.0),
        msg("b1", "B", "intermediate", 2.123456),
    ]
    fields = message_fields(analyze_conversation(messages))
    assert set(fields) == {"a1", "a2", "b1"}
    assert fields["a2"] == {"turn": 0, "prompt_turn": None, "depth_gap": None, "match": "none"}
    assert fields["b1"] == {"turn": 1, "prompt_turn": 0, "depth_gap": 1.1235, "match": "escalated"}


def test_to_dict_is_json_ready_and_rounded() -> None:
    result = analyze_conversation(alternating(0, 2, 1, 3, 1), "conv-9", permutations=50)
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["conversation_id"] == "conv-9"
    assert data["lag1_correlation"] == round(-2.5 / math.sqrt(13.75), 4)
    assert set(data["speakers"]) == {"A", "B"}
    assert data["speakers"]["A"]["mean_depth"] == round(2 / 3, 4)
    assert len(data["turns"]) == 5 and data["turns"][1]["message_ids"] == ["m1"]


def test_module_imports_without_heavy_dependencies() -> None:
    code = (
        "import sys, disclosure_nlp.analysis.reciprocity; "
        "bad = {'numpy', 'torch', 'transformers'} & set(sys.modules); "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


# --------------------------------------------------------------------------- property test


@st.composite
def conversations(draw: st.DrawFn) -> list[Any]:
    """Up to 30 messages from 1-4 speakers; depths near their layer; reply_to may point
    anywhere, including later messages, the message itself and ids that do not exist."""
    n = draw(st.integers(0, 30))
    speakers = [f"s{i}" for i in range(draw(st.integers(1, 4)))]
    rows: list[Any] = []
    for i in range(n):
        layer = draw(st.integers(0, 3))
        depth = draw(st.floats(max(0.0, layer - 0.6), min(3.0, layer + 0.6)))
        reply_to = draw(
            st.one_of(
                st.none(),
                st.integers(0, 34).map(lambda j: f"m{j}"),
                st.just(f"m{i}"),
                st.just("ghost"),
            )
        )
        speaker = draw(st.sampled_from(speakers))
        layer_value: str | int = draw(st.sampled_from([layer, LAYERS[layer]]))
        if draw(st.booleans()):
            rows.append(msg(f"m{i}", speaker, layer_value, depth, reply_to))
        else:
            row = {"id": f"m{i}", "speaker": speaker, "layer": layer_value, "reply_to": reply_to}
            if draw(st.booleans()):
                row["depth"] = depth
            rows.append(row)
    return rows


def _in(value: float | None, low: float, high: float) -> bool:
    return value is None or low <= value <= high


@settings(max_examples=100, deadline=None)
@given(conversations(), st.integers(0, 2**32))
def test_any_conversation_gives_figures_in_range(rows: list[Any], seed: int) -> None:
    result = analyze_conversation(rows, permutations=50, seed=seed)
    assert _in(result.reciprocity_index, 0, 1)
    assert _in(result.asymmetry, 0, 1)
    assert _in(result.lag1_correlation, -1, 1)
    assert result.lag1_p_value is None or 0 < result.lag1_p_value <= 1
    assert result.trajectory_slope is None or math.isfinite(result.trajectory_slope)
    for name in FIGURES:
        assert (getattr(result, name) is None) == (name in result.reasons)
    for figures in result.speakers.values():
        assert _in(figures.disclosure_share, 0, 1)
        assert _in(figures.mean_depth, 0, 3)
    assert sum(f.layers_led for f in result.speakers.values()) <= 3
    for turn in result.turns:
        assert _in(turn.depth_gap, -3, 3)
        if turn.prompt_turn is not None:
            assert turn.prompt_turn < turn.index
            assert result.turns[turn.prompt_turn].speaker != turn.speaker
    ids = {row.id if isinstance(row, LabeledMessage) else row["id"] for row in rows}
    assert set(message_fields(result)) == ids
    assert result.n_messages == len(rows) and result.n_turns <= len(rows)
    json.dumps(result.to_dict())
