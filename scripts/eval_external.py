"""Score models against real text no one on the team wrote, beside two simple rivals.

Why this script exists: the team-written test split measures how well a model learned the
team's writing style, not how it does on people's messages. Every figure here is on public
corpora of real messages (see ``../shared/data/*/SOURCE.md`` for each licence; none of their
text is stored in the project). Each model is shown beside

- ``tfidf``: the project's TF-IDF + logistic-regression baseline, trained on the same data as
  the default model (the team's train split plus real-train, real-train repeated as in training);
- ``pronouns``: first-person singular pronouns per word, the classic cheap proxy for disclosure.

A rank figure (Spearman, ROC-AUC) uses each system's continuous depth: the expected layer for a
model or the baseline, the pronoun rate for ``pronouns``. Classification figures need layers, so
``pronouns`` has none.

    python scripts/eval_external.py --data ../shared/data --model models/default \\
        [--model OTHER_DIR ...] [--json out.json] [--plots DIR]

Figures (``n/a`` when the corpus is absent):

- CL-Aff OffMyChest: Spearman of depth with the crowd's information + emotional disclosure (0-2),
  and ROC-AUC for "any disclosure" (either crowd label 1), on every sentence whose Reddit post
  has no sentence in real-train;
- real-test (the project's own labels of CL-Aff sentences, other posts): macro-F1 with its 90%
  bootstrap interval and the interval of its gap to the first system (``vs_first``: on 612
  sentences a gap of a point or two is noise), F1 per layer, within-one, and the expected
  calibration error;
- therapist/MI helper turns: ROC-AUC of ``Self-Disclose`` against the 14 other MI codes;
- ESConv supporter turns: ROC-AUC of ``Self-disclosure`` against the other strategies;
- MINT (English tweets): Spearman with the annotated intimacy;
- question intimacy: the share of the 2,397 questions labeled ``none`` (a question reveals
  nothing about its asker).

Two selection figures come last: real-dev macro-F1 (with the interval of its gap to the first
system) and the team test split's macro-F1. Real-dev is not held out (training picks its best
epoch on it and ``disclosure calibrate`` fits on it), so it is for choosing between candidate
models, never for reporting; it is here so that such a choice can be made, and checked, from
this one command rather than a side script.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disclosure_nlp.layers import LAYERS  # noqa: E402

FIRST_PERSON = re.compile(r"\b(i|i'm|im|i've|ive|i'd|i'll|me|my|mine|myself)\b", re.I)
WORD = re.compile(r"\w+(?:'\w+)?")


def pronoun_rate(text: str) -> float:
    words = WORD.findall(text)
    return len(FIRST_PERSON.findall(text)) / len(words) if words else 0.0


@dataclass
class RankSet:
    """A corpus for a rank figure: texts and a gold score (binary for AUC, graded for Spearman)."""

    name: str
    texts: list[str]
    gold: list[float]
    metric: str  # "auc" or "spearman"
    note: str = ""


@dataclass
class SystemScores:
    name: str
    figures: dict[str, float | None] = field(default_factory=dict)


def _esconv(path: Path) -> RankSet | None:
    if not path.is_file():
        return None
    texts, gold = [], []
    tag = re.compile(r"^\[([^\]]+)\]\s*")
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            last = line.rstrip("\n").split(" EOS ")[-1].split(" ", 3)
            if len(last) < 4 or last[1] != "1":
                continue
            match = tag.match(last[3])
            if not match:
                continue
            texts.append(last[3][match.end():].strip())
            gold.append(1.0 if match.group(1) == "Self-disclosure" else 0.0)
    return RankSet("esconv_self_disclosure_auc", texts, gold, "auc", "supporter Self-disclosure vs other strategies")


def _mi(path: Path) -> RankSet | None:
    if not path.is_file():
        return None
    try:
        import openpyxl
    except ImportError:
        print("MI set skipped: pip install openpyxl to read it", file=sys.stderr)
        return None
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows)]
    text_at, label_at = header.index("text"), header.index("final agreed label")
    texts, gold = [], []
    for row in rows:
        text, label = row[text_at], row[label_at]
        if not text or not label:
            continue
        texts.append(str(text))
        gold.append(1.0 if str(label).strip() == "Self-Disclose" else 0.0)
    return RankSet("mi_self_disclose_auc", texts, gold, "auc", "helper Self-Disclose vs 14 other MI codes")


def _mint(path: Path) -> RankSet | None:
    if not path.is_file():
        return None
    texts, gold = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["language"] == "English":
                texts.append(row["text"])
                gold.append(float(row["label"]))
    return RankSet("mint_english_spearman", texts, gold, "spearman", "English tweets, annotated intimacy 1-5")


def _questions(folder: Path) -> list[str]:
    texts = []
    for name in ("final_train.txt", "final_val.txt", "final_test.txt", "final_external.txt"):
        path = folder / name
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                texts += [line.split("\t")[0] for line in handle if line.strip()]
    return texts


def labels_of(system, texts: list[str]) -> list[int]:
    """Each text's most probable layer, from a model or the TF-IDF baseline alike."""
    import numpy as np

    return np.asarray(system.predict_proba(texts)).argmax(axis=1).tolist()


