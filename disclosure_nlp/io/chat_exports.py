"""Readers for the chat exports people have: Telegram Desktop, DiscordChatExporter (JSON and
CSV), Slack workspace exports, Facebook/Instagram Messenger, and WebVTT/SRT meeting transcripts.

They yield the same :class:`~disclosure_nlp.io.transcripts.Message` objects as the other readers and
report problems the same way (a :class:`~disclosure_nlp.errors.DataError`, or a reject in skip
mode); :func:`disclosure_nlp.io.transcripts.read_messages` picks them by format name or content.

Telegram, Discord and Messenger exports are one JSON document each, not JSON Lines, so they cannot
be decoded a line at a time: the file is read and parsed whole (the standard library has no
incremental JSON parser, and this package adds no dependency for one), then messages are built
one at a time from it. Memory is then a few times the file's size; these exports are split per
chat (Discord, Messenger) or are a single user's history (Telegram), so that stays moderate. A
line number means little in such a document, so a bad message is named by its JSON path
(``messages[3].from``) and a :class:`Message`'s ``line`` is its 1-based place in its
``messages`` array. A Slack export is read one day file at a time. WebVTT and SRT files are
streamed line by line like the plain-text logs, and their errors name lines.

System events are not messages and are skipped, as WhatsApp's system lines are: Telegram
``service`` messages, Discord join/pin/call events, Slack join/leave/topic subtypes, Messenger
subscribe/unsubscribe/call entries. A real message without text (a photo without a caption, an
attachment) is never dropped silently: it is a bad record ("empty text", with what it holds).

Why one module of ~700 lines: five export formats (Telegram, Discord, Messenger, Slack, VTT/SRT)
share the record checks, the id bookkeeping and the error locations at the top of this file;
each format is a section of 60-120 lines, and a module per format would mostly re-import them.
"""

from __future__ import annotations

import codecs
import gzip
import html
import json
import re
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..errors import DataError
from .transcript_base import (
    _PLAIN_SPEAKER,
    SNIFF_BYTES,
    ColumnMap,
    Message,
    _BadRecord,
    _identifier,
    _Lines,
    _open_stream,
    _Source,
    _type_name,
    _unwritable,
    _UNWRITABLE,
    blank_text,
)

DISCORD_CSV_HEADER = ("AuthorID", "Author", "Date", "Content", "Attachments", "Reactions")
DISCORD_COLUMNS = ColumnMap(text="Content", speaker="Author", time="Date")

# Keys that start one of the export documents; looked for in the first 8 KiB of a .json file
# whose first line is not a JSON value on its own (a pretty-printed document).
_EXPORT_KEYS = re.compile(rb'"(messages|chats|guild|channel|participants|about|personal_information)"\s*:')

_NAMES = {"telegram": "Telegram", "discord": "Discord (DiscordChatExporter)", "messenger": "Messenger"}
_SHAPES = {
    "telegram": 'a JSON object with a "messages" list (one chat) or "chats": {"list": [...]} (the full export)',
    "discord": 'a JSON object with "guild", "channel" and a "messages" list',
    "messenger": 'a JSON object with "participants" and a "messages" list',
}


# --------------------------------------------------------------------------------------------
# Whole JSON documents


def export_kind(document: Any) -> str | None:
    """Which export a parsed JSON document is ("telegram", "discord", "messenger"), if any.

    A document with a top-level ``text`` is a message record, never an export.
    """
    if not isinstance(document, dict) or "text" in document:
        return None
    chats = document.get("chats")
    if isinstance(chats, dict) and isinstance(chats.get("list"), list):
        return "telegram"
    if not isinstance(document.get("messages"), list):
        return None
    if "guild" in document and isinstance(document.get("channel"), dict):
        return "discord"
    if isinstance(document.get("participants"), list):
        return "messenger"
    if isinstance(document.get("type"), str):
        return "telegram"
    return None


def _damaged(path: Path) -> DataError:
    return DataError("the gzip data is damaged or cut off", path=path)


