"""Behaviour of the output writers: every format round-trips, nested values are serialised,
and no failure ever leaves a partial file or a damaged previous result behind."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from disclosure_nlp.errors import DisclosureError
from disclosure_nlp.io.outputs import OutputError, open_output, write_json_atomic
from disclosure_nlp.io.transcripts import read_messages

ROWS = [
    {"id": "m1", "speaker": "Ana", "text": 'Hi, "Ben"\nsecond line\twith tab 😀', "layer": "none",
     "scores": {"none": 0.9, "core": 0.1}, "tags": ["a", "b"], "depth": 0, "note": None},
    {"id": "m2", "speaker": "Ben", "text": "I lost my job, honestly", "layer": "intermediate",
     "scores": {"none": 0.2, "core": 0.3}, "tags": [], "depth": 2, "note": "x"},
]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def write_rows(path: Path, rows=ROWS, **kwargs) -> int:
    with open_output(path, **kwargs) as out:
        for row in rows:
            out.write(row)
    return out.rows_written


def test_jsonl_round_trip_and_determinism(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    assert write_rows(path) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == ROWS
    assert list(json.loads(lines[0])) == list(ROWS[0])  # key order kept
    assert "😀" in lines[0]  # ensure_ascii=False
    again = tmp_path / "again.jsonl"
    write_rows(again)
    assert again.read_bytes() == path.read_bytes()
    assert leftovers(tmp_path) == []


def test_jsonl_output_reads_back_as_messages(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    write_rows(path)
    messages = list(read_messages(path))
    assert [(m.id, m.speaker, m.text) for m in messages] == [(r["id"], r["speaker"], r["text"]) for r in ROWS]
    assert messages[0].fields["scores"] == {"none": 0.9, "core": 0.1}


@pytest.mark.parametrize(("suffix", "delimiter"), [(".csv", ","), (".tsv", "\t")])
def test_delimited_round_trip_with_nested_values(tmp_path: Path, suffix: str, delimiter: str) -> None:
    path = tmp_path / f"out{suffix}"
    write_rows(path)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=delimiter))
    assert list(rows[0]) == list(ROWS[0])
    assert rows[0]["text"] == ROWS[0]["text"]
    assert rows[0]["scores"] == '{"none":0.9,"core":0.1}'
    assert json.loads(rows[0]["tags"]) == ["a", "b"] and rows[1]["tags"] == "[]"
    assert rows[0]["note"] == "" and rows[1]["depth"] == "2"
    # The package's own reader accepts what the writer wrote.
    assert [m.text for m in read_messages(path)] == [r["text"] for r in ROWS]


def test_csv_columns_order_missing_and_extra_keys(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    with open_output(path, columns=["text", "id", "layer"]) as out:
        out.write({"id": "1", "text": "a"})
        out.write({"layer": "core", "text": "b"})
    assert path.read_text().splitlines() == ["text,id,layer", "a,1,", "b,,core"]

    bad = tmp_path / "bad.csv"
    with pytest.raises(OutputError, match="row 2 has column\\(s\\) 'extra'"):
        with open_output(bad) as out:
            out.write({"id": "1", "text": "a"})
            out.write({"id": "2", "text": "b", "extra": 1})
    assert not bad.exists() and leftovers(tmp_path) == []


def test_csv_header_only_when_no_rows_and_columns_given(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    with open_output(path, columns=["id", "text"]):
        pass
    assert path.read_text() == "id,text\n"
    bare = tmp_path / "bare.jsonl"
    with open_output(bare) as out:
        pass
    assert bare.read_bytes() == b"" and out.rows_written == 0


def test_values_are_normalised(tmp_path: Path) -> None:
    row = {"nan": float("nan"), "inf": float("inf"), "when": datetime(2024, 1, 2, 3, 4, 5),
           "path": Path("a/b"), "set": {"y", "x"}, "flag": True}
    path = tmp_path / "v.jsonl"
    write_rows(path, [row])
    assert json.loads(path.read_text()) == {"nan": None, "inf": None, "when": "2024-01-02T03:04:05",
                                            "path": "a/b", "set": ["x", "y"], "flag": True}
    table = tmp_path / "v.csv"
    write_rows(table, [row])
    assert table.read_text().splitlines()[1] == ',,2024-01-02T03:04:05,a/b,"[""x"",""y""]",True'
    with pytest.raises(OutputError, match="column 'obj'"):
        write_rows(tmp_path / "o.jsonl", [{"obj": object()}])
    assert not (tmp_path / "o.jsonl").exists()


def test_parquet_round_trip_in_several_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    rows = [{"id": f"m{i}", "depth": i % 4, "score": i / 10, "meta": {"i": i}, "note": None if i < 5 else "n"}
            for i in range(25)]
    assert write_rows(path, rows, batch_size=10) == 25
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_row_groups == 3
    assert parquet.schema_arrow.names == ["id", "depth", "score", "meta", "note"]
    back = parquet.read().to_pylist()
    assert [r["id"] for r in back] == [r["id"] for r in rows]
    assert back[7]["meta"] == '{"i":7}' and back[3]["note"] is None and back[20]["note"] == "n"
    assert math.isclose(back[24]["score"], 2.4)
    assert leftovers(tmp_path) == []


def test_parquet_values_that_do_not_fit_the_first_batch(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    rows = [{"depth": i} for i in range(4)] + [{"depth": "deep"}]
    with pytest.raises(OutputError, match="column 'depth', rows 5–5"):
        write_rows(path, rows, batch_size=4)
    assert not path.exists() and leftovers(tmp_path) == []
    with pytest.raises(OutputError, match="mixed types"):
        write_rows(path, [{"depth": 1}, {"depth": "x"}])
    assert not path.exists()


def test_parquet_empty_with_columns(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    with open_output(path, columns=["id", "text"]):
        pass
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.column_names == ["id", "text"]


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.tsv", "out.parquet"])
def test_exception_leaves_existing_target_untouched(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"previous results\n")
    with pytest.raises(RuntimeError, match="model crashed"):
        with open_output(target, force=True, batch_size=1) as out:
            out.write(ROWS[0])
            out.write(ROWS[1])
            partial = leftovers(tmp_path)
            assert len(partial) == 1 and partial[0].startswith(".")
            assert target.read_bytes() == b"previous results\n"
            raise RuntimeError("model crashed")
    assert target.read_bytes() == b"previous results\n"
    assert leftovers(tmp_path) == []


def test_new_target_appears_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "new.jsonl"
    with open_output(target) as out:
        out.write(ROWS[0])
        assert not target.exists()
    assert target.exists()
    with pytest.raises(KeyboardInterrupt):
        with open_output(tmp_path / "never.jsonl") as out:
            out.write(ROWS[0])
            raise KeyboardInterrupt
    assert not (tmp_path / "never.jsonl").exists() and leftovers(tmp_path) == []


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("keep me\n")
    with pytest.raises(DisclosureError, match="already exists"):
        open_output(target)  # refused at the call, before any row is computed
    assert target.read_text() == "keep me\n" and leftovers(tmp_path) == []
    write_rows(target, force=True)
    assert target.read_text().startswith("id,speaker,text")


def test_target_created_meanwhile_is_not_clobbered(tmp_path: Path) -> None:
    target = tmp_path / "race.jsonl"
    with pytest.raises(OutputError, match="created by something else"):
        with open_output(target) as out:
            out.write(ROWS[0])
            target.write_text("someone else's\n")
    assert target.read_text() == "someone else's\n" and leftovers(tmp_path) == []


def test_bad_paths_and_formats(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="extension"):
        open_output(tmp_path / "out.xlsx")
    with pytest.raises(OutputError, match="does not exist"):
        open_output(tmp_path / "missing" / "out.jsonl")
    with pytest.raises(OutputError, match="is a directory"):
        open_output(tmp_path, format="jsonl")
    with pytest.raises(OutputError, match="unknown output format"):
        open_output(tmp_path / "x.jsonl", format="xml")
    path = tmp_path / "named.data"
    write_rows(path, format="csv")
    assert path.read_text().startswith("id,")


def test_write_outside_the_block_is_an_error(tmp_path: Path) -> None:
    writer = open_output(tmp_path / "x.jsonl")
    with pytest.raises(RuntimeError):
        writer.write({"a": 1})
    with writer as out:
        assert out.write_many(iter(ROWS)) == 2
    with pytest.raises(RuntimeError):
        writer.write({"a": 1})


def test_write_json_atomic(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"ri": 0.5, "p": float("nan"), "speakers": ["Ana", "Bén"]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"ri": 0.5, "p": None, "speakers": ["Ana", "Bén"]}
    assert "Bén" in path.read_text(encoding="utf-8")
    with pytest.raises(DisclosureError, match="already exists"):
        write_json_atomic(path, {})
    with pytest.raises(OutputError, match="JSON"):
        write_json_atomic(path, {"x": object()}, force=True)
    assert json.loads(path.read_text())["ri"] == 0.5
    write_json_atomic(path, [1], force=True)
    assert json.loads(path.read_text()) == [1] and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "document",
    [{}, {"a": {"x": [1, 2, {"y": "é\n\u2028"}], "nan": float("nan"), "empty": [], "nested": {}}, "b": None, "c": 1.5}],
)
def test_json_object_writer_writes_what_write_json_atomic_writes(tmp_path: Path, document: dict) -> None:
    from disclosure_nlp.io.outputs import open_json_object

    write_json_atomic(tmp_path / "whole.json", document)
    with open_json_object(tmp_path / "streamed.json") as out:
        for key, value in document.items():
            out.add(key, value)
    assert (tmp_path / "streamed.json").read_bytes() == (tmp_path / "whole.json").read_bytes()


def test_json_object_writer_leaves_nothing_on_a_bad_value(tmp_path: Path) -> None:
    from disclosure_nlp.io.outputs import open_json_object

    target = tmp_path / "summary.json"
    with pytest.raises(OutputError, match="cannot be written as JSON"):
        with open_json_object(target) as out:
            out.add("fine", {"n": 1})
            out.add("bad", {"n": object()})
    assert leftovers(tmp_path) == [] and not target.exists()
    target.write_text("{}\n")
    with pytest.raises(OutputError, match="already exists"):
        open_json_object(target)
