"""Reciprocity against chance: within-speaker shuffles and surrogate partners (issue 18 item 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure_nlp.analysis.baselines import (
    Skeleton,
    SurrogateReservoir,
    compare,
    conversation_baselines,
    lag1_correlations,
    reciprocity_indices,
    shuffled_depths,
)
from disclosure_nlp.analysis.reciprocity import analyze_conversation


def _analyzed(depths: list[float], speakers: str = "AB"):
    messages = [{"id": f"m{i}", "speaker": speakers[i % len(speakers)], "layer": round(d), "depth": d}
                for i, d in enumerate(depths)]
    return analyze_conversation(messages, permutations=0)


def _observed(result):
    return {"reciprocity_index": result.reciprocity_index, "lag1_correlation": result.lag1_correlation}


def test_compare_hand_values():
    b = compare(0.5, np.array([0.2, 0.5, 0.8, np.nan]))
    assert (b.mean, b.draws) == (pytest.approx(0.5), 3)
    assert b.sd == pytest.approx(0.3) and b.z == pytest.approx(0.0)
    # one-sided: draws at or above 0.5 are 0.5 and 0.8, plus the observation itself
    assert b.p == pytest.approx((2 + 1) / (3 + 1))
    assert compare(None, np.array([0.1])).reason == "observed value not defined"


def test_vectorised_statistics_equal_the_existing_figures():
    result = _analyzed([0, 1, 2, 3, 1, 0, 2.5, 3, 0.5, 1])
    skeleton = Skeleton.from_turns(result.turns)
    rows = skeleton.depths[None, :]
    assert reciprocity_indices(rows, skeleton)[0] == pytest.approx(result.reciprocity_index, abs=1e-12)
    assert lag1_correlations(rows, skeleton)[0] == pytest.approx(result.lag1_correlation, abs=1e-12)


def test_shuffles_keep_each_speakers_depths_at_their_own_positions():
    result = _analyzed([0, 3, 1, 2, 2, 1, 3, 0])
    skeleton = Skeleton.from_turns(result.turns)
    rows = shuffled_depths(skeleton, 50, np.random.default_rng(1))
    for speaker in "AB":
        where = skeleton.positions(speaker)
        assert all(sorted(row[where]) == sorted(skeleton.depths[where]) for row in rows)


def test_a_conversation_with_no_variance_has_shuffle_p_of_one():
    result = _analyzed([2.0] * 8)
    baselines = conversation_baselines(result.turns, _observed(result), reservoir=None, draws=100,
                                       rng=np.random.default_rng(0))
    ri = baselines.shuffled["reciprocity_index"]
    assert ri.observed == 1.0 and ri.p == 1.0 and ri.mean == 1.0 and ri.z is None
    assert baselines.shuffled["lag1_correlation"].p is None  # r itself is undefined
    assert baselines.surrogate["reciprocity_index"].reason == "no earlier conversation in the reservoir yet"


def _random_conversation(rng: np.random.Generator, turns: int = 12):
    return _analyzed([float(rng.integers(0, 4)) for _ in range(turns)])




def test_surrogates_of_a_perfectly_matched_conversation_score_lower():
    rng = np.random.default_rng(5)
    reservoir = SurrogateReservoir(size=50, seed=5)
    for _ in range(30):
        reservoir.offer(Skeleton.from_turns(_random_conversation(rng).turns))
    # Perfectly matched: every exchange at the same depth (RI = 1).
    matched = _analyzed([2.0] * 16)
    assert matched.reciprocity_index == 1.0
    baselines = conversation_baselines(matched.turns, _observed(matched), reservoir=reservoir, draws=200,
                                       rng=np.random.default_rng(0))
    ri = baselines.surrogate["reciprocity_index"]
    assert ri.mean < ri.observed and ri.p < 0.05
    # B echoes each of A's depths (A then moves on): half the exchanges match, and B's depth
    # follows A's; strangers' turns follow A less.
    echoed = _analyzed([d for d in (0, 3, 1, 2, 3, 0, 2, 1, 3, 3, 0, 1) for _ in range(2)])
    baselines = conversation_baselines(echoed.turns, _observed(echoed), reservoir=reservoir, draws=200,
                                       rng=np.random.default_rng(0))
    ri = baselines.surrogate["reciprocity_index"]
    assert ri.mean < ri.observed and ri.p < 0.05 and ri.z > 1


def test_baselines_are_deterministic_with_a_seed():
    rng = np.random.default_rng(2)
    reservoir = SurrogateReservoir(size=5, seed=0)
    for _ in range(8):
        reservoir.offer(Skeleton.from_turns(_random_conversation(rng).turns))
    result = _random_conversation(rng)
    runs = [conversation_baselines(result.turns, _observed(result), reservoir=reservoir, draws=50,
                                   rng=np.random.default_rng(9)).to_dict() for _ in range(2)]
    assert runs[0] == runs[1]


def test_the_reservoir_is_bounded_uniform_and_prefers_the_same_role():
    reservoir = SurrogateReservoir(size=10, seed=3)
    for i in range(1000):
        reservoir.offer(Skeleton.from_turns(_analyzed([float(i % 4)] * 4, speakers="ST").turns))
    assert len(reservoir.entries) == 10 and reservoir.offered == 2000
    assert {name for name, _ in reservoir.entries} <= {"S", "T"}
    assert reservoir.donors("S") == [seq for name, seq in reservoir.entries if name == "S"]
    assert reservoir.donors("nobody") == [seq for _, seq in reservoir.entries]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 3), min_size=4, max_size=20), st.integers(0, 2**16))
def test_p_values_lie_in_their_range(depths, seed):
    result = _analyzed(depths)
    baselines = conversation_baselines(result.turns, _observed(result), reservoir=None, draws=30,
                                       rng=np.random.default_rng(seed))
    for b in baselines.shuffled.values():
        assert b.p is None or 1 / 31 - 1e-12 <= b.p <= 1.0
        assert b.mean is None or not math.isnan(b.mean)
