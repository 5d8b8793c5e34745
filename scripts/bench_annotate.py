"""How fast does batch annotation run on this machine, and against what ceiling?

One run times, on the same messages and with the same number of compute threads:

* ``transformers.pipeline("text-classification")`` called as most users call it (a list of
  texts, no ``batch_size``), and again with ``batch_size=32``;
* the project's annotate path for every backend (``torch`` fp32, ``onnx-fp32``, ``onnx``
  int8): ``classify`` is the model part exactly as ``annotate`` runs it (windows of 1,024
  messages, length-sorted batches inside each, results in input order), ``annotate`` the whole
  command (read the transcript, classify, reciprocity per conversation, write JSONL), and the
  share of annotate's time spent outside the model; PyTorch's own dynamic int8
  (``torch-int8``) is classified too, for comparison, though not offered;
* the TF-IDF baseline;
* a measured fp32 matrix-multiply peak (torch, 2048×384 @ 384×1536) that the model paths'
  achieved GFLOP/s are compared with (model FLOP = 2 × encoder linear weights × real tokens).
  A shared VM's speed drifts (on this project's 2-core VM, one 15-minute run measured the
  peak between 82 and 162 GFLOP/s), so the peak is measured right before and right after
  every timed path, and each path is compared with the better of its two neighbours: the
  ceiling it ran under.
  The peak of the whole run (the best of all) is reported beside it;
* long messages (cut into overlapping windows, none lost): what the windows cost;
* the accuracy of each backend (macro-F1 on data/test.jsonl and on the gold layers of
  data/conversations/samples.jsonl) and its agreement with fp32;
* the cold start of ``disclosure predict "…"`` with each backend and with its default
  (``--backend auto``).

``--rounds N`` runs the timed paths N times, interleaved (every path once per round), and
reports the median of each figure; the ratios (× naive, % of peak) are taken within each round
before the median, so a slow spell hits both sides of a ratio. Quality, long messages and cold
starts are measured once.

Every path runs in its own process, so its peak RSS is its own. Results are printed and written
as JSON (``-o FILE``). Defaults finish in a few minutes on a 2-core laptop; ``--memory-run``
annotates 10,000 and then 1,000,000 messages in one invocation and reports the peak RSS of each
against the targets (under 1.5 GB, and within 10 % of the 10k run). It runs annotate's default
backend (``onnx-fp32`` when ONNX Runtime is installed, else ``torch``) unless
``--memory-backend`` says otherwise, and takes ``1e6 / messages-per-second`` seconds: about an
hour at ~260 msg/s, about half that with ``--memory-backend onnx`` (int8). ``--summary-report``
makes both runs write ``--summary`` and ``--report`` too (target then: under 400 MB).

    python scripts/bench_annotate.py                              # default model, 2,000 messages
    python scripts/bench_annotate.py --model runs/ft-frozen -o bench.json
    python scripts/bench_annotate.py --rounds 3 -o bench.json     # the figures to report
    python scripts/bench_annotate.py --memory-run -o memory.json  # 10k vs 1M, annotate's default backend
    python scripts/bench_annotate.py --memory-run --summary-report --memory-backend onnx  # with both side outputs

The messages are synthetic chat messages of 5–40 words (seeded, so every run and every path
sees the same ones), or ``--input FILE`` (any transcript format ``disclosure annotate`` reads).
Close other programs first: a busy machine gives low numbers; the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULT_PREFIX = "BENCH-RESULT "
TORCH_INT8 = "torch-int8"
"""A reference path only (PyTorch dynamic int8), not a backend of the package."""
WARMUP_MESSAGES = 64
MATMUL_SHAPE = (2048, 384, 1536)

# A plain chat vocabulary: the benchmark needs realistic token counts (about 1.1 tokens per
# word, ~26 tokens per message), not meaning; quality is measured on the labeled data instead.
WORDS = """
i you we they he she it me my your our their this that what when where why how who yes no ok
okay lol haha omg thanks thank please sorry sure maybe really so very too just still also even
now then today tonight tomorrow yesterday week weekend month year morning night later soon
again always never sometimes usually honestly literally actually basically probably definitely
good great fine bad sad happy tired busy stressed worried excited nervous glad proud scared
love like hate want need know think feel guess hope wish mean said told asked went got made
going doing having getting making taking coming seeing trying working talking thinking feeling
home work school job boss team office meeting project deadline class exam paper lecture
friend friends mum mom dad sister brother family partner kids baby dog cat house flat room
food dinner lunch coffee tea pizza beer wine party movie show game music song book trip train
bus car drive walk run gym sleep bed phone message text call chat email photo video
money rent bills pay price cheap expensive bank loan debt job interview offer salary
doctor therapist appointment hospital sick ill pain anxiety depression panic lonely alone
the a an and or but if because though although since until while with without about for
from to in on at of by up down out over after before around into through between again
is are was were be been am do does did have has had can could will would should might must
not don't can't won't didn't isn't wasn't i'm you're it's that's there's we're they're
one two three four five first last next few lot lots much many more most some any every
""".split()
ENDINGS = ["", "", "", ".", ".", "!", "?", " lol", " haha", "..."]


# --------------------------------------------------------------------------------------------
# Messages


def synthetic_messages(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Chat messages of 5–40 words in conversations of 2–16 messages between two speakers."""
    rng = random.Random(seed)
    made = 0
    conversation = 0
    while made < count:
        conversation += 1
        size = min(rng.randint(2, 16), count - made)
        speakers = (f"u{rng.randint(1, 999)}", f"u{rng.randint(1000, 1999)}")
        previous = None
        for turn in range(size):
            words = [rng.choice(WORDS) for _ in range(rng.randint(5, 40))]
            text = " ".join(words) + rng.choice(ENDINGS)
            message_id = f"c{conversation}-m{turn}"
            speaker = speakers[turn % 2] if rng.random() < 0.8 else speakers[(turn + 1) % 2]
            yield {"id": message_id, "conversation_id": f"c{conversation}", "speaker": speaker,
                   "text": text[0].upper() + text[1:] if rng.random() < 0.3 else text, "reply_to": previous}
            previous = message_id
            made += 1


