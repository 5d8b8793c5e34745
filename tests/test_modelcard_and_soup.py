"""The model card of a folder `disclosure train` did not write, and averaging two models.

`disclosure calibrate` writes a card for whatever folder it is given; a folder from elsewhere
(or an averaged one) has no complete training record, and that must give a card that says so,
not a KeyError after a minute of work. `scripts/average_models.py` must give the weighted mean
of every weight, refuse models of different shapes, and write a folder that loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from disclosure_nlp.errors import DisclosureError
from disclosure_nlp.model.modelcard import render_model_card


def test_a_card_without_a_training_record_says_so() -> None:
    card = render_model_card("foreign", {}, {})
    assert "Not recorded" in card
    assert "Dev set" not in card
    assert "## Labels" in card and "## Limits" in card


def test_a_card_names_the_models_averaged() -> None:
    card = render_model_card("soup", {"averaged_from": [{"model": "a", "weight": 0.25}, {"model": "b", "weight": 0.75}]}, {})
    assert "`a` (weight 0.25)" in card and "`b` (weight 0.75)" in card


def test_average_is_the_weighted_mean_and_loads(tiny_model: Path, tmp_path: Path, load_script) -> None:
    from safetensors.torch import load_file, save_file

    from disclosure_nlp.model.classifier import DisclosureClassifier

    shifted = tmp_path / "shifted"
    shutil.copytree(tiny_model, shifted)
    original = load_file(str(tiny_model / "model.safetensors"))
    save_file({k: v + 1.0 if v.is_floating_point() else v for k, v in original.items()},
              str(shifted / "model.safetensors"), metadata={"format": "pt"})

    out = load_script("average_models").average([tiny_model, shifted], [1.0, 3.0], tmp_path / "soup")
    averaged = load_file(str(out / "model.safetensors"))
    assert set(averaged) == set(original)
    for name, tensor in original.items():
        if tensor.is_floating_point():
            assert (averaged[name] - (tensor + 0.75)).abs().max().item() < 1e-5, name
        else:
            assert averaged[name].equal(tensor)
    probs = DisclosureClassifier.load(out, backend="torch").predict_proba(["I feel lonely since the move"])
    assert probs.shape == (1, 4)


def test_average_refuses_models_of_other_shapes(tiny_model: Path, tmp_path: Path, load_script) -> None:
    from safetensors.torch import load_file, save_file

    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    state = load_file(str(other / "model.safetensors"))
    name = next(k for k, v in state.items() if v.ndim == 2)
    state[name] = state[name][:, :-1].contiguous()
    save_file(state, str(other / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(DisclosureError, match="not the same architecture"):
        load_script("average_models").average([tiny_model, other], [1.0, 1.0], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_average_writes_the_compact_form_and_never_over_an_input(tiny_model: Path, tmp_path: Path, load_script) -> None:
    from disclosure_nlp.model.classifier import DisclosureClassifier
    from disclosure_nlp.model.modelstore import is_compact

    module = load_script("average_models")
    out = module.average([tiny_model, tiny_model], [1.0, 1.0], tmp_path / "soup", compact=True)
    assert is_compact(out) and not (out / "model.safetensors").exists()
    same = DisclosureClassifier.load(out, backend="torch").predict_proba(["we moved last spring"])
    reference = DisclosureClassifier.load(tiny_model, backend="torch").predict_proba(["we moved last spring"])
    assert abs(same - reference).max() < 0.02  # the average of a model with itself, stored as int8 differences
    with pytest.raises(DisclosureError, match="is one of the models being averaged"):
        module.average([tiny_model, out], [1.0, 1.0], out, force=True)
    assert is_compact(out)


def test_tensors_equal_in_every_ingredient_stay_bit_equal(tiny_model: Path, tmp_path: Path, load_script) -> None:
    """Frozen word embeddings must come out bit-equal to the base, or the compact form (which
    stores only what differs from the base) refuses the soup; w/3 + w/3 + w/3 need not be w."""
    from safetensors.torch import load_file, save_file

    original = load_file(str(tiny_model / "model.safetensors"))
    frozen = next(n for n in original if "word_embeddings" in n)
    ingredients = [tiny_model]
    for step in (1, 2):
        other = tmp_path / f"run{step}"
        shutil.copytree(tiny_model, other)
        save_file({k: v if k == frozen or not v.is_floating_point() else v + step for k, v in original.items()},
                  str(other / "model.safetensors"), metadata={"format": "pt"})
        ingredients.append(other)
    out = load_script("average_models").average(ingredients, [1.0, 1.0, 1.0], tmp_path / "soup")
    averaged = load_file(str(out / "model.safetensors"))
    assert averaged[frozen].equal(original[frozen])
    moved = next(n for n, t in original.items() if t.is_floating_point() and n != frozen)
    assert (averaged[moved] - (original[moved] + 1.0)).abs().max().item() < 1e-5


def test_average_refuses_runs_of_different_seeds_unless_told(tiny_model: Path, tmp_path: Path, load_script) -> None:
    """Their classification layers start from different draws; the README measured such averages worse."""
    module = load_script("average_models")
    other = tmp_path / "seed4"
    shutil.copytree(tiny_model, other)
    training = json.loads((other / "training.json").read_text())
    training["config"].update(seed=4, data_seed=None)
    (other / "training.json").write_text(json.dumps(training))
    with pytest.raises(DisclosureError, match=r"seed4: trained with --seed 4, .* with --seed 3;.*--any-seed"):
        module.average([tiny_model, other], [1.0, 1.0], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()
    assert module.main([str(tiny_model), str(other), "-o", str(tmp_path / "soup")]) == 1
    assert module.main([str(tiny_model), str(other), "-o", str(tmp_path / "soup"), "--any-seed"]) == 0

    training["config"].update(seed=3, data_seed=9)  # another batch order, the same starting layer
    (other / "training.json").write_text(json.dumps(training))
    assert module.average([tiny_model, other], [1.0, 1.0], tmp_path / "soup2").is_dir()
