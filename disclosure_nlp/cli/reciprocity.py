"""``disclosure reciprocity``: corpus-level figures from an annotated file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DisclosureError
from ._app import BackendOption, ModelOption, app, _fail


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
    from ..analysis.corpus import analyze_corpus, format_corpus, write_corpus_json
    from ..io.outputs import check_output_paths

    try:
        plot_files: dict[str, Optional[Path]] = {}
        if plots is not None:
            from ..analysis.corpus_plots import plot_paths

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
            from ..analysis.corpus_plots import write_plots

            written = write_plots(result, plots, force=force, title=inputs[0].stem if len(inputs) == 1 else "corpus")
    except DisclosureError as err:
        _fail(err)
    typer.echo(format_corpus(result))
    if output is not None:
        typer.echo(f"figures: {output}")
    for path in written:
        typer.echo(f"plot: {path}")