def parse_document(data: bytes, path: Path) -> Any:
    """One whole JSON document, with errors that name the line."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError("not valid UTF-8; save the file as UTF-8", path=path, line=line) from None
    del data
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        line = err.lineno
        if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
            reason = "not valid JSON: the document ends early (a cut-off export?)"
            line = min(line, text.rstrip().count("\n") + 1)  # the last line that has anything
        else:
            reason = f"not valid JSON ({err.msg} at column {err.colno})"
        raise DataError(reason, path=path, line=line) from None
    except RecursionError:
        raise DataError("not readable JSON: nested too deeply", path=path) from None
    except ValueError as err:  # an integer of over 4,300 digits
        raise DataError(f"not readable JSON ({str(err).split(';')[0][:100]})", path=path) from None


def _read_all(stream: IO[bytes], path: Path, size: int = -1) -> bytes:
    try:
        return stream.read(size)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        raise _damaged(path) from None


def _detect(source: _Source) -> tuple[str, Any] | None:
    """(kind, document) when a ``.json`` file is a chat export; ``None`` for JSON Lines.

    Only the first line is read when it is a JSON value on its own that is no export, so a
    JSON Lines file of any size is never loaded whole. A first line that is no JSON value on
    its own starts a pretty-printed document (or is a damaged record): the document is parsed
    whole only when an export's key shows in its first 8 KiB and its second line is not a JSON
    record either.
    """
    path = source.path
    with _open_stream(source) as stream:
        try:
            first = b""
            for raw in stream:
                if raw.strip():
                    first = raw
                    break
        except (EOFError, zlib.error, gzip.BadGzipFile):
            return None  # the JSON Lines reader reports the damage with its line
        body = first[len(codecs.BOM_UTF8) :] if first.startswith(codecs.BOM_UTF8) else first
        try:
            record = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, RecursionError):
            return None
        except ValueError:  # not a value on its own
            record = None
        else:
            kind = export_kind(record)
            if kind is None:
                return None
            if _read_all(stream, path, SNIFF_BYTES).strip():
                return None  # more records follow: JSON Lines whose first record looks odd
            return kind, record
        more = _read_all(stream, path, SNIFF_BYTES)
        if not _EXPORT_KEYS.search((first + more)[:SNIFF_BYTES]):
            return None
        second = more.split(b"\n", 1)[0]
        try:
            if isinstance(json.loads(second.decode("utf-8")), dict):
                return None  # JSON Lines with a damaged first record
        except (ValueError, RecursionError):
            pass
        document = parse_document(first + more + _read_all(stream, path), path)
    kind = export_kind(document)
    return None if kind is None else (kind, document)


def read_export(source: _Source) -> Iterator[Message | _BadRecord] | None:
    """The records of a chat export source; ``None`` when a ``.json`` file is JSON Lines."""
    if source.fmt == "slack":
        return _iter_slack(source)
    if source.fmt == "json":
        found = _detect(source)
        if found is None:
            return None
        kind, document = found
    else:
        with _open_stream(source) as stream:
            document = parse_document(_read_all(stream, source.path), source.path)
        kind = export_kind(document)
        if kind != source.fmt:
            raise DataError(f"is not a {_NAMES[source.fmt]} export: expected {_SHAPES[source.fmt]}", path=source.path)
    if kind == "telegram":
        return _iter_telegram(document, source)
    return _fault_reported(_iter_discord(document, source) if kind == "discord" else _iter_messenger(document, source))


def _fault_reported(records: Iterator[Message | _BadRecord]) -> Iterator[Message | _BadRecord]:
    """A fault of the whole file (such as a conversation id that is not an identifier) reported
    as a record, like a bad message's, rather than raised out of the reader."""
    try:
        yield from records
    except _BadRecord as bad:
        yield bad


# --------------------------------------------------------------------------------------------
# Shared checks


