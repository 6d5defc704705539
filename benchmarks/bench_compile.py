"""What ``run.compile=true`` buys on this machine (issue 19): the step under torch.compile with a
backend that replays the eager kernels (``aot_eager`` on the CPU, CUDA graphs on a GPU), so the
trajectory is the eager one bit for bit (tests/test_compile.py).

For a few jobs, eager and compiled side by side: microseconds per iteration, each the difference of
an N and an N // 5 iteration ``decopt.run`` (setup and compilation cancel), and the one-off cost of
compiling (the N // 5 runs' difference). TorchDynamo is reset before every compiled run, so each
compiles afresh as a new process would.

    python benchmarks/bench_compile.py [--iterations 2000] [--device cpu] [--clock cpu|wall]
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch._dynamo

import decopt

import limits

SMALL = ["graph.n=20", "problem.dim=100", "problem.batch_size=8", "run.progress=none", "run.eval_every=1000000"]
JOBS = {
    "dsgd, qsgd 4 bits, bernoulli links": ["algo=dsgd", "compressor=qsgd", "compressor.bits=4",
                                           "graph.links=bernoulli", "graph.link_p=0.6"],
    "choco, qsgd 8 bits": ["algo=choco", "compressor=qsgd8"],
    "ticopd, top-k 10 %": ["algo=ticopd", "compressor=topk", "compressor.ratio=0.1"],
}


def seconds(job, iterations: int, compile_step: bool, device: str) -> float:
    if compile_step:
        torch._dynamo.reset()
    start = limits.CLOCK()
    decopt.run(*SMALL, *job, f"run.iterations={iterations}", f"run.compile={str(compile_step).lower()}",
               f"run.device={device}", run_dir=False)
    return limits.CLOCK() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="wall" if "cuda" in sys.argv else "cpu")
    args = ap.parse_args()
    limits.set_clock(args.clock)
    torch.set_num_threads(1)
    N, short = args.iterations, args.iterations // 5
    rows = []
    for name, job in JOBS.items():
        seconds(job, short, False, args.device)                     # warm-up: imports, caches
        t = {c: (seconds(job, N, c, args.device), seconds(job, short, c, args.device)) for c in (False, True)}
        per = {c: (long - brief) / (N - short) for c, (long, brief) in t.items()}
        rows.append([name, f"{per[False] * 1e6:.0f}", f"{per[True] * 1e6:.0f}", f"{per[False] / per[True]:.2f}",
                     f"{t[True][1] - t[False][1]:.1f}"])
    print(limits.header(sys.argv))
    print(f"least squares, 20 agents, ring, d = 100, batch 8, float32, device {args.device}; "
          f"{N:,} iterations (difference with {short:,})\n")
    print(limits.table(["job", "eager us / iteration", "compiled us / iteration", "speed-up", "compiling (s, one-off)"],
                       rows))


if __name__ == "__main__":
    main()