def long_messages(count: int, seed: int = 11) -> list[str]:
    """Long posts (250–800 words): several model windows each."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(250, 800))) + "." for _ in range(count)]


def write_messages(path: Path, rows: Iterator[dict[str, Any]]) -> int:
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
    return written


def input_messages(path: Path) -> Iterator[dict[str, Any]]:
    from disclosure_nlp.io.transcripts import read_messages

    for message in read_messages(path):
        yield {"id": message.id, "conversation_id": message.conversation_id, "speaker": message.speaker,
               "text": message.text, "reply_to": message.reply_to}


def read_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


# --------------------------------------------------------------------------------------------
# Worker side: one measurement per process


def peak_rss_mb() -> float:
    """This process's own peak RSS.

    Linux's ``ru_maxrss`` survives ``exec``: a worker would report at least the RSS the parent
    had when it started the worker (1.4 GB after an ONNX export in the parent), whatever the
    worker itself used. ``VmHWM`` belongs to the process's current memory map, which ``exec``
    replaces, so it is the worker's own.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover - not Linux
        return peak_rss_mb()


def emit(result: dict[str, Any]) -> None:
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def worker_matmul(args) -> None:
    import torch

    set_threads(args.threads)
    m, k, n = MATMUL_SHAPE
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(5):
        torch.mm(a, b, out=out)
    best = 0.0
    for _ in range(args.matmul_bursts):  # best of several bursts: the peak, not the average under interference
        reps, started = 0, time.perf_counter()
        while time.perf_counter() - started < 0.3:
            torch.mm(a, b, out=out)
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - started) / 1e9)
    emit({"gflops": round(best, 1), "shape": list(MATMUL_SHAPE), "threads": torch.get_num_threads()})


def worker_pipeline(args) -> None:
    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    set_threads(args.threads)
    hf_logging.set_verbosity_error()
    texts = read_texts(args.messages)
    started = time.perf_counter()
    pipe = pipeline("text-classification", model=str(args.model), device="cpu")
    load = time.perf_counter() - started
    kwargs = {"batch_size": args.pipeline_batch} if args.pipeline_batch else {}
    pipe(texts[:WARMUP_MESSAGES], **kwargs)
    started = time.perf_counter()
    out = pipe(texts, **kwargs)
    seconds = time.perf_counter() - started
    assert len(out) == len(texts)
    emit({"messages": len(texts), "seconds": seconds, "load_seconds": load, "threads": torch.get_num_threads()})


def _classifier(args):
    from disclosure_nlp.model.classifier import DisclosureClassifier

    started = time.perf_counter()
    if args.backend == TORCH_INT8:
        clf = DisclosureClassifier.load(args.model, backend="torch", device="cpu", threads=args.threads)
        clf.backend = torch_int8_backend(clf.model)
        clf.model = clf.backend.model
    else:
        clf = DisclosureClassifier.load(args.model, backend=args.backend, threads=args.threads)
    return clf, time.perf_counter() - started


