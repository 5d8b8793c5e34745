"""Compare candidate recipes for the default model on data/dev.jsonl and data/test.jsonl.

Candidates:
  frozen-encoder   all-MiniLM-L6-v2 sentence embeddings (mean pooling, not fine-tuned) + logistic
                   regression with C chosen by cross-validation on train: the cheapest option.
  MODEL_DIR ...    any model directories written by `disclosure train` (e.g. the fine-tuned model
                   with frozen word embeddings and one with trained embeddings).

Prints macro-F1 / accuracy / within-one per candidate and split, plus the TF-IDF baseline, and
writes the same as JSON with --output.

    python scripts/compare_candidates.py runs/ft-frozen runs/ft-unfrozen --output runs/candidates.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disclosure_nlp.model.data import load_labeled  # noqa: E402
from disclosure_nlp.layers import expected_depth  # noqa: E402
from disclosure_nlp.model.metrics import compute_report  # noqa: E402
from disclosure_nlp.model.modelstore import base_model_path, enforce_offline  # noqa: E402


def embed(texts: list[str], batch_size: int = 64):
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def frozen_encoder(train, splits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(LogisticRegression(max_iter=5000), {"C": [0.5, 1, 2, 4, 8, 16, 32]}, cv=5, scoring="f1_macro")
    search.fit(embed(list(train["text"])), list(train["label"]))
    results = {}
    for name, ds in splits.items():
        probs = search.predict_proba(embed(list(ds["text"])))
        results[name] = compute_report(list(ds["label"]), probs.argmax(1).tolist(), [expected_depth(p) for p in probs], system="frozen-encoder")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    enforce_offline()
    from disclosure_nlp.model.evaluation import evaluate

    train = load_labeled(args.data / "train.jsonl")
    splits = {name: load_labeled(args.data / f"{name}.jsonl") for name in ("dev", "test")}
    table: dict[str, dict] = {}
    started = time.perf_counter()
    for split, report in frozen_encoder(train, splits).items():
        table.setdefault("frozen-encoder", {})[split] = report.to_dict()
    table["frozen-encoder"]["seconds"] = round(time.perf_counter() - started, 1)
    for model_dir in args.models:
        for split in splits:
            result = evaluate(model_dir, args.data / f"{split}.jsonl", baseline_train=args.data / "train.jsonl")
            table.setdefault(str(model_dir), {})[split] = result.model.to_dict()
            table.setdefault("tfidf-baseline", {})[split] = result.baseline.to_dict()
    print(f"{'candidate':<28}{'split':<6}{'macro-F1':>9}{'acc':>7}{'within1':>9}{'MAE':>7}")
    for name, by_split in table.items():
        for split in splits:
            r = by_split[split]
            print(f"{name:<28}{split:<6}{r['macro_f1']:>9.3f}{r['accuracy']:>7.3f}{r['within_one']:>9.3f}{r['mean_abs_error']:>7.3f}")
    if args.output:
        args.output.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
