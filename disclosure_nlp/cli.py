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


@app.command()
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(help="Messages to label; '-' reads one per line from stdin.")] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per message.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    backend: BackendOption = "auto",
    language: LanguageOption = "mark",
) -> None:
    """Label messages given on the command line (or stdin) with their disclosure layer."""
    items = list(texts or [])
    if items == ["-"]:
        items = []
        # Bytes, decoded line by line: a line that is not UTF-8 is named, not a traceback.
        for number, raw in enumerate(sys.stdin.buffer, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                _fail(DisclosureError(f"stdin, line {number}: not valid UTF-8 (byte {err.start + 1}); "
                                      "save the messages as UTF-8"))
            if line.strip():
                items.append(line)
    if not items:
        _fail(DisclosureError("give at least one message, or '-' to read them from stdin"))
    from .model.classifier import DisclosureClassifier
    from .model.language import POLICIES, predict_with_language

    if language not in POLICIES:
        _fail(DisclosureError(f"--language must be one of {', '.join(POLICIES)}, not {language!r}"))
    try:
        classifier = DisclosureClassifier.load(model, backend=backend)
    except DisclosureError as err:
        _fail(err)
    results = predict_with_language(classifier, items, policy=language, batch_size=batch_size)
    for text, result in zip(items, results):
        prediction = result.prediction
        if result.rejected:
            typer.secho(f"rejected (language {result.language}, not English): {text}", err=True, fg=typer.colors.YELLOW)
            continue
        if as_json:
            fields = prediction.to_dict() if prediction is not None else {"layer": None, "confidence": None,
                                                                         "probabilities": None, "depth": None}
            typer.echo(json.dumps({"text": text, **fields, "language": result.language}, ensure_ascii=False))
        elif prediction is None:
            typer.echo(f"{'unsupported':<12} language={result.language} (not English: not labeled; --language label labels it anyway)")
            if len(items) > 1:
                typer.echo(f"  ↳ {text}")
        else:
            probs = " ".join(f"{k}={v:.2f}" for k, v in prediction.probabilities.items())
            typer.echo(f"{prediction.layer:<12} confidence={prediction.confidence:.2f} depth={prediction.depth:.2f}  [{probs}]")
            if len(items) > 1:
                typer.echo(f"  ↳ {text}")


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
    max_length: Annotated[int, typer.Option(min=8)] = 256,
    train_embeddings: Annotated[bool, typer.Option("--train-embeddings", help="Also train the word embeddings.")] = False,
    compact: Annotated[bool, typer.Option("--compact", help="Write the small shipped form (fp16, embeddings from the base package).")] = False,
    real_csv: Annotated[Optional[Path], typer.Option("--real-csv", help="The public CL-Aff OffMyChest labeled_training_set.csv: the project's labels of its sentences (data/real/claff_labels.jsonl) are joined with it; real-train is trained on, real-dev picks the epoch and fits the calibration.")] = None,
    real_labels: Annotated[Optional[Path], typer.Option("--real-labels", help="Labels by sentence id to join with --real-csv (default: the project's data/real/claff_labels.jsonl).")] = None,
    real_weight: Annotated[int, typer.Option("--real-weight", min=1, help="Times each real training sentence is seen per epoch.")] = 2,
    calibrate: Annotated[bool, typer.Option("--calibrate/--no-calibrate", help="Fit a calibration on real-dev (else dev) and fold it into the model.")] = True,
    calibration: Annotated[str, typer.Option("--calibration", help="Calibration method: vector (a scale and a bias per layer) or temperature (one number; labels unchanged).")] = "vector",
    text_col: TextCol = "text",
    label_col: LabelCol = "layer",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
) -> None:
    """Fine-tune a transformer on labeled messages and write a model directory."""
    from .model.data import Columns
    from .model.training import TrainConfig, train as run_training

    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience, seed=seed,
        max_length=max_length, freeze_embeddings=not train_embeddings, real_weight=real_weight, calibrate=calibrate,
        calibration_method=calibration,
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

            from .model.modelstore import pack_compact

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
    from .model.recalibration import recalibrate

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


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Labeled data to score (JSONL/CSV/TSV or saved dataset).")],
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
) -> None:
    """Score a model on labeled data, next to a TF-IDF + logistic-regression baseline."""
    from .model.data import Columns
    from .model.evaluation import evaluate as run_evaluation, format_report, record_evaluation

    from .io.outputs import check_output_paths, write_json_atomic

    diagram_path = output.with_name(output.stem + ".reliability.png") if output else None
    try:  # before the model runs: a wrong output path costs nothing
        check_output_paths([data] + ([model] if model else []), {"-o": output, "reliability diagram": diagram_path},
                           force=force)
    except DisclosureError as err:
        _fail(err)
    try:
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
        from .model.calibration import reliability_diagram

        try:
            write_json_atomic(output, payload, force=force)
            if result.calibration is not None:
                diagram = reliability_diagram(result.calibration, diagram_path, force=force,
                                              title=f"{Path(result.model_dir).name} on {Path(data).name}")
        except (DisclosureError, OSError) as err:
            _fail(DisclosureError(f"{output}: {err}") if isinstance(err, OSError) else err)
    if record:
        record_evaluation(model or Path(result.model_dir), record, result)
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"data: {data}  model: {result.model_dir}" + (f"  backend: {backend}" if backend != "torch" else ""))
    typer.echo(format_report(result.model))
    if result.calibration is not None:
        typer.echo(f"  expected calibration error {result.calibration.ece:.3f} (mean confidence "
                   f"{result.calibration.mean_confidence:.3f}, accuracy {result.calibration.accuracy:.3f})"
                   + (f"; reliability diagram: {diagram}" if diagram else ""))
    if result.baseline:
        typer.echo(format_report(result.baseline))
        gain = result.model.macro_f1 - result.baseline.macro_f1
        typer.echo(f"macro-F1 gain over the baseline: {gain * 100:+.1f} points")


