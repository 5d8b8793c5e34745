"""Temperature scaling: fitted on held-out logits, folded into the model, ECE computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from disclosure_nlp.model.calibration import (
    calibration_report,
    fit_temperature,
    fold_temperature,
    reliability_diagram,
    softmax,
)


def test_ece_matches_a_hand_computation() -> None:
    # Two messages at confidence 0.9 (one right), two at 0.6 (both right), 15 bins.
    probs = np.array([[0.9, 0.1, 0, 0], [0.9, 0.1, 0, 0], [0.6, 0.4, 0, 0], [0.4, 0.6, 0, 0]])
    gold = [0, 1, 0, 1]
    report = calibration_report(probs, gold)
    # bin of 0.9: accuracy 0.5, confidence 0.9 -> gap 0.4, weight 1/2; bin of 0.6: gap 0.4, weight 1/2
    assert report.ece == pytest.approx(0.4)
    assert report.accuracy == pytest.approx(0.75) and report.n == 4
    assert sorted(b["n"] for b in report.bins) == [2, 2]


def test_fitted_temperature_recovers_overconfidence() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 4)) * 2.0
    gold = [rng.choice(4, p=p) for p in softmax(true_logits)]
    overconfident = true_logits * 3.0  # the model's logits: right ranking, three times too sharp
    t = fit_temperature(overconfident, gold)
    assert t == pytest.approx(3.0, rel=0.1)
    before = calibration_report(softmax(overconfident), gold).ece
    after = calibration_report(softmax(overconfident, t), gold).ece
    assert after < before / 2 and after < 0.03


def test_folding_divides_logits_and_keeps_every_label() -> None:
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Linear(5, 8)
            self.classifier = torch.nn.Linear(8, 4)

        def forward(self, x):
            return self.classifier(torch.tanh(self.body(x)))

    torch.manual_seed(0)
    model, x = Tiny(), torch.randn(64, 5)
    before = model(x).detach()
    fold_temperature(model, 2.5)
    after = model(x).detach()
    assert torch.allclose(after, before / 2.5, atol=1e-6)
    assert torch.equal(after.argmax(1), before.argmax(1))


def test_reliability_diagram_is_a_png(tmp_path) -> None:
    report = calibration_report(np.array([[0.7, 0.3, 0, 0], [0.2, 0.8, 0, 0]]), [0, 0])
    path = reliability_diagram(report, tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_vector_scaling_undoes_a_per_layer_distortion_a_temperature_cannot() -> None:
    from disclosure_nlp.model.calibration import apply_vector_scaling, fit_vector_scaling

    rng = np.random.default_rng(1)
    true_logits = rng.normal(size=(6000, 4)) * 1.5
    gold = [rng.choice(4, p=p) for p in softmax(true_logits)]
    # One layer too sharp, one too flat, a prior pushed toward the last: what one number cannot fix.
    distorted = true_logits * np.array([0.5, 1.0, 3.0, 1.0]) + np.array([0.0, 0.0, 0.0, 1.0])
    scales, biases = fit_vector_scaling(distorted, gold, penalty=0.0)
    assert scales == pytest.approx([2.0, 1.0, 1 / 3, 1.0], rel=0.15)
    assert biases[3] - np.mean(biases[:3]) == pytest.approx(-1.0, abs=0.2)
    vector = calibration_report(softmax(apply_vector_scaling(distorted, scales, biases)), gold).ece
    temperature = calibration_report(softmax(distorted, fit_temperature(distorted, gold)), gold).ece
    assert vector < 0.03 and vector < temperature / 2


def test_the_bias_penalty_pulls_biases_toward_zero() -> None:
    from disclosure_nlp.model.calibration import fit_vector_scaling

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(500, 4))
    gold = [3 if rng.random() < 0.7 else int(rng.integers(0, 3)) for _ in range(500)]
    free = fit_vector_scaling(logits, gold, penalty=0.0)[1]
    held = fit_vector_scaling(logits, gold, penalty=1.0)[1]
    assert np.linalg.norm(held) < np.linalg.norm(free) / 2


def test_folding_vector_scaling_maps_the_logits_exactly() -> None:
    torch = pytest.importorskip("torch")
    from disclosure_nlp.model.calibration import fold_vector_scaling

    torch.manual_seed(0)
    model = torch.nn.Module()
    model.classifier = torch.nn.Linear(6, 4)
    x = torch.randn(32, 6)
    before = model.classifier(x).detach()
    fold_vector_scaling(model, [2.0, 0.5, 1.0, 3.0], [0.1, -0.2, 0.0, 0.3])
    after = model.classifier(x).detach()
    expected = before * torch.tensor([2.0, 0.5, 1.0, 3.0]) + torch.tensor([0.1, -0.2, 0.0, 0.3])
    assert torch.allclose(after, expected, atol=1e-5)
