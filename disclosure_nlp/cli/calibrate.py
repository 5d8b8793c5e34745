"""``disclosure calibrate``: refit a trained model's calibration on real-dev."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DisclosureError
from ._app import app, _fail


@app.command()
def calibrate(
    model_dir: Annotated[Optional[Path], typer.Argument(help="Model directory (default: the shipped default model).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write (compact when the input is).")] = ...,
    real_csv: Annotated[Path, typer.Option("--real-csv", help="The public CL-Aff OffMyChest labeled_training_set.csv; the dev split of the project's labels is fitted on.")] = ...,
    real_labels: Annotated[Optional[Path], typer.Option("--real-labels", help="Labels by sentence id (default: the project's data/real/claff_labels.jsonl).")] = None,
    method: Annotated[str, typer.Option("--method", help="vector (a scale and a bias per layer) or temperature (one number; labels unchanged).")] = "vector",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr (it is shown only on a terminal anyway).")] = False,
) -> None:
    """Refit a model's calibration on real held-out sentences and write the calibrated model."""
    from ..model.recalibration import recalibrate

    try:
        result = recalibrate(model_dir, output, real_csv=real_csv, real_labels=real_labels, method=method, force=force,
                             progress=not quiet and sys.stderr.isatty())
    except DisclosureError as err:
        _fail(err)
    record = result.calibration
    typer.echo(
        f"wrote {result.output_dir}: {record['method']} calibration fitted on {record['n']} real-dev sentences, "
        f"expected calibration error there {record['ece_before']:.3f} -> {record['ece_after']:.3f}"
    )
