"""Average the weights of fine-tuned models of one base into one model (a "model soup").

Why: two runs of the same recipe on different data (here the team's text with some or with all
of the real labels) end in different places of the same basin; the average of their weights is
often better off their training data than either (Wortsman et al. 2022, "Model soups"), at no
cost in size or speed, because it is still one model of the same shape.

    python scripts/average_models.py models/default runs/all-real -o runs/soup [--weights 0.5,0.5]

The models must share the base model and architecture (same tensor names and shapes), which
every `disclosure train` run from the same base does, and the same `--seed` (recorded in
their `training.json`; `--any-seed` overrides), which fixes the new classification layer's
starting weights; runs that differ only in `--data-seed` can be averaged. Each input may be compact (the shipped
form) or full. The output is a full directory with the first model's config and tokenizer, the
averaged `model.safetensors` (with `--compact`, the shipped compact form), and a `training.json`
that names its ingredients; run
`disclosure calibrate OUT -o OUT2 --real-csv …` on it next, since each ingredient's calibration
is folded into its classification layer and their average is calibrated for neither.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disclosure_nlp.errors import DisclosureError  # noqa: E402
from disclosure_nlp.io.safe_files import replace_folder, staged_folder  # noqa: E402
from disclosure_nlp.model.modelcard import render_model_card  # noqa: E402
from disclosure_nlp.model.modelstore import (  # noqa: E402
    DIRECTORY_FILES,
    FULL_WEIGHTS,
    enforce_offline,
    pack_compact,
    read_json_file,
    resolve_model_dir,
)


def average(models: list[Path], weights: list[float], output: Path, *, force: bool = False, compact: bool = False,
            any_seed: bool = False) -> Path:
    """Write the weighted average of ``models`` to ``output`` (in the shipped compact form with
    ``compact``); returns it. Runs trained with different ``--seed`` are refused unless
    ``any_seed``: their classification layers start from different random draws, and their
    average was measured worse than either run (README, Real text)."""
    import torch
    from safetensors.torch import load_file, save_file

    if len(models) < 2 or len(models) != len(weights):
        raise DisclosureError("give two or more models and one weight per model")
    if output.exists() and not force:
        raise DisclosureError(f"{output}: already exists; pass --force to replace it")
    if any(output.resolve() == Path(m).resolve() for m in models):
        raise DisclosureError(f"{output}: is one of the models being averaged; write the result to another folder")
    enforce_offline()
    total = sum(weights)
    folders = [resolve_model_dir(m) for m in models]
    records = [read_json_file(f / "training.json") if (f / "training.json").exists() else {} for f in folders]
    seeds = [(r.get("config") or {}).get("seed") for r in records]
    if not any_seed:
        known = [(m, s) for m, s in zip(models, seeds) if s is not None]
        for model, seed in known[1:]:
            if seed != known[0][1]:
                raise DisclosureError(
                    f"{model}: trained with --seed {seed}, {known[0][0]} with --seed {known[0][1]}; runs of different "
                    "seeds start from different classification layers and average badly. Average runs of one "
                    "--seed (vary --data-seed instead), or pass --any-seed")
    states = [load_file(str(f / FULL_WEIGHTS)) for f in folders]
    names = set(states[0])
    for model, state in zip(models[1:], states[1:]):
        if set(state) != names or any(state[n].shape != states[0][n].shape for n in names):
            raise DisclosureError(f"{model}: not the same architecture as {models[0]}; only runs of one base average")
    averaged = {}
    for name in sorted(names):
        if all(torch.equal(s[name], states[0][name]) for s in states[1:]):
            # frozen tensors (the word embeddings) stay bit-equal to the base: an average of three
            # equal fp32 values need not round back to the same value, and the compact form
            # checks that they do
            averaged[name] = states[0][name]
        elif states[0][name].is_floating_point():
            mixed = sum(w / total * s[name].float() for w, s in zip(weights, states))
            averaged[name] = mixed.to(states[0][name].dtype).contiguous()
        else:  # an integer buffer that differs (position ids never do in runs of one base): the first run's
            averaged[name] = states[0][name]
    training = {
        **records[0],
        "averaged_from": [{"model": str(m), "weight": w / total, "real": r.get("real"), "best_epoch": r.get("best_epoch")}
                          for m, w, r in zip(models, weights, records)],
        "calibration": None,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with staged_folder(output) as staging:
        full = staging / "full"
        full.mkdir()
        save_file(averaged, str(full / FULL_WEIGHTS), metadata={"format": "pt"})
        for name in DIRECTORY_FILES:
            if name not in ("training.json", "metrics.json", "README.md") and (folders[0] / name).exists():
                shutil.copy2(folders[0] / name, full / name)
        (full / "training.json").write_text(json.dumps(training, indent=2) + "\n")
        (full / "metrics.json").write_text("{}\n")
        (full / "README.md").write_text(render_model_card(output.name, training, {}))
        if compact:  # int8 differences from the base model, as the shipped model is stored
            pack_compact(full, output)
        else:
            replace_folder(full, output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="Model directories (compact or full) of one base model.")
    parser.add_argument("--output", "-o", type=Path, required=True, help="The averaged model's directory.")
    parser.add_argument("--weights", default=None, help="Comma-separated weights, one per model (default: equal).")
    parser.add_argument("--force", action="store_true", help="Replace --output if it exists.")
    parser.add_argument("--compact", action="store_true", help="Write the compact form (as models/default is shipped).")
    parser.add_argument("--any-seed", action="store_true", help="Average runs trained with different --seed too.")
    args = parser.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(args.models)
    try:
        written = average(args.models, weights, args.output, force=args.force, compact=args.compact,
                          any_seed=args.any_seed)
    except DisclosureError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