@app.command()
def annotate(
    inputs: Annotated[list[Path], typer.Argument(help="Transcript files (JSONL/ConvoKit, CSV/TSV, Parquet, .txt chat logs, Telegram/Discord/Messenger .json exports, Discord .csv, .vtt/.srt meeting transcripts; .gz ok for text) or ConvoKit corpus and Slack export directories.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Annotated messages: .jsonl, .csv, .tsv or .parquet.")],
    summary: Annotated[Optional[Path], typer.Option("--summary", help="Write per-conversation reciprocity figures as JSON here.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write a self-contained HTML report here.")] = None,
    report_text: Annotated[bool, typer.Option("--report-text/--no-report-text", help="Show message texts in the report.")] = True,
    model: ModelOption = None,
    input_format: Annotated[Optional[str], typer.Option("--format", help="Input format: jsonl, csv, tsv, parquet, text, whatsapp, convokit, telegram, discord, slack, messenger, vtt, srt (default: from the extension, and for .json and directories from the content).")] = None,
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
    backend: BackendOption = "auto",
    language: LanguageOption = "mark",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run of the same command after the last conversations it saved (JSONL/CSV/TSV outputs).")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local: this process; ray: Ray Data on a local or remote Ray cluster (pip install 'disclosure-nlp[ray]'); OUTPUT is then a directory of part files.")] = "local",
    address: Annotated[Optional[str], typer.Option("--address", help="With --engine ray: 'auto' joins the cluster this machine belongs to, 'ray://HOST:10001' a remote one; default: start Ray locally for this run.")] = None,
    num_actors: Annotated[int, typer.Option("--num-actors", min=1, help="With --engine ray: model replicas labeling in parallel (one model load each).")] = 1,
    max_chars: Annotated[int, typer.Option("--max-chars", min=0, help="Label at most this many characters of one message (its first ones; the whole text stays in the output, and capped messages are counted). 0: no cap.")] = 20_000,
) -> None:
    """Label every message of chat transcripts and analyse each conversation's reciprocity."""
    from .annotate import annotate as run_annotation
    from .io.transcripts import ColumnMap

    if on_error not in ("raise", "skip"):
        _fail(DisclosureError("--on-error must be 'raise' or 'skip'"))
    if engine not in ("local", "ray"):
        _fail(DisclosureError("--engine must be 'local' or 'ray'"))
    columns = ColumnMap(text=text_col, speaker=speaker_col, conversation=conversation_col, id=id_col,
                        reply_to=reply_to_col, time=time_col)
    if engine == "ray" and backend not in ("torch", "auto"):
        # Ray actors run torch: "auto" resolved on each node could differ from node to node.
        _fail(DisclosureError("--backend is only supported with --engine local (Ray actors run torch)"))
    if engine == "ray":
        _annotate_on_ray(inputs, output, summary=summary, report=report, model=model, input_format=input_format,
                         output_format=output_format, columns=columns, on_error=on_error, rejects=rejects,
                         batch_size=batch_size, force=force, quiet=quiet, resume=resume, address=address,
                         num_actors=num_actors, language=language, max_chars=max_chars or None)
        return
    if address is not None or num_actors != 1:
        _fail(DisclosureError("--address and --num-actors need --engine ray"))
    try:
        stats = run_annotation(
            inputs, output, model=model, format=input_format, output_format=output_format, columns=columns,
            on_error=on_error, rejects=rejects, summary=summary, report=report, report_text=report_text,
            batch_size=batch_size, force=force, progress=not quiet, resume=resume, backend=backend,
            language=language, max_chars=max_chars or None,
        )
    except DisclosureError as err:
        _fail(err)
    except KeyboardInterrupt:
        typer.secho("interrupted: the conversations saved so far are kept; run the same command with "
                    "--resume to continue", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(code=130)
    if stats.resumed_conversations:
        typer.echo(f"resumed after {stats.resumed_conversations} conversations written by the interrupted run")
    typer.echo(stats.line())
    for label, path in (("annotated", stats.output), ("summary", stats.summary_path), ("report", stats.report_path)):
        if path:
            typer.echo(f"{label}: {path}")
    if stats.rejected:
        typer.echo(f"rejects: {stats.rejects_path}")


def _annotate_on_ray(inputs, output, *, summary, report, model, input_format, output_format, columns, on_error,
                     rejects, batch_size, force, quiet, resume, address, num_actors, language, max_chars) -> None:
    """``annotate --engine ray``: the same rows as the local engine, computed on Ray Data."""
    from .integrations.ray_engine import RayOptions, annotate_ray, require_ray

    import re

    def uri(path):  # Path() folds "s3://bucket" into "s3:/bucket"; Ray needs the URI back
        text = str(path)
        return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)", r"\1://", text) if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", text) else path

    inputs, output = [uri(p) for p in inputs], uri(output)
    unsupported = [name for name, used in (("--report", report is not None), ("--on-error skip", on_error == "skip"),
                                           ("--rejects", rejects is not None), ("--resume", resume),
                                           ("--language reject", language == "reject")) if used]
    try:
        if unsupported:
            raise DisclosureError(f"{', '.join(unsupported)}: not available with --engine ray; use --engine local")
        require_ray()
        stats = annotate_ray(
            inputs, output, model=model, format=input_format, output_format=output_format, columns=columns,
            summary=summary, batch_size=batch_size, force=force, language=language, max_chars=max_chars,
            options=RayOptions(address=address, num_actors=num_actors, progress=not quiet),
        )
    except DisclosureError as err:
        _fail(err)
    typer.echo(stats.line())
    typer.echo(f"annotated: {stats.output} (a directory of part files)")
    if stats.summary_path:
        typer.echo(f"summary: {stats.summary_path}")


