"""pandas integration: annotate a DataFrame of chat messages in place of a transcript file.

Researchers often already hold their messages in a DataFrame (read from a database export, a
spreadsheet, or ConvoKit's ``get_utterances_dataframe()``); :func:`annotate_frame` labels them
without a round trip through files and returns the same frame with the annotation and
reciprocity columns of ``disclosure annotate`` added::

    import pandas as pd
    from disclosure_nlp.integrations.frame import annotate_frame

    df = pd.read_json("data/conversations/samples.jsonl", lines=True)
    out = annotate_frame(df, text_col="text", speaker_col="speaker",
                         conversation_col="conversation_id")
    out[["speaker", "layer", "depth", "turn", "match"]]

The values come from the same code as the CLI's outputs: every conversation goes through
:func:`disclosure_nlp.annotate.label_conversation` (classification → reciprocity → annotation
columns), so a CSV or Parquet file written by ``disclosure annotate`` and the frame returned
here hold the same numbers. The Ray engine (:mod:`disclosure_nlp.integrations.ray_engine`) labels each
conversation of a distributed dataset with :func:`annotate_group` from this module, for the
same reason.

Row values become message ids, speakers and reply targets the way the file readers treat
them: strings and numbers compare as stripped strings, blanks and missing values (``None``,
``NaN``, ``pd.NA``) mean "absent". A float that holds an integer (what pandas makes of an
integer id column with gaps) counts as that integer, so ``3.0`` and ``3`` are the same id.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import math
import numbers
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..annotate import ANNOTATION_FIELDS, INPUT_PREFIX, label_conversation
from ..errors import DataError, DisclosureError, excerpt
from ..pipeline.options import check_max_chars
from ..io.transcripts import ColumnMap, Message, blank_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["FrameAnnotation", "analyze_frame", "annotate_frame", "annotate_group", "frame_messages"]

# Alternative names ConvoKit uses (``reply-to`` is what its dump() writes, ``user`` and ``root``
# are older spellings); used only when the caller kept the default column name.
ALIASES = {"speaker": ("user",), "reply_to": ("reply-to",), "conversation": ("root",)}
DEFAULT_CHUNK = 4096


@dataclass
class FrameAnnotation:
    """What :func:`analyze_frame` returns: the messages and one row per conversation."""

    messages: "pd.DataFrame"
    """The input frame (same index and row order) with the annotation columns appended."""
    conversations: "pd.DataFrame"
    """Reciprocity figures, indexed by conversation id (the ``--summary`` file as a table)."""


# --------------------------------------------------------------------------------------------
# Rows → messages


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _identifier(value: Any, field: str, where: str) -> str | None:
    """A row value as the id-like string the transcript readers would make of it."""
    if _missing(value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise DataError("expected a string or number, got a boolean", path=where, field=field)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise DataError("expected a string or number, got a non-finite number", path=where, field=field)
        return str(int(number)) if number.is_integer() else str(number)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    raise DataError(f"expected a string or number, got {type(value).__name__}", path=where, field=field)


def _resolve_columns(present: Iterable[str], columns: ColumnMap, *, index_name: Any = None) -> dict[str, str | None]:
    """ColumnMap attribute → the column to read (None: absent), refusing missing named columns.

    As with the file readers, a column left at its default name is optional (except the text)
    and a renamed one is required, so a typo in a column name fails instead of silently
    turning every speaker into "absent".
    """
    names = set(present)
    custom = columns.customised()
    chosen: dict[str, str | None] = {}
    for attr in ("text", "id", "conversation", "speaker", "reply_to", "time"):
        name = getattr(columns, attr)
        if name in names:
            chosen[attr] = name
            continue
        if attr == "id" and index_name == name:
            chosen[attr] = None  # read from the index
            continue
        alias = next((a for a in ALIASES.get(attr, ()) if a in names), None) if attr not in custom else None
        if alias is None and (attr == "text" or attr in custom):
            shown = ", ".join(sorted(map(str, names))[:20])
            raise DataError(f"column missing (the columns are: {shown})", field=name)
        chosen[attr] = alias
    return chosen


def frame_messages(
    df: "pd.DataFrame",
    columns: ColumnMap = ColumnMap(),
    *,
    source: str = "DataFrame",
    default_conversation: str = "frame",
    row_names: Sequence[str] | None = None,
) -> list[Message]:
    """One :class:`Message` per row, in row order, validated like a transcript file's records.

    ``fields`` is left empty: the caller keeps the frame itself, so no input value is copied
    or converted. Errors name the row (1-based position and index label, or ``row_names``)
    and the column. A missing id becomes ``<default_conversation>:<row>``; the id is used only
    to resolve ``reply_to`` links and never written out.
    """
    chosen = _resolve_columns(df.columns, columns, index_name=df.index.name)
    n = len(df)

    def values(attr: str) -> list[Any]:
        name = chosen[attr]
        if name is None:
            if attr == "id" and df.index.name == columns.id:
                return list(df.index)
            return [None] * n
        return df[name].tolist()  # plain Python values (NumPy scalars unboxed)

    texts, ids, conversations = values("text"), values("id"), values("conversation")
    speakers, replies, times = values("speaker"), values("reply_to"), values("time")
    labels = list(df.index)
    messages: list[Message] = []
    seen: dict[str, int] = {}
    for row in range(n):
        if row_names is not None:
            where = f"{source}, {row_names[row]}"
        else:
            label = repr(labels[row])
            where = f"{source} row {row + 1} (index {label[:30] + '…' if len(label) > 30 else label})"
        text = texts[row]
        if _missing(text):
            raise DataError("missing text", path=where, field=chosen["text"])
        if not isinstance(text, str):
            raise DataError(f"expected text, got {type(text).__name__}", path=where, field=chosen["text"])
        if blank_text(text):
            raise DataError("empty text", path=where, field=chosen["text"])
        message_id = _identifier(ids[row], columns.id, where) or f"{default_conversation}:{row + 1}"
        first = seen.get(message_id)
        if first is not None:
            raise DataError(
                f"duplicate message id {excerpt(message_id, 30)}, first used at row {first}",
                path=where,
                field=columns.id,
            )
        seen[message_id] = row + 1
        messages.append(
            Message(
                id=message_id,
                conversation_id=_identifier(conversations[row], chosen["conversation"] or columns.conversation, where)
                or default_conversation,
                speaker=_identifier(speakers[row], chosen["speaker"] or columns.speaker, where),
                text=text,
                reply_to=_identifier(replies[row], chosen["reply_to"] or columns.reply_to, where),
                timestamp=_identifier(times[row], chosen["time"] or columns.time, where),
                fields={},
                source=source,
                line=row + 1,
            )
        )
    return messages


# --------------------------------------------------------------------------------------------
# The shared labeling step


def _group(messages: Sequence[Message]) -> dict[str, list[int]]:
    """Row positions of each conversation, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for position, message in enumerate(messages):
        groups.setdefault(message.conversation_id, []).append(position)
    return groups


