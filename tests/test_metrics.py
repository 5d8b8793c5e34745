import pytest

from disclosure_nlp.model.metrics import compute_report


def test_figures_on_a_known_confusion_matrix():
    # gold:      none none surface surface intermediate intermediate core core
    # predicted: none surface surface surface core intermediate intermediate none
    gold = [0, 0, 1, 1, 2, 2, 3, 3]
    pred = [0, 1, 1, 1, 3, 2, 2, 0]
    r = compute_report(gold, pred)
    assert r.confusion == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]]
    assert r.accuracy == pytest.approx(4 / 8)
    # per layer: none P=1/2 R=1/2; surface P=2/3 R=1; intermediate P=1/2 R=1/2; core P=0 R=0
    assert r.per_layer["none"].f1 == pytest.approx(0.5)
    assert r.per_layer["surface"].precision == pytest.approx(2 / 3)
    assert r.per_layer["surface"].f1 == pytest.approx(0.8)
    assert r.per_layer["core"].f1 == 0.0
    assert r.macro_f1 == pytest.approx((0.5 + 0.8 + 0.5 + 0.0) / 4)
    # absolute errors: 0 1 0 0 1 0 1 3 -> mean 6/8; within one: 7/8
    assert r.mean_abs_error == pytest.approx(6 / 8)
    assert r.within_one == pytest.approx(7 / 8)
    assert r.per_layer["core"].support == 2


def test_spearman_uses_depth_scores_when_given():
    gold = [0, 1, 2, 3]
    perfect = compute_report(gold, [0, 0, 0, 0], depth=[0.1, 0.9, 2.2, 2.9])
    assert perfect.spearman == pytest.approx(1.0)
    constant = compute_report(gold, [0, 0, 0, 0])
    assert constant.spearman is None


def test_macro_f1_counts_only_layers_present_in_gold():
    r = compute_report([0, 0, 3], [0, 0, 3])
    assert r.macro_f1 == 1.0


def test_length_mismatch_and_empty_input_are_errors():
    with pytest.raises(ValueError):
        compute_report([0, 1], [0])
    with pytest.raises(ValueError):
        compute_report([], [])


def _noisy(seed: int, n: int, keep: float):
    import numpy as np

    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, n)
    return gold, np.where(rng.random(n) < keep, gold, rng.integers(0, 4, n))


def test_bootstrap_interval_brackets_macro_f1_and_narrows_with_more_messages():
    from disclosure_nlp.model.metrics import macro_f1_interval

    gold, predicted = _noisy(1, 200, 0.7)
    point = compute_report(gold.tolist(), predicted.tolist()).macro_f1
    small = macro_f1_interval(gold, predicted)
    assert small.low < point < small.high and small.level == 0.9
    assert macro_f1_interval(gold, predicted) == small  # seeded: the same figures each run
    big_gold, big_predicted = _noisy(1, 2000, 0.7)
    big = macro_f1_interval(big_gold, big_predicted)
    assert big.high - big.low < (small.high - small.low) / 2
    assert macro_f1_interval(gold, gold) == type(small)(1.0, 1.0, 0.9)


def test_paired_interval_is_of_the_difference_on_the_same_resamples():
    from disclosure_nlp.model.metrics import macro_f1_interval

    gold, good = _noisy(2, 500, 0.9)
    _, poor = _noisy(2, 500, 0.4)  # same gold draw, more noise
    assert macro_f1_interval(gold, good, good) == type(macro_f1_interval(gold, good))(0.0, 0.0, 0.9)
    gap = macro_f1_interval(gold, good, poor)
    assert 0 < gap.low < gap.high
    assert macro_f1_interval(gold, poor, good).high < 0
    with pytest.raises(ValueError, match="as many"):
        macro_f1_interval(gold, good, poor[:10])


def test_bootstrap_scores_each_resample_as_compute_report_does():
    """Layers absent from a resample's gold do not count, as in compute_report's macro-F1."""
    import numpy as np

    from disclosure_nlp.model.metrics import _macro_f1_from_counts

    rng = np.random.default_rng(5)
    for n in (3, 7, 40):
        gold, predicted = rng.integers(0, 3, n), rng.integers(0, 4, n)  # core only ever predicted
        expected = compute_report(gold.tolist(), predicted.tolist()).macro_f1
        assert _macro_f1_from_counts(gold, predicted, 4) == pytest.approx(expected)
