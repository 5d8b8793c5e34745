"""``disclosure export``: ONNX or a full Hugging Face folder for other runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DisclosureError
from ._app import app, _fail


@app.command()
def export(
    model_dir: Annotated[Optional[Path], typer.Argument(help="Model directory (default: the shipped default model).")] = None,
    onnx: Annotated[Optional[Path], typer.Option("--onnx", help="Write the ONNX model (fp32 model.onnx and int8 model.int8.onnx, with tokenizer and config) to this directory (ONNX Runtime is part of the plain install).")] = None,
    full: Annotated[Optional[Path], typer.Option("--full", help="Write a standalone Hugging Face model directory here (the compact shipped form rebuilt with its full weights), ready for transformers' pipeline().")] = None,
    no_quantize: Annotated[bool, typer.Option("--no-int8", help="With --onnx: skip the int8 model.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output directories.")] = False,
) -> None:
    """Export a model for other runtimes: ONNX (--onnx) or a full Hugging Face directory (--full)."""
    if onnx is None and full is None:
        _fail(DisclosureError("give --onnx OUT, --full OUT or both"))
    for target in (onnx, full):
        if target is not None and target.exists() and not force:
            _fail(DisclosureError(f"{target} already exists; pass --force to replace it"))
    try:
        if full is not None:
            _export_full(model_dir, full)
            typer.echo(f"full model directory: {full}")
        if onnx is not None:
            from ..model.backends import export_onnx

            written = export_onnx(model_dir, onnx, quantize=not no_quantize)
            typer.echo(f"ONNX model: {written}")
    except DisclosureError as err:
        _fail(err)


def _export_full(model_dir: Optional[Path], out: Path) -> None:
    """Copy the full form of a model directory (rebuilt from a compact one if need be) to ``out``."""
    import shutil

    from ..io.safe_files import replace_folder, staged_folder
    from ..model.modelstore import resolve_model_dir

    source = resolve_model_dir(model_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_folder(out, prefix=f".{out.name}.") as staging:
        for item in source.iterdir():
            if item.is_file():
                shutil.copy2(item, staging / item.name)
        replace_folder(staging, out)
