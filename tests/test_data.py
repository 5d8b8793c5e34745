import json
from pathlib import Path

import pytest

from disclosure_nlp.model.data import Columns, load_labeled, normalize_text
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


def save_dict(path: Path, **splits: list[str]) -> Path:
    """A DatasetDict saved with save_to_disk, each split holding the given texts (layer none)."""
    from datasets import Dataset, DatasetDict

    DatasetDict(
        {name: Dataset.from_dict({"text": texts, "layer": ["none"] * len(texts)}) for name, texts in splits.items()}
    ).save_to_disk(path)
    return path


def test_split_given_for_a_file_or_a_single_dataset_is_an_error(tmp_path, tiny_file):
    from datasets import Dataset

    Dataset.from_dict({"text": ["hi"], "layer": ["none"]}).save_to_disk(tmp_path / "single")
    with pytest.raises(DataError, match=r"tiny\.jsonl: is a data file, not a saved DatasetDict: it has no split 'test'"):
        load_labeled(tiny_file, split="test")
    with pytest.raises(DataError, match="single: is a saved Dataset, not a DatasetDict: it has no split 'test'"):
        load_labeled(tmp_path / "single", split="test")
    assert load_labeled(tmp_path / "single")["text"] == ["hi"]


def test_training_sources_take_train_and_dev_splits_from_one_datasetdict(tmp_path):
    from disclosure_nlp.model.data import Source, training_sources

    dd = save_dict(tmp_path / "dd", train=["a"], validation=["b"], dev=["c"], test=["d"])
    assert training_sources(dd) == (Source(dd, "train"), Source(dd, "validation"))  # validation before dev
    assert training_sources(dd, dev_split="test") == (Source(dd, "train"), Source(dd, "test"))
    assert training_sources(dd, dd, train_split="dev", dev_split="dev") == (Source(dd, "dev"), Source(dd, "dev"))
    only_dev = save_dict(tmp_path / "only-dev", train=["a"], dev=["c"])
    assert training_sources(only_dev)[1] == Source(only_dev, "dev")
    assert str(Source(dd, "train")) == f"{dd} (split 'train')"


def test_training_sources_mix_files_and_datasetdicts(tmp_path, tiny_file):
    from disclosure_nlp.model.data import Source, training_sources

    dd = save_dict(tmp_path / "dd", train=["a"], dev=["c"])
    assert training_sources(tiny_file, dd) == (Source(tiny_file), Source(dd, "dev"))
    assert training_sources(dd, tiny_file) == (Source(dd, "train"), Source(tiny_file))
    assert training_sources(tiny_file, tiny_file) == (Source(tiny_file), Source(tiny_file))


def test_training_sources_errors_name_the_path_and_its_splits(tmp_path, tiny_file):
    from disclosure_nlp.model.data import training_sources

    dd = save_dict(tmp_path / "dd", train=["a"], test=["d"])
    with pytest.raises(DataError, match=r"dd: no dev data: this DatasetDict has no 'validation' or 'dev' split "
                                        r"\(its splits: train, test\); give --dev, or name the dev split with --dev-split"):
        training_sources(dd)
    with pytest.raises(DataError, match=r"dd: has no split 'valid' \(its splits: train, test\); choose one with --dev-split"):
        training_sources(dd, dev_split="valid")
    with pytest.raises(DataError, match=r"dd: has no split 'training' \(its splits: train, test\); choose one with --train-split"):
        training_sources(dd, dev_split="test", train_split="training")
    with pytest.raises(DataError, match=r"dd: is a DatasetDict with no 'validation' or 'dev' split \(its splits: train, test\); "
                                        r"choose one with --dev-split"):
        training_sources(tiny_file, dd)
    no_train = save_dict(tmp_path / "no-train", fit=["a"], dev=["c"])
    with pytest.raises(DataError, match=r"no-train: is a DatasetDict with no 'train' split \(its splits: fit, dev\); "
                                        r"choose one with --train-split"):
        training_sources(no_train)
    with pytest.raises(DataError, match=r"tiny\.jsonl: no dev data: give --dev"):
        training_sources(tiny_file)
    with pytest.raises(DataError, match=r"tiny\.jsonl: --dev-split 'dev' given, but this is not a saved DatasetDict"):
        training_sources(dd, tiny_file, dev_split="dev")
    with pytest.raises(DataError, match=r"nope: no such file or directory"):
        training_sources(dd, tmp_path / "nope", dev_split="test")


def test_normalize_text_ignores_case_punctuation_and_spacing():
    assert normalize_text("Me  TOO!!") == normalize_text("me too") == "me too"
