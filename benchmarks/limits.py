"""The machine's limits, re-measured by every benchmark in the same run (ratios against them are
what the tables report), and the header that says where and when a table was measured.

Timings use the process CPU clock by default (``set_clock("wall")`` to change it): with one
torch thread that is what one core delivers even when other jobs share the machine.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import time

import numpy as np
import torch

CLOCK = time.process_time


def set_clock(name: str) -> None:
    global CLOCK
    CLOCK = time.process_time if name == "cpu" else time.perf_counter


def timeit(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median seconds per call of ``fn``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
    return statistics.median(times)


def timeit_interleaved(fns, repeat: int = 5, warmup: int = 1) -> list[float]:
    """Median seconds per call of each of ``fns``, all called in every round, the order rotated
    from round to round (alternatives compared this way see the same load and caches)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for r in range(repeat):
        for i in range(len(fns)):
            j = (i + r) % len(fns)
            t = CLOCK()
            fns[j]()
            times[j].append(CLOCK() - t)
    return [statistics.median(acc) for acc in times]


def matmul_rate(size: int = 1024, repeat: int = 10) -> float:
    """fp32 FLOP/s of a square ``torch.mm`` (the best dense rate torch gets here)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size ** 3 / timeit(lambda: torch.mm(a, b), repeat)


def copy_rate(mib: int = 256, repeat: int = 5) -> float:
    """Bytes/s of a large tensor copy (read + write counted once each)."""
    src = torch.empty(mib << 18)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / timeit(lambda: dst.copy_(src), repeat)


def tiny_op_seconds(calls: int = 100_000) -> float:
    """Seconds per call of one tiny in-place torch op (the dispatch floor of a torch op)."""
    x = torch.zeros(25, 1, dtype=torch.float64)

    def loop():
        for _ in range(calls):
            x.add_(1.0)
    return timeit(loop, 3) / calls


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(argv: list[str]) -> str:
    """Command, date, machine, load and library versions: the lines above every table."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"command: python {' '.join(argv)}\n"
            f"date: {now}; machine: {cpu_name()}, {os.cpu_count()} cores, load average {load}\n"
            f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); numpy {np.__version__}; "
            f"clock: {'cpu' if CLOCK is time.process_time else 'wall'}")


def table(columns: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return "\n".join(out)
