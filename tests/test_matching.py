"""Turn-level rLSM and coordination per depth threshold (issue 18 items 2 and 3)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure_nlp.layers import LAYERS
from disclosure_nlp.analysis.matching import (
    EPSILON,
    Coordination,
    coordination,
    rlsm,
    speaker_matching,
    turn_matches,
)
from disclosure_nlp.analysis.reciprocity import analyze_conversation


def _conversation(spec: list[tuple[str, str]]):
    """Turns of a conversation given as (speaker, layer) per message; depth = layer id."""
    return analyze_conversation(
        [{"id": f"m{i}", "speaker": s, "layer": layer} for i, (s, layer) in enumerate(spec)], permutations=0
    ).turns


def test_rlsm_hand_values():
    assert rlsm(1.0, 3.0) == pytest.approx(1 - 2 / (4 + EPSILON))
    assert rlsm(2.0, 2.0) == 1.0
    # Both at depth 0: a perfect match by the formula (documented in the module).
    assert rlsm(0.0, 0.0) == 1.0
    assert rlsm(0.0, 2.0) == pytest.approx(1 - 2 / (2 + EPSILON))


def test_speaker_means_over_all_and_over_disclosing_exchanges():
    turns = _conversation([("A", "surface"), ("B", "core"), ("A", "none"), ("B", "none")])
    matches = turn_matches(turns)
    assert [(m.speaker, m.prompt_depth, m.answer_depth, m.match) for m in matches] == [
        ("B", 1.0, 3.0, "escalated"), ("A", 3.0, 0.0, "declined"), ("B", 0.0, 0.0, "matched")]
    figures = speaker_matching(matches)
    b_first = 1 - 2 / (4 + EPSILON)
    assert figures["B"].exchanges == 2 and figures["B"].rlsm_mean == pytest.approx((b_first + 1.0) / 2)
    assert figures["B"].disclosing_exchanges == 1 and figures["B"].rlsm_disclosing == pytest.approx(b_first)
    assert figures["A"].rlsm_mean == pytest.approx(1 - 3 / (3 + EPSILON))


def test_a_speaker_who_never_answers_a_disclosure_has_no_disclosing_mean():
    figures = speaker_matching(turn_matches(_conversation([("A", "none"), ("B", "none")])))
    assert figures["B"].rlsm_mean == 1.0 and figures["B"].rlsm_disclosing is None


@given(st.floats(0, 3), st.floats(0, 3))
def test_rlsm_is_bounded_symmetric_and_one_only_on_equal_depths(p, a):
    value = rlsm(p, a)
    assert 0.0 <= value <= 1.0 and value == pytest.approx(rlsm(a, p))
    assert (value == pytest.approx(1.0, abs=1e-9)) == (abs(p - a) < 1e-9 * (p + a + EPSILON) or p == a)


def test_coordination_hand_values_per_pair_and_threshold():
    turns = _conversation([("A", "intermediate"), ("B", "intermediate"), ("A", "intermediate"), ("B", "none"),
                           ("A", "none"), ("B", "surface"), ("A", "none"), ("B", "none")])
    result = coordination(turns).to_dict()
    # A→B exchanges (prompt, answer): (2,2) (2,0) (0,1) (0,0)
    a_to_b = result["pairs"]["A→B"]
    assert a_to_b["surface"]["coordination"] == pytest.approx(1 / 2 - 2 / 4, abs=1e-4)
    assert a_to_b["intermediate"]["coordination"] == pytest.approx(1 / 2 - 1 / 4, abs=1e-4)
    assert a_to_b["intermediate"]["n_prompts_reaching"] == 2 and a_to_b["intermediate"]["n_answers"] == 4
    assert a_to_b["core"]["coordination"] is None
    assert a_to_b["core"]["reasons"]["coordination"] == "no prompt reached this layer"
    # B→A exchanges: (2,2) (0,0) (1,0)
    b_to_a = result["pairs"]["B→A"]
    assert b_to_a["surface"]["coordination"] == pytest.approx(1 / 2 - 1 / 3, abs=1e-4)
    # Pooled: each pair against its own base rate. At intermediate, A→B has 2 prompts reaching
    # it (1 answered there; base 1/4), B→A has 1 (answered there; base 1/3).
    pooled = result["pooled"]["intermediate"]
    assert pooled["n_answers"] == 7 and pooled["n_prompts_reaching"] == 3
    assert pooled["p_given_prompt"] == pytest.approx(2 / 3, abs=1e-4)
    assert pooled["p_expected"] == pytest.approx((2 * 1 / 4 + 1 * 1 / 3) / 3, abs=1e-4)
    assert pooled["coordination"] == pytest.approx((2 - (2 * 1 / 4 + 1 * 1 / 3)) / 3, abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=6), st.lists(st.integers(0, 3), min_size=1, max_size=6))
def test_coordination_is_zero_when_answers_are_independent_of_prompts(prompts, answers):
    # Every prompt crossed with the same answers: the answer distribution is the same after
    # every prompt by construction, so P(answer ≥ k | prompt ≥ k) = P(answer ≥ k).
    result = Coordination()
    for p, a in itertools.product(prompts, answers):
        result.count("A", "B", p, a)
    for k, counts in result.pooled().items():
        value = counts.coordination()
        if any(p >= k for p in prompts):
            assert value == pytest.approx(0.0, abs=1e-12), k
        else:
            assert value is None


def test_coordination_is_positive_when_answers_copy_prompts():
    result = Coordination()
    for level in range(len(LAYERS)):
        result.count("A", "B", level, level)
    assert all(counts.coordination() > 0 for counts in result.pooled().values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 3), min_size=1, max_size=4),
                          st.lists(st.integers(0, 3), min_size=1, max_size=4)), min_size=1, max_size=4))
def test_pooling_pairs_that_are_each_independent_gives_zero(pairs):
    # Pairs with different base rates (a deep seeker answered by a shallow supporter, say):
    # pooling raw counts would show coordination by Simpson's paradox; each pair is compared
    # with its own base rate, so independent pairs pool to 0.
    result = Coordination()
    for number, (prompts, answers) in enumerate(pairs):
        for p, a in itertools.product(prompts, answers):
            result.count(f"A{number}", f"B{number}", p, a)
    for k, counts in result.pooled().items():
        value = counts.coordination()
        assert value is None or value == pytest.approx(0.0, abs=1e-9), k


def test_simpsons_paradox_is_not_reported_as_negative_coordination():
    # Deep seeker, shallow supporter, each answering independently of the other: raw pooling
    # would give P(≥1 | prompt ≥1) = 3/5, below P(≥1) = 4/6.
    result = Coordination()
    for p, a in itertools.product([3, 3], [0, 1]):
        result.count("seeker", "supporter", p, a)
    for p, a in itertools.product([0, 1], [3]):
        result.count("supporter", "seeker", p, a)
    assert result.pooled()[1].coordination() == pytest.approx(0.0)
