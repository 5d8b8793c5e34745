"""Agreement between the two coding passes on CL-Aff sentences, and the final labels they give.

Why keep the passes: a label set is only as good as the agreement behind it. Each chosen
sentence (``scripts/select_claff.py``) was labeled twice, by two coders who never saw each
other's work, and every disagreement went to an adjudicator. ``data/real/claff_passes.jsonl``
keeps both passes and the adjudication (ids and labels only, no text), so anyone can recompute
Cohen's kappa, and the final labels in ``data/real/claff_labels.jsonl`` follow from it:

    python scripts/claff_agreement.py              # prints kappa overall and per layer
    python scripts/claff_agreement.py --check      # also verifies claff_labels.jsonl follows
    python scripts/claff_agreement.py --write      # rewrites claff_labels.jsonl from the passes
    python scripts/claff_agreement.py --stratum-prefix train_   # kappa of the fifth round alone

The final label is the coders' label where they agree, else the adjudicator's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real"
LAYERS = ("none", "surface", "intermediate", "core")


def read_passes(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            row = json.loads(line)
            for key in ("sentenceid", "post", "split", "coder_a", "coder_b"):
                if key not in row:
                    raise SystemExit(f"{path}, line {number}: missing field {key!r}")
            if row["coder_a"] != row["coder_b"] and row.get("adjudicated") not in LAYERS:
                raise SystemExit(f"{path}, line {number}: coders disagree and field 'adjudicated' is missing")
            rows.append(row)
    return rows


def final_layer(row: dict) -> str:
    return row["coder_a"] if row["coder_a"] == row["coder_b"] else row["adjudicated"]


def kappa_table(rows: list[dict]) -> dict[str, float]:
    from sklearn.metrics import cohen_kappa_score

    a = [r["coder_a"] for r in rows]
    b = [r["coder_b"] for r in rows]
    table = {"overall": float(cohen_kappa_score(a, b)),
             "quadratic_weighted": float(cohen_kappa_score([LAYERS.index(x) for x in a], [LAYERS.index(x) for x in b],
                                                           weights="quadratic")),
             "raw_agreement": sum(x == y for x, y in zip(a, b)) / len(a)}
    for layer in LAYERS:
        table[layer] = float(cohen_kappa_score([x == layer for x in a], [x == layer for x in b]))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=Path, default=REAL / "claff_passes.jsonl")
    parser.add_argument("--labels", type=Path, default=REAL / "claff_labels.jsonl")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    parser.add_argument("--stratum-prefix", default="", metavar="PREFIX",
                        help="agreement of the rounds whose strata start with PREFIX only (train_: the fifth)")
    args = parser.parse_args(argv)
    rows = read_passes(args.passes)
    chosen = [r for r in rows if r.get("stratum", "").startswith(args.stratum_prefix)]
    if not chosen:
        raise SystemExit(f"{args.passes}: no sentence's stratum starts with {args.stratum_prefix!r}")
    table = kappa_table(chosen)
    print(f"{len(chosen)} sentences, {sum(r['coder_a'] != r['coder_b'] for r in chosen)} adjudicated")
    print("Cohen's kappa: " + ", ".join(f"{k} {v:.3f}" for k, v in table.items()))
    finals = [{"sentenceid": r["sentenceid"], "post": r["post"], "layer": final_layer(r), "split": r["split"]} for r in rows]
    counts = Counter((f["split"], f["layer"]) for f in finals)
    for split in ("train", "dev", "test"):
        print(f"{split}: " + ", ".join(f"{layer} {counts[(split, layer)]}" for layer in LAYERS))
    print("all: " + ", ".join(f"{layer} {sum(f['layer'] == layer for f in finals)}" for layer in LAYERS))
    text = "".join(json.dumps(f) + "\n" for f in finals)
    if args.write:
        args.labels.write_text(text, encoding="utf-8")
        print(f"wrote {args.labels}")
    elif args.check and args.labels.read_text(encoding="utf-8") != text:
        print(f"{args.labels} does not follow from {args.passes}; run with --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