@app.command()
def reciprocity(
    inputs: Annotated[list[Path], typer.Argument(help="Transcript files, labeled (a 'layer' column, and 'depth' if any: e.g. annotate output) or not (labeled here with the model).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the corpus figures (and every conversation's) as JSON here.")] = None,
    plots: Annotated[Optional[Path], typer.Option("--plots", help="Write reciprocity_vs_surrogate.png and depth_by_position.png into this folder (created if missing).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the baselines and bootstrap: same input and seed, same figures.")] = 0,
    surrogates: Annotated[int, typer.Option("--surrogates", min=1, help="Baseline draws per conversation (shuffles and surrogate partners, each).")] = 200,
    reservoir: Annotated[int, typer.Option("--reservoir", min=1, help="Earlier speakers' turn sequences kept as surrogate partners.")] = 500,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of conversations for the 95% CIs.")] = 2000,
    model: ModelOption = None,
    input_format: Annotated[Optional[str], typer.Option("--format", help="Input format: jsonl, csv, tsv, parquet, text, whatsapp, convokit, telegram, discord, slack, messenger, vtt, srt (default: from the extension, and for .json and directories from the content).")] = None,
    backend: BackendOption = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
) -> None:
    """Reciprocity across a corpus: every conversation against chance, pooled with 95% CIs."""
    from .analysis.corpus import analyze_corpus, format_corpus, write_corpus_json
    from .io.outputs import check_output_paths

    try:
        plot_files: dict[str, Optional[Path]] = {}
        if plots is not None:
            from .analysis.corpus_plots import plot_paths

            if plots.exists() and not plots.is_dir():
                raise DisclosureError(f"--plots {plots} is a file; give a folder")
            plot_files = {f"--plots {path.name}": path for path in plot_paths(plots).values()}
        # Before any work: a wrong output path costs nothing (the plot folder may not exist yet).
        check_output_paths(inputs, {"-o": output}, force=force)
        if plots is not None:
            plots.mkdir(parents=True, exist_ok=True)
            check_output_paths(inputs, plot_files, force=force)
        result = analyze_corpus(inputs, model=model, backend=backend, format=input_format, seed=seed,
                                surrogates=surrogates, reservoir=reservoir, bootstrap=bootstrap,
                                keep_conversations=output is not None)
        if output is not None:
            write_corpus_json(result, output, force=force)
        written = []
        if plots is not None:
            from .analysis.corpus_plots import write_plots

            written = write_plots(result, plots, force=force, title=inputs[0].stem if len(inputs) == 1 else "corpus")
    except DisclosureError as err:
        _fail(err)
    typer.echo(format_corpus(result))
    if output is not None:
        typer.echo(f"figures: {output}")
    for path in written:
        typer.echo(f"plot: {path}")


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
            from .model.backends import export_onnx

            written = export_onnx(model_dir, onnx, quantize=not no_quantize)
            typer.echo(f"ONNX model: {written}")
    except DisclosureError as err:
        _fail(err)


