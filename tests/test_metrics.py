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
