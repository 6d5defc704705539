"""Scale in agents on one device (issue 19): graph build time, run time and peak memory of a TiCoPD
job (top-k 10 %, least squares with d = 10, stacked backend, float32, CPU) on a ring, a torus and
a random 4-regular graph of n = 10^4, 10^5, 10^6 agents.

Each (graph, n) runs in its own process, so that its peak resident memory (``ru_maxrss``, which
includes the ~0.3 GB of an imported torch) is its own. Columns: ``graph`` (``build_graph``:
generation and the connectivity check), ``setup`` (the rest of the job before its first step:
network, problem data, algorithm, the summary's spectral gap), ``per iteration`` (the run's
``time_per_iteration``, metrics at the start, middle and end included), the process's CPU time
(user + system, from start-up to the end: the wall times stretch on a shared machine, this does
less), the spectral gap and how it was obtained, and the peak memory.

    python benchmarks/bench_agents.py [--n 10000 100000 1000000] [--graphs ring torus random_regular]
                                      [--iterations 100] [--samples 10]

``--graph-only``: no run; the graph build and the spectral gap of its metropolis W alone, for any
``graph=`` choice (process CPU time, steadier than wall time on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(graph: str, n: int, iterations: int, samples: int) -> dict:
    """Build the graph alone, then run the whole job, in this process; a JSON-able row."""
    import decopt
    import decopt.runner  # noqa: F401  (imported before the clock starts)
    from decopt.graphs import SCHEMAS, build_graph

    start = time.perf_counter()
    g = build_graph(SCHEMAS[graph](name=graph, n=n))
    build = time.perf_counter() - start
    del g
    start = time.perf_counter()
    result = decopt.run("algo=ticopd", f"graph={graph}", f"graph.n={n}", "compressor=topk", "compressor.ratio=0.1",
                        "problem.dim=10", f"problem.samples={samples}", f"run.iterations={iterations}",
                        f"run.eval_every={max(1, iterations // 2)}", "run.progress=none", run_dir=False)
    total, s, cpu = time.perf_counter() - start, result.summary, resource.getrusage(resource.RUSAGE_SELF)
    return {"graph": graph, "n": n, "edges": s["edges"], "status": s["status"], "build_s": build,
            "setup_s": total - s["wall_time"] - build, "per_iteration_s": s["time_per_iteration"]["total"],
            "gap": s["spectral_gap"], "gap_method": s["spectral_gap_method"], "cpu_s": cpu.ru_utime + cpu.ru_stime,
            "peak_gib": cpu.ru_maxrss / 2 ** 20}


def graph_only(graph: str, n: int) -> str:
    """One table row: build time, spectral gap time and value, of the metropolis W on ``graph``."""
    from decopt.graphs import SCHEMAS, build_graph, expected_weights, mixing_gap

    start = time.process_time()
    g = build_graph(SCHEMAS[graph](name=graph, n=n))
    built = time.process_time()
    gap = mixing_gap(g, expected_weights(g))
    return (f"| {graph} | {n:,} | {g.m:,} | {built - start:.2f} | {time.process_time() - built:.2f} | "
            f"{gap.value:.3g} ({gap.method}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--graphs", nargs="+", default=["ring", "torus", "random_regular"])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--samples", type=int, default=10, help="problem.samples: rows of A_i per agent")
    ap.add_argument("--graph-only", action="store_true", help="the graph build and spectral gap alone")
    ap.add_argument("--one", nargs=2, metavar=("GRAPH", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.iterations, args.samples)))
        return
    if args.graph_only:
        print("| graph | n | edges | build (CPU s) | spectral gap (CPU s) | spectral gap (metropolis) |")
        print("|---|---:|---:|---:|---:|---|")
        for graph in args.graphs:
            for n in args.n:
                print(graph_only(graph, n), flush=True)
        return
    print(f"TiCoPD, top-k 10 %, least squares d = 10 ({args.samples} samples per agent), float32, "
          f"{args.iterations} iterations, one CPU process\n")
    print("| graph | n | edges | graph build (s) | setup (s) | per iteration (ms) | CPU time (s) | spectral gap | "
          "peak memory (GiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for graph in args.graphs:
        for n in args.n:
            out = subprocess.run([sys.executable, __file__, "--one", graph, str(n), "--iterations",
                                  str(args.iterations), "--samples", str(args.samples)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {graph} | {n:,} | {r['edges']:,} | {r['build_s']:.2f} | {r['setup_s']:.1f} | "
                  f"{r['per_iteration_s'] * 1e3:.1f} | {r['cpu_s']:.0f} | {r['gap']:.3g} ({r['gap_method']}) | {r['peak_gib']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
