"""Memory flat in the number of metrics rows: resident memory over a run that writes one metrics
row per iteration to a temporary run directory (rows are streamed to metrics.csv, not kept).

    python benchmarks/bench_memory.py [--rows 300000] [overrides ...]

Prints RSS when 10 % of the rows are written (after imports and set-up), at half the rows and at
the end, and the growth from 10 % to the end, which should stay under 5 MiB.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

import decopt


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000, help="metrics rows (iterations, run.eval_every=1)")
    ap.add_argument("overrides", nargs="*", default=["graph.n=2", "graph=complete", "problem.dim=2",
                                                     "problem.samples=2"])
    args = ap.parse_args()
    samples = []                          # (bytes of metrics.csv written, RSS)
    stop = threading.Event()
    tmp = tempfile.TemporaryDirectory()
    metrics = Path(tmp.name) / "run" / "metrics.csv"

    def sample():
        while not stop.wait(0.2):
            samples.append((metrics.stat().st_size if metrics.exists() else 0, rss_mib()))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    result = decopt.run(*args.overrides, f"run.iterations={args.rows - 1}", "run.eval_every=1",
                        "run.progress=none", run_dir=metrics.parent)
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    end = rss_mib()
    rows = sum(1 for _ in open(metrics)) - 1
    size = metrics.stat().st_size
    tmp.cleanup()
    at = lambda frac: next(rss for written, rss in samples if written >= frac * size)
    growth = end - at(0.1)
    print("| metrics rows | wall (s) | RSS at 10% (MiB) | at 50% | at end | growth 10% -> end (MiB) | status |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {rows:,} | {wall:.1f} | {at(0.1):.1f} | {at(0.5):.1f} | {end:.1f} | {growth:+.2f} | "
          f"{result.summary['status']} |")


if __name__ == "__main__":
    main()
