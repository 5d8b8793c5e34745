"""Property tests of annotate() on generated transcripts, malformed ones included.

For every generated transcript (JSONL, CSV, TSV or a plain-text chat log; with BOMs, CRLF, lone
CR, gzip, and bad records mixed in) and every mode:

* with ``on_error="skip"`` the run succeeds, writes exactly the good messages once each in
  input order with their fields, and lists exactly the bad records' lines in the rejects
  file; ``read == written + rejected``;
* with ``on_error="raise"`` the run fails with the project's DataError naming the file and the
  first bad line (and leaves no file behind), or, when nothing is bad, succeeds as above;
* a second run gives byte-identical output, rejects and summary;
* every reciprocity figure and per-message field stays in its documented range.

The generator knows which records it made bad and where, so the expectations do not come from
the reader under test. The classifier is the hash-based fake (tests/fakes.py), so each example
takes milliseconds. Example counts: ``FAST_EXAMPLES`` per format in the default run,
``THOROUGH_EXAMPLES`` per format in the slow run.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disclosure_nlp.annotate import annotate
from disclosure_nlp.errors import DataError, DisclosureError
from disclosure_nlp.layers import LAYERS
from disclosure_nlp.io.outputs import csv_unguard
from disclosure_nlp.io.transcripts import blank_text
from tests.fakes import HashClassifier

FAST_EXAMPLES = 50
THOROUGH_EXAMPLES = 500
FORMATS = ("jsonl", "csv", "tsv", "text")
PERMUTATIONS = 20
MATCHES = {"matched", "escalated", "declined", "none"}


@dataclass
class Case:
    """A generated input file and what a correct run must make of it."""

    name: str
    content: bytes
    good: list[dict[str, Any]] = field(default_factory=list)  # id (None for text logs), speaker, text, conversation
    bad_lines: list[int] = field(default_factory=list)
    new_key_line: int | None = None
    """Line of the first message with a field the first message lacks: a CSV/TSV output, whose
    columns the first row fixes, cannot hold it, and the run must stop there with a DataError."""


# ------------------------------------------------------------------------------------------
# Generators

_special = st.sampled_from(list("\n\r\t,;\"'\\ :[]{}") + ["\r\n", "😀", "👩‍👩‍👧", "é", "\u2028", "\x85", "\ufeff", "\u00a0"])
_any_char = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
TEXT = st.lists(st.one_of(_special, _any_char), min_size=1, max_size=25).map("".join).filter(lambda t: not blank_text(t))
BLANK = st.sampled_from(["", " ", "\t", "  \u2003 ", "\n", "\u200b", " \ufeff\u2060 "])
SPEAKERS = st.sampled_from(["Ana", "Ben", "Cy", None])
STAMPS = st.sampled_from([None, "2024-01-01T10:00:00", "yesterday-ish", "31/31/2023, 10:00", 1_700_000_000, ""])
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


@st.composite
def plan(draw, bad_kinds: list[str], at_end: list[str] = ()) -> list[tuple[str, Any]]:
    """A sequence of ("message", conversation index) and ("bad", kind) items."""
    items: list[tuple[str, Any]] = []
    for conversation in range(draw(st.integers(0, 4))):
        for _ in range(draw(st.integers(1, 5))):
            items.append(("message", conversation))
    for _ in range(draw(st.integers(0, 4))):
        items.insert(draw(st.integers(0, len(items))), ("bad", draw(st.sampled_from(bad_kinds))))
    if at_end and draw(st.booleans()):
        items.append(("bad", draw(st.sampled_from(list(at_end)))))
    return items


def _finish(draw, name: str, chunks: list[tuple[bytes, Any]]) -> Case:
    """Join (bytes, expectation) chunks, number the lines like an editor, maybe BOM and gzip."""
    bom = draw(st.booleans())
    case = Case(name, b"")
    body = b"\xef\xbb\xbf" if bom else b""
    for chunk, expect in chunks:
        line = len(_LINE_BREAK.findall(body)) + 1
        if isinstance(expect, dict):
            if expect.pop("new_key", False) and case.new_key_line is None:
                case.new_key_line = line
            case.good.append(expect)
        elif expect == "bad":
            case.bad_lines.append(line)
        elif isinstance(expect, tuple):  # ("bad at", offset in lines)
            case.bad_lines.append(line + expect[1])
        body += chunk
    if draw(st.booleans()):
        case.name += ".gz"
        body = gzip.compress(body, mtime=0)
    case.content = body
    return case


def _reply_to(draw, ids: list[str], own: str) -> str | None:
    return draw(st.sampled_from([None, "nowhere", own, *(ids[-2:]), f"m{len(ids) + 1}"]))


@st.composite
def jsonl_case(draw) -> Case:
    items = draw(plan(["cut", "not_object", "blank_text", "null_text", "number_text", "missing_text",
                       "dup", "bad_utf8", "surrogate", "bad_speaker", "noise"]))
    chunks: list[tuple[bytes, Any]] = []
    ids: list[str] = []
    current: tuple[str, list[str]] = ("", [])  # the conversation being written and its ids
    meta = draw(st.sampled_from(["none", "all", "some"]))  # "some": keys vary between records
    first_has_meta: bool | None = None
    for kind, value in items:
        kind = value if kind == "bad" else kind
        ending = draw(ENDINGS).encode()
        if kind == "message":
            mid = f"m{len(ids)}"
            record = {"id": mid, "conversation_id": f"c{value}", "speaker": draw(SPEAKERS),
                      "reply_to": _reply_to(draw, ids, mid), "timestamp": draw(STAMPS), "text": draw(TEXT)}
            has_meta = meta == "all" or (meta == "some" and draw(st.booleans()))
            if has_meta:
                record["meta"] = {"n": len(ids), "tags": [draw(TEXT)]}
            if first_has_meta is None:
                first_has_meta = has_meta
            ids.append(mid)
            if current[0] != record["conversation_id"]:
                current = (record["conversation_id"], [])
            current[1].append(mid)
            line = json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8")
            chunks.append((line + ending, {"id": mid, "speaker": record["speaker"], "text": record["text"],
                                           "conversation": record["conversation_id"],
                                           "new_key": has_meta and not first_has_meta}))
            continue
        if kind == "noise":  # blank lines are not records
            chunks.append((draw(st.sampled_from([b"", b"   ", b"\t"])) + ending, None))
            continue
        if kind == "dup" and not ids:
            kind = "null_text"
        line = {
            "cut": lambda: b'{"id": "x", "text": "cut off here',
            "not_object": lambda: draw(st.sampled_from([b"[1, 2]", b'"just a string"', b"42", b"null", b"true"])),
            "blank_text": lambda: json.dumps({"text": draw(BLANK)}).encode(),
            "null_text": lambda: b'{"text": null}',
            "number_text": lambda: b'{"text": 7}',
            "missing_text": lambda: b'{"body": "no text key"}',
            # Ids must be unique within their conversation (the same id in another one is fine).
            "dup": lambda: json.dumps({"id": draw(st.sampled_from(current[1])), "conversation_id": current[0],
                                       "text": "again"}).encode(),
            "bad_utf8": lambda: b'{"text": "caf\xe9 \xff"}',
            "surrogate": lambda: b'{"text": "half an emoji \\ud83d"}',
            "bad_speaker": lambda: b'{"text": "ok", "speaker": {"name": "x"}}',
        }[kind]()
        chunks.append((line + ending, "bad"))
    return _finish(draw, "chat.jsonl", chunks)


@st.composite
def table_case(draw, delimiter: str) -> Case:
    items = draw(plan(["ragged", "short", "blank_text", "dup", "bad_utf8", "bad_quote"], at_end=["unclosed"]))
    ending = draw(ENDINGS)
    header = ["id", "conversation_id", "speaker", "text", "reply_to", "timestamp"]

    def row(cells: list[Any]) -> bytes:
        # "\r\n" makes the csv module quote cells holding either character; then the drawn ending.
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerow(["" if c is None else c for c in cells])
        return (buffer.getvalue()[:-2] + ending).encode("utf-8")

    chunks: list[tuple[bytes, Any]] = [(row(header), None)]
    ids: list[str] = []
    current: tuple[str, list[str]] = ("", [])  # the conversation being written and its ids
    d = delimiter.encode()
    for kind, value in items:
        kind = value if kind == "bad" else kind
        if kind == "message":
            mid = f"m{len(ids)}"
            speaker, text = draw(SPEAKERS), draw(TEXT)
            ids.append(mid)
            if current[0] != f"c{value}":
                current = (f"c{value}", [])
            current[1].append(mid)
            chunks.append((row([mid, f"c{value}", speaker, text, _reply_to(draw, ids, mid), draw(STAMPS)]),
                           {"id": mid, "speaker": speaker, "text": text, "conversation": f"c{value}"}))
            continue
        if kind == "dup" and not ids:
            kind = "blank_text"
        line = {
            "ragged": lambda: row(["x1", "c9", "Ana", "text", "", "", "one too many"]),
            "short": lambda: row(["x2", "only two"]),
            "blank_text": lambda: row(["x3", "c9", "Ana", draw(BLANK), "", ""]),
            "dup": lambda: row([draw(st.sampled_from(current[1])), current[0], "Ana", "again", "", ""]),
            "bad_utf8": lambda: b"x4" + d + b"c9" + d + b"Ana" + d + b"caf\xe9" + d + d + ending.encode(),
            "bad_quote": lambda: b"x5" + d + b"c9" + d + b"Ana" + d + b'"closed" then more' + d + d + ending.encode(),
            "unclosed": lambda: b"x6" + d + b"c9" + d + b"Ana" + d + b'"never closed' + ending.encode() + b"more text" + ending.encode(),
        }[kind]()
        chunks.append((line, "bad"))
    return _finish(draw, "chat.csv" if delimiter == "," else "chat.tsv", chunks)


LOG_LINE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 .,!?'()-]{0,20}[A-Za-z0-9.!?)]", fullmatch=True)


@st.composite
def text_case(draw) -> Case:
    """A plain 'Speaker: message' log; continuation lines hold no ':' and no '['."""
    items = draw(plan(["empty", "bad_utf8"]))
    chunks: list[tuple[bytes, Any]] = []
    if draw(st.booleans()):
        orphan = [draw(LOG_LINE) for _ in range(draw(st.integers(1, 2)))]
        chunks.append(("".join(line + draw(ENDINGS) for line in orphan).encode(), "bad"))
    for kind, value in items:
        kind = value if kind == "bad" else kind
        speaker = draw(st.sampled_from(["Ana", "Ben", "Dr Cho"]))
        stamp = draw(st.sampled_from(["", "[2024-01-01 10:00] ", "[yesterday] "]))
        if kind == "message":
            lines = [draw(LOG_LINE) for _ in range(draw(st.integers(1, 3)))]
            text = "".join(
                (f"{stamp}{speaker}: {line}" if i == 0 else line) + draw(ENDINGS) for i, line in enumerate(lines)
            )
            chunks.append((text.encode(), {"id": None, "speaker": speaker, "text": "\n".join(lines), "conversation": "chat"}))
        elif kind == "empty":  # a speaker with no text, followed by the next header or the end
            chunks.append((f"{stamp}{speaker}:{draw(ENDINGS)}".encode(), "bad"))
        else:  # a non-UTF-8 byte on the message's second line: the reject names that line
            first, second = draw(LOG_LINE), draw(LOG_LINE)
            chunks.append((f"{stamp}{speaker}: {first}{draw(ENDINGS)}".encode() + second.encode() + b" \xff"
                           + draw(ENDINGS).encode(), ("bad at", 1)))
    return _finish(draw, "chat.txt", chunks)


def case_for(fmt: str) -> st.SearchStrategy[Case]:
    return {"jsonl": jsonl_case(), "csv": table_case(","), "tsv": table_case("\t"), "text": text_case()}[fmt]


# ------------------------------------------------------------------------------------------
# Checks


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1]]
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))
    # A text cell starting like a formula carries a leading quote (documented); read it back as
    # the tool's own reader does.
    return [{key: csv_unguard(value) for key, value in row.items()} for row in rows]


def check_annotation_fields(rows: list[dict[str, Any]]) -> None:
    """Per-message fields in range (JSONL output, where values keep their types)."""
    for row in rows:
        probabilities = [row[f"p_{name}"] for name in LAYERS]
        assert all(0.0 <= p <= 1.0 for p in probabilities) and abs(sum(probabilities) - 1.0) <= 5e-4
        assert row["layer"] == LAYERS[probabilities.index(max(probabilities))] and row["confidence"] == max(probabilities)
        assert 0.0 <= row["depth"] <= 3.0
        assert isinstance(row["turn"], int) and row["turn"] >= 0
        assert row["prompt_turn"] is None or 0 <= row["prompt_turn"] < row["turn"]
        assert row["depth_gap"] is None or -3.0 <= row["depth_gap"] <= 3.0
        assert row["match"] in MATCHES and (row["match"] == "none") == (row["prompt_turn"] is None)


def check_figures(summary: dict[str, Any], case: Case) -> None:
    """Conversation figures in their documented ranges; every missing figure explained."""
    sizes: dict[str, int] = {}
    for message in case.good:
        sizes[message["conversation"]] = sizes.get(message["conversation"], 0) + 1
    assert {cid: f["n_messages"] for cid, f in summary.items()} == sizes
    for figures in summary.values():
        ri, r, p = figures["reciprocity_index"], figures["lag1_correlation"], figures["lag1_p_value"]
        assert ri is None or 0.0 <= ri <= 1.0
        assert r is None or -1.0 <= r <= 1.0
        assert p is None or 1.0 / (PERMUTATIONS + 1) - 1e-4 <= p <= 1.0
        assert figures["trajectory_slope"] is None or abs(figures["trajectory_slope"]) <= 3.0
        assert figures["asymmetry"] is None or 0.0 <= figures["asymmetry"] <= 1.0
        speakers = figures["speakers"]
        assert figures["most_disclosing"] is None or figures["most_disclosing"] in speakers
        assert sum(s["turns"] for s in speakers.values()) == figures["n_turns"] <= figures["n_messages"]
        for own in speakers.values():
            assert 0.0 <= own["mean_depth"] <= 3.0 and 0.0 <= own["disclosure_share"] <= 1.0
        for name in ("reciprocity_index", "lag1_correlation", "lag1_p_value", "trajectory_slope", "asymmetry"):
            assert figures[name] is not None or name in figures["reasons"]


def run_once(folder: Path, source: Path, out_name: str, on_error: str):
    folder.mkdir()
    out = folder / out_name
    stats = annotate(source, out, classifier=HashClassifier(), on_error=on_error, summary=folder / "summary.json",
                     permutations=PERMUTATIONS, window=5)
    return out, stats


def check_case(case: Case, on_error: str, out_format: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        source = root / case.name
        source.write_bytes(case.content)
        try:
            out, stats = run_once(root / "first", source, f"out.{out_format}", on_error)
        except DisclosureError as err:
            assert isinstance(err, DataError), f"{type(err).__name__}: {err}"
            places = []
            if on_error == "raise" and case.bad_lines:
                places.append(case.bad_lines[0])
            if out_format != "jsonl" and case.new_key_line is not None:
                places.append(case.new_key_line)
                assert "header lacks" in err.reason or err.line != case.new_key_line
            assert places, f"unexpected failure: {err}"
            # A bad line and a row the table cannot hold: whichever the run reaches first.
            assert err.path == str(source) and err.line in places, str(err)
            assert sorted(p.name for p in (root / "first").iterdir()) == [], "a failed run leaves nothing"
            return
        assert on_error == "skip" or not case.bad_lines, "a bad record went unnoticed"
        assert out_format == "jsonl" or case.new_key_line is None, "a field was dropped from a table"

        rows = read_rows(out)
        assert [row["text"] for row in rows] == [m["text"] for m in case.good]
        assert [row["speaker"] or None for row in rows] == [m["speaker"] for m in case.good]
        if case.good and case.good[0]["id"] is not None:
            assert [row["id"] for row in rows] == [m["id"] for m in case.good]
        rejects_path = Path(f"{out}.rejects.jsonl")
        rejects = [json.loads(line) for line in rejects_path.read_text(encoding="utf-8").split("\n")[:-1]] if on_error == "skip" else []
        assert [r["line"] for r in rejects] == case.bad_lines
        assert all(r["source"] == str(source) and r["excerpt"].startswith("[excerpt: ") for r in rejects)
        assert (stats.read, stats.written, stats.rejected) == (
            len(case.good) + len(case.bad_lines), len(case.good), len(case.bad_lines))
        if out_format == "jsonl":
            check_annotation_fields(rows)
        summary = json.loads((out.parent / "summary.json").read_text())
        check_figures(summary, case)
        assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []

        again, _ = run_once(root / "second", source, f"out.{out_format}", on_error)
        assert again.read_bytes() == out.read_bytes()
        assert (again.parent / "summary.json").read_bytes() == (out.parent / "summary.json").read_bytes()
        if on_error == "skip":
            assert Path(f"{again}.rejects.jsonl").read_bytes() == rejects_path.read_bytes()


MODES = st.sampled_from(["skip", "raise"])
OUTPUTS = st.sampled_from(["jsonl", "csv", "tsv"])


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("fmt", FORMATS)
@_settings(FAST_EXAMPLES)
@given(data=st.data())
def test_annotate_writes_every_good_message_once_in_order_or_fails_at_the_place(fmt: str, data) -> None:
    check_case(data.draw(case_for(fmt), label="case"), data.draw(MODES, label="on_error"), data.draw(OUTPUTS, label="output"))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@_settings(THOROUGH_EXAMPLES)
@given(data=st.data())
def test_annotate_invariants_thoroughly(fmt: str, data) -> None:
    check_case(data.draw(case_for(fmt), label="case"), data.draw(MODES, label="on_error"), data.draw(OUTPUTS, label="output"))


def test_generators_make_the_bad_records_they_claim() -> None:
    """Guard against a vacuous property: the generators do produce bad records and messages."""
    from hypothesis import Phase, find

    quick = settings(max_examples=300, database=None, phases=[Phase.generate])
    for fmt in FORMATS:
        found = find(case_for(fmt), lambda c: len(c.bad_lines) >= 2 and len(c.good) >= 3, settings=quick)
        assert len(found.bad_lines) >= 2 and len(found.good) >= 3
    assert find(jsonl_case(), lambda c: c.new_key_line is not None, settings=quick).new_key_line
