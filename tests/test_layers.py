import pytest

from disclosure_nlp.layers import ID2LABEL, LABEL2ID, LAYERS, expected_depth, layer_id, layer_name


def test_layers_are_the_codebook_layers_in_depth_order():
    assert LAYERS == ("none", "surface", "intermediate", "core")
    assert [LABEL2ID[name] for name in LAYERS] == [0, 1, 2, 3]
    assert all(ID2LABEL[LABEL2ID[name]] == name for name in LAYERS)


def test_shared_codebook_defines_the_same_layers(shared_codebook):
    rows = [line for line in shared_codebook.splitlines() if line.startswith("| ") and "`" in line]
    ids_and_names = [(int(row.split("|")[1]), row.split("`")[1]) for row in rows]
    assert ids_and_names == list(enumerate(LAYERS))


def test_project_codebook_lists_the_same_layers(project_codebook):
    for index, name in enumerate(LAYERS):
        assert f"| {index} | `{name}` |" in project_codebook


@pytest.mark.parametrize("value, expected", [("core", 3), ("  Surface ", 1), (2, 2), ("0", 0)])
def test_layer_id_accepts_names_and_ids(value, expected):
    assert layer_id(value) == expected
    assert layer_name(value) == LAYERS[expected]


@pytest.mark.parametrize("value", ["deep", "", 4, -1, True, None, 1.0])
def test_layer_id_rejects_anything_else(value):
    with pytest.raises(ValueError, match="invalid layer"):
        layer_id(value)


def test_expected_depth_is_the_probability_weighted_layer():
    assert expected_depth([1, 0, 0, 0]) == 0.0
    assert expected_depth([0, 0, 0, 1]) == 3.0
    assert expected_depth([0, 0, 0.5, 0.5]) == pytest.approx(2.5)
    assert expected_depth({"none": 0.1, "surface": 0.2, "intermediate": 0.3, "core": 0.4}) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        expected_depth([0.5, 0.5])
