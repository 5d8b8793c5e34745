"""annotate_frame: the CLI's annotation on a pandas DataFrame, with the same values.

Most tests use the hash classifier (tests/fakes.py): what is checked here is how rows become
messages and how annotation columns come back, which does not depend on what the model says.
The CLI-equality tests run the real CLI (CSV and Parquet outputs) next to annotate_frame, with
the fake and with the session's tiny model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from typer.testing import CliRunner  # noqa: E402

from disclosure_nlp.annotate import ANNOTATION_FIELDS  # noqa: E402
from disclosure_nlp.errors import DataError  # noqa: E402
from disclosure_nlp.integrations.frame import analyze_frame, annotate_frame, annotate_group  # noqa: E402
from disclosure_nlp.layers import LAYERS  # noqa: E402
from disclosure_nlp.io.transcripts import ColumnMap  # noqa: E402
from tests.fakes import HashClassifier, hash_probabilities  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "conversations" / "samples.jsonl"
PROBABILITY_COLUMNS = [f"p_{name}" for name in LAYERS]



def read_cli_csv(path):
    """The CLI's CSV as a spreadsheet-safe file: text cells that start like a formula carry a
    leading quote, which a reader of the tool's own files removes (documented)."""
    from disclosure_nlp.io.outputs import csv_unguard

    frame = pd.read_csv(path)
    for name in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):  # object, or pandas 3's str
            frame[name] = frame[name].map(lambda v: csv_unguard(v) if isinstance(v, str) else v)
    return frame

def samples(conversations: int | None = None) -> "pd.DataFrame":
    records = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    if conversations is not None:
        keep = list(dict.fromkeys(r["conversation_id"] for r in records))[:conversations]
        records = [r for r in records if r["conversation_id"] in keep]
    frame = pd.DataFrame.from_records(records)
    frame["meta"] = [json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in frame["meta"]]
    return frame


