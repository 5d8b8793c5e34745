"""The Typer app every command module registers on, and the options and error exit they share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


app = typer.Typer(
    name="disclosure",
    help="Label how deeply each chat message self-discloses (none, surface, intermediate, core).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: with rich markup on, "[onnx]" in "disclosure-nlp[onnx]" is taken
    # for a style tag and silently dropped, and every extra's name would need escaping.
    rich_markup_mode=None,
)

ModelOption = Annotated[
    Optional[Path], typer.Option("--model", "-m", help="Model directory (default: the shipped default model).")
]
TextCol = Annotated[str, typer.Option("--text-col", help="Column holding the message text.")]
BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        help="What runs the model: torch (PyTorch, fp32), onnx-fp32 (the same fp32 model on ONNX Runtime, "
        "loaded without PyTorch: starts in about a second), onnx (ONNX Runtime int8, fastest on CPUs, "
        "within a point of macro-F1 of fp32), or auto (onnx-fp32 when ONNX Runtime is installed, else "
        "torch). The ONNX backends export the model once into the user cache; ONNX Runtime is part "
        "of the plain install.",
    ),
]
LabelCol = Annotated[str, typer.Option("--label-col", help="Column holding the gold layer.")]


def _fail(err: Exception) -> None:
    # An error that names a Python argument says the flag here instead (--force, not force=True).
    text = err.for_cli() if hasattr(err, "for_cli") else str(err)
    typer.secho(f"error: {text}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


LanguageOption = Annotated[str, typer.Option("--language", help="What to do with a message not in English (the model knows English only): mark = keep it with its language code and no layer (default); reject = report it in the rejects file; label = label it anyway. --engine ray takes mark or label.")]
