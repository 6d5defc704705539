"""Long-run health: resident memory at the start and the end of a 10^6-iteration run.

    python benchmarks/bench_memory.py [--iterations 1000000] [overrides ...]

Prints RSS at 10% (after imports and set-up), at half time and at the end of the run; the
growth from 10% to the end should be ~0 (only the metrics rows kept in memory).
"""
from __future__ import annotations

import argparse
import resource
import threading
import time

import decopt


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=1_000_000)
    ap.add_argument("overrides", nargs="*", default=["graph.n=25", "problem.dim=10", "problem.samples=10"])
    args = ap.parse_args()
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.wait(0.5):
            samples.append((time.perf_counter(), rss_mib()))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    result = decopt.run(*args.overrides, f"run.iterations={args.iterations}",
                        f"run.eval_every={max(1, args.iterations // 1000)}", "run.progress=none", run_dir=False)
    stop.set()
    thread.join()
    wall = time.perf_counter() - t0
    at = lambda frac: samples[min(len(samples) - 1, int(frac * len(samples)))][1]
    print("| iterations | wall (s) | RSS at 10% (MiB) | at 50% | at end | growth 10% -> end (MiB) | status |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.iterations:,} | {wall:.1f} | {at(0.1):.1f} | {at(0.5):.1f} | {samples[-1][1]:.1f} | "
          f"{samples[-1][1] - at(0.1):+.2f} | {result.summary['status']} |")


if __name__ == "__main__":
    main()
