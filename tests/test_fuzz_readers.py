"""Random bytes and random file names into every reader: a DisclosureError (which the CLI
prints as one line) or a result, never another exception (a traceback for the user)."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disclosure_nlp.model.data import iter_raw_rows
from disclosure_nlp.errors import DisclosureError
from disclosure_nlp.model.modelstore import check_model_dir
from disclosure_nlp.model.realdata import read_claff, read_labels
from disclosure_nlp.io.transcripts import read_messages

SUFFIXES = [".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".jsonl.gz", ".csv.gz", ".vtt", ".srt", ".json.gz"]

# Bytes that look like the formats (JSON punctuation, CSV quotes, a WhatsApp prefix, Parquet's
# magic, UTF-8 and invalid sequences) mixed with arbitrary bytes.
_pieces = st.sampled_from([b"{", b"}", b"[", b"]", b'"', b",", b"\t", b"\n", b"\r\n", b":", b"\\u00", b"\x00",
                           b'{"text": "', b'", "speaker": "a"}', b"text,speaker\n", b"PAR1", b"\xff\xfe", b"\xc3",
                           b"\xe2\x80\xae", b"12/03/2024, 10:15 - Ana: ", b"9" * 50, b"'", b"=cmd",
                           # chat exports: Telegram, Discord, Messenger shapes, WebVTT/SRT cues
                           b'{"type": "personal_chat", "messages": [', b'{"chats": {"list": [', b'"text": [',
                           b'{"guild": {}, "channel": {"id": 1}, "messages": [', b'{"participants": [], "messages": [',
                           b'"author": ', b'"reference": {"messageId": ', b'"sender_name": "Z\\u00c3\\u00ab", ',
                           b"WEBVTT\n\n", b"00:00:01.000 --> 00:00:02,500 align:start\n", b"<v Ana>", b"NOTE ",
                           b"AuthorID,Author,Date,Content,Attachments,Reactions\n"])
CONTENT = st.lists(st.one_of(_pieces, st.binary(max_size=20)), max_size=40).map(b"".join)
NAMES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=12),
    st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b"..")).map(os.fsdecode),
)


def _write(folder: Path, name: str, suffix: str, content: bytes) -> Path | None:
    path = folder / (name + suffix)
    try:
        if suffix.endswith(".gz"):
            path.write_bytes(gzip.compress(content))
        else:
            path.write_bytes(content)
    except OSError:  # a name the filesystem refuses (too long once encoded): not a reader's case
        return None
    return path


def _consume(reader, *args, **kwargs) -> None:
    try:
        result = reader(*args, **kwargs)
        if not isinstance(result, list):
            for _ in result:
                pass
    except DisclosureError as err:
        assert str(err).strip(), "an error must say something"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=CONTENT, name=NAMES, suffix=st.sampled_from(SUFFIXES), on_error=st.sampled_from(["raise", "skip"]))
def test_transcript_reader_never_raises_anything_but_a_disclosure_error(content, name, suffix, on_error) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), name, suffix, content)
        if path is not None:
            _consume(read_messages, path, on_error=on_error, on_reject=lambda reject: str(reject))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=CONTENT, suffix=st.sampled_from([".json", ".csv", ".vtt", ".srt", ".txt"]),
       format=st.sampled_from(["telegram", "discord", "messenger", "vtt", "srt"]), on_error=st.sampled_from(["raise", "skip"]))
def test_chat_export_readers_never_raise_anything_but_a_disclosure_error(content, suffix, format, on_error) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "export", suffix, content)
        _consume(read_messages, path, format=format, on_error=on_error, on_reject=lambda reject: str(reject))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channels=CONTENT, users=CONTENT, day=CONTENT, on_error=st.sampled_from(["raise", "skip"]))
def test_slack_export_reader_never_raises_anything_but_a_disclosure_error(channels, users, day, on_error) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "channels.json").write_bytes(channels)
        (root / "users.json").write_bytes(users)
        (root / "general").mkdir()
        (root / "general" / "2024-01-02.json").write_bytes(day)
        _consume(read_messages, root, on_error=on_error, on_reject=lambda reject: str(reject))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=CONTENT, name=NAMES, suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]))
def test_training_data_reader_never_raises_anything_but_a_disclosure_error(content, name, suffix) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), name, suffix, content)
        if path is not None:
            _consume(iter_raw_rows, path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=CONTENT)
def test_real_label_and_claff_readers_never_raise_anything_but_a_disclosure_error(content) -> None:
    with tempfile.TemporaryDirectory() as folder:
        labels = _write(Path(folder), "labels", ".jsonl", content)
        table = _write(Path(folder), "claff", ".csv", content)
        _consume(read_labels, labels)
        _consume(read_claff, table)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=CONTENT, tokenizer=CONTENT, weights=CONTENT, spec=CONTENT, compact=st.booleans())
def test_model_folder_check_never_raises_anything_but_a_disclosure_error(config, tokenizer, weights, spec, compact) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "config.json").write_bytes(config)
        (root / "tokenizer.json").write_bytes(tokenizer)
        if compact:
            (root / "delta.safetensors").write_bytes(weights)
            (root / "base_weights.json").write_bytes(spec)
        else:
            (root / "model.safetensors").write_bytes(weights)
        _consume(check_model_dir, root)


_EXPORTS = Path(__file__).parent / "data" / "exports"
_EXPORT_FILES = ["telegram_chat.json", "telegram_full.json", "discord.json", "discord.csv",
                 "messenger/message_1.json", "zoom.vtt", "teams.vtt", "meeting.srt"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(_EXPORT_FILES), cut=st.floats(0, 1), at=st.floats(0, 1), piece=_pieces,
       on_error=st.sampled_from(["raise", "skip"]))
def test_damaged_chat_exports_give_a_disclosure_error_or_messages(name, cut, at, piece, on_error) -> None:
    """A real export cut short or with a piece of another format spliced in."""
    content = (_EXPORTS / name).read_bytes()
    content = content[: max(1, int(len(content) * (0.5 + cut / 2)))]
    where = int(len(content) * at)
    content = content[:where] + piece + content[where:]
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "export", Path(name).suffix, content)
        _consume(read_messages, path, on_error=on_error, on_reject=lambda reject: str(reject))
