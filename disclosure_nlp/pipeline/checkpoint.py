"""Checkpoints of an annotation run: what they record, and whether a run may continue from one.

A checkpoint names the inputs (path, size, SHA-256 of both ends), the options that change the
output, the model and its backend, how far the run got and each partial file's size then (see
:mod:`disclosure_nlp.annotate`). :func:`read_saved` and :func:`resume_point` refuse one that
belongs to another run, saying what differs; :class:`ResumePoint` is what a resumed run skips.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DisclosureError
from ..io.outputs import (
    OutputError,
    WriterState,
    partial_path,
    read_checkpoint,
    remove_checkpoint,
)
from ..io.transcripts import CORPUS_UTTERANCES
from .options import AnnotateOptions, RunPlan

CHECKPOINT_VERSION = 1
IDENTITY_BYTES = 64 * 1024
"""Bytes hashed at each end of an input (and of the model's weights) to recognise it on resume."""
STATE_KEYS = ("output_state", "rejects_state", "figures_state")
"""The partial files a checkpoint records, in the order a run opens them."""


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


def input_identity(path: Path) -> dict[str, Any]:
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


def model_identity(classifier: Any) -> str:
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


def backend_name(classifier: Any) -> str | None:
    """The backend that computes the classifier's probabilities (``None`` for a stand-in model)."""
    name = getattr(classifier, "backend_name", None)
    return name if isinstance(name, str) else None


def _model_place(identity: Any) -> str:
    """The readable part of a model identity (its directory), for error messages."""
    text = str(identity) if identity is not None else "an unrecorded model"
    return text.split(" size=", 1)[0]


def check_same_backend(saved: dict[str, Any], backend: str | None, checkpoint: Path, target: Path) -> None:
    """Refuse to continue an output whose rows another backend computed.

    Backends agree only to rounding (fp32) or to within a point of macro-F1 (int8), so a
    continued file would hold rows that a single run with either backend would not have
    written: labels of borderline messages flip at the point where the backend changed.
    """
    if "backend" not in saved:
        raise cannot_resume(
            checkpoint,
            f"the checkpoint does not record which backend computed the rows already in {target.name} "
            "(an older version wrote it)",
        )
    before = saved["backend"]
    if before != backend:
        raise cannot_resume(
            checkpoint,
            f"the rows already in {target.name} were computed with backend {before!r} and this run uses "
            f"{backend!r}, so one file would mix the two backends' labels",
        )


def cannot_resume(checkpoint: Path, reason: str) -> DisclosureError:
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
        raise cannot_resume(checkpoint, f"the checkpoint has version {data.get('version')!r}, not {CHECKPOINT_VERSION}")
    if data.get("output") != target.name or data.get("output_format") != fmt:
        raise cannot_resume(checkpoint, "the checkpoint belongs to another output or output format")
    before = data.get("inputs")
    if not isinstance(before, list) or [i.get("path") for i in before if isinstance(i, dict)] != [i["path"] for i in inputs]:
        raise cannot_resume(checkpoint, "the input files (or their order) differ from the interrupted run's")
    for old, new in zip(before, inputs):
        if old != new:
            raise cannot_resume(checkpoint, f"input {new['path']} changed since the interrupted run (size or content)")
    old_options = data.get("options") or {}
    for key, value in options.items():
        if old_options.get(key) != value:
            raise cannot_resume(
                checkpoint,
                f"option '{key}' differs from the interrupted run's ({old_options.get(key)!r}, now {value!r})",
            )
    for key in ("conversations", "written"):
        if not isinstance(data.get(key), int) or data[key] < 0:
            raise cannot_resume(checkpoint, f"the checkpoint is damaged ('{key}')")


def _writer_state(data: dict[str, Any], key: str, checkpoint: Path):
    value = data.get(key)
    if value is None:
        return None
    try:
        return WriterState.from_dict(value)
    except (ValueError, AttributeError, TypeError):
        raise cannot_resume(checkpoint, f"the checkpoint is damaged ('{key}')") from None


def _count_records(partial: Path, offset: int, checkpoint: Path) -> int:
    """How many conversations a resumed run's figures file holds (it is read, not kept)."""
    try:
        count = size = 0
        with partial.open("rb") as handle:
            while size < offset:
                chunk = handle.read(min(1 << 20, offset - size))
                if not chunk:
                    raise ValueError("short")
                count += chunk.count(b"\n")
                size += len(chunk)
                last = chunk[-1:]
        if offset and last != b"\n":
            raise ValueError("cut")
    except (OSError, ValueError):
        raise cannot_resume(checkpoint, f"the figures file {partial.name} is missing or damaged") from None
    return count


def forget_interrupted_run(checkpoint: Path, figures_partial: Path | None, rejects_path: Path | None) -> None:
    """Remove what a killed run left that this run does not overwrite itself."""
    try:
        old = read_checkpoint(checkpoint)
    except DisclosureError:
        old = None
    old_rejects = ((old or {}).get("options") or {}).get("rejects") if isinstance(old, dict) else None
    if isinstance(old_rejects, str) and (rejects_path is None or Path(old_rejects) != rejects_path.resolve()):
        remove_file(partial_path(old_rejects))
    if figures_partial is not None:
        remove_file(figures_partial)
    remove_checkpoint(checkpoint)


def remove_file(path: Path) -> None:
    try:
        path.unlink()
    except (FileNotFoundError, IsADirectoryError):
        pass




@dataclass(frozen=True)
class Saved:
    """The checkpoint a resumed run continues (``data`` is ``None`` for a fresh run), and whether
    the run keeps the figures file and the report's messages (as the interrupted run did)."""

    data: dict[str, Any] | None
    keep_figures: bool
    keep_messages: bool | None


def read_saved(plan: RunPlan, options: AnnotateOptions, identities: list[dict[str, Any]]) -> Saved:
    """The checkpoint to continue, checked against this run's inputs and options."""
    checkpoint = plan.checkpoint
    saved = read_checkpoint(checkpoint) if options.resume else None
    keep_figures, keep_messages = options.need_figures, options.need_messages
    if saved is not None:
        _check_checkpoint(saved, checkpoint, target=plan.target, fmt=plan.fmt, inputs=identities,
                          options=options.checkpoint_options(plan.rejects_path))
        keep_figures, keep_messages = bool(saved.get("figures")), saved.get("report_messages")
        if options.need_figures and not keep_figures:
            raise cannot_resume(checkpoint, "the interrupted run had no --summary or --report, so it kept no figures")
        if options.need_messages is not None and keep_messages != options.need_messages:
            raise cannot_resume(checkpoint, "--report or --report-text/--no-report-text differ from the interrupted run's")
    if keep_messages is not None:
        keep_figures = True
    return Saved(saved, keep_figures, keep_messages)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run starts: after ``skip`` conversations holding ``written`` messages, whose
    digest must be ``digest``, with ``rejected`` rejects and the partial files at ``states``."""

    checkpoint: Path
    skip: int = 0
    written: int = 0
    digest: str | None = None
    rejected: int = 0
    states: dict[str, WriterState | None] = field(default_factory=dict)
    screened: dict[str, Any] = field(default_factory=dict)
    """The language and length counts of the part already written (``not_english``,
    ``language_rejected``, ``capped``, ``first_capped``): that part is read again but not
    screened again, so its counts come from the checkpoint."""

    def matches(self, seen: int, messages: int, digest: Any) -> bool:
        """Whether the conversations read again are the ones the interrupted run wrote (the
        messages read are those written plus those sent to the rejects as not English)."""
        dropped = int(self.screened.get("language_rejected") or 0)
        return seen >= self.skip and messages == self.written + dropped and digest.hexdigest() == self.digest

    def mismatch(self) -> DisclosureError:
        return cannot_resume(
            self.checkpoint,
            "the inputs no longer hold the conversations the interrupted run wrote "
            f"(expected {self.skip} conversations with {self.written} messages)",
        )


def resume_point(plan: RunPlan, saved: Saved, model_id: str, backend: str | None) -> ResumePoint:
    """Where this run starts, once the model is known; refuses a checkpoint it cannot continue."""
    checkpoint, data = plan.checkpoint, saved.data
    if data is None:
        return ResumePoint(checkpoint)
    check_same_backend(data, backend, checkpoint, plan.target)
    if data.get("model") != model_id:
        raise cannot_resume(
            checkpoint,
            f"the model differs from the interrupted run's (the rows already in {plan.target.name} came from "
            f"{_model_place(data.get('model'))}, this run's model is {_model_place(model_id)}, or its "
            "weights changed since)",
        )
    states = {key: _writer_state(data, key, checkpoint) for key in STATE_KEYS}
    if states["output_state"] is None or (plan.rejects_path is not None and states["rejects_state"] is None):
        raise cannot_resume(checkpoint, "the checkpoint is damaged (no file sizes)")
    if saved.keep_figures:
        if states["figures_state"] is None:
            raise cannot_resume(checkpoint, "the checkpoint is damaged (no figures file size)")
        if _count_records(plan.figures_partial, states["figures_state"].offset, checkpoint) != data["conversations"]:
            raise cannot_resume(checkpoint, f"the figures file {plan.figures_partial.name} does not match the checkpoint")
    rejects = states["rejects_state"]
    screened = data.get("screened") if isinstance(data.get("screened"), dict) else {}
    return ResumePoint(checkpoint, data["conversations"], data["written"], data.get("digest"),
                       rejects.rows if rejects is not None else 0, states, screened)