def _label(
    messages: Sequence[Message], probabilities, permutations: int, languages: Sequence[str] | None = None
) -> tuple[dict[str, list[Any]], dict[str, dict[str, Any]]]:
    """Annotation columns (in row order) and figures per conversation, via label_conversation."""
    out: dict[str, list[Any]] = {name: [None] * len(messages) for name in ANNOTATION_FIELDS}
    figures: dict[str, dict[str, Any]] = {}
    for conversation_id, positions in _group(messages).items():
        rows, result = label_conversation(
            conversation_id,
            [messages[p] for p in positions],
            [probabilities[p] for p in positions],
            permutations=permutations,
            languages=None if languages is None else [languages[p] for p in positions],
        )
        for position, row in zip(positions, rows):
            for name in ANNOTATION_FIELDS:
                out[name][position] = row[name]
        figures[conversation_id] = result
    return out, figures


def _with_annotation(df: "pd.DataFrame", annotation: dict[str, list[Any]]) -> "pd.DataFrame":
    """The input frame, clashing columns renamed ``input_<name>`` (as in the CLI), plus the
    annotation columns with stable dtypes (nullable ``Int64`` for the optional turn number)."""
    import pandas as pd

    renamed = {name: INPUT_PREFIX + name for name in df.columns if name in ANNOTATION_FIELDS}
    out = df.rename(columns=renamed) if renamed else df.copy()
    # A message marked unsupported (not English) has no turn: the turn column is then nullable.
    dtypes = {"layer": "object", "match": "object", "language": "object", "prompt_turn": "Int64",
              "turn": "Int64" if any(t is None for t in annotation["turn"]) else "int64"}
    for name in ANNOTATION_FIELDS:
        out[name] = pd.Series(annotation[name], index=out.index, dtype=dtypes.get(name, "float64"))
    return out


def _figures_frame(figures: dict[str, dict[str, Any]]) -> "pd.DataFrame":
    import pandas as pd

    frame = pd.DataFrame.from_records(list(figures.values()))
    if frame.empty:
        return pd.DataFrame(columns=["conversation_id"]).set_index("conversation_id")
    return frame.set_index("conversation_id")


def _classify(classifier, texts: list[str], batch_size: int, chunk: int):
    import numpy as np

    parts = [classifier.predict_proba(texts[i : i + chunk], batch_size=batch_size) for i in range(0, len(texts), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, 4), dtype=np.float32)


