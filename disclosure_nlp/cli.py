"""The ``disclosure`` command line: a thin layer over the library.

Each command parses options, calls one library function and prints what it returns; heavy
imports (torch, transformers, datasets) happen inside the commands, so ``disclosure --help`` and
the start of ``disclosure predict`` stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import DisclosureError

app = typer.Typer(
    name="disclosure",
    help="Label how deeply each chat message self-discloses (none, surface, intermediate, core).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModelOption = Annotated[
    Optional[Path], typer.Option("--model", "-m", help="Model directory (default: the shipped default model).")
]
TextCol = Annotated[str, typer.Option("--text-col", help="Column holding the message text.")]
LabelCol = Annotated[str, typer.Option("--label-col", help="Column holding the gold layer.")]


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(help="Messages to label; '-' reads one per line from stdin.")] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per message.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
) -> None:
    """Label messages given on the command line (or stdin) with their disclosure layer."""
    items = list(texts or [])
    if items == ["-"]:
        items = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not items:
        _fail(DisclosureError("give at least one message, or '-' to read them from stdin"))
    from .classifier import DisclosureClassifier

    try:
        classifier = DisclosureClassifier.load(model)
    except DisclosureError as err:
        _fail(err)
    predictions = classifier.predict(items, batch_size=batch_size)
    for text, prediction in zip(items, predictions):
        if as_json:
            typer.echo(json.dumps({"text": text, **prediction.to_dict()}, ensure_ascii=False))
        else:
            probs = " ".join(f"{k}={v:.2f}" for k, v in prediction.probabilities.items())
            typer.echo(f"{prediction.layer:<12} confidence={prediction.confidence:.2f} depth={prediction.depth:.2f}  [{probs}]")
            if len(items) > 1:
                typer.echo(f"  ↳ {text}")


@app.command()
def train(
    train_file: Annotated[Path, typer.Option("--train", help="Training data (JSONL/CSV/TSV or saved dataset).")],
    dev_file: Annotated[Path, typer.Option("--dev", help="Dev data for early stopping on macro-F1.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Base model directory or package.")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    learning_rate: Annotated[float, typer.Option("--learning-rate", "--lr")] = 8e-5,
    patience: Annotated[int, typer.Option(min=1, help="Epochs without dev improvement before stopping.")] = 3,
    seed: int = 13,
    max_length: Annotated[int, typer.Option(min=8)] = 256,
    train_embeddings: Annotated[bool, typer.Option("--train-embeddings", help="Also train the word embeddings.")] = False,
    compact: Annotated[bool, typer.Option("--compact", help="Write the small shipped form (fp16, embeddings from the base package).")] = False,
    text_col: TextCol = "text",
    label_col: LabelCol = "layer",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
) -> None:
    """Fine-tune a transformer on labeled messages and write a model directory."""
    from .data import Columns
    from .training import TrainConfig, train as run_training

    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience, seed=seed,
        max_length=max_length, freeze_embeddings=not train_embeddings,
    )
    if base_model:
        config.base_model = base_model
    def report(log) -> None:
        typer.echo(
            f"epoch {log.epoch}: train loss {log.train_loss:.3f}, dev macro-F1 {log.dev_macro_f1:.3f}, "
            f"accuracy {log.dev_accuracy:.3f} ({log.seconds:.0f} s)"
        )

    try:
        if compact:
            import tempfile

            from .modelstore import pack_compact

            if output.exists() and any(output.iterdir()) and not force:
                raise DisclosureError(f"{output} already exists; pass --force to replace it")
            with tempfile.TemporaryDirectory() as scratch:
                result = run_training(train_file, dev_file, Path(scratch) / output.name, config,
                                      columns=Columns(text_col, label_col), force=True, on_epoch=report)
                output.parent.mkdir(parents=True, exist_ok=True)
                pack_compact(result.output_dir, output, base=config.base_model)
        else:
            result = run_training(
                train_file, dev_file, output, config, columns=Columns(text_col, label_col), force=force, on_epoch=report
            )
    except DisclosureError as err:
        _fail(err)
    typer.echo(
        f"wrote {output}: best epoch {result.best_epoch}/{len(result.history)}, dev macro-F1 "
        f"{result.dev_report.macro_f1:.3f}, {result.seconds:.0f} s"
    )


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Labeled data to score (JSONL/CSV/TSV or saved dataset).")],
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the figures as JSON here.")] = None,
    baseline_train: Annotated[Optional[Path], typer.Option("--baseline-train", help="Training split for the baseline (default: the model's own).")] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Skip the TF-IDF baseline.")] = False,
    record: Annotated[Optional[str], typer.Option("--record", help="Save the figures in the model's metrics.json and card under this name.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split of a saved DatasetDict.")] = None,
    text_col: TextCol = "text",
    label_col: LabelCol = "layer",
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")] = False,
) -> None:
    """Score a model on labeled data, next to a TF-IDF + logistic-regression baseline."""
    from .data import Columns
    from .evaluation import evaluate as run_evaluation, format_report, record_evaluation

    if output and output.exists() and not force:
        _fail(DisclosureError(f"{output} already exists; pass --force to overwrite it"))
    try:
        result = run_evaluation(
            model, data, columns=Columns(text_col, label_col), baseline_train=baseline_train,
            with_baseline=not no_baseline, split=split,
        )
    except DisclosureError as err:
        _fail(err)
    payload = result.to_dict()
    if output:
        output.write_text(json.dumps(payload, indent=2) + "\n")
    if record:
        record_evaluation(model or Path(result.model_dir), record, result)
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"data: {data}  model: {result.model_dir}")
    typer.echo(format_report(result.model))
    if result.baseline:
        typer.echo(format_report(result.baseline))
        gain = result.model.macro_f1 - result.baseline.macro_f1
        typer.echo(f"macro-F1 gain over the baseline: {gain * 100:+.1f} points")


@app.command()
def annotate(
    inputs: Annotated[list[Path], typer.Argument(help="Transcript files (JSONL/ConvoKit, CSV/TSV, .txt chat logs; .gz ok) or ConvoKit corpus directories.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Annotated messages: .jsonl, .csv, .tsv or .parquet.")],
    summary: Annotated[Optional[Path], typer.Option("--summary", help="Write per-conversation reciprocity figures as JSON here.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write a self-contained HTML report here.")] = None,
    report_text: Annotated[bool, typer.Option("--report-text/--no-report-text", help="Show message texts in the report.")] = True,
    model: ModelOption = None,
    input_format: Annotated[Optional[str], typer.Option("--format", help="Input format: jsonl, csv, tsv, text, whatsapp, convokit (default: from the extension).")] = None,
    output_format: Annotated[Optional[str], typer.Option("--output-format", help="Output format (default: from the extension).")] = None,
    text_col: Annotated[str, typer.Option("--text-col")] = "text",
    speaker_col: Annotated[str, typer.Option("--speaker-col")] = "speaker",
    conversation_col: Annotated[str, typer.Option("--conversation-col")] = "conversation_id",
    id_col: Annotated[str, typer.Option("--id-col")] = "id",
    reply_to_col: Annotated[str, typer.Option("--reply-to-col")] = "reply_to",
    time_col: Annotated[str, typer.Option("--time-col")] = "timestamp",
    on_error: Annotated[str, typer.Option("--on-error", help="raise: stop at the first bad record; skip: write it to the rejects file and go on.")] = "raise",
    rejects: Annotated[Optional[Path], typer.Option("--rejects", help="Rejects file for --on-error skip (default: OUTPUT.rejects.jsonl).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Label every message of chat transcripts and analyse each conversation's reciprocity."""
    from .annotate import annotate as run_annotation
    from .transcripts import ColumnMap

    if on_error not in ("raise", "skip"):
        _fail(DisclosureError("--on-error must be 'raise' or 'skip'"))
    columns = ColumnMap(text=text_col, speaker=speaker_col, conversation=conversation_col, id=id_col,
                        reply_to=reply_to_col, time=time_col)
    try:
        stats = run_annotation(
            inputs, output, model=model, format=input_format, output_format=output_format, columns=columns,
            on_error=on_error, rejects=rejects, summary=summary, report=report, report_text=report_text,
            batch_size=batch_size, force=force, progress=not quiet,
        )
    except DisclosureError as err:
        _fail(err)
    typer.echo(stats.line())
    for label, path in (("annotated", stats.output), ("summary", stats.summary_path), ("report", stats.report_path)):
        if path:
            typer.echo(f"{label}: {path}")
    if stats.rejected:
        typer.echo(f"rejects: {stats.rejects_path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