def normalised(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Values as a CSV round trip sees them: missing and empty cells as None (the CLI keeps an
    empty CSV cell as "", pandas reads it as NaN), integers as floats where a column has gaps,
    so frames read through different readers and writers compare by value."""
    out = frame.reset_index(drop=True).copy()
    for name in out.columns:
        values = [None if (v is None or v is pd.NA or (isinstance(v, str) and v == "")
                           or (isinstance(v, float) and np.isnan(v))) else v
                  for v in out[name].tolist()]
        if all(v is None or isinstance(v, (int, float, np.integer, np.floating)) for v in values):
            values = [None if v is None else float(v) for v in values]
        out[name] = pd.Series(values, dtype=object)
    return out


@pytest.fixture
def fake_load(monkeypatch):
    from disclosure_nlp.model import classifier as classifier_module

    monkeypatch.setattr(classifier_module.DisclosureClassifier, "load", classmethod(lambda cls, *a, **k: HashClassifier()))


def test_frame_keeps_rows_index_and_input_columns_and_adds_the_annotation() -> None:
    df = samples().set_index(pd.Index([f"r{i}" for i in range(len(samples()))]))
    before = df.copy()
    out = annotate_frame(df, classifier=HashClassifier())
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not modified
    assert list(out.index) == list(df.index)
    assert list(out.columns) == [*df.columns, *ANNOTATION_FIELDS]
    pd.testing.assert_frame_equal(out[list(df.columns)], df)
    expected = np.round(np.stack([hash_probabilities(t) for t in df["text"]]), 4)
    np.testing.assert_allclose(out[PROBABILITY_COLUMNS].to_numpy(), expected)
    assert list(out["layer"]) == [LAYERS[i] for i in expected.argmax(axis=1)]
    assert out["turn"].dtype == "int64" and str(out["prompt_turn"].dtype) == "Int64"
    first = out.groupby("conversation_id", sort=False).head(1)
    assert (first["turn"] == 0).all() and first["prompt_turn"].isna().all() and (first["match"] == "none").all()


def test_rows_of_a_conversation_need_not_be_contiguous() -> None:
    df = samples(3)
    groups = [list(rows) for rows in df.groupby("conversation_id", sort=False).indices.values()]
    order = [rows[k] for k in range(max(map(len, groups))) for rows in groups if k < len(rows)]
    shuffled = df.iloc[order]  # conversations interleaved, each one's own order kept
    assert shuffled["conversation_id"].iloc[0] != shuffled["conversation_id"].iloc[1]
    grouped = annotate_frame(df, classifier=HashClassifier())
    interleaved = annotate_frame(shuffled, classifier=HashClassifier())
    pd.testing.assert_frame_equal(interleaved.sort_index(), grouped)


def test_clashing_input_column_is_kept_as_input_name() -> None:
    df = pd.DataFrame({"text": ["hi there", "I'm a nurse"], "speaker": ["a", "b"], "layer": ["none", "surface"]})
    out = annotate_frame(df, classifier=HashClassifier())
    assert list(out["input_layer"]) == ["none", "surface"]
    assert set(out["layer"]) <= set(LAYERS)


def test_id_in_the_index_resolves_reply_to_like_convokit_frames() -> None:
    # c08-like group chat: the third message answers the first, not the second.
    df = pd.DataFrame(
        {"speaker": ["ana", "ben", "cy"], "text": ["one", "two", "three"], "reply_to": [None, "m1", "m1"]},
        index=pd.Index(["m1", "m2", "m3"], name="id"),
    )
    out = annotate_frame(df, classifier=HashClassifier())
    assert list(out["turn"]) == [0, 1, 2]
    assert list(out["prompt_turn"].astype(object)) == [pd.NA, 0, 0]
    without_links = annotate_frame(df.drop(columns=["reply_to"]), classifier=HashClassifier())
    assert list(without_links["prompt_turn"].astype(object)) == [pd.NA, 0, 1]


def test_numeric_ids_and_gaps_are_identifiers_like_in_files() -> None:
    # pandas turns an integer column with a gap into floats: 1.0 must still match the id 1.
    df = pd.DataFrame({"id": [1, 2, 3], "speaker": ["a", "b", "a"], "text": ["x", "y", "z"],
                       "reply_to": [np.nan, np.nan, 1.0]})
    out = annotate_frame(df, classifier=HashClassifier())
    assert out["prompt_turn"].iloc[2] == 1  # reply_to 1 is an earlier turn of the *same* speaker: fallback
    df.loc[2, "speaker"] = "c"
    assert annotate_frame(df, classifier=HashClassifier())["prompt_turn"].iloc[2] == 0  # 1.0 found id 1


@pytest.mark.parametrize(
    ("frame", "place"),
    [
        (pd.DataFrame({"body": ["hi"]}), "field 'text': column missing"),
        (pd.DataFrame({"text": ["hi", "  "]}), "DataFrame row 2 (index 1), field 'text': empty text"),
        (pd.DataFrame({"text": ["hi", None]}), "DataFrame row 2 (index 1), field 'text': missing text"),
        (pd.DataFrame({"text": ["hi", 3]}), "DataFrame row 2 (index 1), field 'text': expected text, got int"),
        (pd.DataFrame({"id": ["a", "a"], "text": ["x", "y"]}), "row 2 (index 1), field 'id': duplicate message id"),
        (pd.DataFrame({"text": ["x"], "speaker": [True]}), "field 'speaker': expected a string or number, got a boolean"),
    ],
)
def test_bad_rows_are_data_errors_that_name_row_and_column(frame, place) -> None:
    with pytest.raises(DataError) as caught:
        annotate_frame(frame, classifier=HashClassifier())
    assert place in str(caught.value)


def test_renamed_columns_are_required_and_used() -> None:
    df = pd.DataFrame({"msg": ["hi", "I'm a nurse"], "who": ["a", "b"]})
    with pytest.raises(DataError, match="field 'author': column missing"):
        annotate_frame(df, text_col="msg", speaker_col="author", classifier=HashClassifier())
    out = annotate_frame(df, text_col="msg", speaker_col="who", classifier=HashClassifier())
    assert list(out["turn"]) == [0, 1]


def test_analyze_frame_figures_match_the_cli_summary(tmp_path: Path, fake_load) -> None:
    from disclosure_nlp.cli import app

    df = samples(4)
    source = tmp_path / "chats.csv"
    df.to_csv(source, index=False)
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(app, ["annotate", str(source), "-o", str(tmp_path / "o.jsonl"), "--summary", str(summary), "-q"])
    assert result.exit_code == 0, result.output
    cli = json.loads(summary.read_text())
    figures = analyze_frame(df, classifier=HashClassifier()).conversations
    assert list(figures.index) == list(cli)
    for conversation_id, row in figures.iterrows():
        assert {"conversation_id": conversation_id, **row.to_dict()} == cli[conversation_id]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_outputs_and_annotate_frame_hold_the_same_values(tmp_path: Path, fake_load, suffix: str) -> None:
    from disclosure_nlp.cli import app

    source = tmp_path / "chats.csv"
    samples().to_csv(source, index=False)
    out = tmp_path / f"annotated{suffix}"
    result = CliRunner().invoke(app, ["annotate", str(source), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    cli = read_cli_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    frame = annotate_frame(pd.read_csv(source), classifier=HashClassifier())
    assert list(cli.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(normalised(cli), normalised(frame))


@pytest.mark.slow
def test_cli_and_annotate_frame_agree_with_the_real_model(tmp_path: Path, tiny_model: Path) -> None:
    from disclosure_nlp.model.classifier import DisclosureClassifier
    from disclosure_nlp.cli import app

    source = tmp_path / "chats.csv"
    samples(3).to_csv(source, index=False)
    out = tmp_path / "annotated.parquet"
    result = CliRunner().invoke(app, ["annotate", str(source), "-o", str(out), "-q", "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    # Both with their defaults (backend auto), as a user calls them: the same values exactly.
    frame = annotate_frame(pd.read_csv(source), model=tiny_model)
    pd.testing.assert_frame_equal(normalised(pd.read_parquet(out)), normalised(frame), check_exact=True)
    # And a classifier passed in (here torch) is the one used, within fp32 noise of the default:
    # values are rounded to 4 places, so that noise can flip the last digit (one unit, 1e-4).
    torch_frame = annotate_frame(pd.read_csv(source), classifier=DisclosureClassifier.load(tiny_model, backend="torch"))
    pd.testing.assert_frame_equal(normalised(torch_frame), normalised(frame), atol=1.5e-4, rtol=0)


def test_annotate_group_uses_given_probabilities() -> None:
    df = pd.DataFrame({"speaker": ["a", "b"], "text": ["x", "y"]})
    probabilities = np.array([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    out, figures = annotate_group(df, probabilities, ColumnMap(), default_conversation="chat")
    assert list(out["layer"]) == ["core", "none"] and list(out["depth"]) == [3.0, 0.0]
    assert list(out["match"]) == ["none", "declined"] and list(out["depth_gap"].iloc[1:]) == [-3.0]
    assert list(figures) == ["chat"] and figures["chat"]["n_messages"] == 2
    with pytest.raises(ValueError, match="1 probability rows for 2 messages"):
        annotate_group(df, probabilities[:1], ColumnMap())


def test_a_bad_chunk_is_refused_before_any_model_is_loaded(tmp_path):
    from disclosure_nlp.errors import DisclosureError

    df = pd.DataFrame({"text": ["hi"], "speaker": ["a"], "conversation_id": ["c"], "id": ["1"]})
    # The model path does not exist: the argument error must come first, without a load.
    with pytest.raises(DisclosureError, match="chunk must be at least 1"):
        analyze_frame(df, model=tmp_path / "no-such-model", chunk=0)
