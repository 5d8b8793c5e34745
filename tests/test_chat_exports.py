"""The chat-export readers (Telegram, Discord, Slack, Messenger, WebVTT, SRT): each hand-made
fixture under tests/data/exports reads to the same messages as the JSON Lines file written next
to it; every format's bad input is one DataError naming the file and the place (a line, or a
JSON path in a whole-document export); a .json file is told apart from JSON Lines by content."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from disclosure_nlp.io.chat_exports import fix_mojibake
from disclosure_nlp.errors import DataError
from disclosure_nlp.io.transcripts import FORMATS, Message, Reject, read_messages

DATA = Path(__file__).parent / "data" / "exports"

FIXTURES = {
    "telegram_chat.json": "telegram",
    "telegram_full.json": "telegram",
    "discord.json": "discord",
    "discord.csv": "discord",
    "slack": "slack",
    "messenger/message_1.json": "messenger",
    "zoom.vtt": "vtt",
    "teams.vtt": "vtt",
    "meeting.srt": "srt",
}


def shape(message: Message) -> tuple:
    return (message.id, message.conversation_id, message.speaker, message.text, message.reply_to, message.timestamp)


def expected_for(name: str) -> list[tuple]:
    base = "messenger" if name.startswith("messenger/") else name
    return [shape(m) for m in read_messages(DATA / f"{base}.expected.jsonl")]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def raised(path: Path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        list(read_messages(path, **kwargs))
    return info.value


def skipped(path: Path, **kwargs) -> tuple[list[Message], list[Reject]]:
    rejects: list[Reject] = []
    return list(read_messages(path, on_error="skip", on_reject=rejects.append, **kwargs)), rejects


# ------------------------------------------------------------------------------------------
# Every fixture equals its JSON Lines twin, by content detection and by --format


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_reads_like_its_jsonl_twin(name: str) -> None:
    expected = expected_for(name)
    assert expected, "the twin must not be empty"
    messages, rejects = skipped(DATA / name)
    assert rejects == [], "system events are skipped, not rejected, and real messages all read"
    assert [shape(m) for m in messages] == expected
    assert [shape(m) for m in read_messages(DATA / name, format=FIXTURES[name])] == expected


def test_fixtures_carry_the_formats_quirks() -> None:
    telegram = json.loads((DATA / "telegram_chat.json").read_text(encoding="utf-8"))
    assert any(m["type"] == "service" for m in telegram["messages"])
    assert any(isinstance(m["text"], list) for m in telegram["messages"])
    discord = json.loads((DATA / "discord.json").read_text(encoding="utf-8"))
    assert any(m["author"]["nickname"] != m["author"]["name"] for m in discord["messages"])
    assert any("reference" in m for m in discord["messages"])
    raw = (DATA / "messenger" / "message_1.json").read_text(encoding="ascii")
    assert "\\u00c3\\u00a9" in raw  # mojibake "é"
    assert (DATA / "meeting.srt").read_bytes().count(b"\r\n") > 5
    assert "NOTE" in (DATA / "teams.vtt").read_text() and "align:start" in (DATA / "teams.vtt").read_text()


def test_output_fields_are_flat_and_name_the_message() -> None:
    first = next(read_messages(DATA / "discord.json"))
    assert first.fields["nickname"] == "Fern" and first.fields["speaker"] == "quietfern"
    assert first.fields["text"] == first.text and first.fields["channel"] == "vent"
    assert first.line == 2 and first.source == str(DATA / "discord.json")  # messages[1]
    cue = next(read_messages(DATA / "teams.vtt"))
    assert (cue.fields["start"], cue.fields["end"]) == ("00:00:03.120", "00:00:06.480")
    slack = list(read_messages(DATA / "slack"))
    assert slack[0].source == str(DATA / "slack" / "general" / "2024-03-02.json")


def test_new_formats_are_accepted_names() -> None:
    for name in ("telegram", "discord", "slack", "messenger", "vtt", "srt"):
        assert name in FORMATS


def test_messenger_is_oldest_first_and_demojibaked() -> None:
    messages = list(read_messages(DATA / "messenger" / "message_1.json"))
    stamps = [int(m.timestamp) for m in messages]
    assert stamps == sorted(stamps)
    assert messages[-1].text == "merci 😊 see you at the café tomorrow"
    assert fix_mojibake("caf\u00c3\u00a9") == "café"
    assert fix_mojibake("café") == "café"  # already right: kept
    assert fix_mojibake("naïve ☕") == "naïve ☕"  # not Latin-1: kept


# ------------------------------------------------------------------------------------------
# Detection: a .json file is an export or JSON Lines by content


def test_json_lines_named_json_is_still_json_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "chat.json", '{"id": "a", "speaker": "x", "text": "hi"}\n{"id": "b", "speaker": "y", "text": "yo"}\n')
    assert [m.text for m in read_messages(path)] == ["hi", "yo"]
    # A first record that happens to look like an export, followed by more records: still JSON Lines.
    odd = write(tmp_path / "odd.json", '{"type": "x", "messages": []}\n{"id": "b", "text": "yo"}\n')
    messages, rejects = skipped(odd)
    assert [m.text for m in messages] == ["yo"]
    assert [(r.line, r.reason) for r in rejects] == [(1, "missing text")]


def test_pretty_printed_json_that_is_no_export_keeps_the_json_lines_error(tmp_path: Path) -> None:
    path = write(tmp_path / "thing.json", json.dumps({"messages": [{"body": "x"}], "count": 1}, indent=2))
    error = raised(path)
    assert "expected JSON Lines" in error.reason and error.line == 1


def test_one_line_export_and_gzip_and_bom_are_detected(tmp_path: Path) -> None:
    document = json.loads((DATA / "discord.json").read_text(encoding="utf-8"))
    expected = expected_for("discord.json")
    one_line = write(tmp_path / "one.json", json.dumps(document))
    assert [shape(m) for m in read_messages(one_line)] == expected
    zipped = write(tmp_path / "result.json.gz", gzip.compress((DATA / "telegram_chat.json").read_bytes()))
    assert [shape(m) for m in read_messages(zipped)] == expected_for("telegram_chat.json")
    bom = write(tmp_path / "bom.json", b"\xef\xbb\xbf" + (DATA / "telegram_full.json").read_bytes())
    assert [shape(m) for m in read_messages(bom)] == expected_for("telegram_full.json")


def test_forced_formats_check_the_shape(tmp_path: Path) -> None:
    error = raised(DATA / "discord.json", format="telegram")
    assert error.path == str(DATA / "discord.json") and "is not a Telegram export" in error.reason
    error = raised(DATA / "telegram_chat.json", format="jsonl")
    assert "expected JSON Lines" in error.reason  # --format jsonl means JSON Lines only
    with pytest.raises(DataError, match="a Slack export is a folder"):
        read_messages(DATA / "telegram_chat.json", format="slack")
    with pytest.raises(DataError, match="not a ConvoKit corpus"):
        read_messages(DATA / "slack", format="convokit")
    with pytest.raises(DataError, match="not a ConvoKit corpus .* nor a Slack export"):
        read_messages(tmp_path)


def test_a_large_json_lines_file_named_json_is_not_loaded_whole(tmp_path: Path, opened_files) -> None:
    path = tmp_path / "big.json"
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(f'{{"id": "m{i}", "messages": 1, "text": "message {i}"}}\n' for i in range(100_000))
    opened = opened_files
    stream = read_messages(path)
    assert next(stream).text == "message 0"
    assert path.stat().st_size > 4_000_000
    assert all(raw.count < 256 * 1024 for raw in opened)


# ------------------------------------------------------------------------------------------
# Bad input: one DataError naming the file and the place; skip mode keeps the rest


def _telegram(messages: list) -> str:
    return json.dumps({"name": "A", "type": "personal_chat", "id": 1, "messages": messages}, indent=1)


def test_telegram_bad_sender_is_named_by_json_path(tmp_path: Path) -> None:
    path = write(tmp_path / "result.json", _telegram([
        {"id": 1, "type": "message", "from": "Ana", "text": "hi"},
        {"id": 2, "type": "message", "from": {"name": "Ben"}, "text": "yo"},
        {"id": 3, "type": "message", "from": "Ana", "text": ["a ", {"type": "bold"}]},
        {"id": 4, "type": "message", "from": "Ben", "photo": "photos/p.jpg", "text": ""},
        {"id": 1, "type": "message", "from": "Ben", "text": "again"},
        {"id": 6, "type": "message", "from": "Ana", "text": "half an emoji \ud83d"},
    ]))
    error = raised(path)
    assert (error.path, error.line, error.field) == (str(path), None, "messages[1].from")
    assert str(error).startswith(f"{path}, field 'messages[1].from': expected a string or number")
    messages, rejects = skipped(path)
    assert [m.text for m in messages] == ["hi"]
    assert [(r.source, r.line, r.field) for r in rejects] == [
        (str(path), None, "messages[1].from"),
        (str(path), None, "messages[2].text[1].text"),
        (str(path), None, "messages[3].text"),
        (str(path), None, "messages[4].id"),
        (str(path), None, "messages[5]"),
    ]
    assert "only a photo" in rejects[2].reason
    assert "first used at messages[0].id" in rejects[3].reason
    assert "surrogate" in rejects[4].reason


def test_telegram_cut_off_export_names_the_line(tmp_path: Path) -> None:
    text = (DATA / "telegram_chat.json").read_text(encoding="utf-8")
    path = write(tmp_path / "result.json", text[: len(text) // 2])
    error = raised(path)
    assert error.path == str(path) and error.line == text[: len(text) // 2].count("\n") + 1
    assert "ends early" in error.reason
    bad = write(tmp_path / "typo.json", text.replace('"id": 103,', '"id": 103,,', 1))
    error = raised(bad)
    assert error.line == text[: text.index('"id": 103,')].count("\n") + 1 and "not valid JSON" in error.reason


def test_telegram_full_export_chat_without_messages(tmp_path: Path) -> None:
    path = write(tmp_path / "result.json", json.dumps({"about": "x", "chats": {"list": [
        {"name": "A", "type": "personal_chat", "id": 1, "messages": "oops"},
        {"name": "B", "type": "personal_chat", "id": 2, "messages": [{"id": 1, "type": "message", "from": "B", "text": "ok"}]},
    ]}}, indent=1))
    assert raised(path).field == "chats.list[0].messages"
    messages, rejects = skipped(path)
    assert [(m.conversation_id, m.text) for m in messages] == [("2", "ok")] and len(rejects) == 1


def test_discord_bad_author_and_attachment_only(tmp_path: Path) -> None:
    document = json.loads((DATA / "discord.json").read_text(encoding="utf-8"))
    document["messages"][2]["author"] = "tidepool"
    document["messages"][4]["content"] = ""
    document["messages"][4]["attachments"] = [{"id": "9", "url": "https://cdn.example.invalid/a.png", "fileName": "a.png"}]
    path = write(tmp_path / "vent.json", json.dumps(document, indent=2))
    error = raised(path)
    assert (error.path, error.line, error.field) == (str(path), None, "messages[2].author")
    messages, rejects = skipped(path)
    assert len(messages) == 1
    assert [r.field for r in rejects] == ["messages[2].author", "messages[4].content"]
    assert "only an attachment" in rejects[1].reason


def test_discord_csv_bad_row_names_the_line(tmp_path: Path) -> None:
    lines = (DATA / "discord.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    path = write(tmp_path / "vent.csv", "".join(lines[:2]) + '"1","x","2024-01-01","no closing quote\n')
    error = raised(path)
    assert (error.path, error.line) == (str(path), 3)
    ragged = write(tmp_path / "ragged.csv", "".join(lines[:2]) + '"1","x","2024-01-01"\n')
    assert (raised(ragged).line, raised(ragged).reason) == (3, "has 3 cells but the header has 6")
    assert raised(tmp_path / "ragged.csv", format="discord").line == 3


def test_slack_bad_day_file_and_bad_message_name_the_day_file(tmp_path: Path) -> None:
    root = tmp_path / "slack"
    shutil.copytree(DATA / "slack", root)
    day = root / "random" / "2024-03-02.json"
    day.write_text('[\n {"type": "message", "user": "U02JONAH", "ts": "1.0", "text": 5},\n {"type": "message", "ts": "2.0", "text": "fine"}\n]\n')
    error = raised(root)
    assert (error.path, error.line, error.field) == (str(day), None, "[0].text")
    broken = root / "general" / "2024-03-03.json"
    broken.write_text('[\n {"type": "message",\n  "text": "cut"\n')
    error = raised(root)
    assert (error.path, error.line) == (str(broken), 3) and "ends early" in error.reason
    messages, rejects = skipped(root)
    assert [r.source for r in rejects] == [str(broken), str(day)]
    assert "fine" in [m.text for m in messages] and len(messages) == 5


def test_slack_without_users_json_falls_back_to_profiles_and_ids(tmp_path: Path) -> None:
    root = tmp_path / "slack"
    shutil.copytree(DATA / "slack", root)
    (root / "users.json").unlink()
    speakers = [m.speaker for m in read_messages(root)]
    assert speakers == ["maya.ortiz", "U02JONAH", "U03INES", "U01MAYA", "calendar-bot", "jonah", "U02JONAH"]
    (root / "channels.json").write_text('[{"id": "C1"}]')
    error = raised(root)
    assert (error.path, error.field) == (str(root / "channels.json"), "[0].name")


def test_messenger_bad_content_names_the_json_path(tmp_path: Path) -> None:
    document = json.loads((DATA / "messenger" / "message_1.json").read_text(encoding="ascii"))
    document["messages"][1]["content"] = ["not", "text"]
    del document["messages"][3]["content"]
    document["messages"][3]["photos"] = [{"uri": "photos/1.jpg"}]
    path = write(tmp_path / "message_1.json", json.dumps(document))
    error = raised(path)
    # Read oldest first: messages[3] comes before messages[1].
    assert (error.path, error.line, error.field) == (str(path), None, "messages[3].content")
    assert "only photos" in error.reason
    messages, rejects = skipped(path)
    assert [r.field for r in rejects] == ["messages[3].content", "messages[1].content"]
    assert len(messages) == 3


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        ("no-header.vtt", "1\n00:00:01.000 --> 00:00:02.000\nA: hi\n", 1, "first line must be WEBVTT"),
        ("timing.vtt", "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nA: hi\n\n2\n00:00:03 -> 00:00:04\nB: yo\n", 7,
         "expected a cue timing"),
        ("empty.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Ana></v>\n", 3, "empty text"),
        ("timing.srt", "1\r\n00:00:01,000 --> 00:00:02,000\r\nA: hi\r\n\r\n2\r\n00:00:03,000 --> soon\r\nB: yo\r\n", 6,
         "expected a cue timing"),
        ("index.srt", "1\n00:00:01,000 --> 00:00:02,000\nA: hi\n\nsecond\n00:00:03,000 --> 00:00:04,000\nB: yo\n", 5,
         "expected a cue index number"),
    ],
)
def test_subtitle_errors_name_the_line(tmp_path: Path, name: str, content: str, line: int, reason: str) -> None:
    path = write(tmp_path / name, content)
    error = raised(path)
    assert (error.path, error.line) == (str(path), line)
    assert reason in error.reason


def test_subtitle_skip_mode_keeps_the_good_cues(tmp_path: Path) -> None:
    path = write(tmp_path / "m.srt", "1\n00:00:01,000 --> 00:00:02,000\nA: hi\n\n2\n00:00:03,000 --> soon\nB: yo\n\n"
                                     "3\n00:00:05,000 --> 00:00:06,000\n<i>B: fine</i>\n")
    messages, rejects = skipped(path)
    assert [(m.speaker, m.text) for m in messages] == [("A", "hi"), ("B", "fine")]
    assert [(r.line, r.source) for r in rejects] == [(6, str(path))]


# ------------------------------------------------------------------------------------------
# The command line reaches the new formats


def test_cli_annotates_a_telegram_export_and_a_slack_folder(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from disclosure_nlp.model.classifier import DisclosureClassifier
    from disclosure_nlp.cli import app

    from .fakes import HashClassifier

    monkeypatch.setattr(DisclosureClassifier, "load", classmethod(lambda cls, *a, **k: HashClassifier()))
    runner = CliRunner()
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["annotate", str(DATA / "telegram_chat.json"), str(DATA / "slack"),
                                 str(DATA / "meeting.srt"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 + 7 + 3
    assert rows[0]["text"] == "hey, are you still up?" and rows[0]["layer"] is not None
    forced = runner.invoke(app, ["annotate", str(DATA / "discord.csv"), "--format", "discord", "-o",
                                 str(tmp_path / "d.csv"), "-q"])
    assert forced.exit_code == 0, forced.output
    bad = runner.invoke(app, ["annotate", str(DATA / "discord.json"), "--format", "messenger", "-o",
                              str(tmp_path / "m.jsonl"), "-q"])
    assert bad.exit_code == 2 and "is not a Messenger export" in bad.output