def analyze_frame(
    df: "pd.DataFrame",
    *,
    text_col: str = "text",
    speaker_col: str = "speaker",
    conversation_col: str = "conversation_id",
    id_col: str = "id",
    reply_to_col: str = "reply_to",
    time_col: str = "timestamp",
    model: str | os.PathLike[str] | None = None,
    classifier=None,
    backend: str = "auto",
    batch_size: int = 32,
    chunk: int = DEFAULT_CHUNK,
    permutations: int = 1000,
    language: str = "mark",
    max_chars: int | None = 20_000,
) -> FrameAnnotation:
    """Label every row of ``df`` and analyse each conversation; see :func:`annotate_frame`.

    Returns the annotated messages and a second frame with one row of reciprocity figures per
    conversation (reciprocity index, lag-1 correlation, trajectory, asymmetry, per-speaker
    figures as a dict column). ``backend`` is that of ``disclosure annotate`` (default ``auto``),
    so that a frame and the CLI's file hold the same values. ``language`` is ``mark`` (a row
    not in English keeps no layer, as in the CLI) or ``label``; a frame cannot reject rows.
    """
    columns = ColumnMap(text=text_col, speaker=speaker_col, conversation=conversation_col, id=id_col,
                        reply_to=reply_to_col, time=time_col)
    if chunk < 1:
        raise DisclosureError("chunk must be at least 1")
    check_max_chars(max_chars)
    if language not in ("mark", "label"):
        raise DisclosureError(f"language must be 'mark' or 'label' for a DataFrame, not {language!r} "
                              "(rows are never dropped from a frame)")
    messages = frame_messages(df, columns)
    if classifier is None:
        from ..model.classifier import DisclosureClassifier

        classifier = DisclosureClassifier.load(model, backend=backend)
    from ..model.language import detect_language

    texts = [m.text if max_chars is None else m.text[:max_chars] for m in messages]  # as the CLI's --max-chars
    guesses = [detect_language(text) for text in texts]
    todo = [i for i, g in enumerate(guesses) if g.supported or language == "label"]
    found = _classify(classifier, [texts[i] for i in todo], batch_size, chunk).tolist()
    probabilities: list[Any] = [None] * len(messages)
    for i, row in zip(todo, found):
        probabilities[i] = row
    annotation, figures = _label(messages, probabilities, permutations, [g.code for g in guesses])
    return FrameAnnotation(_with_annotation(df, annotation), _figures_frame(figures))


def annotate_frame(df: "pd.DataFrame", **options: Any) -> "pd.DataFrame":
    """``df`` with the columns of ``disclosure annotate`` added (a new frame; ``df`` is kept).

    Added, in this order: ``layer``, ``confidence``, ``p_none`` … ``p_core``, ``depth``,
    ``turn``, ``prompt_turn``, ``depth_gap``, ``match``. An input column with one of those
    names is kept as ``input_<name>``. Rows keep their index and order; a conversation's
    messages need not be contiguous, but within a conversation the row order is taken as the
    order of the chat. Column names work as in the CLI: a renamed column must exist, and the
    id column may also be the index (ConvoKit's utterance frames are indexed by id). Pass
    ``classifier`` to reuse a loaded :class:`~disclosure_nlp.model.classifier.DisclosureClassifier`.
    The keywords are :func:`analyze_frame`'s (one list, so the two cannot drift apart).
    """
    return analyze_frame(df, **options).messages


# help() and IDEs show analyze_frame's keywords rather than **options.
annotate_frame.__signature__ = inspect.signature(analyze_frame).replace(  # type: ignore[attr-defined]
    return_annotation="pd.DataFrame")


def annotate_group(
    df: "pd.DataFrame",
    probabilities,
    columns: ColumnMap = ColumnMap(),
    *,
    source: str = "DataFrame",
    default_conversation: str = "frame",
    row_names: Sequence[str] | None = None,
    permutations: int = 1000,
    languages: Sequence[str] | None = None,
) -> tuple["pd.DataFrame", dict[str, dict[str, Any]]]:
    """Annotate rows whose class probabilities are already known (one row of ``probabilities``
    per row of ``df``, ``None`` for a row left unlabeled, such as one not in English, whose code
    ``languages`` then gives); returns the annotated frame and the figures per conversation.

    This is the step the Ray engine runs once per conversation after distributed inference, so
    that it produces exactly what :func:`annotate_frame` and the CLI produce.
    """
    messages = frame_messages(df, columns, source=source, default_conversation=default_conversation, row_names=row_names)
    if len(probabilities) != len(messages):
        raise ValueError(f"{len(probabilities)} probability rows for {len(messages)} messages")
    annotation, figures = _label(messages, probabilities, permutations, languages)
    return _with_annotation(df, annotation), figures
