"""``disclosure evaluate``: score a model against gold labels, beside the TF-IDF baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DisclosureError
from ._app import BackendOption, LabelCol, ModelOption, TextCol, app, _fail


@app.command()
def evaluate(
    data: Annotated[Optional[Path], typer.Option("--data", help="Labeled data to score (JSONL/CSV/TSV or saved dataset); or give --real-csv.")] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the figures as JSON here, and a reliability diagram beside it (NAME.reliability.png).")] = None,
    baseline_train: Annotated[Optional[Path], typer.Option("--baseline-train", help="Training split for the baseline (default: the model's own).")] = None,
    baseline_split: Annotated[Optional[str], typer.Option("--baseline-split", help="Split of --baseline-train when it is a saved DatasetDict.")] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Skip the TF-IDF baseline.")] = False,
    record: Annotated[Optional[str], typer.Option("--record", help="Save the figures in the model's metrics.json and card under this name.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split of a DatasetDict saved with datasets' save_to_disk, given as --data.")] = None,
    text_col: TextCol = "text",
    label_col: LabelCol = "layer",
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr (it is shown only on a terminal anyway).")] = False,
    backend: BackendOption = "torch",
    real_csv: Annotated[Optional[Path], typer.Option("--real-csv", help="Score the project's labeled CL-Aff sentences instead of --data: the public labeled_training_set.csv, whose text is joined with the labels at run time.")] = None,
    real_split: Annotated[str, typer.Option("--real-split", help="Which split of the project's CL-Aff labels to score with --real-csv (test, dev or train).")] = "test",
    real_labels: Annotated[Optional[Path], typer.Option("--real-labels", help="Labels by sentence id, with --real-csv (default: the project's data/real/claff_labels.jsonl).")] = None,
) -> None:
    """Score a model on labeled data, next to a TF-IDF + logistic-regression baseline."""
    from ..model.data import Columns
    from ..model.evaluation import evaluate as run_evaluation, evaluate_real, format_report, record_evaluation

    from ..io.outputs import check_output_paths, write_json_atomic

    if (data is None) == (real_csv is None):
        _fail(DisclosureError("give exactly one of --data FILE and --real-csv CSV"))
    if real_csv is None and (real_labels is not None or real_split != "test"):
        _fail(DisclosureError("--real-split and --real-labels go with --real-csv"))
    source = data if data is not None else real_csv
    diagram_path = output.with_name(output.stem + ".reliability.png") if output else None
    try:  # before the model runs: a wrong output path costs nothing
        inputs = [source] + ([model] if model else []) + ([real_labels] if real_labels else [])
        check_output_paths(inputs, {"-o": output, "reliability diagram": diagram_path}, force=force)
    except DisclosureError as err:
        _fail(err)
    try:
        if real_csv is not None:
            result = evaluate_real(
                model, real_csv, split=real_split, labels_path=real_labels, baseline_train=baseline_train,
                baseline_split=baseline_split, with_baseline=not no_baseline, backend=backend,
                progress=not quiet and sys.stderr.isatty(),
            )
        else:
            result = run_evaluation(
                model, data, columns=Columns(text_col, label_col), baseline_train=baseline_train,
                baseline_split=baseline_split, with_baseline=not no_baseline, split=split, backend=backend,
                progress=not quiet and sys.stderr.isatty(),
            )
    except DisclosureError as err:
        _fail(err)
    payload = result.to_dict()
    diagram = None
    if output:
        from ..model.calibration import reliability_diagram

        try:
            write_json_atomic(output, payload, force=force)
            if result.calibration is not None:
                diagram = reliability_diagram(result.calibration, diagram_path, force=force,
                                              title=f"{Path(result.model_dir).name} on "
                                                    + (Path(data).name if data is not None else f"real-{real_split}"))
        except (DisclosureError, OSError) as err:
            _fail(DisclosureError(f"{output}: {err}") if isinstance(err, OSError) else err)
    if record:
        record_evaluation(model or Path(result.model_dir), record, result)
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"data: {result.data}  model: {result.model_dir}" + (f"  backend: {backend}" if backend != "torch" else ""))
    typer.echo(format_report(result.model))
    if result.macro_f1_interval is not None:
        interval = result.macro_f1_interval
        typer.echo(f"  macro-F1 {interval.level:.0%} bootstrap interval {interval.low:.3f}-{interval.high:.3f} "
                   f"({result.model.n} messages)")
    if result.calibration is not None:
        typer.echo(f"  expected calibration error {result.calibration.ece:.3f} (mean confidence "
                   f"{result.calibration.mean_confidence:.3f}, accuracy {result.calibration.accuracy:.3f})"
                   + (f"; reliability diagram: {diagram}" if diagram else ""))
    if result.baseline:
        typer.echo(format_report(result.baseline))
        gain = result.model.macro_f1 - result.baseline.macro_f1
        typer.echo(f"macro-F1 gain over the baseline: {gain * 100:+.1f} points"
                   + (f" ({result.gain_interval.level:.0%} bootstrap interval {result.gain_interval.low * 100:+.1f} to "
                      f"{result.gain_interval.high * 100:+.1f})" if result.gain_interval is not None else ""))