def _export_full(model_dir: Optional[Path], out: Path) -> None:
    """Copy the full form of a model directory (rebuilt from a compact one if need be) to ``out``."""
    import shutil
    import tempfile

    from .model.modelstore import resolve_model_dir

    source = resolve_model_dir(model_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staging.chmod(0o755)
        for item in source.iterdir():
            if item.is_file():
                shutil.copy2(item, staging / item.name)
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _say_slow_steps() -> None:
    """On a terminal, the library's notes on slow one-time steps (rebuilding the shipped model,
    exporting to ONNX) go to stderr, so a first run does not look hung; never with --quiet or
    when stderr is a file or a pipe."""
    import logging

    if not sys.stderr.isatty() or {"-q", "--quiet"} & set(sys.argv[1:]):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("disclosure_nlp")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main() -> None:
    """The console script: an error of the machine (a full disk, a read-only folder, a file
    removed underneath) is one line and exit 1, like an input error is one line and exit 2.
    Outputs are committed by rename only on success, so nothing half-written is left under an
    output's name, and an interrupted annotate keeps its partial file for ``--resume``."""
    _say_slow_steps()
    try:
        app()
    except OSError as err:
        where = err.filename or "an output"
        typer.secho(f"error: {where}: {err.strerror or err} (nothing was written under the output's "
                    "name; annotate --resume continues from the last saved conversation)", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
