import json
from pathlib import Path

import pytest

from disclosure_nlp.data import Columns, load_labeled, normalize_text
from disclosure_nlp.errors import DataError


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_loads_jsonl_into_a_classlabel_dataset(tiny_file):
    ds = load_labeled(tiny_file)
    assert len(ds) == 8
    assert ds.features["label"].names == ["none", "surface", "intermediate", "core"]
    assert ds["label"] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert ds["register"][0] == "test"


def test_loads_csv_with_renamed_columns_and_numeric_layers(tmp_path):
    path = write(tmp_path / "d.csv", 'msg,gold\n"hi, there",0\n"line one\nline two",core\n')
    ds = load_labeled(path, Columns(text="msg", label="gold"))
    assert ds["text"] == ["hi, there", "line one\nline two"]
    assert ds["label"] == [0, 3]


def test_loads_tsv(tmp_path):
    ds = load_labeled(write(tmp_path / "d.tsv", "text\tlayer\nI love jazz\tsurface\n"))
    assert ds["label"] == [1]


def test_unknown_layer_names_file_line_and_field(tmp_path):
    rows = [{"text": "ok", "layer": "none"}, {"text": "hm", "layer": "deep"}]
    path = write(tmp_path / "bad.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as info:
        load_labeled(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), 2, "layer")
    assert "bad.jsonl, line 2, field 'layer'" in str(info.value)


def test_missing_column_is_named(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "layer": "none"}\n{"message": "b", "layer": "core"}\n')
    with pytest.raises(DataError) as info:
        load_labeled(path)
    assert (info.value.line, info.value.field) == (2, "text")


def test_missing_csv_label_column_is_named(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nhello,none\n")
    with pytest.raises(DataError, match="line 2, field 'layer': missing column"):
        load_labeled(path)


@pytest.mark.parametrize("value", ['""', '"   "', "null", "42"])
def test_empty_or_non_string_text_is_an_error(tmp_path, value):
    path = write(tmp_path / "d.jsonl", '{"text": "fine", "layer": "none"}\n\n{"text": %s, "layer": "none"}\n' % value)
    with pytest.raises(DataError) as info:
        load_labeled(path)
    assert (info.value.line, info.value.field) == (3, "text")


def test_broken_json_and_non_object_lines(tmp_path):
    with pytest.raises(DataError, match=r"line 1: not valid JSON"):
        load_labeled(write(tmp_path / "a.jsonl", '{"text": "cut off'))
    with pytest.raises(DataError, match=r"line 1: expected a JSON object, got list"):
        load_labeled(write(tmp_path / "b.jsonl", '["text", "none"]\n'))


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"text": "ok", "layer": "none"}\n{"text": "caf\xe9", "layer": "none"}\n')
    with pytest.raises(DataError, match="line 2: not valid UTF-8"):
        load_labeled(path)


def test_bom_is_accepted(tmp_path):
    path = write(tmp_path / "d.csv", "\ufefftext,layer\r\nhello,none\r\n".encode("utf-8"))
    assert load_labeled(path)["text"] == ["hello"]


def test_ragged_csv_row(tmp_path):
    with pytest.raises(DataError, match="line 3: has 3 cells but the header has 2"):
        load_labeled(write(tmp_path / "d.csv", "text,layer\na,none\nb,none,extra\n"))


def test_empty_split_and_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="contains no rows"):
        load_labeled(write(tmp_path / "empty.jsonl", "\n\n"))
    with pytest.raises(DataError, match="no such file"):
        load_labeled(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="is a directory"):
        load_labeled(tmp_path)
    with pytest.raises(DataError, match="unsupported file type"):
        load_labeled(write(tmp_path / "d.xlsx", "x"))


def test_saved_datasetdict_needs_a_split(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_dict({"text": ["hi"], "layer": ["none"]})}).save_to_disk(tmp_path / "dd")
    with pytest.raises(DataError, match="choose one with --split"):
        load_labeled(tmp_path / "dd")
    assert load_labeled(tmp_path / "dd", split="train")["label"] == [0]


def test_normalize_text_ignores_case_punctuation_and_spacing():
    assert normalize_text("Me  TOO!!") == normalize_text("me too") == "me too"