class _Ids:
    """Message ids of one conversation, with the JSON path that first used each."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def check(self, message_id: str, where: str, raw: str, path: Path | None = None, place: str | None = None) -> None:
        place = place or where
        first = self._seen.setdefault(message_id, place)
        if first != place:
            raise _BadRecord(
                f"duplicate message id {message_id[:30]!r}, first used at {first}", None, where, raw, path
            )


def _text(value: Any, where: str, holds: str | None = None) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _BadRecord(f"expected text, got {_type_name(value)}", None, where)
    if blank_text(value):
        raise _BadRecord("empty text" + (f" (the message holds only {holds})" if holds else ""), None, where)
    return value


def _ident(value: Any, where: str) -> str | None:
    return _identifier(value, where, None)  # type: ignore[arg-type]


def _idents(holder: dict[str, Any], where: str, *keys: str) -> list[str | None]:
    """The identifiers under ``keys`` (each ``None`` when absent), every fault named by its path."""
    return [_ident(holder.get(key), f"{where}.{key}") for key in keys]


def _first_ident(holder: dict[str, Any], *keys: str, prefix: str = "") -> str | None:
    """The first of ``keys`` that holds an identifier (a chat's id before its name)."""
    for key in keys:
        found = _ident(holder.get(key), f"{prefix}{key}")
        if found:
            return found
    return None


def _checked(message: Message, where: str) -> Message:
    """A message whose strings UTF-8 can write (no lone surrogate from a JSON escape)."""
    if _unwritable(message.text) or _unwritable(message.fields):
        raise _BadRecord(_UNWRITABLE, None, where, "")
    return message


def _located(bad: _BadRecord, raw: str, path: Path | None = None) -> _BadRecord:
    if not bad.raw:
        bad.raw = raw
    if bad.path is None:
        bad.path = path
    return bad


# --------------------------------------------------------------------------------------------
# Telegram Desktop (result.json)

_TELEGRAM_MEDIA = {
    "photo": "a photo",
    "file": "a file",
    "sticker_emoji": "a sticker",
    "media_type": "media",
    "poll": "a poll",
    "location_information": "a location",
    "contact_information": "a contact",
}


def _telegram_text(value: Any, where: str) -> Any:
    """A message's text: a string, or a list of strings and entities ``{"type", "text"}``."""
    if not isinstance(value, list):
        return value
    parts = []
    for index, part in enumerate(value):
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
        else:
            shown = f"{where}[{index}]" + (".text" if isinstance(part, dict) else "")
            got = part.get("text") if isinstance(part, dict) else part
            raise _BadRecord(f"expected text, got {_type_name(got) if got is not None else 'nothing'}", None, shown)
    return "".join(parts)


def _iter_telegram(document: dict[str, Any], source: _Source) -> Iterator[Message | _BadRecord]:
    if "chats" in document and isinstance(document["chats"], dict):
        chats = [(chat, f"chats.list[{i}].") for i, chat in enumerate(document["chats"]["list"])]
        left = document.get("left_chats")
        if isinstance(left, dict) and isinstance(left.get("list"), list):
            chats += [(chat, f"left_chats.list[{i}].") for i, chat in enumerate(left["list"])]
    else:
        chats = [(document, "")]
    for number, (chat, prefix) in enumerate(chats, start=1):
        if not isinstance(chat, dict) or not isinstance(chat.get("messages"), list):
            got = chat.get("messages") if isinstance(chat, dict) else chat
            field = f"{prefix}messages" if isinstance(chat, dict) else prefix.rstrip(".")
            yield _BadRecord(f"expected a chat's list of messages, got {_type_name(got)}", None, field)
            continue
        try:
            conversation = _first_ident(chat, "id", "name", prefix=prefix)
        except _BadRecord as bad:
            yield bad
            continue
        if conversation is None:
            conversation = source.stem if not prefix else f"{source.stem}:{number}"
        yield from _chat_messages(chat, prefix, "text", _telegram_message, conversation, source)


def _raw(record: Any, key: str) -> str:
    value = record.get(key) if isinstance(record, dict) else None
    return value if isinstance(value, str) else ""


def _telegram_message(
    record: Any, where: str, line: int, conversation: str, chat: str | None, source: _Source, ids: _Ids
) -> Message | None:
    if not isinstance(record, dict):
        raise _BadRecord(f"expected a message object, got {_type_name(record)}", None, where)
    if record.get("type") == "service":
        return None  # "X joined", "X pinned a message": not a chat message
    holds = next((what for key, what in _TELEGRAM_MEDIA.items() if record.get(key)), None)
    text = _text(_telegram_text(record.get("text"), f"{where}.text"), f"{where}.text", holds)
    message_id = _ident(record.get("id"), f"{where}.id") or f"{source.stem}:{line}"
    speaker, from_id, reply_to, timestamp = _idents(record, where, "from", "from_id", "reply_to_message_id", "date")
    ids.check(message_id, f"{where}.id", text)
    fields = {
        "conversation_id": conversation,
        "chat": chat,
        "id": message_id,
        "speaker": speaker or from_id,
        "from_id": from_id,
        "reply_to": reply_to,
        "timestamp": timestamp,
        "text": text,
    }
    return _checked(
        Message(message_id, conversation, speaker or from_id, text, reply_to, timestamp, fields, str(source.path), line),
        where,
    )


# --------------------------------------------------------------------------------------------
# Discord (DiscordChatExporter)

# Message kinds that are events, not something a person wrote (DiscordChatExporter's MessageKind).
_DISCORD_EVENTS = {
    "RecipientAdd", "RecipientRemove", "Call", "ChannelNameChange", "ChannelIconChange",
    "ChannelPinnedMessage", "GuildMemberJoin", "ThreadCreated", "UserPremiumGuildSubscription",
    "UserPremiumGuildSubscriptionTier1", "UserPremiumGuildSubscriptionTier2",
    "UserPremiumGuildSubscriptionTier3", "ChannelFollowAdd", "GuildDiscoveryDisqualified",
    "GuildDiscoveryRequalified", "StageStart", "StageEnd", "StageSpeaker", "StageTopic",
}


def _chat_messages(
    chat: dict[str, Any], prefix: str, text_key: str, build: Callable[..., Message | None], conversation: str,
    source: _Source, *, name_from: dict[str, Any] | None = None,
) -> Iterator[Message | _BadRecord]:
    """One chat's ``messages`` list through ``build`` (Telegram's or Discord's), a bad record
    located by its JSON path; ``build`` returns ``None`` for an event that is not a message."""
    holder = chat if name_from is None else name_from
    name = holder.get("name") if isinstance(holder.get("name"), str) else None
    ids = _Ids()
    for index, record in enumerate(chat["messages"]):
        try:
            message = build(record, f"{prefix}messages[{index}]", index + 1, conversation, name, source, ids)
        except _BadRecord as bad:
            yield _located(bad, _raw(record, text_key))
            continue
        if message is not None:
            yield message


def _iter_discord(document: dict[str, Any], source: _Source) -> Iterator[Message | _BadRecord]:
    channel = document["channel"]
    conversation = _first_ident(channel, "id", "name", prefix="channel.")
    yield from _chat_messages(document, "", "content", _discord_message, conversation or source.stem, source,
                              name_from=channel)


def _discord_message(
    record: Any, where: str, line: int, conversation: str, channel: str | None, source: _Source, ids: _Ids
) -> Message | None:
    if not isinstance(record, dict):
        raise _BadRecord(f"expected a message object, got {_type_name(record)}", None, where)
    if record.get("type") in _DISCORD_EVENTS:
        return None
    holds = "an attachment" if record.get("attachments") else "an embed" if record.get("embeds") else (
        "a sticker" if record.get("stickers") else None
    )
    text = _text(record.get("content"), f"{where}.content", holds)
    author = record.get("author")
    if author is not None and not isinstance(author, dict):
        raise _BadRecord(f"expected an object, got {_type_name(author)}", None, f"{where}.author")
    author = author or {}
    # The user name is unique; a nickname (what the server shows) can be shared, so it is kept
    # beside. A name with a legacy discriminator is written as the CSV export writes it.
    speaker = _ident(author.get("name"), f"{where}.author.name")
    discriminator = _ident(author.get("discriminator"), f"{where}.author.discriminator")
    if speaker is not None and discriminator not in (None, "0", "0000"):
        speaker = f"{speaker}#{discriminator}"
    nickname, author_id = _idents(author, f"{where}.author", "nickname", "id")
    reference = record.get("reference")
    if reference is not None and not isinstance(reference, dict):
        raise _BadRecord(f"expected an object, got {_type_name(reference)}", None, f"{where}.reference")
    reply_to = _ident((reference or {}).get("messageId"), f"{where}.reference.messageId")
    message_id = _ident(record.get("id"), f"{where}.id") or f"{source.stem}:{line}"
    timestamp = _ident(record.get("timestamp"), f"{where}.timestamp")
    ids.check(message_id, f"{where}.id", text)
    fields = {
        "conversation_id": conversation,
        "channel": channel,
        "id": message_id,
        "speaker": speaker,
        "nickname": nickname,
        "author_id": author_id,
        "reply_to": reply_to,
        "timestamp": timestamp,
        "text": text,
    }
    return _checked(
        Message(message_id, conversation, speaker, text, reply_to, timestamp, fields, str(source.path), line), where
    )


# --------------------------------------------------------------------------------------------
# Facebook / Instagram Messenger (message_1.json)

_MESSENGER_EVENTS = {"Subscribe", "Unsubscribe", "Call"}


def fix_mojibake(text: str) -> str:
    """Undo the data download's encoding: UTF-8 bytes written as Latin-1 code points
    (``"\\u00c3\\u00a9"`` for ``"é"``). A string that does not round-trip is kept as it is."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _iter_messenger(document: dict[str, Any], source: _Source) -> Iterator[Message | _BadRecord]:
    records = document["messages"]
    conversation = _first_ident(document, "thread_path", "title")
    conversation = fix_mojibake(conversation) if conversation else source.stem
    # The download lists messages newest first; equal times keep that order reversed.
    stamps = [record.get("timestamp_ms") if isinstance(record, dict) else None for record in records]
    if all(isinstance(stamp, (int, float)) and not isinstance(stamp, bool) for stamp in stamps):
        order = sorted(range(len(records)), key=lambda i: (stamps[i], -i))
    else:
        order = list(reversed(range(len(records))))
    number = 0
    for index in order:
        record = records[index]
        where = f"messages[{index}]"
        try:
            if not isinstance(record, dict):
                raise _BadRecord(f"expected a message object, got {_type_name(record)}", None, where)
            if record.get("type") in _MESSENGER_EVENTS:
                continue
            holds = next((what for key, what in (("photos", "photos"), ("videos", "a video"), ("audio_files", "audio"),
                                                 ("files", "a file"), ("sticker", "a sticker"), ("gifs", "a GIF"),
                                                 ("share", "a link")) if record.get(key)), None)
            if record.get("is_unsent"):
                holds = "nothing: it was unsent"
            raw = record.get("content")
            text = _text(fix_mojibake(raw) if isinstance(raw, str) else raw, f"{where}.content", holds)
            speaker = _ident(record.get("sender_name"), f"{where}.sender_name")
            speaker = fix_mojibake(speaker) if speaker else None
            timestamp = _ident(record.get("timestamp_ms"), f"{where}.timestamp_ms")
        except _BadRecord as bad:
            yield _located(bad, _raw(record, "content"))
            continue
        number += 1
        message_id = f"{source.stem}:{number}"
        fields = {"conversation_id": conversation, "id": message_id, "speaker": speaker, "timestamp": timestamp,
                  "text": text}
        try:
            yield _checked(
                Message(message_id, conversation, speaker, text, None, timestamp, fields, str(source.path), index + 1),
                where,
            )
        except _BadRecord as bad:
            yield bad


# --------------------------------------------------------------------------------------------
# Slack workspace export (a folder)

_SLACK_LISTS = (("channels.json", "name"), ("groups.json", "name"), ("mpims.json", "name"), ("dms.json", "id"))
_SLACK_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\.json")
# Subtypes that record an event, not something a person wrote.
_SLACK_EVENTS = {
    "channel_join", "channel_leave", "group_join", "group_leave", "channel_topic", "channel_purpose",
    "channel_name", "channel_archive", "channel_unarchive", "group_topic", "group_purpose", "group_name",
    "group_archive", "group_unarchive", "pinned_item", "unpinned_item", "bot_add", "bot_remove",
    "channel_convert_to_private", "channel_convert_to_public", "reminder_add", "huddle_thread",
    "tombstone",
}
_SLACK_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")


def is_slack_export(path: Path) -> bool:
    return any((path / name).is_file() for name in ("channels.json", "users.json", "dms.json"))


def _slack_json(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return parse_document(handle.read(), path)
    except OSError as err:
        raise DataError(f"cannot be read ({err.strerror or err})", path=path) from None


def _slack_users(root: Path) -> dict[str, str]:
    """User id -> user name (the unique handle), from users.json when the export has it."""
    path = root / "users.json"
    if not path.is_file():
        return {}
    users = _slack_json(path)
    if not isinstance(users, list):
        raise DataError(f"expected a JSON list of users, got {_type_name(users)}", path=path)
    names = {}
    for index, user in enumerate(users):
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            raise DataError("expected a user object with a string id", path=path, field=f"[{index}]")
        profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
        for name in (user.get("name"), user.get("real_name"), profile.get("display_name")):
            if isinstance(name, str) and name.strip():
                names[user["id"]] = name.strip()
                break
    return names


def _slack_conversations(root: Path) -> list[tuple[str, Path]]:
    """(conversation id, folder) of every channel, group and DM, in the export's list order;
    folders no list names come last, by name."""
    found: list[tuple[str, Path]] = []
    taken: set[str] = set()
    for list_name, key in _SLACK_LISTS:
        path = root / list_name
        if not path.is_file():
            continue
        listed = _slack_json(path)
        if not isinstance(listed, list):
            raise DataError(f"expected a JSON list, got {_type_name(listed)}", path=path)
        for index, entry in enumerate(listed):
            name = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name.strip() or "/" in name or name in (".", ".."):
                raise DataError(f"expected an object with a {key}", path=path, field=f"[{index}].{key}")
            if name not in taken and (root / name).is_dir():
                taken.add(name)
                found.append((name, root / name))
    for folder in sorted(root.iterdir()):
        if folder.name not in taken and folder.is_dir() and any(_SLACK_DAY.fullmatch(p.name) for p in folder.iterdir()):
            found.append((folder.name, folder))
    return found


def _iter_slack(source: _Source) -> Iterator[Message | _BadRecord]:
    root = source.path
    users = _slack_users(root)
    for conversation, folder in _slack_conversations(root):
        ids = _Ids()
        for day in sorted(p for p in folder.iterdir() if _SLACK_DAY.fullmatch(p.name) and p.is_file()):
            try:
                records = _slack_json(day)
            except DataError as err:
                yield _BadRecord(err.reason, err.line, None, "", day)
                continue
            if not isinstance(records, list):
                yield _BadRecord(f"expected a JSON list of messages, got {_type_name(records)}", None, None, "", day)
                continue
            for index, record in enumerate(records):
                try:
                    message = _slack_message(record, f"[{index}]", index + 1, conversation, day, users, ids)
                except _BadRecord as bad:
                    yield _located(bad, _raw(record, "text"), day)
                    continue
                if message is not None:
                    yield message


def _slack_message(
    record: Any, where: str, line: int, conversation: str, day: Path, users: dict[str, str], ids: _Ids
) -> Message | None:
    if not isinstance(record, dict):
        raise _BadRecord(f"expected a message object, got {_type_name(record)}", None, where)
    if record.get("subtype") in _SLACK_EVENTS or record.get("type", "message") != "message":
        return None
    holds = "a file" if record.get("files") else "an attachment" if record.get("attachments") else None
    text = _text(record.get("text"), f"{where}.text", holds)
    text = _SLACK_MENTION.sub(lambda m: "@" + users.get(m.group(1), m.group(2) or m.group(1)), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    user = _ident(record.get("user"), f"{where}.user")
    profile = record.get("user_profile") if isinstance(record.get("user_profile"), dict) else {}
    speaker = users.get(user or "") or _ident(profile.get("name"), f"{where}.user_profile.name")
    speaker = speaker or _ident(record.get("username"), f"{where}.username") or user
    speaker = speaker or _ident(record.get("bot_id"), f"{where}.bot_id")
    message_id = _ident(record.get("ts"), f"{where}.ts")
    if message_id is None:
        raise _BadRecord("missing field", None, f"{where}.ts")
    thread = _ident(record.get("thread_ts"), f"{where}.thread_ts")
    reply_to = thread if thread != message_id else None
    ids.check(message_id, f"{where}.ts", text, day, f"{day.name} {where}.ts")
    fields = {"conversation_id": conversation, "id": message_id, "speaker": speaker, "user": user,
              "reply_to": reply_to, "timestamp": message_id, "text": text}
    return _checked(Message(message_id, conversation, speaker, text, reply_to, message_id, fields, str(day), line), where)


# --------------------------------------------------------------------------------------------
# WebVTT and SRT (meeting transcripts: Zoom, Teams)

_CUE_TIME = r"(?:\d{1,}:)?\d{1,2}:\d{2}[.,]\d{1,3}"
_TIMING = re.compile(rf"\s*(?P<start>{_CUE_TIME})\s*-->\s*(?P<end>{_CUE_TIME})(?:\s+(?P<settings>.*))?\s*")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?[ \t]+(?P<name>[^>]*)>")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<\d[\d:.]*>")


def _cue_text(lines: list[str]) -> tuple[str | None, str]:
    """Speaker and text of a cue's payload: a ``<v Name>`` voice tag (Teams) or a ``Name:``
    prefix (Zoom); other tags are dropped, entities decoded, lines joined with a space."""
    joined = " ".join(part.strip() for part in lines if part.strip())
    speaker = None
    voice = _VOICE.search(joined)
    if voice is not None:
        speaker = html.unescape(voice.group("name")).strip() or None
    text = html.unescape(_TAG.sub("", joined)).strip()
    if speaker is None:
        found = _PLAIN_SPEAKER.fullmatch(text)
        if found is not None and len(found.group("speaker").split()) <= 4:
            speaker, text = found.group("speaker").strip(), (found.group("text") or "").strip()
    return speaker, re.sub(r"[ \t]{2,}", " ", text)


def iter_cues(lines: _Lines, source: _Source) -> Iterator[Message | _BadRecord]:
    """One message per cue. A WebVTT file must start with ``WEBVTT``; its header, ``NOTE``,
    ``STYLE`` and ``REGION`` blocks are skipped. A cue's identifier (an SRT index) is its id."""
    vtt = source.fmt == "vtt"
    block: list[tuple[int, str]] = []
    started = not vtt
    for number, raw in lines:
        body = raw.rstrip("\r\n")
        if not started:
            if not body.strip():
                continue
            if not re.fullmatch(r"WEBVTT(?:[ \t].*)?", body):
                raise DataError("is not a WebVTT file: its first line must be WEBVTT", path=source.path, line=number)
            started = True
            block = [(number, body)]  # the header block, skipped like a NOTE
            continue
        if body.strip():
            block.append((number, body))
            continue
        if block:
            item = _cue(block, source, lines)
            block = []
            if item is not None:
                yield item
    if block:
        item = _cue(block, source, lines)
        if item is not None:
            yield item


def _cue(block: list[tuple[int, str]], source: _Source, lines: _Lines) -> Message | _BadRecord | None:
    first_line, first = block[0]
    raw = " ".join(text for _, text in block)
    if lines.first_bad(first_line, block[-1][0]) is not None:
        return _BadRecord("not valid UTF-8; save the file as UTF-8", first_line, raw=raw)
    if source.fmt == "vtt" and (re.match(r"(WEBVTT|NOTE|STYLE|REGION)(?:[ \t]|$)", first)):
        if "-->" not in first:
            return None
    if "-->" in first:
        identifier, timing_line, timing, payload = None, first_line, first, block[1:]
    elif len(block) > 1 and ("-->" in block[1][1] or (source.fmt == "srt" and first.strip().isdigit())):
        identifier, (timing_line, timing), payload = first.strip(), block[1], block[2:]
    else:
        return _BadRecord("expected a cue timing line 'hh:mm:ss,mmm --> hh:mm:ss,mmm'", first_line, raw=raw)
    match = _TIMING.fullmatch(timing)
    if match is None or (source.fmt == "srt" and identifier is not None and not identifier.isdigit()):
        bad_line = timing_line if match is None else first_line
        what = "a cue timing 'hh:mm:ss,mmm --> hh:mm:ss,mmm'" if match is None else "a cue index number"
        return _BadRecord(f"expected {what}", bad_line, raw=raw)
    speaker, text = _cue_text([text for _, text in payload])
    if blank_text(text):
        return _BadRecord("empty text", first_line, "text", raw)
    start, end = match.group("start"), match.group("end")
    message_id = identifier or f"{source.stem}:{first_line}"
    fields = {"id": message_id, "start": start, "end": end, "speaker": speaker, "text": text}
    return Message(message_id, source.stem, speaker, text, None, start, fields, str(source.path), first_line)