def macro_f1(gold: list[int], predicted: list[int]) -> float:
    """Macro-F1 alone, for the selection rows (no depth is scored there)."""
    from disclosure_nlp.model.metrics import compute_report

    return compute_report(gold, predicted, [0.0] * len(gold)).macro_f1


def rank_figure(metric: str, gold, scores) -> float | None:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    if len(set(gold)) < 2 or len(set(scores)) < 2:
        return None
    if metric == "auc":
        return float(roc_auc_score(gold, scores))
    return float(spearmanr(gold, scores).statistic)


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from disclosure_nlp.model.baseline import TfidfBaseline
    from disclosure_nlp.model.calibration import calibration_report, reliability_diagram
    from disclosure_nlp.model.classifier import DisclosureClassifier
    from disclosure_nlp.model.data import load_labeled
    from disclosure_nlp.layers import expected_depth
    from disclosure_nlp.model.metrics import compute_report, macro_f1_interval
    from disclosure_nlp.model.realdata import default_labels_path, load_real, read_claff

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="folder of the public corpora")
    parser.add_argument("--model", type=Path, action="append", help="model directory (repeat to compare); default: the shipped model")
    parser.add_argument("--labels", type=Path, default=default_labels_path(), help="the project's CL-Aff labels")
    parser.add_argument("--train", type=Path, default=ROOT / "data" / "train.jsonl", help="team-written train split, for TF-IDF")
    parser.add_argument("--test", type=Path,
                        help="team-written test split, for the selection figure; default: data/test.jsonl when present")
    parser.add_argument("--real-weight", type=int, default=2, help="times real-train is repeated for TF-IDF, as in training")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--plots", type=Path, help="write a reliability diagram per model on real-test here")
    args = parser.parse_args(argv)

    claff_csv = args.data / "claff-offmychest" / "labeled_training_set.csv"
    if not claff_csv.is_file():
        parser.error(f"{claff_csv}: not found; --data must name the folder holding claff-offmychest/")
    real = load_real(claff_csv, labels_path=args.labels)
    real_train = [x for x in real if x.split == "train"]
    real_test = [x for x in real if x.split == "test"]
    real_dev = [x for x in real if x.split == "dev"]
    default_test = ROOT / "data" / "test.jsonl"
    test_path = args.test or (default_test if default_test.is_file() else None)
    team_test = load_labeled(test_path) if test_path is not None else None  # a named file must exist
    train_posts = {x.post_id for x in real_train}
    held_out = [s for s in read_claff(claff_csv) if s.text.strip() and s.post_id not in train_posts]

    rank_sets = [
        RankSet("claff_crowd_spearman", [s.text for s in held_out], [float(s.crowd_depth) for s in held_out], "spearman",
                f"{len(held_out)} CL-Aff sentences of posts outside real-train"),
        RankSet("claff_any_auc", [s.text for s in held_out], [float(s.crowd_depth > 0) for s in held_out], "auc",
                "either crowd label 1"),
    ]
    for maker, path in ((_mi, args.data / "therapist-self-disclosure" / "MI Dataset_and_Error_analysis.xlsx"),
                        (_esconv, args.data / "esconv" / "testWithStrategy_short.tsv"),
                        (_mint, args.data / "tweet-intimacy-mint" / "train.csv")):
        found = maker(path)
        if found is not None:
            rank_sets.append(found)
    questions = _questions(args.data / "question-intimacy")

    team = load_labeled(args.train)
    tfidf_texts = list(team["text"]) + [x.text for x in real_train] * args.real_weight
    tfidf_labels = list(team["label"]) + [LAYERS.index(x.layer) for x in real_train] * args.real_weight
    print(f"fitting TF-IDF on {len(tfidf_texts)} messages ...", file=sys.stderr)
    tfidf = TfidfBaseline.fit(tfidf_texts, tfidf_labels)

    systems: list[tuple[str, object]] = [(str(m), DisclosureClassifier.load(m)) for m in (args.model or [None])]
    systems.append(("tfidf", tfidf))
    gold_test = [LAYERS.index(x.layer) for x in real_test]
    results: list[SystemScores] = []
    first_predicted = None
    first_dev = None
    gold_dev = [LAYERS.index(x.layer) for x in real_dev]
    for name, system in systems:
        scores = SystemScores(name if name != "None" else "default")
        print(f"scoring {scores.name} ...", file=sys.stderr)
        for rank in rank_sets:
            probs = np.asarray(system.predict_proba(rank.texts))
            scores.figures[rank.name] = rank_figure(rank.metric, rank.gold, [expected_depth(p) for p in probs])
        probs = np.asarray(system.predict_proba([x.text for x in real_test]))
        predicted = probs.argmax(axis=1).tolist()
        report = compute_report(gold_test, predicted, [expected_depth(p) for p in probs])
        scores.figures["real_test_macro_f1"] = report.macro_f1
        interval = macro_f1_interval(gold_test, predicted)
        scores.figures["real_test_macro_f1_low"], scores.figures["real_test_macro_f1_high"] = interval.low, interval.high
        if first_predicted is None:
            first_predicted = predicted
        else:  # the gap to the first system, on the same resamples of real-test
            gap = macro_f1_interval(gold_test, predicted, first_predicted)
            scores.figures["real_test_vs_first_low"], scores.figures["real_test_vs_first_high"] = gap.low, gap.high
        for layer in LAYERS:
            scores.figures[f"real_test_f1_{layer}"] = report.per_layer[layer].f1
        scores.figures["real_test_within_one"] = report.within_one
        calib = calibration_report(probs, gold_test)
        scores.figures["real_test_ece"] = calib.ece
        if args.plots and name != "tfidf":
            args.plots.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^\w.-]+", "_", scores.name).strip("_") or "model"
            reliability_diagram(calib, args.plots / f"reliability_{safe}.png", title=f"{scores.name} on real-test")
        if real_dev:
            dev_predicted = labels_of(system, [x.text for x in real_dev])
            scores.figures["real_dev_macro_f1"] = macro_f1(gold_dev, dev_predicted)
            if first_dev is None:
                first_dev = dev_predicted
            else:
                gap = macro_f1_interval(gold_dev, dev_predicted, first_dev)
                scores.figures["real_dev_vs_first_low"], scores.figures["real_dev_vs_first_high"] = gap.low, gap.high
        if team_test is not None:
            team_gold = [int(v) for v in team_test["label"]]
            scores.figures["team_test_macro_f1"] = macro_f1(team_gold, labels_of(system, list(team_test["text"])))
        if questions:
            labels = labels_of(system, questions)
            scores.figures["questions_none_share"] = labels.count(0) / len(labels)
        results.append(scores)

    pronouns = SystemScores("pronouns")
    for rank in rank_sets:
        pronouns.figures[rank.name] = rank_figure(rank.metric, rank.gold, [pronoun_rate(t) for t in rank.texts])
    results.append(pronouns)

    _print_table(results, rank_sets, len(real_test), len(questions), len(real_dev))
    if args.json:
        args.json.write_text(json.dumps({
            "real_test_n": len(real_test),
            "real_dev_n": len(real_dev),
            "sets": {r.name: {"n": len(r.texts), "metric": r.metric, "note": r.note} for r in rank_sets},
            "systems": {s.name: s.figures for s in results},
        }, indent=2) + "\n")
    return 0


def _print_table(results: list[SystemScores], rank_sets: list[RankSet], n_test: int, n_questions: int, n_dev: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"External checks (real-test n={n_test}, questions n={n_questions}; selection only: real-dev n={n_dev})")
    table.add_column("figure")
    for system in results:
        table.add_column(system.name, justify="right")
    names = [r.name for r in rank_sets] + ["real_test_macro_f1", "real_test_macro_f1_low", "real_test_macro_f1_high",
                                           "real_test_vs_first_low", "real_test_vs_first_high"] + [
        f"real_test_f1_{layer}" for layer in LAYERS] + [
        "real_test_within_one", "real_test_ece", "questions_none_share",
        "real_dev_macro_f1", "real_dev_vs_first_low", "real_dev_vs_first_high", "team_test_macro_f1"]
    for name in names:
        cells = []
        for system in results:
            value = system.figures.get(name)
            cells.append("n/a" if value is None else f"{value:.3f}")
        table.add_row(name, *cells)
    Console().print(table)


if __name__ == "__main__":
    raise SystemExit(main())
