"""Throughput of ``--engine ray`` with 1 and 2 actors, next to the local engine, and Ray's start-up.

Builds a transcript of about ``--messages`` messages by repeating the sample conversations
under new ids, then times, on the same model directory:

* the local engine (``annotate()``, one process);
* ``ray.init`` on this machine;
* for each actor count: a run on the 243 sample messages and a run on the large file, from
  which the script derives the steady rate ``(big - small messages) / (big - small seconds)``
  and the fixed cost of a run (actor start, model load, scheduling) ``small seconds - small
  messages / steady rate``.

Numbers depend on the machine and on what else runs on it; the load average is recorded.

    python scripts/bench_ray.py --model runs/ft-frozen --messages 5000 -o /tmp/bench-ray.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "data" / "conversations" / "samples.jsonl"


def build_input(path: Path, messages: int) -> int:
    records = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    written = 0
    with path.open("w", encoding="utf-8") as out:
        copy = 0
        while written < messages:
            for record in records:
                row = dict(record)
                row["id"] = f"x{copy}-{record['id']}"
                row["conversation_id"] = f"x{copy}-{record['conversation_id']}"
                row["reply_to"] = f"x{copy}-{record['reply_to']}" if record["reply_to"] else None
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                written += 1
            copy += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--actors", type=int, nargs="*", default=[1, 2], help="actor counts to run (none: local only)")
    parser.add_argument("--local-threads", type=int, nargs="+", default=[None],
                        help="torch threads for the local engine runs (default: the classifier's own choice)")
    parser.add_argument("--num-cpus", type=int, default=None, help="logical CPUs for ray.init (default: actors + 1)")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()

    from disclosure_nlp.annotate import annotate
    from disclosure_nlp.integrations.ray_engine import RayOptions, annotate_ray

    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    big = scratch / "big.jsonl"
    n_big = build_input(big, args.messages)
    n_small = sum(1 for _ in SAMPLES.open())
    result: dict = {"model": args.model, "messages": n_big, "small_messages": n_small, "cpus": os.cpu_count(),
                    "load_average_before": os.getloadavg()}
    try:
        from disclosure_nlp.model.classifier import DisclosureClassifier

        for threads in [] if args.skip_local else args.local_threads:
            started = time.perf_counter()
            classifier = DisclosureClassifier.load(args.model, threads=threads)
            loaded = time.perf_counter() - started
            stats = annotate(big, scratch / "local.jsonl", classifier=classifier, force=True)
            wall = time.perf_counter() - started
            name = "local" if threads is None else f"local_{threads}_threads"
            result[name] = {"seconds": round(wall, 2), "messages_per_second": round(n_big / wall, 1),
                            "load_seconds": round(loaded, 2), "annotate_seconds": round(stats.seconds, 2)}
            print(name, result[name], flush=True)
        if args.actors:
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=args.num_cpus or max(args.actors) + 1, include_dashboard=False, log_to_driver=False)
            result["ray_init_seconds"] = round(time.perf_counter() - started, 2)
            print("ray.init", result["ray_init_seconds"], flush=True)
            for actors in args.actors:
                runs = {}
                for name, source in (("small", SAMPLES), ("big", big)):
                    target = scratch / f"ray-{actors}-{name}.jsonl"
                    started = time.perf_counter()
                    annotate_ray(source, target, model=args.model, options=RayOptions(num_actors=actors))
                    runs[name] = time.perf_counter() - started
                    shutil.rmtree(target, ignore_errors=True)
                steady = (n_big - n_small) / (runs["big"] - runs["small"])
                entry = {
                    "small_seconds": round(runs["small"], 2),
                    "big_seconds": round(runs["big"], 2),
                    "messages_per_second": round(n_big / runs["big"], 1),
                    "steady_messages_per_second": round(steady, 1),
                    "fixed_cost_seconds": round(runs["small"] - n_small / steady, 2),
                }
                result[f"ray_{actors}_actors"] = entry
                print(f"ray {actors} actors", entry, flush=True)
            ray.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["load_average_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