def torch_int8_backend(model):
    """PyTorch's dynamic int8 (weights per channel), measured for comparison: not offered by the
    package, because ONNX Runtime's int8 is both faster and closer to fp32 (see backends.py)."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from disclosure_nlp.model.backends import TorchBackend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return TorchBackend(quantized, name=TORCH_INT8)


def worker_classify(args) -> None:
    """The model part of annotate: windows of messages, length-sorted batches, input order."""
    clf, load = _classifier(args)
    texts = read_texts(args.messages)
    clf.predict_proba(texts[:WARMUP_MESSAGES], batch_size=args.batch_size)
    started = time.perf_counter()
    rows = 0
    for start in range(0, len(texts), args.window):
        rows += len(clf.predict_proba(texts[start : start + args.window], batch_size=args.batch_size))
    seconds = time.perf_counter() - started
    assert rows == len(texts)
    result: dict[str, Any] = {"messages": len(texts), "seconds": seconds, "load_seconds": load,
                              "peak_rss_mb": round(peak_rss_mb(), 1), "threads": args.threads}
    # Tokenization alone (the fast tokenizer's batch call, windows included), same windows.
    started = time.perf_counter()
    tokens = 0
    for start in range(0, len(texts), args.window):
        _, pieces = clf.windows(texts[start : start + args.window])
        tokens += sum(len(p) for p in pieces)
    result["tokenize_seconds"] = time.perf_counter() - started
    result["tokens"] = tokens
    if args.long:
        posts = long_messages(args.long)
        owners, pieces = clf.windows(posts)
        plain = sum(len(ids) for ids in clf.tokenizer(posts, add_special_tokens=True, truncation=False)["input_ids"])
        clf.predict_proba(posts[:2], batch_size=args.batch_size)
        started = time.perf_counter()
        clf.predict_proba(posts, batch_size=args.batch_size)
        result["long"] = {"messages": len(posts), "seconds": time.perf_counter() - started, "windows": len(pieces),
                          "tokens": sum(len(p) for p in pieces), "message_tokens": plain}
    if args.quality_file:
        result["quality"] = quality(clf, args.batch_size, args.quality_file)
    emit(result)


def quality_sets() -> dict[str, dict[str, list]]:
    """The labeled sets the backends are scored on, read once so that every worker sees the same."""
    from disclosure_nlp.layers import layer_id

    sets: dict[str, dict[str, list]] = {}
    test = ROOT / "data" / "test.jsonl"
    if test.exists():
        rows = [json.loads(line) for line in test.read_text(encoding="utf-8").splitlines() if line.strip()]
        sets["test"] = {"texts": [r["text"] for r in rows], "gold": [layer_id(r["layer"]) for r in rows]}
    samples = ROOT / "data" / "conversations" / "samples.jsonl"
    if samples.exists():
        rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
        sets["samples"] = {"texts": [r["text"] for r in rows], "gold": [layer_id(r["meta"]["gold_layer"]) for r in rows]}
    return sets


def quality(clf, batch_size: int, path: Path) -> dict[str, Any]:
    """Macro-F1 on the held-out test split and on the gold layers of the sample conversations."""
    from disclosure_nlp.layers import expected_depth
    from disclosure_nlp.model.metrics import compute_report

    out = {}
    for name, data in json.loads(path.read_text(encoding="utf-8")).items():
        texts, gold = data["texts"], data["gold"]
        probs = clf.predict_proba(texts, batch_size=batch_size)
        predicted = probs.argmax(axis=1).tolist()
        report = compute_report(gold, predicted, [expected_depth(p) for p in probs])
        out[name] = {"n": len(gold), "macro_f1": report.macro_f1, "accuracy": report.accuracy,
                     "predicted": predicted, "probabilities": probs.round(5).tolist()}
    return out


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds, to show it stays flat over a run."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((round(time.perf_counter() - self._started, 1), round(current_rss_mb(), 1)))
            if len(self.samples) % 30 == 0:
                print(f"  t={self.samples[-1][0]:.0f} s  rss={self.samples[-1][1]:.0f} MB", file=sys.stderr, flush=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def worker_annotate(args) -> None:
    """The whole annotate command: transcript in, annotated JSONL out."""
    from disclosure_nlp.annotate import annotate

    clf, load = _classifier(args)
    clf.predict_proba(["warm up the backend"] * 8, batch_size=args.batch_size)
    rss_before = current_rss_mb()
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-annotate-") as scratch, RssSampler(args.rss_interval) as sampler:
        extra = ({"summary": Path(scratch) / "summary.json", "report": Path(scratch) / "report.html"}
                 if args.summary_report else {})
        stats = annotate(args.messages, Path(scratch) / "out.jsonl", classifier=clf, batch_size=args.batch_size,
                         window=args.window, force=True, **extra)
        sizes = {f"{name}_mb": round(path.stat().st_size / 2**20, 1) for name, path in extra.items()}
    samples = sampler.samples
    emit({"messages": stats.written, "read": stats.read, "conversations": stats.conversations,
          "seconds": stats.seconds, "load_seconds": load,
          "rss_before_mb": round(rss_before, 1), "rss_samples": samples[:: max(1, len(samples) // 40)],
          "threads": args.threads, **sizes})


def worker_tfidf(args) -> None:
    from disclosure_nlp.model.baseline import TfidfBaseline
    from disclosure_nlp.layers import layer_id

    from sklearn.base import clone

    train = [json.loads(line) for line in (ROOT / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    texts, labels = [r["text"] for r in train], [layer_id(r["layer"]) for r in train]
    # The baseline's own fit searches C by cross-validation (minutes on a busy laptop); its
    # prediction speed does not depend on C, so fit its exact pipeline once at a fixed C.
    # A throwaway fit on two copies of one message per layer gives that pipeline to clone.
    firsts = {label: text for text, label in zip(texts, labels)}
    template = TfidfBaseline.fit(list(firsts.values()) * 2, list(firsts.keys()) * 2)
    pipeline = clone(template.pipeline).set_params(lr__C=args.tfidf_c)
    pipeline.fit(texts, labels)
    baseline = TfidfBaseline(pipeline, args.tfidf_c)
    texts = read_texts(args.messages)
    baseline.predict_proba(texts[:WARMUP_MESSAGES])
    started = time.perf_counter()
    baseline.predict_proba(texts)
    emit({"messages": len(texts), "seconds": time.perf_counter() - started})


WORKERS = {"matmul": worker_matmul, "pipeline": worker_pipeline, "classify": worker_classify,
           "annotate": worker_annotate, "tfidf": worker_tfidf}


# --------------------------------------------------------------------------------------------
# Parent side


def run_worker(kind: str, args, *, label: str, extra: list[str] | None = None, quiet: bool = False) -> dict[str, Any] | None:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--model", str(args.model),
               "--messages-file", str(args.messages_file), "--threads", str(args.threads),
               "--batch-size", str(args.batch_size), "--window", str(args.window), *(extra or [])]
    if not quiet:
        print(f"· {label} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=None if args.verbose or kind == "annotate" else subprocess.PIPE,
                          text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "true"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        print(f"  {label} failed (exit {proc.returncode}):\n{(proc.stderr or '')[-2000:]}", file=sys.stderr)
        return None
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


def flops_per_token(model_dir: Path) -> float:
    """2 × the encoder's linear weights: the FLOP a token costs, attention scores aside."""
    config = json.loads((model_dir / "config.json").read_text())
    hidden = config.get("hidden_size") or config.get("dim")
    inner = config.get("intermediate_size") or config.get("hidden_dim")
    layers = config.get("num_hidden_layers") or config.get("n_layers")
    return 2.0 * layers * (4 * hidden * hidden + 2 * hidden * inner)


