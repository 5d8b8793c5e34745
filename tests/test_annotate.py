"""annotate() end to end on messy input: every message written once, in input order, with all
its input fields, or rejected with its place; ``read == written + rejected`` in every case;
errors name file, line and field and never echo message text beyond a marked excerpt.

Reader-level details (which line, which reason) are tested in test_transcripts.py; here each bad
input goes through the whole run (reading, grouping, labelling, writing, rejects file), mostly
with a fake classifier (tests/fakes.py) so the run takes milliseconds. Tests that need the real
model use the session's tiny model.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from disclosure_nlp.annotate import ANNOTATION_FIELDS, annotate
from disclosure_nlp.errors import DataError, DisclosureError
from disclosure_nlp.layers import LAYERS
from tests.fakes import HashClassifier, hash_probabilities

SECRET = "my-secret-diagnosis-" + "x" * 120
"""A message text that must never appear in an error or a log (only a short marked excerpt)."""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def jsonl(*records: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records)


def run(inputs, output: Path, **kwargs):
    kwargs.setdefault("classifier", HashClassifier())
    kwargs.setdefault("permutations", 20)
    return annotate(inputs, output, **kwargs)


def rows_of(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1]]
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))


def rejects_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_accounted(stats, output: Path, rejects: Path | None = None) -> None:
    """read == written + rejected, and the files hold exactly those rows."""
    assert stats.read == stats.written + stats.rejected
    assert len(rows_of(output)) == stats.written
    if stats.rejected:
        assert rejects is not None and len(rejects_of(rejects)) == stats.rejected


# ------------------------------------------------------------------------------------------
# Every message out once, in order, with its fields


def test_every_message_out_once_in_input_order_with_input_fields(tmp_path: Path) -> None:
    records = [
        {"id": f"m{i}", "conversation_id": f"c{i // 4}", "speaker": "ab"[i % 2], "text": f"message {i} 😀",
         "meta": {"n": i, "tags": ["x"]}, "layer": "core", "turn": "gold-turn"}
        for i in range(11)
    ]
    source = write(tmp_path / "in.jsonl", jsonl(*records))
    out = tmp_path / "out.jsonl"
    stats = run(source, out, window=3)
    rows = rows_of(out)
    assert (stats.read, stats.written, stats.rejected, stats.conversations) == (11, 11, 0, 3)
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    for row, record in zip(rows, records):
        # Input fields come first and untouched; clashing names are kept as input_<name>.
        assert list(row)[:5] == ["id", "conversation_id", "speaker", "text", "meta"]
        assert row["meta"] == record["meta"] and row["text"] == record["text"]
        assert row["input_layer"] == "core" and row["input_turn"] == "gold-turn"
        assert list(row)[-len(ANNOTATION_FIELDS):] == list(ANNOTATION_FIELDS)
        expected = hash_probabilities(record["text"])
        assert [row[f"p_{name}"] for name in LAYERS] == [round(float(p), 4) for p in expected]
        assert row["layer"] == LAYERS[int(expected.argmax())]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_table_outputs_keep_every_row_and_multiline_text(tmp_path: Path, suffix: str) -> None:
    source = write(tmp_path / "in.csv", 'id,speaker,text,extra\r\n1,Ana,"line one\r\nline two, with comma",x\r\n'
                                        '2,Ben,"say ""hi""\tthere",\r\n')
    out = tmp_path / f"out{suffix}"
    stats = run(source, out)
    rows = rows_of(out)
    assert [r["text"] for r in rows] == ["line one\r\nline two, with comma", 'say "hi"\tthere']
    assert [r["extra"] for r in rows] == ["x", ""]
    assert_accounted(stats, out)


def test_empty_inputs_give_an_empty_output(tmp_path: Path) -> None:
    inputs = [write(tmp_path / name, b"") for name in ("e.jsonl", "e.csv", "e.txt")]
    inputs.append(write(tmp_path / "h.csv", "id,text\n"))
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"out.{fmt}"
        stats = run(inputs, out)
        assert (stats.read, stats.written, stats.rejected, stats.conversations) == (0, 0, 0, 0)
        assert out.read_bytes() == b""
    assert leftovers(tmp_path) == []


def test_gzip_input_gives_the_same_output_as_plain(tmp_path: Path) -> None:
    body = jsonl(*({"id": f"m{i}", "speaker": "ab"[i % 2], "text": f"text {i}"} for i in range(20)))
    plain = write(tmp_path / "a" / "chat.jsonl", body)
    zipped = write(tmp_path / "b" / "chat.jsonl.gz", gzip.compress(body.encode()))
    run(plain, tmp_path / "plain.jsonl")
    run(zipped, tmp_path / "zipped.jsonl")
    assert (tmp_path / "plain.jsonl").read_bytes() == (tmp_path / "zipped.jsonl").read_bytes()


def test_bom_crlf_and_mixed_line_endings_lose_nothing(tmp_path: Path) -> None:
    source = write(tmp_path / "m.jsonl", b'\xef\xbb\xbf{"id": "a", "text": "one"}\r\n{"id": "b", "text": "two"}\n'
                                         b'{"id": "c", "text": "three"}\r{"id": "d", "text": "four"}\r\n')
    log = write(tmp_path / "m.txt", b"\xef\xbb\xbfAna: one\r\nBen: two\rcontinued\nAna: three\r\n")
    out = tmp_path / "out.jsonl"
    stats = run([source, log], out)
    rows = rows_of(out)
    assert [r["text"] for r in rows] == ["one", "two", "three", "four", "one", "two\ncontinued", "three"]
    assert "id" in rows[0] and not any(key.startswith("\ufeff") for row in rows for key in row)
    assert_accounted(stats, out)


# ------------------------------------------------------------------------------------------
# Bad records: raise names the place; skip writes the rest and a reject for each


BAD_CASES = [
    # name, file name, content, (line, field, reason fragment) of the first bad record,
    # texts written in skip mode, reject lines in skip mode
    ("empty text", "t.jsonl", jsonl({"text": "ok"}, {"text": ""}, {"text": "fine"}),
     (2, "text", "empty text"), ["ok", "fine"], [2]),
    ("whitespace-only text", "t.jsonl", jsonl({"text": "ok"}, {"text": " \t\u2003 "}),
     (2, "text", "empty text"), ["ok"], [2]),
    ("null text", "t.jsonl", jsonl({"text": "ok"}, {"text": None}, {"text": 3}),
     (2, "text", "got null"), ["ok"], [2, 3]),
    ("csv empty and blank text", "t.csv", "speaker,text\nAna,hi\nBen,\nAna,   \nBen,bye\n",
     (3, "text", "empty text"), ["hi", "bye"], [3, 4]),
    ("non-UTF-8 byte", "t.jsonl", b'{"text": "a"}\n{"text": "caf\xe9"}\n{"text": "b"}\n',
     (2, None, "UTF-8"), ["a", "b"], [2]),
    ("csv non-UTF-8 in a quoted newline", "t.csv", b'text\n"one\ntw\xff"\nok\n',
     (3, None, "UTF-8"), ["ok"], [3]),
    ("csv ragged rows", "t.csv", 'speaker,text\nAna,ok\nBen,too,many\nAna,"multi\nline",x\nBen\nAna,fine\n',
     (3, None, "3 cells"), ["ok", "fine"], [3, 4, 6]),
    ("csv bad quoting", "t.csv", 'speaker,text\nAna,"closed" then more\nBen,ok\n',
     (2, None, "not valid CSV"), ["ok"], [2]),
    ("csv quote never closed", "t.csv", 'speaker,text\nAna,ok\nBen,"never closed\nAna,more\n',
     (3, None, "quote"), ["ok"], [3]),
    ("json line not an object", "t.jsonl", jsonl({"text": "a"}, "[1, 2]", '"just a string"', "42", {"text": "b"}),
     (2, None, "expected a JSON object"), ["a", "b"], [2, 3, 4]),
    ("json line cut off", "t.jsonl", jsonl({"text": "a"}, {"text": "b"}) + '{"text": "half a mess',
     (3, None, "cut-off"), ["a", "b"], [3]),
    ("duplicate message ids", "t.jsonl", jsonl({"id": "m1", "text": "a"}, {"id": "m2", "text": "b"},
                                               {"id": "m1", "text": "c"}),
     (3, "id", "duplicate message id"), ["a", "b"], [3]),
    ("text before the first chat line", "t.txt", "no speaker here\nAna: hi\nBen:\nAna: bye\n",
     (1, None, "before the first message"), ["hi", "bye"], [1, 3]),
    ("lone surrogate escape", "t.jsonl", jsonl({"text": "a"}) + '{"text": "half an emoji \\ud83d"}\n'
                                         + '{"text": "ok", "meta": {"k": "\\udc00"}}\n' + jsonl({"text": "b"}),
     (2, "text", "surrogate"), ["a", "b"], [2, 3]),
]


@pytest.mark.parametrize(("name", "filename", "content", "first", "written", "rejected"), BAD_CASES,
                         ids=[case[0] for case in BAD_CASES])
def test_bad_records_raise_with_place_or_are_skipped_and_accounted(
    tmp_path: Path, name: str, filename: str, content, first, written: list[str], rejected: list[int]
) -> None:
    source = write(tmp_path / filename, content)
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError) as info:
        run(source, out)
    error = info.value
    line, field, reason = first
    assert (error.path, error.line, error.field) == (str(source), line, field)
    assert reason in error.reason
    assert not out.exists() and leftovers(tmp_path) == [], "a failed run leaves no output at all"

    stats = run(source, out, on_error="skip")
    rejects = tmp_path / "out.jsonl.rejects.jsonl"
    assert [row["text"] for row in rows_of(out)] == written
    found = rejects_of(rejects)
    assert [r["line"] for r in found] == rejected
    assert all(r["source"] == str(source) and r["reason"] and r["excerpt"].startswith("[excerpt: ") for r in found)
    assert (stats.read, stats.written, stats.rejected) == (len(written) + len(rejected), len(written), len(rejected))
    assert_accounted(stats, out, rejects)
    assert stats.rejects_path == str(rejects)
    assert leftovers(tmp_path) == []


def test_rejects_file_fields_and_custom_path(tmp_path: Path) -> None:
    source = write(tmp_path / "t.jsonl", jsonl({"id": "a", "text": "fine"}, {"id": "b", "text": None}))
    rejects = tmp_path / "bad-records.jsonl"
    stats = run(source, tmp_path / "out.csv", on_error="skip", rejects=rejects)
    (reject,) = rejects_of(rejects)
    assert reject == {"source": str(source), "line": 2, "field": "text", "reason": "expected text, got null",
                      "excerpt": reject["excerpt"]}
    assert len(reject["excerpt"]) < 80
    assert stats.rejects_path == str(rejects) and not (tmp_path / "out.csv.rejects.jsonl").exists()


def test_json_nested_too_deeply_is_a_data_error(tmp_path: Path) -> None:
    source = write(tmp_path / "deep.jsonl", jsonl({"text": "ok"}) + '{"a": ' + "[" * 100_000 + "\n")
    with pytest.raises(DataError) as info:
        run(source, tmp_path / "out.jsonl", on_error="skip")
    assert info.value.path == str(source) and "nested too deeply" in info.value.reason
    assert "after line 1" in info.value.reason
    assert leftovers(tmp_path) == []


def test_interleaved_conversations_are_refused_with_the_place(tmp_path: Path) -> None:
    source = write(tmp_path / "i.jsonl", jsonl({"conversation_id": "A", "text": "1"}, {"conversation_id": "B", "text": "2"},
                                              {"conversation_id": "A", "text": "3"}))
    with pytest.raises(DataError) as info:
        run(source, tmp_path / "out.jsonl", on_error="skip")
    assert (info.value.line, info.value.field) == (3, "conversation_id")
    assert not (tmp_path / "out.jsonl").exists() and leftovers(tmp_path) == []


def test_table_output_with_a_column_the_header_lacks_names_the_input_line(tmp_path: Path) -> None:
    source = write(tmp_path / "v.jsonl", jsonl({"id": "a", "text": "x"}, {"id": "b", "text": "y", "extra": 1}))
    with pytest.raises(DataError) as info:
        run(source, tmp_path / "out.csv")
    assert (info.value.path, info.value.line) == (str(source), 2)
    assert "'extra'" in info.value.reason and "JSONL" in info.value.reason
    assert not (tmp_path / "out.csv").exists() and leftovers(tmp_path) == []
    stats = run(source, tmp_path / "out.jsonl")  # JSONL allows varying keys
    assert stats.written == 2


# ------------------------------------------------------------------------------------------
# Whole-file problems fail before the model loads and before anything is written


def _missing_model(tmp_path: Path) -> Path:
    return tmp_path / "no-such-model"


def test_binary_file_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", jsonl({"text": "fine"}))
    binary = write(tmp_path / "weights.jsonl", b"\x00\x01\x02\x03" * 100)
    with pytest.raises(DataError, match="binary") as info:
        annotate([good, binary], tmp_path / "out.jsonl", model=_missing_model(tmp_path))
    assert info.value.path == str(binary)
    assert not (tmp_path / "out.jsonl").exists() and leftovers(tmp_path) == []


def test_directory_and_missing_inputs_are_refused_before_the_model_loads(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    good = write(tmp_path / "good.jsonl", jsonl({"text": "fine"}))
    with pytest.raises(DataError, match="not a ConvoKit corpus") as info:
        annotate([good, folder], tmp_path / "out.jsonl", model=_missing_model(tmp_path))
    assert info.value.path == str(folder)
    with pytest.raises(DataError, match="no such file") as info:
        annotate([good, tmp_path / "gone.csv"], tmp_path / "out.jsonl", model=_missing_model(tmp_path))
    assert info.value.path == str(tmp_path / "gone.csv")
    assert not (tmp_path / "out.jsonl").exists()


def test_convokit_directory_and_gzip_together(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "utterances.jsonl", jsonl({"id": "u1", "conversation_id": "u1", "speaker": "x", "reply-to": None, "text": "hi"},
                                             {"id": "u2", "conversation_id": "u1", "speaker": "y", "reply-to": "u1", "text": "yo"}))
    zipped = write(tmp_path / "more.csv.gz", gzip.compress(b"speaker,text\nAna,zipped\n"))
    out = tmp_path / "out.jsonl"
    stats = run([corpus, zipped], out)
    assert [r["text"] for r in rows_of(out)] == ["hi", "yo", "zipped"]
    assert rows_of(out)[1]["reply-to"] == "u1" and rows_of(out)[1]["prompt_turn"] == 0
    assert_accounted(stats, out)


def test_existing_output_is_refused_without_force_and_kept(tmp_path: Path) -> None:
    source = write(tmp_path / "t.jsonl", jsonl({"text": "a"}))
    out = write(tmp_path / "out.jsonl", "precious\n")
    with pytest.raises(DisclosureError, match=r"already exists; pass force=True to overwrite it"):
        run(source, out)  # the Python API names its argument; the CLI says --force (test_cli)
    assert out.read_text() == "precious\n"
    run(source, out, force=True)
    assert rows_of(out)[0]["text"] == "a"


# ------------------------------------------------------------------------------------------
# Links, timestamps, sizes


def test_dangling_and_cyclic_reply_to_are_written_with_fallback_prompts(tmp_path: Path) -> None:
    source = write(tmp_path / "r.jsonl", jsonl(
        {"id": "a", "speaker": "x", "reply_to": "b", "text": "one"},        # forward: a -> b -> a is a cycle
        {"id": "b", "speaker": "y", "reply_to": "a", "text": "two"},
        {"id": "c", "speaker": "x", "reply_to": "nowhere", "text": "three"},  # dangling
        {"id": "d", "speaker": "y", "reply_to": "d", "text": "four"},        # itself
    ))
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    stats = run(source, out, summary=summary)
    rows = rows_of(out)
    assert [r["reply_to"] for r in rows] == ["b", "a", "nowhere", "d"]  # kept as given
    assert [(r["turn"], r["prompt_turn"]) for r in rows] == [(0, None), (1, 0), (2, 1), (3, 2)]
    assert [r["match"] == "none" for r in rows] == [True, False, False, False]
    assert json.loads(summary.read_text())["r"]["n_turns"] == 4
    assert_accounted(stats, out)


def test_summary_keeps_conversations_of_different_files_that_share_an_id(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "chat.jsonl", jsonl(
        {"id": "1", "speaker": "x", "text": "hi"}, {"id": "2", "speaker": "y", "text": "hello"}))
    second = write(tmp_path / "b" / "chat.jsonl", jsonl(
        {"id": "1", "speaker": "x", "text": "hey"}, {"id": "2", "speaker": "y", "text": "yo"},
        {"id": "3", "speaker": "x", "text": "how are you"}))
    summary = tmp_path / "summary.json"
    run([first, second], tmp_path / "out.jsonl", summary=summary)
    document = json.loads(summary.read_text())
    assert list(document) == ["chat", "chat#2"]  # both files' conversation is named 'chat'
    assert (document["chat"]["n_turns"], document["chat#2"]["n_turns"]) == (2, 3)


def test_unparseable_timestamps_are_kept_as_given(tmp_path: Path) -> None:
    stamps = ["yesterday at noon", "2024-13-45T99:99", "", 1700000000, "31/31/2023, 10:00", None]
    source = write(tmp_path / "ts.jsonl", jsonl(*({"id": f"m{i}", "timestamp": s, "text": f"t{i}"} for i, s in enumerate(stamps))))
    out = tmp_path / "out.jsonl"
    stats = run(source, out)
    assert [r["timestamp"] for r in rows_of(out)] == stamps
    csv_source = write(tmp_path / "ts.csv", "timestamp,text\nsoon-ish,a\n[10:02],b\n")
    run(csv_source, tmp_path / "out.csv")
    assert [r["timestamp"] for r in rows_of(tmp_path / "out.csv")] == ["soon-ish", "[10:02]"]
    assert_accounted(stats, out)


def test_long_conversation_in_a_small_window_is_labelled_whole(tmp_path: Path) -> None:
    source = write(tmp_path / "long.jsonl", jsonl(*({"id": f"m{i}", "speaker": "ab"[i % 2], "text": f"m {i}"} for i in range(300))))
    classifier = HashClassifier()
    out = tmp_path / "out.jsonl"
    run(source, out, window=8, classifier=classifier)
    assert classifier.calls == 1, "a conversation is never split across classifier calls"
    assert [r["turn"] for r in rows_of(out)] == list(range(300))


@pytest.mark.slow
def test_conversation_of_50000_messages(tmp_path: Path) -> None:
    n = 50_000
    with (tmp_path / "big.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"m{i}", "conversation_id": "big", "speaker": f"s{(i // 3) % 2}",
                                     "reply_to": f"m{i - 7}" if i % 5 == 0 else None, "text": f"message number {i}"}) + "\n")
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    stats = annotate(tmp_path / "big.jsonl", out, classifier=HashClassifier(), permutations=100, summary=summary)
    assert (stats.read, stats.written, stats.rejected, stats.conversations) == (n, n, 0, 1)
    ids = [json.loads(line)["id"] for line in out.open(encoding="utf-8")]
    assert ids == [f"m{i}" for i in range(n)]
    figures = json.loads(summary.read_text())["big"]
    assert figures["n_messages"] == n and figures["n_turns"] == math.ceil(n / 3)
    assert 0.0 <= figures["reciprocity_index"] <= 1.0


def _long_text() -> str:
    """100,000 characters that never repeat a stretch of tokens, so windows can be located."""
    return " ".join(f"w{i}" for i in range(20_000))[:99_992] + " the end"


@pytest.mark.parametrize("real", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["fake-forward", "real-model"])
def test_message_of_100000_characters_is_windowed_not_truncated(tmp_path: Path, tiny_model: Path, real: bool) -> None:
    """The whole message is written back and every one of its tokens reaches the model.

    Without ``real`` the model's forward pass is replaced by a hash of each token window (the
    tokenizer and the windowing are the real ones), which keeps the test to a second; the slow
    variant runs the tiny model on all windows.
    """
    import numpy as np

    from disclosure_nlp.model.classifier import DisclosureClassifier

    # 256 tokens per window, as for the shipped model (the tiny model's own limit is 32).
    classifier = DisclosureClassifier.load(tiny_model, max_length=256)
    long_text = _long_text()
    assert len(long_text) == 100_000
    source = write(tmp_path / "long.jsonl", jsonl({"id": "short", "text": "hi there"}, {"id": "long", "text": long_text}))

    seen: list[list[int]] = []
    results: list[np.ndarray] = []
    forward = classifier._forward

    def recording(pieces, batch_size):
        seen.extend(pieces)
        if real:
            out = forward(pieces, batch_size)
        else:
            out = np.array([hash_probabilities(" ".join(map(str, piece))) for piece in pieces], dtype=np.float32)
        results.extend(out)
        return out

    classifier._forward = recording  # type: ignore[method-assign]
    out = tmp_path / "out.jsonl"
    # Without the character cap (max_chars=None), every token of the message is labeled.
    stats = annotate(source, out, classifier=classifier, permutations=20, max_chars=None)
    rows = rows_of(out)
    assert rows[1]["text"] == long_text, "the output keeps the whole message"
    assert stats.capped == 0

    # The windows, stripped of their special tokens and laid over each other, give back every token.
    tokens = classifier.tokenizer(long_text, add_special_tokens=False)["input_ids"]
    short, *windows = [piece[1:-1] for piece in seen]  # windows come in message order
    assert short == classifier.tokenizer("hi there", add_special_tokens=False)["input_ids"]
    assert len(tokens) > 10 * classifier.max_length and len(windows) > 10
    assert all(len(piece) <= classifier.max_length for piece in seen)
    # Each window is a slice of the message's tokens; together they cover every token, in order.
    position, covered = 0, 0
    for window in windows:
        start = next(i for i in range(position, len(tokens)) if tokens[i : i + len(window)] == window)
        assert start <= covered, "no gap between windows"
        position, covered = start + 1, start + len(window)
    assert covered == len(tokens)

    # The message's probabilities are those of its deepest window.
    depths = [float(row @ np.arange(4)) for row in results[1:]]
    deepest = results[1 + depths.index(max(depths))]
    assert [rows[1][f"p_{name}"] for name in LAYERS] == [round(float(p), 4) for p in deepest]
    assert_accounted(stats, out)


# ------------------------------------------------------------------------------------------
# Determinism


def test_second_run_is_byte_identical(tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", jsonl(*(
        {"id": f"m{i}", "conversation_id": f"c{i // 6}", "speaker": "abc"[i % 3], "text": f"text {i} " * (i % 4 + 1)}
        for i in range(60)
    ), {"text": None}))
    outputs = []
    for attempt in ("one", "two"):
        folder = tmp_path / attempt
        folder.mkdir()
        run(source, folder / "out.csv", on_error="skip", summary=folder / "s.json", window=7)
        outputs.append([(folder / name).read_bytes() for name in ("out.csv", "out.csv.rejects.jsonl", "s.json")])
    assert outputs[0] == outputs[1]


def test_second_run_with_the_real_model_is_byte_identical(tmp_path: Path, tiny_model: Path) -> None:
    from disclosure_nlp.model.classifier import DisclosureClassifier

    texts = ["hi", "I lost my job and I'm scared", "ok see you", "I've never told anyone this, " * 4]
    source = write(tmp_path / "in.jsonl", jsonl(*({"id": i, "speaker": "ab"[i % 2], "text": t} for i, t in enumerate(texts * 2))))
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    annotate(source, first, classifier=DisclosureClassifier.load(tiny_model), window=3, batch_size=2)
    annotate(source, second, classifier=DisclosureClassifier.load(tiny_model), window=3, batch_size=2)
    assert first.read_bytes() == second.read_bytes()


# ------------------------------------------------------------------------------------------
# Privacy of errors and logs


def test_errors_and_rejects_never_echo_message_text(tmp_path: Path) -> None:
    cases = {
        "dup.jsonl": jsonl({"id": "a", "text": SECRET}, {"id": "a", "text": SECRET}),
        "cut.jsonl": jsonl({"text": "ok"}) + '{"text": "' + SECRET,
        "ragged.csv": f"speaker,text\nAna,{SECRET},extra\n",
        "quote.csv": f'speaker,text\nAna,"{SECRET}" and then\n',
        "utf8.jsonl": b'{"text": "' + SECRET.encode() + b'\xff"}\n',
        "orphan.txt": f"{SECRET}\nAna: hi\n",
        "surrogate.jsonl": '{"text": "' + SECRET + '\\ud800"}\n',
        "columns.jsonl": jsonl({"text": "a"}, {"text": "b", SECRET[:30]: SECRET}),
    }
    for name, content in cases.items():
        source = write(tmp_path / name, content)
        out = tmp_path / f"{name}.out.csv"
        try:
            run(source, out)
        except DisclosureError as err:
            message = str(err)
        else:  # pragma: no cover - every case is bad
            pytest.fail(f"{name}: no error")
        assert SECRET not in message and SECRET[:41] not in message, name
        stats = run(source, out, on_error="skip", force=True) if name != "columns.jsonl" else None
        if stats is not None:
            for reject in rejects_of(Path(stats.rejects_path)):
                assert SECRET not in json.dumps(reject, ensure_ascii=False), name
                assert len(reject["excerpt"]) < 80 and reject["reason"].count(SECRET[:20]) == 0, name


def test_cli_skip_run_reports_counts_and_places_not_texts(tmp_path: Path, monkeypatch) -> None:
    from disclosure_nlp.model import classifier as classifier_module
    from disclosure_nlp.cli import app

    monkeypatch.setattr(classifier_module.DisclosureClassifier, "load", classmethod(lambda cls, *a, **k: HashClassifier()))
    source = write(tmp_path / "c.jsonl", jsonl({"id": "a", "text": SECRET}, {"id": "a", "text": SECRET}, {"id": "b", "text": "ok"}))
    out = tmp_path / "out.jsonl"
    runner = CliRunner()
    failed = runner.invoke(app, ["annotate", str(source), "-o", str(out), "-q"])
    assert failed.exit_code == 2
    assert "c.jsonl, line 2, field 'id'" in failed.output and SECRET[:20] not in failed.output
    done = runner.invoke(app, ["annotate", str(source), "-o", str(out), "-q", "--on-error", "skip"])
    assert done.exit_code == 0, done.output
    assert "read 3 messages, wrote 2, rejected 1" in done.output
    assert f"rejects: {out}.rejects.jsonl" in done.output
    assert SECRET[:20] not in done.output


def _peak_with_summary_and_report(tmp_path: Path, conversations: int) -> tuple[int, dict, str]:
    import tracemalloc

    source = tmp_path / f"in-{conversations}.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for c in range(conversations):
            for m, speaker in enumerate(("ana", "ben")):
                handle.write(json.dumps({"conversation_id": f"c{c}", "id": f"m{m}", "speaker": speaker,
                                         "text": f"message {m} of chat {c}, I feel {'fine' if c % 3 else 'awful'}"}) + "\n")
    summary, report = tmp_path / f"s-{conversations}.json", tmp_path / f"r-{conversations}.html"
    tracemalloc.start()
    try:
        run(source, tmp_path / f"out-{conversations}.jsonl", summary=summary, report=report, permutations=20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, json.loads(summary.read_text(encoding="utf-8")), report.read_text(encoding="utf-8")


@pytest.mark.slow
def test_summary_and_report_keep_memory_flat(tmp_path: Path, monkeypatch) -> None:
    """Ten times the conversations must not need much more memory: the summary is streamed
    from the figures file and the report keeps a bounded part (before: every conversation's
    figures were held, 1.0 GB for 100k conversations; here 5.7 -> 48.9 MB traced for 500 ->
    5,000 conversations, 8.6x). The bounds are made small so that small runs reach them."""
    import disclosure_nlp.annotate as annotate_module
    import disclosure_nlp.analysis.report as report_module

    monkeypatch.setattr(annotate_module, "REPORT_CONVERSATION_LIMIT", 5)
    monkeypatch.setattr(report_module, "RANKING_ROWS", 50)
    monkeypatch.setattr(report_module, "SCATTER_POINTS", 100)
    _peak_with_summary_and_report(tmp_path, 50)  # one-time imports (matplotlib) out of the way
    small_peak, small_summary, _ = _peak_with_summary_and_report(tmp_path, 500)
    large_peak, large_summary, page = _peak_with_summary_and_report(tmp_path, 5000)
    assert len(small_summary) == 500 and len(large_summary) == 5000
    assert list(large_summary)[:3] == ["c0", "c1", "c2"]
    assert "the other 4950 are counted below" in page and "All 5000 conversations" in page
    assert page.count("<section") == 5
    assert large_peak < 2 * small_peak, (small_peak, large_peak)
