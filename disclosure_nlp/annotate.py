"""Batch annotation of transcripts: every message labeled, every conversation analysed.

The input is streamed conversation by conversation (see :func:`transcripts.iter_conversations`);
complete conversations are buffered until about ``window`` messages are waiting, classified in
one go (the classifier sorts them by length into batches and returns them in input order), then
analysed for reciprocity and written out in input order. Memory therefore depends on the window
and on the longest conversation, not on the size of the file.

Every message read is either written (once, with all its input fields) or reported as a reject,
and the closing :class:`AnnotationSummary` says so: ``read == written + rejected``. Outputs go to
hidden partial files renamed into place only on success (:mod:`disclosure_nlp.outputs`), so a
crash never leaves a half-written file under the target's name and never touches an earlier
output. All inputs are checked (path, format, binary data) before the model is loaded, so a
wrong path fails in a second, not after the model has loaded.

Interruptions and ``resume``
----------------------------
A JSONL, CSV or TSV output is written to ``.<name>.partial`` next to the target. After each
window of complete conversations, the partial file (and the rejects' partial file) is flushed
to disk and a checkpoint ``.<name>.partial.json`` records: the identity of every input (its
path, size and a SHA-256 of its first and last 64 KiB), the options that change the output
(input format, columns, ``on_error``, rejects path, batch size, window, permutations, the model's
identity and the backend that ran it), how many conversations and messages are written, a SHA-256 over the conversation
ids, sizes and message ids written, and the byte size of each partial file at that point.

With ``resume=True`` a run that was killed or interrupted continues after the last complete
window it wrote: the checkpoint is checked against the inputs and options (any difference is
an error saying which), the partial files are cut back to the recorded sizes, the inputs are
read again from the start without classifying the conversations already written (reads,
rejects and the SHA-256 are recomputed, so a changed input is caught), and new rows are
appended. The result is byte-identical to an uninterrupted run. Without ``resume`` a leftover
partial file of a killed run is replaced. ``resume=True`` with nothing to resume starts from
the beginning. Parquet outputs cannot be continued (their footer comes last) and refuse
``resume``.

The summary and the report need the figures of every conversation; they are kept in a third
partial file, ``.<name>.partial.figures`` (one JSON line per conversation, with the messages
the report shows), checkpointed like the others and read back on resume; it is only written
when a summary or report is asked for, and removed at the end.

An error in the input (:class:`DisclosureError`) removes the partial files, because that run
cannot be continued as it stands; any other interruption (Ctrl-C, a kill, a full disk) keeps
them for ``resume``. Two runs cannot write the same output at once: the partial file is
locked.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .classifier import Prediction
from .errors import DataError, DisclosureError
from .language import DEFAULT_POLICY, check_policy, detect_language
from .layers import LAYERS
from .transcripts import CORPUS_UTTERANCES, ColumnMap, Message, Reject, iter_conversations, read_messages

ANNOTATION_FIELDS: tuple[str, ...] = (
    "layer",
    "confidence",
    *(f"p_{name}" for name in LAYERS),
    "depth",
    "language",
    "turn",
    "prompt_turn",
    "depth_gap",
    "match",
)
"""Columns added to every message, in this order, after its input fields."""
INPUT_PREFIX = "input_"
DEFAULT_WINDOW = 1024
DEFAULT_MAX_CHARS = 20_000
"""Characters of one message that are labeled (and language-checked). A chat message is rarely
over a few thousand; a pasted book is not a message, and one of 1M tokens once took ten minutes
and 1.2 GB. A longer message keeps its whole text in the output and is counted as capped."""
REPORT_CONVERSATION_LIMIT = 200
DIGITS = 4
CHECKPOINT_VERSION = 1
IDENTITY_BYTES = 64 * 1024
"""Bytes hashed at each end of an input (and of the model's weights) to recognise it on resume."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass
class AnnotationSummary:
    """What an annotation run did; ``read == written + rejected`` always holds.

    After a resumed run the counts cover the whole input, as if it had not been interrupted;
    ``resumed_conversations`` says how many conversations the interrupted run had written.
    """

    read: int = 0
    written: int = 0
    rejected: int = 0
    conversations: int = 0
    seconds: float = 0.0
    output: str | None = None
    rejects_path: str | None = None
    summary_path: str | None = None
    report_path: str | None = None
    resumed_conversations: int = 0
    not_english: int = 0
    """Messages found not in English: marked, rejected or labeled anyway, as ``language`` says."""
    capped: int = 0
    """Messages longer than ``max_chars``: labeled on their first ``max_chars`` characters."""
    first_capped: str | None = None
    """Where the first capped message is (file and line), for the user to look at."""

    @property
    def messages_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"read {_plural(self.read, 'message')}, wrote {self.written}, rejected {self.rejected} "
            f"({_plural(self.conversations, 'conversation')}, {self.seconds:.1f} s, "
            f"{self.messages_per_second:.0f} messages/s)"
            + (f"; {self.not_english} not in English" if self.not_english else "")
            + (f"; {self.capped} longer than the character cap, labeled on their beginning "
               f"(first: {self.first_capped})" if self.capped else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ConversationRecord:
    """One analysed conversation, kept for the summary file and the HTML report."""

    conversation_id: str
    figures: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Per message: id, speaker, text, layer, depth (only for conversations shown in the report)."""


def output_row(message: Message, annotation: dict[str, Any]) -> dict[str, Any]:
    """The input fields, untouched, then the annotation columns.

    An input field whose name clashes with an annotation column (a gold ``layer``, say) is kept
    under ``input_<name>`` so that nothing the user supplied is lost or overwritten.
    """
    row: dict[str, Any] = {}
    for key, value in message.fields.items():
        row[INPUT_PREFIX + key if key in annotation else key] = value
    row.update(annotation)
    return row


def _annotation(prediction: Prediction | None, reciprocity: dict[str, Any], language: str | None = None) -> dict[str, Any]:
    """The annotation columns of one message: its prediction, rounded, and its turn's fields.

    ``prediction`` is ``None`` for a message marked unsupported: every model column is then
    empty, and ``language`` says why.
    """
    if prediction is None:
        out: dict[str, Any] = {"layer": None, "confidence": None}
        out.update({f"p_{name}": None for name in LAYERS})
        out["depth"] = None
    else:
        out = {"layer": prediction.layer, "confidence": round(prediction.confidence, DIGITS)}
        out.update({f"p_{name}": round(value, DIGITS) for name, value in prediction.probabilities.items()})
        out["depth"] = round(prediction.depth, DIGITS)
    out["language"] = language
    out.update({key: reciprocity.get(key) for key in ("turn", "prompt_turn", "depth_gap", "match")})
    return out


# --------------------------------------------------------------------------------------------
# Reading


def _conversations(
    streams: Sequence[tuple[Path, Iterator[Message]]],
    *,
    columns: ColumnMap,
    on_error: str,
    on_reject: Callable[[Reject], None],
    counter: list[int],
) -> Iterator[tuple[str, list[Message]]]:
    """Conversations of all inputs in order; each file is grouped on its own."""
    for path, stream in streams:

        def checked(messages: Iterable[Message], path: Path = path) -> Iterator[Message]:
            last_line = [0]
            try:
                for message in messages:
                    last_line[0] = message.line
                    counter[0] += 1
                    yield message
            except RecursionError:
                # json.loads gives up on records nested thousands of levels deep.
                raise DataError(
                    f"a JSON record after line {last_line[0]} is nested too deeply to read",
                    path=path,
                ) from None

        yield from iter_conversations(checked(stream))


def label_conversation(
    conversation_id: str,
    messages: list[Message],
    probabilities,
    *,
    permutations: int = 1000,
    languages: Sequence[str | None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Output rows and reciprocity figures for one conversation whose messages are classified."""
    from .reciprocity import LabeledMessage, analyze_conversation, message_fields

    # One prediction per message serves both the analysis and the row, so a row's layer is
    # always the layer its turn was built from. Rows of Python floats (tolist) are read several
    # times faster than NumPy rows, and give the same values.
    if hasattr(probabilities, "tolist"):
        probabilities = probabilities.tolist()
    # A message marked unsupported (not English) has no probabilities: it keeps its row, with no
    # layer, and stays out of the analysis, so no figure rests on a label the model cannot give.
    predictions = [None if probs is None else Prediction.from_probabilities(probs) for probs in probabilities]
    labeled = [
        LabeledMessage(
            id=message.id,
            speaker=message.speaker if message.speaker is not None else "(unknown)",
            layer=prediction.layer,
            depth=prediction.depth,
            reply_to=message.reply_to,
        )
        for message, prediction in zip(messages, predictions)
        if prediction is not None
    ]
    result = analyze_conversation(labeled, conversation_id, permutations=permutations)
    per_message = message_fields(result)
    codes = languages if languages is not None else [None] * len(messages)
    rows = [output_row(m, _annotation(p, per_message.get(m.id, {}), code))
            for m, p, code in zip(messages, predictions, codes)]
    figures = result.to_dict()
    figures.pop("turns", None)
    return rows, figures


def screen_languages(
    messages: list[Message], policy: str, on_reject: Callable[[Reject], None],
    on_unsupported: Callable[[], None] = lambda: None, *, max_chars: int | None = None,
) -> tuple[list[Message], list[str], list[bool]]:
    """The messages kept, their language codes, and which of them the model labels.

    ``reject`` reports a non-English message (text field, its language) and drops it; ``mark``
    keeps it unlabeled; ``label`` labels everything but still records the language.
    """
    kept, codes, labeled = [], [], []
    for message in messages:
        guess = detect_language(message.text if max_chars is None else message.text[:max_chars])
        if not guess.supported:
            on_unsupported()
        if not guess.supported and policy == "reject":
            on_reject(Reject(str(message.source), message.line, "text",
                             f"not English (language {guess.code}); use --language label to label it anyway",
                             message.text[:80]))
            continue
        kept.append(message)
        codes.append(guess.code)
        labeled.append(guess.supported or policy == "label")
    return kept, codes, labeled


# --------------------------------------------------------------------------------------------
# Identities for checkpoints


def _file_identity(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of the first and last 64 KiB: cheap, survives a copy, catches appends."""
    size = path.stat().st_size
    head = hashlib.sha256()
    tail = hashlib.sha256()
    with path.open("rb") as handle:
        head.update(handle.read(IDENTITY_BYTES))
        handle.seek(max(0, size - IDENTITY_BYTES))
        tail.update(handle.read(IDENTITY_BYTES))
    return {"size": size, "head": head.hexdigest(), "tail": tail.hexdigest()}


def _input_identity(path: Path) -> dict[str, Any]:
    if path.is_dir() and not (path / CORPUS_UTTERANCES).is_file():
        return {"path": str(path.resolve()), **_folder_identity(path)}
    read = path / CORPUS_UTTERANCES if path.is_dir() else path
    return {"path": str(path.resolve()), **_file_identity(read)}


def _folder_identity(folder: Path) -> dict[str, Any]:
    """A folder read file by file (a Slack export): every JSON file's name and size, and the
    first and last 64 KiB of the last one in name order (where new days are appended)."""
    files = sorted(p for p in folder.rglob("*.json") if p.is_file())
    listing = hashlib.sha256()
    for file in files:
        listing.update(f"{file.relative_to(folder).as_posix()}\0{file.stat().st_size}\n".encode("utf-8", "surrogateescape"))
    last = _file_identity(files[-1]) if files else {"head": "", "tail": ""}
    return {"size": sum(f.stat().st_size for f in files), "head": listing.hexdigest(), "tail": last["tail"]}


def _model_identity(classifier: Any) -> str:
    """What the checkpoint records about the model, so a resumed run uses the same one."""
    given = getattr(classifier, "identity", None)
    if isinstance(given, str):
        return given
    directory = getattr(classifier, "path", None)
    if directory is not None:
        weights = Path(directory) / "model.safetensors"
        digest = _file_identity(weights) if weights.is_file() else {}
        return f"{Path(directory).resolve()} " + " ".join(f"{k}={v}" for k, v in digest.items())
    kind = type(classifier)
    return f"{kind.__module__}.{kind.__qualname__}"


def _backend_name(classifier: Any) -> str | None:
    """The backend that computes the classifier's probabilities (``None`` for a stand-in model)."""
    name = getattr(classifier, "backend_name", None)
    return name if isinstance(name, str) else None


def _model_place(identity: Any) -> str:
    """The readable part of a model identity (its directory), for error messages."""
    text = str(identity) if identity is not None else "an unrecorded model"
    return text.split(" size=", 1)[0]


def _check_same_backend(saved: dict[str, Any], backend: str | None, checkpoint: Path, target: Path) -> None:
    """Refuse to continue an output whose rows another backend computed.

    Backends agree only to rounding (fp32) or to within a point of macro-F1 (int8), so a
    continued file would hold rows that a single run with either backend would not have
    written: labels of borderline messages flip at the point where the backend changed.
    """
    if "backend" not in saved:
        raise _cannot_resume(
            checkpoint,
            f"the checkpoint does not record which backend computed the rows already in {target.name} "
            "(an older version wrote it)",
        )
    before = saved["backend"]
    if before != backend:
        raise _cannot_resume(
            checkpoint,
            f"the rows already in {target.name} were computed with backend {before!r} and this run uses "
            f"{backend!r}, so one file would mix the two backends' labels",
        )


def _digest_update(digest: Any, conversation_id: str, messages: list[Message]) -> None:
    digest.update(f"{conversation_id}\x1f{len(messages)}\x1e".encode("utf-8", "backslashreplace"))
    for message in messages:
        digest.update(message.id.encode("utf-8", "backslashreplace") + b"\x1d")


def _cannot_resume(checkpoint: Path, reason: str) -> DisclosureError:
    from .outputs import OutputError

    return OutputError(
        f"cannot resume: {reason}; run the same command as the interrupted run with --resume, "
        "or start over without --resume",
        path=checkpoint,
    )


def _check_checkpoint(
    data: dict[str, Any],
    checkpoint: Path,
    *,
    target: Path,
    fmt: str,
    inputs: list[dict[str, Any]],
    options: dict[str, Any],
) -> None:
    """Refuse a checkpoint that belongs to another run, naming what differs."""
    if data.get("version") != CHECKPOINT_VERSION:
        raise _cannot_resume(checkpoint, f"the checkpoint has version {data.get('version')!r}, not {CHECKPOINT_VERSION}")
    if data.get("output") != target.name or data.get("output_format") != fmt:
        raise _cannot_resume(checkpoint, "the checkpoint belongs to another output or output format")
    before = data.get("inputs")
    if not isinstance(before, list) or [i.get("path") for i in before if isinstance(i, dict)] != [i["path"] for i in inputs]:
        raise _cannot_resume(checkpoint, "the input files (or their order) differ from the interrupted run's")
    for old, new in zip(before, inputs):
        if old != new:
            raise _cannot_resume(checkpoint, f"input {new['path']} changed since the interrupted run (size or content)")
    old_options = data.get("options") or {}
    for key, value in options.items():
        if old_options.get(key) != value:
            raise _cannot_resume(
                checkpoint,
                f"option '{key}' differs from the interrupted run's ({old_options.get(key)!r}, now {value!r})",
            )
    for key in ("conversations", "written"):
        if not isinstance(data.get(key), int) or data[key] < 0:
            raise _cannot_resume(checkpoint, f"the checkpoint is damaged ('{key}')")


def _writer_state(data: dict[str, Any], key: str, checkpoint: Path):
    from .outputs import WriterState

    value = data.get(key)
    if value is None:
        return None
    try:
        return WriterState.from_dict(value)
    except (ValueError, AttributeError, TypeError):
        raise _cannot_resume(checkpoint, f"the checkpoint is damaged ('{key}')") from None


def summary_document(conversations: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The ``--summary`` document: conversation id → figures, in input order.

    Conversation ids are unique within a file, not across files (two exports may both hold
    ``c1``, and a file without ids names its one conversation after the file's stem), so a
    repeated id gets ``#2``, ``#3``… in the order the inputs were read instead of overwriting
    the earlier conversation's figures.
    """
    document: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for conversation_id, figures in conversations:
        key = conversation_id
        while key in document:
            seen[conversation_id] = seen.get(conversation_id, 1) + 1
            key = f"{conversation_id}#{seen[conversation_id]}"
        document[key] = figures
    return document


def _load_records(partial: Path, offset: int, checkpoint: Path) -> list[ConversationRecord]:
    """The conversation records a resumed run had kept, read back from its figures file."""
    import json

    try:
        with partial.open("rb") as handle:
            data = handle.read(offset)
        if len(data) < offset:
            raise ValueError("short")
        records = []
        for line in data.decode("utf-8").split("\n")[:-1]:  # not splitlines(): texts may hold U+2028
            row = json.loads(line)
            records.append(ConversationRecord(row["conversation_id"], row["figures"], row.get("messages") or []))
    except (OSError, ValueError, KeyError, TypeError):
        raise _cannot_resume(checkpoint, f"the figures file {partial.name} is missing or damaged") from None
    return records


# --------------------------------------------------------------------------------------------
# The run


def annotate(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    classifier=None,
    backend: str = "auto",
    format: str | None = None,
    output_format: str | None = None,
    columns: ColumnMap = ColumnMap(),
    on_error: str = "raise",
    rejects: str | os.PathLike[str] | None = None,
    summary: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    report_text: bool = True,
    batch_size: int = 32,
    window: int = DEFAULT_WINDOW,
    permutations: int = 1000,
    force: bool = False,
    progress: bool = False,
    resume: bool = False,
    language: str = DEFAULT_POLICY,
    max_chars: int | None = DEFAULT_MAX_CHARS,
) -> AnnotationSummary:
    """Label every message of ``inputs`` and write them, with reciprocity fields, to ``output``.

    ``max_chars`` caps the characters of one message that are labeled (``None``: no cap); a
    longer message keeps its whole text in the output and is counted in ``capped``.

    ``summary`` writes one JSON document keyed by conversation id with the conversation
    figures; ``report`` a self-contained HTML page. With ``on_error="skip"`` bad records go to
    ``rejects`` (default ``<output>.rejects.jsonl``) instead of stopping the run. ``resume``
    continues an interrupted run with the same arguments (see the module documentation).

    ``backend`` picks what runs the model (:mod:`.backends`). The default, ``auto``, is
    ``onnx-fp32`` where ONNX Runtime is installed: torch's fp32 probabilities, computed faster
    on CPUs (``scripts/bench_annotate.py`` measures both) by a model exported once into the
    user cache; on resume it is the backend of the interrupted run.

    ``language`` says what happens to a message that is not in English (the model was trained
    on English only; :mod:`.language`): ``mark`` (default) keeps its row with the language code
    and no layer, and leaves it out of the reciprocity figures; ``reject`` sends it to the rejects
    file instead; ``label`` labels it anyway. Every row carries the ``language`` code.

    ``classifier`` may be any object with ``predict_proba(texts, batch_size=...)`` returning
    one row of four layer probabilities per text, in input order; an ``identity`` string
    attribute, when present, stands for the model in checkpoints.

    Raises :class:`DisclosureError` (or a subclass naming file, line and field) for anything
    wrong with the inputs, outputs or checkpoint; in that case no output file appears.
    """
    from .outputs import (
        RESUMABLE_FORMATS,
        AlreadyExists,
        OutputError,
        check_output_paths,
        checkpoint_path,
        open_output,
        open_resumable,
        output_format as output_format_of,
        read_checkpoint,
        remove_checkpoint,
        write_checkpoint,
        write_json_atomic,
    )

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    if window < 1 or batch_size < 1:
        raise ValueError("window and batch_size must be at least 1")
    if max_chars is not None and max_chars < 1:
        raise DisclosureError("--max-chars must be at least 1")
    check_policy(language)
    paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    if not paths:
        raise DisclosureError("no input files given")
    target = Path(output)
    fmt = output_format_of(target, output_format)
    resumable = fmt in RESUMABLE_FORMATS
    if resume and not resumable:
        raise OutputError(
            f"--resume needs a {', '.join(RESUMABLE_FORMATS)} output: a {fmt} file cannot be "
            "continued after an interruption (its footer is written last); run without --resume",
            path=target,
        )
    extras = [Path(p) for p in (summary, report) if p is not None]
    for path in extras:
        if path.exists() and not force:
            raise AlreadyExists(path)
    rejects_path = Path(rejects) if rejects else (
        target.with_name(target.name + ".rejects.jsonl") if on_error == "skip" or language == "reject" else None)
    # Every output is checked before the first batch: none may be an input (--force would destroy
    # it) and each folder must take a file. Existing files are judged by their own writers (a
    # resumed run appends to its rejects file and finds its output not yet there).
    check_output_paths(paths, {"-o": target, "--summary": summary, "--report": report, "--rejects": rejects_path},
                       force=True)

    stats = AnnotationSummary(output=str(target), rejects_path=str(rejects_path) if rejects_path else None)
    already_rejected = [0]  # rejects a resumed run finds already in its rejects file
    sinks: dict[str, Any] = {}

    language_rejected = [0]  # rejects of messages read whole but not in English

    def count_unsupported() -> None:
        stats.not_english += 1
        if language == "reject":
            language_rejected[0] += 1

    def on_reject(reject: Reject) -> None:
        stats.rejected += 1
        if stats.rejected > already_rejected[0]:
            sinks["rejects"].write(asdict(reject))

    # Every input is checked now (exists, format, gzip, binary): a wrong path costs a second.
    streams = [
        (path, read_messages(path, format=format, columns=columns, on_error=on_error, on_reject=on_reject))
        for path in paths
    ]

    checkpoint = checkpoint_path(target)
    figures_partial = target.with_name(f".{target.name}.partial.figures")
    need_figures = summary is not None or report is not None
    need_messages = None if report is None else bool(report_text)
    options: dict[str, Any] = {
        "format": format,
        "columns": asdict(columns),
        "on_error": on_error,
        "language": language,
        "rejects": str(rejects_path.resolve()) if rejects_path else None,
        "batch_size": batch_size,
        "window": window,
        "permutations": permutations,
        "max_chars": max_chars,
    }
    identities = [_input_identity(path) for path in paths] if resumable else []
    saved = read_checkpoint(checkpoint) if resume else None
    keep_figures, keep_messages = need_figures, need_messages
    records: list[ConversationRecord] = []
    if saved is not None:
        _check_checkpoint(saved, checkpoint, target=target, fmt=fmt, inputs=identities, options=options)
        keep_figures, keep_messages = bool(saved.get("figures")), saved.get("report_messages")
        if need_figures and not keep_figures:
            raise _cannot_resume(checkpoint, "the interrupted run had no --summary or --report, so it kept no figures")
        if need_messages is not None and keep_messages != need_messages:
            raise _cannot_resume(checkpoint, "--report or --report-text/--no-report-text differ from the interrupted run's")
    if keep_messages is not None:
        keep_figures = True

    if classifier is None:
        from .backends import AUTO, BACKENDS, check_backend_name
        from .classifier import DisclosureClassifier

        # A backend named outright can be refused before the model loads. "auto" continues on the
        # backend that computed the rows already written, whatever it would pick today: a run
        # started before annotate defaulted to auto (or on a machine without ONNX Runtime) ran
        # torch, and one file must not mix two backends' labels.
        if saved is not None and isinstance(saved.get("backend"), str):
            if check_backend_name(backend) == AUTO and saved["backend"] in BACKENDS:
                backend = saved["backend"]
            _check_same_backend(saved, backend, checkpoint, target)
        classifier = DisclosureClassifier.load(model, backend=backend)
    model_id = _model_identity(classifier)
    backend_name = _backend_name(classifier)

    skip = 0
    states: dict[str, Any] = {}
    expected_digest = None
    if saved is not None:
        _check_same_backend(saved, backend_name, checkpoint, target)
        if saved.get("model") != model_id:
            raise _cannot_resume(
                checkpoint,
                f"the model differs from the interrupted run's (the rows already in {target.name} came from "
                f"{_model_place(saved.get('model'))}, this run's model is {_model_place(model_id)}, or its "
                "weights changed since)",
            )
        states = {key: _writer_state(saved, key, checkpoint) for key in ("output_state", "rejects_state", "figures_state")}
        if states["output_state"] is None or (rejects_path is not None and states["rejects_state"] is None):
            raise _cannot_resume(checkpoint, "the checkpoint is damaged (no file sizes)")
        if keep_figures:
            if states["figures_state"] is None:
                raise _cannot_resume(checkpoint, "the checkpoint is damaged (no figures file size)")
            records = _load_records(figures_partial, states["figures_state"].offset, checkpoint)
            if len(records) != saved["conversations"]:
                raise _cannot_resume(checkpoint, f"the figures file {figures_partial.name} does not match the checkpoint")
        skip = saved["conversations"]
        expected_digest = saved.get("digest")
        already_rejected[0] = states["rejects_state"].rows if states["rejects_state"] is not None else 0
        stats.written = saved["written"]
        stats.conversations = skip
        stats.resumed_conversations = skip

    started = time.perf_counter()
    counter = [0]
    digest = hashlib.sha256()
    bar = _progress(progress)
    opened = finishing = preserve = False
    try:
        with ExitStack() as stack:
            if resumable:
                out = stack.enter_context(open_resumable(target, format=fmt, force=force, resume=states.get("output_state")))
                sinks["rejects"] = (
                    stack.enter_context(
                        open_resumable(rejects_path, format="jsonl", force=force, resume=states.get("rejects_state"))
                    )
                    if rejects_path is not None
                    else _NullWriter()
                )
                figures_out = (
                    stack.enter_context(
                        open_resumable(
                            figures_partial, format="jsonl", partial=figures_partial, check=False,
                            resume=states.get("figures_state"),
                        )
                    )
                    if keep_figures
                    else _NullWriter()
                )
                if saved is None:  # a killed run's leftovers, replaced now that our files are locked
                    _forget_interrupted_run(checkpoint, figures_partial if not keep_figures else None, rejects_path)
            else:
                out = stack.enter_context(open_output(target, format=fmt, force=force))
                sinks["rejects"] = stack.enter_context(_rejects_writer(rejects_path, force))
                figures_out = _NullWriter()
            opened = True
            stack.enter_context(bar)
            task = bar.add_task("annotating", total=None, rate="")

            def save_checkpoint() -> None:
                if not resumable:
                    return
                write_checkpoint(
                    checkpoint,
                    {
                        "version": CHECKPOINT_VERSION,
                        "output": target.name,
                        "output_format": fmt,
                        "inputs": identities,
                        "options": options,
                        "model": model_id,
                        "backend": backend_name,
                        "figures": keep_figures,
                        "report_messages": keep_messages,
                        "conversations": stats.conversations,
                        "written": stats.written,
                        "digest": digest.hexdigest(),
                        "output_state": out.mark().to_dict(),
                        "rejects_state": sinks["rejects"].mark().to_dict() if rejects_path is not None else None,
                        "figures_state": figures_out.mark().to_dict() if keep_figures else None,
                    },
                )

            def capped(message: Message) -> str:
                if max_chars is None or len(message.text) <= max_chars:
                    return message.text
                stats.capped += 1
                if stats.first_capped is None:
                    stats.first_capped = f"{message.source}, line {message.line}"
                return message.text[:max_chars]

            def flush(pending: list[tuple[str, list[Message]]]) -> None:
                screened = [screen_languages(messages, language, on_reject, count_unsupported, max_chars=max_chars)
                            for _, messages in pending]
                texts = [capped(m) for kept, codes, labeled in screened for m, ok in zip(kept, labeled) if ok]
                probs = classifier.predict_proba(texts, batch_size=batch_size) if texts else []
                if hasattr(probs, "tolist"):
                    probs = probs.tolist()
                start = 0
                for (conversation_id, all_messages), (messages, codes, labeled) in zip(pending, screened):
                    chunk = []
                    for ok in labeled:
                        chunk.append(probs[start] if ok else None)
                        start += ok
                    rows, figures = label_conversation(conversation_id, messages, chunk, permutations=permutations,
                                                       languages=codes)
                    for message, row in zip(messages, rows):
                        try:
                            out.write(row)
                        except OutputError as err:
                            raise DataError(
                                f"cannot be written to {target.name}: {err.reason}",
                                path=message.source,
                                line=message.line,
                            ) from None
                    _digest_update(digest, conversation_id, all_messages)
                    stats.written += len(rows)
                    stats.conversations += 1
                    if not keep_figures:
                        continue
                    record = ConversationRecord(conversation_id, figures)
                    if keep_messages is not None and len(records) < REPORT_CONVERSATION_LIMIT:
                        record.messages = [
                            {"id": m.id, "speaker": m.speaker, "text": m.text if keep_messages else None,
                             "layer": r["layer"], "depth": r["depth"], "timestamp": m.timestamp}
                            for m, r in zip(messages, rows)
                        ]
                    records.append(record)
                    figures_out.write(asdict(record))
                save_checkpoint()
                elapsed = time.perf_counter() - started
                bar.update(task, completed=stats.written, rate=f"{stats.written / elapsed:.0f} msg/s" if elapsed else "")

            def check_skipped(seen: int, messages_seen: int) -> None:
                if seen < skip or messages_seen != stats.written or digest.hexdigest() != expected_digest:
                    # Keep the interrupted run's files: the inputs may be restored and resumed.
                    nonlocal preserve
                    preserve = True
                    for writer in (out, sinks["rejects"], figures_out):
                        if not isinstance(writer, _NullWriter):
                            writer.keep_partial = True
                    raise _cannot_resume(
                        checkpoint,
                        "the inputs no longer hold the conversations the interrupted run wrote "
                        f"(expected {skip} conversations with {stats.written} messages)",
                    )

            pending: list[tuple[str, list[Message]]] = []
            waiting = skipped = skipped_messages = 0
            for conversation_id, messages in _conversations(
                streams, columns=columns, on_error=on_error, on_reject=on_reject, counter=counter
            ):
                if skipped < skip:
                    skipped += 1
                    skipped_messages += len(messages)
                    _digest_update(digest, conversation_id, messages)
                    if skipped == skip:
                        check_skipped(skipped, skipped_messages)
                    continue
                pending.append((conversation_id, messages))
                waiting += len(messages)
                if waiting >= window:
                    flush(pending)
                    pending, waiting = [], 0
            if skipped < skip:
                check_skipped(skipped, skipped_messages)
            if pending:
                flush(pending)
            stats.read = counter[0] + stats.rejected - language_rejected[0]
            stats.seconds = time.perf_counter() - started
            if stats.read != stats.written + stats.rejected:  # pragma: no cover - an invariant, not a branch
                raise AssertionError(f"lost messages: read {stats.read}, written {stats.written}, rejected {stats.rejected}")

            finishing = True
            if resumable:
                for writer in (out, sinks["rejects"], figures_out):
                    if not isinstance(writer, _NullWriter):
                        writer.keep_partial = True
                if keep_figures:
                    figures_out.discard()
        # Leaving the block committed the rejects, then the output (each by rename).
        if resumable:
            remove_checkpoint(checkpoint)
    except DisclosureError:
        if resumable and opened and not finishing and not preserve:
            remove_checkpoint(checkpoint)  # the partial files were removed: nothing to resume
        raise

    if summary is not None:
        write_json_atomic(summary, summary_document((r.conversation_id, r.figures) for r in records), force=force)
        stats.summary_path = str(summary)
    if report is not None:
        from .outputs import write_text_atomic
        from .report import render_report

        write_text_atomic(report, render_report(records, stats), force=force)
        stats.report_path = str(report)
    return stats


def _forget_interrupted_run(checkpoint: Path, figures_partial: Path | None, rejects_path: Path | None) -> None:
    """Remove what a killed run left that this run does not overwrite itself."""
    from .outputs import partial_path, read_checkpoint, remove_checkpoint

    try:
        old = read_checkpoint(checkpoint)
    except DisclosureError:
        old = None
    old_rejects = ((old or {}).get("options") or {}).get("rejects") if isinstance(old, dict) else None
    if isinstance(old_rejects, str) and (rejects_path is None or Path(old_rejects) != rejects_path.resolve()):
        _remove(partial_path(old_rejects))
    if figures_partial is not None:
        _remove(figures_partial)
    remove_checkpoint(checkpoint)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except (FileNotFoundError, IsADirectoryError):
        pass


class _NullWriter:
    def __enter__(self) -> "_NullWriter":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def write(self, row: dict[str, Any]) -> None:
        pass


def _rejects_writer(path: Path | None, force: bool):
    from .outputs import open_output

    return open_output(path, format="jsonl", force=force) if path is not None else _NullWriter()


class _NoProgress:
    """Stands in for a disabled progress bar, so a quiet run does not import rich at all."""

    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


def _progress(enabled: bool):
    if not enabled:
        return _NoProgress()
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} messages"),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )
