"""Start-up wall time of the commands a user types first: ``run --help``, a mistyped key, a bad value
(refused only once the config is validated against the component dataclasses), ``import decopt``.

Each command runs ``N`` times in fresh processes, interleaved across the source trees given (default:
this checkout; another tree, e.g. ``git archive <commit> decopt | tar -x -C DIR``, for a before/after
table), with byte-code caching on as in an installed package (a private cache, warmed by one
untimed run). Prints the best and the median wall time of each, and the median CPU time (user +
system) of the process, which is what an idle machine's wall time comes close to when others share
this one::

    python benchmarks/bench_startup.py [N] [SRC ...]
"""
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "python -m decopt run --help": ["-m", "decopt", "run", "--help"],
    "python -m decopt run run.iteratons=10": ["-m", "decopt", "run", "run.iteratons=10"],
    "python -m decopt run algo.lr=nan": ["-m", "decopt", "run", "algo.lr=nan"],
    "python -m decopt run algo=choco algo.gamma=-1": ["-m", "decopt", "run", "algo=choco", "algo.gamma=-1"],
    "python -m decopt run graph.n=1": ["-m", "decopt", "run", "graph.n=1"],
    "python -m decopt run compressor=topk compressor.k=0": ["-m", "decopt", "run", "compressor=topk",
                                                            "compressor.k=0"],
    "python -c 'import decopt'": ["-c", "import decopt"],
}


def timed(args, src, env) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process run in ``src`` (first on sys.path with -m and -c)."""
    cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))
    start, start_cpu = time.perf_counter(), cpu()
    subprocess.run([sys.executable, *args], capture_output=True, cwd=src, env=env, check=False)
    return time.perf_counter() - start, cpu() - start_cpu


def main(repeat: int, sources: list[Path]) -> None:
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as cache:
        envs = [{**base, "PYTHONPATH": str(src), "PYTHONPYCACHEPREFIX": f"{cache}/{i}"} for i, src in enumerate(sources)]
        times = {case: [[] for _ in sources] for case in CASES}
        for args in CASES.values():                      # warm the byte-code caches
            for src, env in zip(sources, envs):
                timed(args, src, env)
        for _ in range(repeat):
            for case, args in CASES.items():
                for i, (src, env) in enumerate(zip(sources, envs)):
                    times[case][i].append(timed(args, src, env))
    names = ["this checkout" if src == REPO else src.name for src in sources]
    print("| command | " + " | ".join(f"`{n}`: wall best / median, CPU median (s)" for n in names) + " |")
    print("|---|" + "---|" * len(sources))
    for case, per_source in times.items():
        cells = [f"{min(w for w, _ in t):.2f} / {statistics.median(w for w, _ in t):.2f}, "
                 f"{statistics.median(c for _, c in t):.2f}" for t in per_source]
        print(f"| `{case}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, [Path(p).resolve() for p in sys.argv[2:]] or [REPO])
