"""``disclosure annotate file.parquet``: Parquet input on the local engine.

Parquet tables usually come out of pandas or a data warehouse, so the values are checked
against :func:`annotate_frame` on ``pd.read_parquet`` of the same file: the CLI and the pandas
integration must say the same thing about the same rows. The model is the hash classifier
(tests/fakes.py), since what is tested is reading, not labeling.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from typer.testing import CliRunner  # noqa: E402

from disclosure_nlp.io import transcripts  # noqa: E402
from disclosure_nlp.cli import app  # noqa: E402
from disclosure_nlp.errors import DataError  # noqa: E402
from disclosure_nlp.integrations.frame import annotate_frame  # noqa: E402
from tests.test_frame import read_cli_csv  # noqa: E402
from disclosure_nlp.io.transcripts import read_messages  # noqa: E402
from tests.fakes import HashClassifier  # noqa: E402
from tests.test_frame import normalised, samples  # noqa: E402

runner = CliRunner()


@pytest.fixture
def fake_load(monkeypatch):
    from disclosure_nlp.model import classifier as classifier_module

    monkeypatch.setattr(classifier_module.DisclosureClassifier, "load", classmethod(lambda cls, *a, **k: HashClassifier()))


def chat(tmp_path: Path, rows: list[dict], name: str = "chat.parquet") -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("out_suffix", [".jsonl", ".csv", ".parquet"])
def test_cli_reads_parquet_with_the_values_of_annotate_frame(tmp_path, fake_load, monkeypatch, out_suffix):
    monkeypatch.setattr(transcripts, "PARQUET_BATCH_ROWS", 50)  # several record batches
    source = tmp_path / "chats.parquet"
    samples().to_parquet(source, index=False)
    out = tmp_path / f"annotated{out_suffix}"
    summary = tmp_path / "summary.json"
    result = runner.invoke(app, ["annotate", str(source), "-o", str(out), "--summary", str(summary), "-q"])
    assert result.exit_code == 0, result.output
    assert "read 243 messages, wrote 243, rejected 0 (24 conversations" in result.output
    cli = {".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False), ".csv": read_cli_csv, ".parquet": pd.read_parquet}[out_suffix](out)
    frame = annotate_frame(pd.read_parquet(source), classifier=HashClassifier())
    assert list(cli.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(normalised(cli), normalised(frame))
    assert len(json.loads(summary.read_text())) == 24


def test_typed_timestamps_and_float_ids_read_like_a_dataframe(tmp_path):
    # pandas writes an integer id column with gaps as floats, and times as typed timestamps.
    path = chat(tmp_path, [
        {"id": 1.0, "speaker": "ana", "text": "hi", "reply_to": None, "timestamp": pd.Timestamp("2024-05-01 09:30")},
        {"id": 2.0, "speaker": "ben", "text": "I'm a nurse", "reply_to": 1.0, "timestamp": pd.Timestamp("2024-05-01 09:31")},
    ])
    first, second = read_messages(path)
    assert (first.id, second.id, second.reply_to) == ("1", "2", "1")
    assert (first.conversation_id, first.timestamp) == ("chat", "2024-05-01T09:30:00")
    assert second.fields["timestamp"] == pd.Timestamp("2024-05-01 09:31").to_pydatetime()  # kept as stored


def test_bad_rows_name_file_row_and_field_or_go_to_rejects(tmp_path, monkeypatch):
    monkeypatch.setattr(transcripts, "PARQUET_BATCH_ROWS", 2)
    path = chat(tmp_path, [
        {"id": "a", "speaker": "ana", "text": "hi"},
        {"id": "b", "speaker": "ben", "text": "  "},
        {"id": "c", "speaker": "ana", "text": None},
        {"id": "a", "speaker": "ben", "text": "again"},
        {"id": "e", "speaker": "ana", "text": "fine"},
    ])
    with pytest.raises(DataError, match=r"chat\.parquet, line 2, field 'text': empty text"):
        list(read_messages(path))
    rejects = []
    kept = list(read_messages(path, on_error="skip", on_reject=rejects.append))
    assert [m.id for m in kept] == ["a", "e"]
    assert [(r.line, r.field, r.reason) for r in rejects] == [
        (2, "text", "empty text"),
        (3, "text", "expected text, got null"),
        (4, "id", "duplicate message id [excerpt: 'a'], first used at line 1"),  # across batches
    ]


def test_missing_or_renamed_columns_are_named(tmp_path):
    path = chat(tmp_path, [{"msg": "hi", "who": "ana"}])
    with pytest.raises(DataError, match=r"chat\.parquet, field 'text': column missing \(the columns are: msg, who\)"):
        read_messages(path).__next__()
    with pytest.raises(DataError, match=r"field 'author': column missing"):
        next(read_messages(path, columns=transcripts.ColumnMap(text="msg", speaker="author")))
    message = next(read_messages(path, columns=transcripts.ColumnMap(text="msg", speaker="who")))
    assert (message.text, message.speaker) == ("hi", "ana")


def test_not_a_parquet_file_and_missing_pyarrow_are_clear_errors(tmp_path, monkeypatch):
    fake = tmp_path / "fake.parquet"
    fake.write_text("id,text\n1,hi\n")
    with pytest.raises(DataError, match=r"fake\.parquet: is not a Parquet file \(it does not start with PAR1\)"):
        read_messages(fake)
    real = chat(tmp_path, [{"text": "hi"}])
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # makes `import pyarrow.parquet` fail
    with pytest.raises(DataError, match=r"chat\.parquet: reading Parquet needs pyarrow; install it with: "
                                        r"pip install 'disclosure-nlp\[pandas\]'"):
        read_messages(real)
    result = runner.invoke(app, ["annotate", str(real), "-o", str(tmp_path / "o.jsonl"), "-q"])
    assert result.exit_code == 2 and "reading Parquet needs pyarrow" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_format_option_reads_parquet_under_another_name(tmp_path):
    path = chat(tmp_path, [{"text": "hi", "speaker": "ana"}], name="export.bin")
    assert [m.text for m in read_messages(path, format="parquet")] == ["hi"]
