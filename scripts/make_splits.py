"""Make the fixed train/dev/test splits from the hand-written corpus in data/raw/.

Near-duplicates (same normalized text, or word-set Jaccard >= 0.8 for messages of 4+ words)
are grouped and each group goes to a single split, so no split can be scored on a rewording of
a training message. Splitting is stratified by (layer, register) and seeded, so the same raw
files always give the same splits. Run with --check to verify existing splits without writing.

Files in data/raw/train_only/ are later waves of hand-written messages that only ever join the
training split: dev and test stay exactly the messages they were, so scores of models trained
before and after a wave remain comparable. A train-only message that is a near-duplicate of a
dev or test message is left out (and reported), never moved into dev or test.

    python scripts/make_splits.py            # writes data/train.jsonl, data/dev.jsonl, data/test.jsonl
    python scripts/make_splits.py --check    # verifies them (used by the tests)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disclosure_nlp.model.data import Columns, iter_raw_rows, normalize_text, validate_row  # noqa: E402
from disclosure_nlp.layers import LAYERS  # noqa: E402

SPLITS = {"train": 0.8, "dev": 0.1, "test": 0.1}
JACCARD = 0.8


TRAIN_ONLY = "train_only"


def read_corpus(raw_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(raw_dir.glob("*.jsonl")):
        for row in iter_raw_rows(path):
            record = validate_row(row, path, Columns())
            if not record["register"]:
                raise SystemExit(f"{path}, line {row.line}: missing register")
            rows.append({"text": record["text"], "layer": LAYERS[record["label"]], "register": record["register"],
                         "_where": f"{path.name}:{row.line}"})
    return rows


def near_duplicate_groups(texts: list[str]) -> list[int]:
    """Group id per text: union of exact-normalized matches and high word-set Jaccard pairs."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    normalized = [normalize_text(t) for t in texts]
    first: dict[str, int] = {}
    for i, key in enumerate(normalized):
        if key in first:
            union(i, first[key])
        else:
            first[key] = i
    vectorizer = CountVectorizer(binary=True, token_pattern=r"\S+")
    matrix = vectorizer.fit_transform(normalized)
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    overlap = (matrix @ matrix.T).tocoo()
    # Millions of pairs share a word or two; select the near-duplicates with array operations
    # and leave only those few to the Python loop (same pairs, same order as a plain loop).
    a, b, inter = overlap.row, overlap.col, overlap.data
    keep = (a < b) & (np.minimum(sizes[a], sizes[b]) >= 4)
    a, b, inter = a[keep], b[keep], inter[keep]
    similar = inter / (sizes[a] + sizes[b] - inter) >= JACCARD
    for left, right in zip(a[similar].tolist(), b[similar].tolist()):
        union(left, right)
    return [find(i) for i in range(len(texts))]


def assign_splits(rows: list[dict], groups: list[int], seed: int) -> dict[str, list[dict]]:
    members: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for group, indices in members.items():
        lead = rows[indices[0]]
        strata[(lead["layer"], lead["register"])].append(group)
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for key in sorted(strata):
        group_ids = sorted(strata[key])
        rng.shuffle(group_ids)
        n = len(group_ids)
        n_dev, n_test = round(n * SPLITS["dev"]), round(n * SPLITS["test"])
        parts = {"test": group_ids[:n_test], "dev": group_ids[n_test : n_test + n_dev], "train": group_ids[n_test + n_dev :]}
        for split, chosen in parts.items():
            for group in chosen:
                out[split].extend(rows[i] for i in members[group])
    for split in out:
        rng.shuffle(out[split])
    return out


def add_train_only(splits: dict[str, list[dict]], extra: list[dict], seed: int) -> list[dict]:
    """Append the train-only rows to the training split, except those that near-duplicate a dev
    or test message (returned, so the caller can report them). Dev and test are not touched."""
    held_out = splits["dev"] + splits["test"]
    groups = near_duplicate_groups([r["text"] for r in held_out] + [r["text"] for r in extra])
    held_groups = set(groups[: len(held_out)])
    kept, dropped = [], []
    for row, group in zip(extra, groups[len(held_out):]):
        (dropped if group in held_groups else kept).append(row)
    splits["train"] = splits["train"] + kept
    random.Random(seed).shuffle(splits["train"])
    return dropped


def check(data_dir: Path) -> list[str]:
    """Problems found in existing split files (empty list when they are sound)."""
    problems: list[str] = []
    splits = {}
    for name in SPLITS:
        path = data_dir / f"{name}.jsonl"
        if not path.exists():
            return [f"{path} is missing"]
        splits[name] = [validate_row(row, path, Columns()) for row in iter_raw_rows(path)]
    texts, owners = [], []
    for name, rows in splits.items():
        for row in rows:
            texts.append(row["text"])
            owners.append(name)
    groups = near_duplicate_groups(texts)
    seen: dict[int, str] = {}
    for group, owner, text in zip(groups, owners, texts):
        if group in seen and seen[group] != owner:
            problems.append(f"near-duplicate across {seen[group]} and {owner}: {normalize_text(text)[:60]!r}")
        seen.setdefault(group, owner)
    total = sum(len(rows) for rows in splits.values())
    labels = Counter(row["label"] for rows in splits.values() for row in rows)
    for label, count in sorted(labels.items()):
        if not 0.2 <= count / total <= 0.3:
            problems.append(f"layer {LAYERS[label]} is {count / total:.1%} of the corpus (outside 20-30%)")
    return problems


def build_splits(raw_dir: Path, seed: int, verbose: bool = False) -> tuple[dict[str, list[dict]], list[dict]]:
    """The splits the raw files give (and the train-only rows left out), without writing them."""
    rows = read_corpus(raw_dir)
    groups = near_duplicate_groups([r["text"] for r in rows])
    if verbose:
        conflicts = defaultdict(set)
        for row, group in zip(rows, groups):
            conflicts[group].add(row["layer"])
        clusters = Counter(groups)
        print(f"{len(rows)} messages, {len(clusters)} near-duplicate groups "
              f"({sum(1 for c in clusters.values() if c > 1)} with more than one message)")
        for group, layers in conflicts.items():
            if len(layers) > 1:
                where = [r["_where"] for r, g in zip(rows, groups) if g == group]
                print(f"  note: near-duplicates with different layers {sorted(layers)} at {', '.join(where)}")
    splits = assign_splits(rows, groups, seed)
    extra = read_corpus(raw_dir / TRAIN_ONLY) if (raw_dir / TRAIN_ONLY).is_dir() else []
    dropped = add_train_only(splits, extra, seed) if extra else []
    if verbose and extra:
        print(f"train-only waves: {len(extra)} messages, {len(extra) - len(dropped)} added to train, "
              f"{len(dropped)} left out as near-duplicates of dev/test")
        for row in dropped:
            print(f"  left out: {row['_where']}")
    return splits, dropped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=ROOT / "data" / "raw")
    parser.add_argument("--out", type=Path, default=ROOT / "data")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--check", action="store_true", help="verify existing splits, write nothing")
    args = parser.parse_args()
    if args.check:
        problems = check(args.out)
        for problem in problems:
            print(problem)
        print("splits OK" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0

    splits, dropped = build_splits(args.raw, args.seed, verbose=True)
    for name, split_rows in splits.items():
        path = args.out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in split_rows:
                handle.write(json.dumps({k: row[k] for k in ("text", "layer", "register")}, ensure_ascii=False) + "\n")
        counts = Counter(r["layer"] for r in split_rows)
        print(f"{name}: {len(split_rows)} " + " ".join(f"{k}={counts[k]}" for k in LAYERS))
    problems = check(args.out)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