def count_tokens(model_dir: Path, texts: list[str]) -> int:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return sum(len(e.ids) for e in tokenizer.encode_batch(texts))


def cold_start(args, backend: str | None, runs: int) -> dict[str, Any] | None:
    """Wall time of ``disclosure predict "…"`` in a fresh process (best and median of ``runs``);
    ``backend=None`` runs it without ``--backend``, as a user does (``auto``)."""
    script = Path(sys.executable).with_name("disclosure")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "disclosure_nlp.cli"]
    choice = ["--backend", backend] if backend else []
    command = base + ["predict", "--model", str(args.model), *choice,
                      "I moved to Leeds last month and honestly I still feel pretty lonely"]
    backend = backend or "default (auto)"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            print(f"  cold start ({backend}) failed: {proc.stderr[-500:]}", file=sys.stderr)
            return None
    times.sort()
    return {"backend": backend, "best_seconds": round(times[0], 2), "median_seconds": round(times[len(times) // 2], 2),
            "runs": runs, "command": " ".join(command[:1] + command[1:-1]) + " '…'"}


def export_once(model: Path, backends: list[str]) -> float | None:
    """Export the model for the ONNX backends among ``backends`` before anything is timed."""
    from disclosure_nlp.model.backends import ONNX_VARIANTS, cached_export

    wanted = [b for b in backends if b in ONNX_VARIANTS]
    if not wanted:
        return None
    print("· ONNX export (once per model; cached) …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    cached_export(model, quantize=any(ONNX_VARIANTS[b] for b in wanted))
    return round(time.perf_counter() - started, 1)


class Round:
    """One round of timed paths, each between two short matmul-peak measurements.

    The peak a path is compared with is the better of the measurements just before and just
    after it: on a VM whose speed drifts, a peak taken minutes away is not the ceiling the path
    ran under (and the better of two neighbours keeps the comparison on the strict side).
    """

    def __init__(self, args, suffix: str = "") -> None:
        self.args = args
        self.suffix = suffix
        self.results: dict[str, dict[str, Any] | None] = {}
        self.peaks: list[float] = []
        self._previous = self._peak()

    def _peak(self) -> float | None:
        result = run_worker("matmul", self.args, label="matmul peak", quiet=True,
                            extra=["--matmul-bursts", str(ADJACENT_BURSTS)])
        if result:
            self.peaks.append(result["gflops"])
            return result["gflops"]
        return None

    def run(self, name: str, kind: str, label: str, extra: list[str] | None = None) -> dict[str, Any] | None:
        result = run_worker(kind, self.args, label=label + self.suffix, extra=extra)
        after = self._peak()
        if result is not None:
            neighbours = [p for p in (self._previous, after) if p is not None]
            result["adjacent_peak_gflops"] = max(neighbours) if neighbours else None
        self._previous = after
        self.results[name] = result
        return result


ADJACENT_BURSTS = 4
"""Bursts (0.3 s each) of the matmul measured beside every path: short, so that it stays near."""


def _median(values: list[float]) -> float | None:
    import statistics

    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(rounds: list[dict[str, dict[str, Any] | None]], *, tokens: int, per_token: float,
              run_peak: float | None) -> list[dict[str, Any]]:
    """One row per path: medians over the rounds; ratios taken within each round first."""
    rows = []
    for name in rounds[0]:
        per_round = [r.get(name) for r in rounds]
        if not any(per_round):
            continue
        rates, ratios, gflops, pcts, adjacent = [], [], [], [], []
        for results, result in zip(rounds, per_round):
            if not result:
                continue
            rate = result["messages"] / result["seconds"]
            rates.append(rate)
            naive = results.get("pipeline-naive")
            if naive:
                ratios.append(rate / (naive["messages"] / naive["seconds"]))
            if not name.startswith("tfidf"):
                used = result.get("tokens", tokens)
                flops = per_token * used / result["seconds"] / 1e9
                gflops.append(flops)
                if result.get("adjacent_peak_gflops"):
                    adjacent.append(result["adjacent_peak_gflops"])
                    pcts.append(100 * flops / result["adjacent_peak_gflops"])
        first = next(r for r in per_round if r)
        row: dict[str, Any] = {
            "path": name, "messages_per_second": round(_median(rates), 1), "round_rates": [round(x, 1) for x in rates],
            "seconds": round(_median([r["seconds"] for r in per_round if r]), 2),
            "peak_rss_mb": max((r.get("peak_rss_mb") or 0 for r in per_round if r), default=None) or None,
            "vs_naive_pipeline": round(_median(ratios), 2) if ratios else None,
        }
        if gflops:
            median_gflops = _median(gflops)
            row["tokens_per_message"] = round(first.get("tokens", tokens) / first["messages"], 1)
            row["gflops"] = round(median_gflops, 1)
            row["adjacent_peak_gflops"] = round(_median(adjacent), 1) if adjacent else None
            row["pct_of_matmul_peak"] = round(_median(pcts), 1) if pcts else None
            row["pct_of_run_peak"] = round(100 * median_gflops / run_peak, 1) if run_peak else None
        # Each round's figures too: how far apart they are says how much a single figure is worth.
        row["round_vs_naive"] = [round(x, 2) for x in ratios]
        if pcts:
            row["round_pct_of_matmul_peak"] = [round(x, 1) for x in pcts]
        rows.append(row)
    return rows


def round_ratio(by_path: dict[str, dict[str, Any]], mine: str, reference: str) -> float | None:
    """Median over the rounds of ``mine``'s rate / ``reference``'s rate in the same round."""
    a, b = by_path.get(mine), by_path.get(reference)
    if not a or not b or len(a["round_rates"]) != len(b["round_rates"]):
        return None
    return _median([x / y for x, y in zip(a["round_rates"], b["round_rates"])])


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'path':<24}{'msg/s':>9}{'× naive':>9}{'GFLOP/s':>9}{'peak':>8}{'% peak':>8}{'% run':>8}"
              f"{'peak RSS':>10}")
    print(header)
    print("-" * len(header))
    for row in rows:
        def cell(key, fmt, width):
            value = row.get(key)
            return f"{format(value, fmt):>{width}}" if value is not None else f"{'–':>{width}}"
        print(f"{row['path']:<24}{cell('messages_per_second', '.1f', 9)}{cell('vs_naive_pipeline', '.2f', 9)}"
              f"{cell('gflops', '.1f', 9)}{cell('adjacent_peak_gflops', '.0f', 8)}{cell('pct_of_matmul_peak', '.1f', 8)}"
              f"{cell('pct_of_run_peak', '.1f', 8)}"
              f"{(format(row['peak_rss_mb'], '.0f') + ' MB') if row.get('peak_rss_mb') else '–':>10}")


def quality_summary(classify: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    reference = classify.get("torch", {}).get("quality")
    for backend, result in classify.items():
        figures = result.get("quality")
        if not figures:
            continue
        entry = {}
        for name, data in figures.items():
            item = {"n": data["n"], "macro_f1": round(data["macro_f1"], 4), "accuracy": round(data["accuracy"], 4)}
            if reference and backend != "torch" and name in reference:
                ref = reference[name]
                item["macro_f1_delta_points"] = round(100 * (data["macro_f1"] - ref["macro_f1"]), 2)
                item["agreement_with_fp32"] = round(float(np.mean(np.array(data["predicted"]) == np.array(ref["predicted"]))), 4)
                item["max_abs_probability_diff"] = float(f"{np.abs(np.array(data['probabilities']) - np.array(ref['probabilities'])).max():.3g}")
            entry[name] = item
        out[backend] = entry
    return out


MEMORY_LIMIT_MB = 1536
MEMORY_LIMIT_WITH_OUTPUTS_MB = 400
"""With --summary-report: the summary is streamed and the report bounded, so 1M messages in
~110k conversations must stay under this (before streaming, 100k conversations took 1.0 GB)."""
MEMORY_TOLERANCE = 0.10


def main_memory_run(args) -> dict[str, Any]:
    """10k and N (default 1M) messages through annotate with one backend: peak RSS of each."""
    report: dict[str, Any] = {"backend": args.memory_backend, "summary_and_report": args.summary_report, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        for count in (args.memory_baseline, args.memory_messages):
            path = Path(scratch) / f"messages-{count}.jsonl"
            print(f"· writing {count:,} messages …", file=sys.stderr, flush=True)
            write_messages(path, synthetic_messages(count))
            args.messages_file = path
            result = run_worker("annotate", args, label=f"annotate {count:,} messages ({args.memory_backend})",
                                extra=["--backend", args.memory_backend, "--rss-interval", str(args.rss_interval)]
                                + (["--summary-report"] if args.summary_report else []))
            path.unlink()
            if result is None:
                continue
            result["messages_per_second"] = round(result["messages"] / result["seconds"], 1)
            report["runs"].append(result)
            print(f"  {count:,} messages: {result['messages_per_second']} msg/s, peak RSS {result['peak_rss_mb']:.0f} MB",
                  file=sys.stderr)
    if len(report["runs"]) == 2:
        small, large = report["runs"]
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        report["peak_rss_ratio"] = round(ratio, 3)
        limit = MEMORY_LIMIT_WITH_OUTPUTS_MB if args.summary_report else MEMORY_LIMIT_MB
        report["targets"] = [
            {"target": f"{large['messages']:,} messages: peak RSS < {limit} MB",
             "value": f"{large['peak_rss_mb']:.0f} MB", "met": large["peak_rss_mb"] < limit},
            {"target": f"peak RSS within ±{MEMORY_TOLERANCE:.0%} of the {small['messages']:,}-message run",
             "value": f"{small['peak_rss_mb']:.0f} → {large['peak_rss_mb']:.0f} MB ({ratio - 1:+.1%})",
             "met": abs(ratio - 1) <= MEMORY_TOLERANCE},
        ]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", type=Path, default=None, help="Model directory (default: the shipped model).")
    parser.add_argument("--messages", type=int, default=2000, help="Synthetic messages to time (default 2000).")
    parser.add_argument("--input", type=Path, default=None, help="Time these messages instead (any transcript format).")
    parser.add_argument("--threads", type=int, default=None, help="Compute threads (default: physical cores).")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--window", type=int, default=None, help="Messages classified together (default: annotate's).")
    parser.add_argument("--backends", default=None, help="Comma-separated backends (default: all available).")
    parser.add_argument("--skip-pipeline", action="store_true", help="Skip the transformers.pipeline reference paths.")
    parser.add_argument("--skip-annotate", action="store_true", help="Skip the end-to-end annotate runs.")
    parser.add_argument("--long", type=int, default=24, help="Long messages (250–800 words) for the windows' cost.")
    parser.add_argument("--no-quality", dest="quality", action="store_false", help="Skip the accuracy check.")
    parser.add_argument("--cold-start-runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1,
                        help="Time every path this many times, interleaved, and report medians (default 1).")
    parser.add_argument("--memory-run", action="store_true", help="Only the memory run: 10k vs --memory-messages.")
    parser.add_argument("--memory-messages", type=int, default=1_000_000, help="Messages of the long memory run.")
    parser.add_argument("--memory-baseline", type=int, default=10_000, help="Messages of the short run it is compared with.")
    parser.add_argument("--memory-backend", default=None,
                        help="Backend of the memory run: onnx-fp32, onnx (int8) or torch (default: annotate's, onnx-fp32 "
                             "when ONNX Runtime is installed, else torch).")
    parser.add_argument("--summary-report", action="store_true",
                        help="Annotate runs also write --summary and --report (their memory is measured too).")
    parser.add_argument("--rss-interval", type=float, default=2.0)
    parser.add_argument("--output", "-o", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--verbose", action="store_true", help="Show the workers' stderr.")
    # Worker mode (internal): one measurement in this process.
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--messages-file", dest="messages_path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline-batch", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tfidf-c", type=float, default=4.0, help=argparse.SUPPRESS)
    parser.add_argument("--quality-file", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--matmul-bursts", type=int, default=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from disclosure_nlp.annotate import DEFAULT_WINDOW
    from disclosure_nlp.model.backends import resolve_threads

    args.window = args.window or DEFAULT_WINDOW
    args.threads = resolve_threads(args.threads)
    if args.worker:
        args.messages = args.messages_path
        args.model = Path(args.model)
        args.long = args.long if args.worker == "classify" else 0
        WORKERS[args.worker](args)
        return 0

    from disclosure_nlp.model.modelstore import resolve_model_dir

    args.model = resolve_model_dir(args.model)
    from disclosure_nlp.model.backends import AUTO, BACKENDS, ONNX_VARIANTS, onnx_installed, resolve_backend

    available = [b for b in BACKENDS if b not in ONNX_VARIANTS or onnx_installed()]
    backends = args.backends.split(",") if args.backends else available + [TORCH_INT8]
    load_start = os.getloadavg()
    meta = {"model": str(args.model), "threads": args.threads, "batch_size": args.batch_size, "window": args.window,
            "machine": {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                        "python": platform.python_version(), "load_average_at_start": [round(x, 2) for x in load_start]},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        import onnxruntime
        import torch
        import transformers

        meta["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                            "onnxruntime": onnxruntime.__version__}
    except ImportError:
        pass

    if args.memory_run:
        if args.memory_backend is None:  # what `disclosure annotate` runs by default
            args.memory_backend = resolve_backend(AUTO)
        export_once(args.model, [args.memory_backend])
        report = {"meta": meta, "memory_run": main_memory_run(args)}
        report["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps({k: v for k, v in report["memory_run"].items() if k != "targets"}, indent=2))
        for run in report["memory_run"]["runs"]:
            print(f"{run['messages']:>10,} messages ({args.memory_backend}): peak RSS {run['peak_rss_mb']:.0f} MB, "
                  f"{run['messages_per_second']} msg/s")
        for item in report["memory_run"].get("targets", []):
            print(f"  [{'PASS' if item['met'] else 'MISS'}] {item['target']}: {item['value']}")
        if args.output:
            args.output.write_text(json.dumps(report, indent=2) + "\n")
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        args.messages_file = Path(scratch) / "messages.jsonl"
        rows_in = input_messages(args.input) if args.input else synthetic_messages(args.messages)
        count = write_messages(args.messages_file, rows_in)
        texts = read_texts(args.messages_file)
        tokens = count_tokens(args.model, texts)
        per_token = flops_per_token(args.model)
        meta.update({"messages": count, "source": str(args.input) if args.input else "synthetic chat, 5–40 words",
                     "tokens_per_message": round(tokens / count, 1), "model_flop_per_token": per_token})
        print(f"{count} messages, {tokens / count:.1f} tokens each, {args.threads} threads; model "
              f"{per_token / 2e6:.1f} M linear weights per token", file=sys.stderr)
        exported = export_once(args.model, backends)  # the one-time export must not be timed
        if exported is not None:
            meta["onnx_export_seconds"] = exported

        classify: dict[str, dict[str, Any]] = {}
        quality_file = Path(scratch) / "quality.json"
        if args.quality:
            sets = quality_sets()
            quality_file.write_text(json.dumps(sets), encoding="utf-8")
            meta["quality_sets"] = {name: len(data["gold"]) for name, data in sets.items()}
        rounds: list[dict[str, Any]] = []
        peaks: list[float] = []
        for number in range(max(1, args.rounds)):
            first = number == 0
            suffix = f" [round {number + 1}/{args.rounds}]" if args.rounds > 1 else ""
            timed = Round(args, suffix)
            if not args.skip_pipeline:
                timed.run("pipeline-naive", "pipeline", "pipeline(texts) — naive")
                timed.run("pipeline-bs32", "pipeline", "pipeline(texts, batch_size=32)", ["--pipeline-batch", "32"])
            for backend in backends:
                extra = ["--backend", backend, "--long", str(args.long if first else 0)]
                if args.quality and first:
                    extra += ["--quality-file", str(quality_file)]
                result = timed.run(f"classify/{backend}", "classify", f"classify ({backend})", extra)
                if result and first:
                    classify[backend] = result
            if not args.skip_annotate:
                for backend in [b for b in backends if b in BACKENDS]:
                    timed.run(f"annotate/{backend}", "annotate", f"annotate end-to-end ({backend})", ["--backend", backend])
            timed.run("tfidf-baseline", "tfidf", "TF-IDF baseline")
            rounds.append(timed.results)
            peaks.extend(timed.peaks)
        # The peak of the whole run: the best of every measurement, so that a busy spell cannot
        # make the model paths look closer to the machine's ceiling than they are.
        peak = max(peaks) if peaks else None
        cold_backends = [b for b in backends if b in BACKENDS] + [None]  # None: predict's default (auto)
        if args.cold_start_runs > 0:  # --cold-start-runs 0 skips them
            print("· cold starts …", file=sys.stderr, flush=True)
        cold = [c for c in (cold_start(args, b, args.cold_start_runs) for b in cold_backends) if c] if args.cold_start_runs > 0 else []

    raw = dict(rounds[0])
    rows = aggregate(rounds, tokens=tokens, per_token=per_token, run_peak=peak)
    by_path = {row["path"]: row for row in rows}
    long_rows = {}
    for backend, result in classify.items():
        info = result.get("long")
        if info:
            long_rows[backend] = {
                "messages": info["messages"], "windows_per_message": round(info["windows"] / info["messages"], 2),
                "messages_per_second": round(info["messages"] / info["seconds"], 2),
                "tokens_per_second": round(info["tokens"] / info["seconds"]),
                "short_tokens_per_second": round(result["tokens"] / result["seconds"]),
                "overlap_token_overhead_pct": round(100 * (info["tokens"] / info["message_tokens"] - 1), 1),
                "gflops": round(per_token * info["tokens"] / info["seconds"] / 1e9, 1),
            }
    tokenize = {b: {"seconds": round(r["tokenize_seconds"], 3), "pct_of_classify": round(100 * r["tokenize_seconds"] / r["seconds"], 1)}
                for b, r in classify.items()}
    overhead = annotate_overhead(by_path)
    targets = targets_report(by_path, classify, cold)
    meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["rounds"] = max(1, args.rounds)
    report = {"meta": meta, "matmul_peak_gflops": peak, "matmul_peaks": peaks, "paths": rows, "long_messages": long_rows,
              "tokenization": tokenize, "annotate_overhead": overhead, "quality": quality_summary(classify),
              "cold_start": cold, "targets": targets, "raw": {name: _without_arrays(result) for name, result in raw.items()}}

    print()
    print(f"model {args.model}  ·  {count} messages × {tokens / count:.1f} tokens  ·  {args.threads} threads  ·  "
          f"matmul peak {min(peaks) if peaks else None}–{peak} GFLOP/s over the run  ·  rounds {meta['rounds']}  ·  load {meta['machine']['load_average_at_start'][0]} → {meta['load_average_at_end'][0]}")
    print_table(rows)
    print("peak: the matmul peak measured beside the path; % peak: of that; % run: of the run's best peak"
          + ("; medians over the rounds" if meta["rounds"] > 1 else ""))
    if meta["rounds"] > 1:
        print("\nper round (× naive pipeline; % of the peak beside it):")
        for row in rows:
            if row["path"].startswith(("classify/", "annotate/")):
                print(f"  {row['path']:<22} {', '.join(f'{x:.2f}×' for x in row['round_vs_naive'])};  "
                      f"{', '.join(f'{x:.1f}%' for x in row.get('round_pct_of_matmul_peak', []))}")
    busiest = max(meta["machine"]["load_average_at_start"][0], meta["load_average_at_end"][0])
    if busiest > (os.cpu_count() or 1) + 0.5:  # this run itself keeps about `threads` cores busy
        print(f"WARNING: load average {busiest:.1f} on {os.cpu_count()} CPUs: other programs competed for the "
              "cores, so these figures are low and their ratios unreliable; rerun on a quiet machine")
    if long_rows:
        print("\nlong messages (250–800 words, overlapping windows):")
        for backend, row in long_rows.items():
            print(f"  {backend:<11} {row['messages_per_second']:>6} msg/s, {row['windows_per_message']} windows/msg, "
                  f"{row['tokens_per_second']} tok/s (short: {row['short_tokens_per_second']}), "
                  f"overlap +{row['overlap_token_overhead_pct']}% tokens, {row['gflops']} GFLOP/s")
    if tokenize:
        print("\ntokenization share of classify time: " + ", ".join(f"{b} {t['pct_of_classify']}%" for b, t in tokenize.items()))
    if overhead:
        print("\nannotate end to end vs classification alone (time outside the model: reading, reciprocity, writing):")
        for backend, item in overhead.items():
            print(f"  {backend:<11} classify {item['classify_messages_per_second']} msg/s, annotate "
                  f"{item['annotate_messages_per_second']} msg/s: {item['overhead_pct']}% of annotate's time outside the model")
    if report["quality"]:
        print("\nquality (macro-F1; delta vs torch fp32 in points; agreement of labels with fp32; largest probability difference):")
        for backend, sets in report["quality"].items():
            parts = []
            for name, item in sets.items():
                delta = (f" ({item['macro_f1_delta_points']:+.2f}, agree {100 * item['agreement_with_fp32']:.1f}%, "
                         f"|Δp| ≤ {item['max_abs_probability_diff']:g})") if "macro_f1_delta_points" in item else ""
                parts.append(f"{name} {item['macro_f1']:.4f}{delta}")
            print(f"  {backend:<11} " + "   ".join(parts))
    if cold:
        print("\ncold start of `disclosure predict \"…\"` (fresh process, export cached):")
    for c in cold:
        print(f"  {c['backend']:<15} best {c['best_seconds']} s, median {c['median_seconds']} s")
    print("\ntargets:")
    for item in targets:
        mark = {True: "PASS", False: "MISS", None: "n/a "}[item["met"]]
        print(f"  [{mark}] {item['target']}: {item['value']}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.output}")
    return 0


def _without_arrays(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A worker's result without the per-message predictions (kept out of the JSON file)."""
    if not result or "quality" not in result:
        return result
    slim = dict(result)
    slim["quality"] = {name: {k: v for k, v in data.items() if k not in ("predicted", "probabilities")}
                       for name, data in result["quality"].items()}
    return slim


def annotate_overhead(by_path: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per backend: how much of annotate's time is not the model (1 − annotate rate / classify rate)."""
    out = {}
    for name, row in by_path.items():
        if not name.startswith("annotate/"):
            continue
        backend = name.split("/", 1)[1]
        alone = by_path.get(f"classify/{backend}")
        ratio = round_ratio(by_path, name, f"classify/{backend}")
        if alone and ratio:
            out[backend] = {"classify_messages_per_second": alone["messages_per_second"],
                            "annotate_messages_per_second": row["messages_per_second"],
                            "overhead_pct": round(100 * (1 - ratio), 1)}
    return out


def targets_report(by_path, classify, cold) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value."""
    def rate(name):
        row = by_path.get(name)
        return row["messages_per_second"] if row else None

    fast = {b: rate(f"classify/{b}") for b in ("onnx", "torch-int8") if rate(f"classify/{b}")}
    best = max(fast, key=fast.get) if fast else None
    out = []

    def add(target, value, met):
        out.append({"target": target, "value": value, "met": met})

    def at_least(target, mine, reference, floor):
        ratio = round_ratio(by_path, mine, reference)
        add(target, f"{ratio:.2f}×" if ratio else "n/a", (ratio >= floor) if ratio else None)

    from disclosure_nlp.model.backends import AUTO, resolve_backend

    default = resolve_backend(AUTO)  # the fp32 backend `disclosure annotate` runs unless told

    def named(fp32):
        return f"{fp32} (annotate's default)" if fp32 == default else fp32

    for path in ("classify", "annotate"):
        for fp32 in ("torch", "onnx-fp32"):
            if f"{path}/{fp32}" not in by_path:
                continue
            at_least(f"{path} {named(fp32)} ≥ 3× naive pipeline", f"{path}/{fp32}", "pipeline-naive", 3)
            at_least(f"{path} {named(fp32)} ≥ 1.4× pipeline(batch_size=32)", f"{path}/{fp32}", "pipeline-bs32", 1.4)
            row = by_path[f"{path}/{fp32}"]
            pct = row.get("pct_of_matmul_peak")
            add(f"{path} {named(fp32)} ≥ 70% of matmul peak (beside it; of the run's best: {row.get('pct_of_run_peak')}%)",
                f"{pct}%" if pct is not None else "n/a", (pct >= 70) if pct is not None else None)
    for fp32 in ("torch", "onnx-fp32"):
        if f"annotate/{fp32}" in by_path and "annotate/onnx" in by_path:
            at_least(f"annotate onnx (int8) ≥ 1.6× annotate {named(fp32)}", "annotate/onnx", f"annotate/{fp32}", 1.6)
    for backend in fast:
        at_least(f"{backend} ≥ 1.6× classify torch fp32", f"classify/{backend}", "classify/torch", 1.6)
        figures = quality_summary(classify).get(backend, {})
        deltas = [item.get("macro_f1_delta_points") for item in figures.values() if "macro_f1_delta_points" in item]
        add(f"{backend} macro-F1 loss ≤ 1 point", ", ".join(f"{name} {item['macro_f1_delta_points']:+.2f}" for name, item in figures.items() if "macro_f1_delta_points" in item) or "n/a",
            all(d >= -1.0 for d in deltas) if deltas else None)
    same = quality_summary(classify).get("onnx-fp32", {})
    diffs = {name: item["max_abs_probability_diff"] for name, item in same.items() if "max_abs_probability_diff" in item}
    if diffs:
        add("onnx-fp32 probabilities within 1e-4 of torch", ", ".join(f"{name} {d:g}" for name, d in diffs.items()),
            all(d <= 1e-4 for d in diffs.values()))
    for c in cold:
        add(f"cold start `disclosure predict` ({c['backend']}) < 4 s", f"{c['median_seconds']} s", c["median_seconds"] < 4.0)
    if best:
        add("best backend", best, None)
    return out


if __name__ == "__main__":
    sys.exit(main())
