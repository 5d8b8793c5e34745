"""Time and memory of ``analyze_corpus`` on labelled conversations (issue 18: 1,300 in ≤ 60 s).

Why this exists
---------------
The corpus view promises flat memory (one conversation at a time, a few numbers per
conversation, a fixed-size surrogate reservoir) and speed enough for ESConv's full 1,300
conversations. This script writes synthetic labelled conversations shaped like ESConv (two
speakers, seeker and supporter, 20–40 turns of 1–2 messages, depths that drift and partly
follow the previous turn), then runs :func:`disclosure_nlp.analysis.corpus.analyze_corpus` on them in a
fresh process per size, reporting wall time and peak resident memory (``ru_maxrss``, which
includes the interpreter, NumPy and the imports: about 85 MB before any work). ``--trace`` runs
each size again under :mod:`tracemalloc` (several times slower, so not timed) and reports the
peak of the Python and NumPy allocations of the run itself: memory is flat when that peak
hardly grows from N to 4N conversations. 23 numbers (184 bytes) per conversation are kept by
design.

    python scripts/bench_reciprocity.py --sizes 1300 5200
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("none", "surface", "intermediate", "core")


def write_corpus(path: Path, conversations: int, seed: int = 0) -> int:
    """ESConv-shaped labelled transcripts as JSONL; returns the number of messages."""
    rng = random.Random(seed)
    messages = 0
    with path.open("w", encoding="utf-8") as handle:
        for c in range(conversations):
            depth = rng.uniform(0, 1.5)
            for t in range(rng.randint(20, 40)):
                speaker = ("seeker", "supporter")[t % 2]
                depth = min(3.0, max(0.0, 0.6 * depth + 0.4 * rng.uniform(0, 3) + 0.01 * t))
                for k in range(rng.choice((1, 1, 2))):
                    row = {"id": f"c{c}-{t}-{k}", "conversation_id": f"c{c:05d}", "speaker": speaker,
                           "text": "x", "layer": LAYERS[min(3, int(round(depth)))], "depth": round(depth, 4)}
                    handle.write(json.dumps(row) + "\n")
                    messages += 1
    return messages


CHILD = """
import json, resource, sys, time, tracemalloc
from disclosure_nlp.analysis.corpus import analyze_corpus
trace = sys.argv[4] == "trace"
if trace:
    tracemalloc.start()
started = time.perf_counter()
result = analyze_corpus([sys.argv[1]], seed=0, surrogates=int(sys.argv[2]), bootstrap=int(sys.argv[3]), keep_conversations=False)
seconds = time.perf_counter() - started
run = {"seconds": round(seconds, 2), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
       "conversations": result.n_conversations, "messages": result.n_messages,
       "ri_mean": result.reciprocity_index["mean"]["value"]}
if trace:
    run["traced_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 2)
print(json.dumps(run))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1300, 5200])
    parser.add_argument("--surrogates", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--trace", action="store_true", help="also measure the traced allocation peak (slow)")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            path = Path(scratch) / f"corpus-{size}.jsonl"
            messages = write_corpus(path, size)
            def child(mode: str) -> dict:
                out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(args.surrogates), str(args.bootstrap), mode],
                                     capture_output=True, text=True, cwd=ROOT, check=True)
                return json.loads(out.stdout.strip().splitlines()[-1])

            run = child("time")
            run["input_mb"] = round(path.stat().st_size / 1e6, 1)
            if args.trace:
                run["traced_peak_mb"] = child("trace")["traced_peak_mb"]
            runs.append(run)
            print(f"{size} conversations ({messages} messages, {run['input_mb']} MB): {run['seconds']} s, "
                  f"peak RSS {run['peak_rss_mb']} MB"
                  + (f", traced allocation peak {run['traced_peak_mb']} MB" if args.trace else ""), flush=True)
    report = {"surrogates": args.surrogates, "bootstrap": args.bootstrap, "runs": runs,
              "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
