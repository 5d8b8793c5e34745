"""What one annotation run is asked to do: its options, checked once, and the files they name.

:class:`AnnotateOptions` holds every option of :func:`disclosure_nlp.annotate.annotate` but the
inputs, the output and the model, and checks them when it is made; :class:`RunPlan` resolves
the files of a run (output format, rejects file, checkpoint, figures side file) and checks the
outputs before anything is read or loaded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import DisclosureError
from ..model.language import DEFAULT_POLICY, check_policy
from ..io.transcripts import ColumnMap
from .labeling import DEFAULT_MAX_CHARS, DEFAULT_WINDOW

PathLike = str | os.PathLike[str]


def check_max_chars(max_chars: int | None) -> int | None:
    """``max_chars`` when it is a usable character cap (``None``: no cap)."""
    if max_chars is not None and max_chars < 1:
        raise DisclosureError("--max-chars must be at least 1")
    return max_chars


@dataclass(frozen=True)
class AnnotateOptions:
    """The options of an annotation run, as :func:`~disclosure_nlp.annotate.annotate` takes them
    (same names, same defaults); a wrong value is refused when the options are made."""

    format: str | None = None
    output_format: str | None = None
    columns: ColumnMap = ColumnMap()
    on_error: str = "raise"
    rejects: PathLike | None = None
    summary: PathLike | None = None
    report: PathLike | None = None
    report_text: bool = True
    batch_size: int = 32
    window: int = DEFAULT_WINDOW
    permutations: int = 1000
    language: str = DEFAULT_POLICY
    max_chars: int | None = DEFAULT_MAX_CHARS
    force: bool = False
    resume: bool = False
    progress: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {self.on_error!r}")
        if self.window < 1 or self.batch_size < 1:
            raise ValueError("window and batch_size must be at least 1")
        check_max_chars(self.max_chars)
        check_policy(self.language)

    @property
    def need_figures(self) -> bool:
        """Whether the run keeps every conversation's figures (for the summary or the report)."""
        return self.summary is not None or self.report is not None

    @property
    def need_messages(self) -> bool | None:
        """``None`` without a report, else whether the report shows the message texts."""
        return None if self.report is None else bool(self.report_text)

    def checkpoint_options(self, rejects_path: Path | None) -> dict[str, Any]:
        """The options that change the output, as a checkpoint records them (in this order)."""
        return {
            "format": self.format,
            "columns": asdict(self.columns),
            "on_error": self.on_error,
            "language": self.language,
            "rejects": str(rejects_path.resolve()) if rejects_path else None,
            "batch_size": self.batch_size,
            "window": self.window,
            "permutations": self.permutations,
            "max_chars": self.max_chars,
        }


@dataclass(frozen=True)
class RunPlan:
    """The files of one run: its inputs, its output and everything written beside it."""

    inputs: list[Path]
    target: Path
    fmt: str
    resumable: bool
    rejects_path: Path | None
    checkpoint: Path
    figures_partial: Path

    @classmethod
    def resolve(cls, inputs: PathLike | Sequence[PathLike], output: PathLike, options: AnnotateOptions) -> RunPlan:
        """The run's files; every output is checked now, before a model loads or a line is read."""
        from ..io.outputs import (
            RESUMABLE_FORMATS,
            AlreadyExists,
            OutputError,
            check_output_paths,
            checkpoint_path,
        )
        from ..io.outputs import output_format as output_format_of

        paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
        if not paths:
            raise DisclosureError("no input files given")
        target = Path(output)
        fmt = output_format_of(target, options.output_format)
        resumable = fmt in RESUMABLE_FORMATS
        if options.resume and not resumable:
            raise OutputError(
                f"--resume needs a {', '.join(RESUMABLE_FORMATS)} output: a {fmt} file cannot be "
                "continued after an interruption (its footer is written last); run without --resume",
                path=target,
            )
        for path in [Path(p) for p in (options.summary, options.report) if p is not None]:
            if path.exists() and not options.force:
                raise AlreadyExists(path)
        rejects_path = Path(options.rejects) if options.rejects else (
            target.with_name(target.name + ".rejects.jsonl")
            if options.on_error == "skip" or options.language == "reject" else None)
        # Every output is checked before the first batch: none may be an input (--force would destroy
        # it) and each folder must take a file. Existing files are judged by their own writers (a
        # resumed run appends to its rejects file and finds its output not yet there).
        check_output_paths(
            paths, {"-o": target, "--summary": options.summary, "--report": options.report, "--rejects": rejects_path},
            force=True,
        )
        return cls(paths, target, fmt, resumable, rejects_path, checkpoint_path(target),
                   target.with_name(f".{target.name}.partial.figures"))
