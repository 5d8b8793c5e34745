"""``disclosure annotate``: label and analyze transcripts, locally or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DisclosureError
from ._app import BackendOption, LanguageOption, ModelOption, app, _fail


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
    from ..annotate import annotate as run_annotation
    from ..io.transcripts import ColumnMap

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
    from ..integrations.ray_engine import RayOptions, annotate_ray, require_ray

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
