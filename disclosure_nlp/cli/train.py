"""``disclosure train``: fine-tune a model folder from labeled files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DisclosureError
from ._app import LabelCol, TextCol, app, _fail


@app.command()
def train(
    train_file: Annotated[Path, typer.Option("--train", help="Training data: JSONL/CSV/TSV, or a dataset saved with datasets' save_to_disk.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    dev_file: Annotated[Optional[Path], typer.Option("--dev", help="Dev data for early stopping on macro-F1 (default: the 'validation' or 'dev' split of --train when it is a saved DatasetDict).")] = None,
    train_split: Annotated[Optional[str], typer.Option("--train-split", help="Split of a saved DatasetDict given as --train (default: train).")] = None,
    dev_split: Annotated[Optional[str], typer.Option("--dev-split", help="Split of the saved DatasetDict used as dev data (default: validation, else dev).")] = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Base model directory or package.")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 4,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    learning_rate: Annotated[float, typer.Option("--learning-rate", "--lr")] = 8e-5,
    patience: Annotated[int, typer.Option(min=1, help="Epochs without dev improvement before stopping.")] = 2,
    seed: int = 13,
    data_seed: Annotated[Optional[int], typer.Option("--data-seed", help="Seed of the batch order and dropout only (default: --seed). Runs with one --seed and several --data-seed can be averaged with scripts/average_models.py.")] = None,
    max_length: Annotated[int, typer.Option(min=8)] = 256,
    train_embeddings: Annotated[bool, typer.Option("--train-embeddings", help="Also train the word embeddings.")] = False,
    compact: Annotated[bool, typer.Option("--compact", help="Write the small shipped form (fp16, embeddings from the base package).")] = False,
    real_csv: Annotated[Optional[Path], typer.Option("--real-csv", help="The public CL-Aff OffMyChest labeled_training_set.csv: the project's labels of its sentences (data/real/claff_labels.jsonl) are joined with it; real-train is trained on, real-dev picks the epoch and fits the calibration.")] = None,
    real_labels: Annotated[Optional[Path], typer.Option("--real-labels", help="Labels by sentence id to join with --real-csv (default: the project's data/real/claff_labels.jsonl).")] = None,
    real_weight: Annotated[int, typer.Option("--real-weight", min=1, help="Times each real training sentence is seen per epoch.")] = 2,
    real_layer_weight: Annotated[Optional[list[str]], typer.Option("--real-layer-weight", help="With --real-csv: LAYER=N sees real-train sentences of LAYER N times as often (repeatable), e.g. core=4.")] = None,
    crowd_weight: Annotated[float, typer.Option("--crowd-weight", min=0.0, help="With --real-csv: loss weight of the CL-Aff crowd labels as weak supervision on the unlabeled sentences of real-train posts (0: off).")] = 0.0,
    teacher: Annotated[Optional[Path], typer.Option("--teacher", help="A trained model folder (e.g. a larger base model's run) whose probabilities every training row also learns (knowledge distillation).")] = None,
    distill_weight: Annotated[float, typer.Option("--distill-weight", min=0.0, max=1.0, help="With --teacher: the share of the loss that is the teacher's.")] = 0.5,
    distill_temperature: Annotated[float, typer.Option("--distill-temperature", min=0.01, help="With --teacher: the temperature both distributions are flattened by.")] = 2.0,
    calibrate: Annotated[bool, typer.Option("--calibrate/--no-calibrate", help="Fit a calibration on real-dev (else dev) and fold it into the model.")] = True,
    calibration: Annotated[str, typer.Option("--calibration", help="Calibration method: vector (a scale and a bias per layer) or temperature (one number; labels unchanged).")] = "vector",
    text_col: TextCol = "text",
    label_col: LabelCol = "layer",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
) -> None:
    """Fine-tune a transformer on labeled messages and write a model directory."""
    from ..model.data import Columns
    from ..model.training import TrainConfig, train as run_training

    try:
        layer_weights = _layer_weights(real_layer_weight or [])
    except DisclosureError as err:
        _fail(err)
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience, seed=seed, data_seed=data_seed,
        max_length=max_length, freeze_embeddings=not train_embeddings, real_weight=real_weight, calibrate=calibrate,
        calibration_method=calibration, crowd_weight=crowd_weight, real_layer_weights=layer_weights or None,
        teacher=None if teacher is None else str(teacher), distill_weight=distill_weight, distill_temperature=distill_temperature,
    )
    if base_model:
        config.base_model = base_model
    def report(log) -> None:
        typer.echo(
            f"epoch {log.epoch}: train loss {log.train_loss:.3f}, dev macro-F1 {log.dev_macro_f1:.3f}, "
            f"accuracy {log.dev_accuracy:.3f}"
            + (f", real-dev macro-F1 {log.real_dev_macro_f1:.3f}" if log.real_dev_macro_f1 is not None else "")
            + f" ({log.seconds:.0f} s)"
        )

    try:
        if compact:
            import tempfile

            from ..model.modelstore import pack_compact

            if output.exists() and any(output.iterdir()) and not force:
                raise DisclosureError(f"{output} already exists; pass --force to replace it")
            with tempfile.TemporaryDirectory() as scratch:
                result = run_training(train_file, dev_file, Path(scratch) / output.name, config,
                                      columns=Columns(text_col, label_col), force=True, on_epoch=report,
                                      train_split=train_split, dev_split=dev_split, real_csv=real_csv, real_labels=real_labels)
                output.parent.mkdir(parents=True, exist_ok=True)
                pack_compact(result.output_dir, output, base=config.base_model)
        else:
            result = run_training(
                train_file, dev_file, output, config, columns=Columns(text_col, label_col), force=force, on_epoch=report,
                train_split=train_split, dev_split=dev_split, real_csv=real_csv, real_labels=real_labels,
            )
    except DisclosureError as err:
        _fail(err)
    typer.echo(
        f"wrote {output}: best epoch {result.best_epoch}/{len(result.history)}, dev macro-F1 "
        f"{result.dev_report.macro_f1:.3f}, {result.seconds:.0f} s"
    )


def _layer_weights(pairs: list[str]) -> dict[str, int]:
    weights: dict[str, int] = {}
    for pair in pairs:
        layer, _, count = pair.partition("=")
        if not count.strip().isdigit():
            raise DisclosureError(f"--real-layer-weight {pair!r}: write LAYER=N with a whole number N, e.g. core=4")
        weights[layer.strip()] = int(count)
    return weights
