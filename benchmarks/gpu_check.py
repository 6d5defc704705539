"""The prepared device check (issue 19): one command, one markdown report.

1. **Equivalence**: every registered algorithm (read from the registry, so a new one is covered) on
   a small float64 least-squares job, with a random compressor (random-k or QSGD's dithering) and
   random links (Bernoulli, else one edge) wherever the algorithm accepts them, runs on the CPU and
   on ``--device``; the metrics at every evaluation and the final state must agree to 1e-10
   relative: max |a - b| / (max |b| + 1e-4) per column and per state field, so that a column that
   is 0 to rounding (the dual sum, ~1e-16) is held to 1e-14 absolute.
2. **MNIST steps**: FSPDA (Fig. 4's settings: complete graph, one active edge, 1 % mask) and DoCoM
   (Exp. 2's: ring, top-k 5 %) on ``mnist_mlp``, 10 agents, batch 256, float32: ms per step
   (the difference of two ``decopt.run`` calls of different lengths, so building, data loading
   and the evaluations cancel), the step over the gradients it needs (``problem.grad`` alone),
   iterations per second, and the projected wall time of FSPDA's Fig. 4 (10^7 iterations, goal
   under one hour, i.e. >= 2,800 it/s).
3. **Scale in agents**: TiCoPD P1 (top-k 10 %) on a ring, least squares with d = 10 and d = 100,
   n = 10^3 ... 10^6, float32, each size in its own process: build time, agent-steps per second
   and peak memory (``torch.cuda.max_memory_allocated`` on CUDA; on the CPU the peak resident set
   size, ``VmHWM``, with the process's size after its imports). A size stops at its step
   budget, and the next size is skipped when the last one, scaled by 10, would pass the time left
   or the memory budget; the report says which. It times ``step`` calls on the runner's
   ``build``: a run's summary (spectral gap included) is not part of it.

Timers (``--clock``): on CUDA the wall clock, read after ``torch.cuda.synchronize``; on the CPU
the process's CPU clock with one torch thread, as the other benchmarks (robust to other jobs).
``--device cpu`` runs the same check for the side-by-side ratio; ``--quick`` is a ~1-minute
version. The report names the torch version, the device and each section's dtype.

    python benchmarks/gpu_check.py --device cuda [--out report.md] [--quick]
    python benchmarks/gpu_check.py --device cpu --sections 1 --algos dsgd,fspda
    python benchmarks/gpu_check.py --device cuda --set run.compile=true     # any override, every job

``--data``: the data root holding ``mnist/`` (default $DECOPT_DATA, else ../shared/data next to
the repository, as the experiments).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import limits
import torch

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-10                  # section 1: relative agreement of the device with the CPU
ATOL = 1e-14                  # ... and absolute, for a column that is 0 to rounding
GOAL_IT_S = 2_800             # section 2: 10^7 iterations in under one hour
FIG4_ITERATIONS = 10 ** 7

SMALL = ["graph.n=6", "problem=least_squares", "problem.dim=6", "problem.samples=10", "problem.batch_size=4",
         "run.dtype=float64", "run.eval_every=10", "run.seed=3"]
RANDOM_COMPRESSORS = (["compressor=randk", "compressor.ratio=0.5"], ["compressor=qsgd", "compressor.bits=4"])
RANDOM_LINKS = (["graph.links=bernoulli", "graph.link_p=0.6"], ["graph=complete", "graph.links=one_edge"])

MNIST = ["problem=mnist_mlp", "graph.n=10", "problem.batch_size=256", "problem.partition=sorted",
         "run.dtype=float32", "run.progress=none"]
MNIST_JOBS = {   # experiments/fspda_mnist.py (Fig. 4, FSPDA-SA 1 %, sorted) and experiments/docom_mnist.py
    "fspda": ["algo=fspda", "graph=complete", "graph.links=one_edge", "algo.lr=1e-4", "algo.eta=1e-4",
              "algo.gamma=0.5", "algo.beta=1", "algo.mask_ratio=0.01"],
    "docom": ["algo=docom", "graph=ring", "graph.mixing=constant", "graph.weight=0.3333333333333333",
              "algo.lr=0.01", "algo.beta=0.01", "algo.gamma=0.2", "compressor=topk", "compressor.ratio=0.05"],
}

SCALE = ["algo=ticopd", "graph=ring", "problem=least_squares", "problem.samples=10", "compressor=topk",
         "compressor.ratio=0.1", "run.dtype=float32"]
SCALE_ITERATIONS = 100


# ------------------------------------------------------------------------------------ device
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} ({p.total_memory / 2 ** 30:.0f} GiB), CUDA {torch.version.cuda}"
    return f"{limits.cpu_name()}, {os.cpu_count()} cores"


def clock_name() -> str:
    return "cpu" if limits.CLOCK is time.process_time else "wall"


def available_memory(device: str) -> int:
    """Bytes a size of section 3 may use: 90 % of the device's memory, half the host's available."""
    if device.startswith("cuda"):
        return int(0.9 * torch.cuda.get_device_properties(device).total_memory)
    with open("/proc/meminfo") as fh:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
    return info.get("MemAvailable", info["MemTotal"]) // 2


def build_job(overrides: list[str]):
    """The runner's pieces (network, problem, algorithm) of one job."""
    from decopt.cli import compose
    from decopt.config import validate
    from decopt.runner import build

    _, net, problem, algorithm = build(validate(compose(overrides)))
    return net, problem, algorithm


# ------------------------------------------------------------------------- 1. equivalence
def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / (max |b| + ATOL / RTOL): at most RTOL iff |a - b| <= RTOL max |b| + ATOL
    (NaN agrees with NaN)."""
    a, b = a.double().cpu(), b.double().cpu()
    if a.shape != b.shape:
        return math.inf
    both_nan = a.isnan() & b.isnan()
    a, b = a.masked_fill(both_nan, 0.0), b.masked_fill(both_nan, 0.0)
    if (a.isnan() | b.isnan()).any():
        return math.inf
    diff = (a - b).abs().max().item() if a.numel() else 0.0
    return 0.0 if diff == 0 else diff / (b.abs().max().item() + ATOL / RTOL)


def compare(ref, got) -> tuple[float, str, float, str]:
    """(worst metrics column, its name, worst state field, its name) of two Results; wall times aside."""
    cols = [k for k in ref.metrics if k not in ("wall_time",)]
    metric = max([(max_rel(torch.tensor(got.metrics.get(k, [math.nan])), torch.tensor(ref.metrics[k])), k)
                  for k in cols] + [(0.0, "-")])
    state = max([(max_rel(got.state[k], v) if k in got.state else math.inf, k) for k, v in ref.state.items()]
                + [(0.0, "-")])
    return metric[0], metric[1] if metric[0] else "-", state[0], state[1] if state[0] else "-"


def equivalence_job(algo: str, index: int, iterations: int) -> list[str]:
    """The small job of ``algo``: random links and a random compressor where it accepts them."""
    from decopt.cli import compose
    from decopt.config import validate
    from decopt.errors import ConfigError

    compressors = RANDOM_COMPRESSORS[index % 2:] + RANDOM_COMPRESSORS[:index % 2] + ([],)
    for links in (*RANDOM_LINKS, []):
        for comp in compressors:
            over = [*SMALL, f"algo={algo}", f"run.iterations={iterations}", *links, *comp]
            try:
                validate(compose(over))
                return over
            except ConfigError:
                continue
    raise ConfigError(f"algo={algo}: no small job validates")


def equivalence(algos: list[str], device: str, iterations: int, extra: list[str]) -> list[dict]:
    """Section 1: one row per algorithm (see the module docstring)."""
    import decopt

    rows = []
    for i, algo in enumerate(algos):
        row = {"algo": algo}
        try:
            over = equivalence_job(algo, i, iterations) + extra + ["run.progress=none"]
            chosen = dict(o.split("=", 1) for o in over)
            row["job"] = f"{chosen.get('graph.links', 'static')} / {chosen.get('compressor', 'none')}"
            t0 = limits.CLOCK()
            ref = decopt.run(*over, "run.device=cpu", run_dir=False)
            t1 = limits.CLOCK()
            got = decopt.run(*over, f"run.device={device}", run_dir=False)
            sync(device)
            t2 = limits.CLOCK()
            m, m_at, s, s_at = compare(ref, got)
            statuses = {ref.summary["status"], got.summary["status"]}
            ok = m <= RTOL and s <= RTOL and statuses == {"completed"}
            row.update(evaluations=len(ref.metrics.get("iteration", [])), metrics=m, metrics_at=m_at, state=s,
                       state_at=s_at, cpu_s=t1 - t0, device_s=t2 - t1,
                       verdict="PASS" if ok else f"FAIL ({'/'.join(sorted(statuses))})")
        except Exception as exc:                  # a failure is a row of the report, not the end of it
            row.update(verdict=f"FAIL: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        rows.append(row)
        print(f"  1. {algo}: {row['verdict']}", flush=True)
    return rows


def equivalence_table(rows: list[dict], device: str) -> str:
    fmt = lambda v: "-" if v is None else f"{v:.1e}"
    return limits.table(
        ["algorithm", "random links / compressor", "evaluations", "max rel. diff, metrics (column)",
         "max rel. diff, final state (field)", "cpu s (reference)", f"{device} s", "verdict"],
        [[r["algo"], r.get("job", "-"), r.get("evaluations", "-"),
          f"{fmt(r.get('metrics'))} ({r.get('metrics_at', '-')})", f"{fmt(r.get('state'))} ({r.get('state_at', '-')})",
          f"{r['cpu_s']:.1f}" if "cpu_s" in r else "-", f"{r['device_s']:.1f}" if "device_s" in r else "-",
          r["verdict"]] for r in rows])


# ------------------------------------------------------------------------- 2. MNIST steps
def run_seconds(over: list[str], iterations: int, device: str) -> float:
    """Seconds of one whole ``decopt.run`` of ``iterations`` (evaluations at 0 and the end)."""
    import decopt

    t0 = limits.CLOCK()
    r = decopt.run(*over, f"run.iterations={iterations}", f"run.eval_every={iterations}", run_dir=False)
    sync(device)
    if r.summary["status"] != "completed":
        raise RuntimeError(f"status {r.summary['status']} after {r.summary['iterations']} iterations")
    return limits.CLOCK() - t0


def per_call(fn, device: str, seconds: float) -> float:
    """Seconds per call of ``fn``, called until ``seconds`` have passed (synchronized at both ends)."""
    fn()
    sync(device)
    calls, t0 = 0, limits.CLOCK()
    while True:
        fn()
        calls += 1
        if calls % 8 == 0 or calls < 8:
            sync(device)
            if limits.CLOCK() - t0 >= seconds:
                return (limits.CLOCK() - t0) / calls


def gradient_seconds(over: list[str], device: str, seconds: float) -> tuple[float, int]:
    """Seconds of one batched gradient of the job's problem (``problem.grad`` alone, a new
    minibatch each call) and how many of them the algorithm's step needs."""
    _, problem, algorithm = build_job(over)
    X, t = problem.x0(), iter(range(10 ** 9))
    return per_call(lambda: problem.grad(X, next(t)), device, seconds), algorithm.grads_per_step


def mnist_steps(device: str, data: Path, seconds: float, extra: list[str]) -> list[dict]:
    """Section 2: one row per algorithm (see the module docstring)."""
    rows = []
    for algo, job in MNIST_JOBS.items():
        over = [*MNIST, *job, f"problem.data_dir={data / 'mnist'}", f"run.device={device}", *extra]
        row = {"algo": algo}
        try:
            grad, grads = gradient_seconds(over, device, min(seconds, 5.0))          # warms the device up
            short = run_seconds(over, 10, device)
            steps = int(min(max(1 / (grads * grad), 20), 200))                 # a pilot of up to a second
            step = (run_seconds(over, 10 + steps, device) - short) / steps     # building, evaluations cancel
            if step * steps < seconds / 2:                                     # then ~``seconds`` of steps
                steps = int(min(seconds / max(step, grads * grad), 10 ** 6))  # a step costs its gradients
                step = (run_seconds(over, 10 + steps, device) - short) / steps
            row.update(step_ms=1e3 * step, grads=grads, grad_ms=1e3 * grad, ratio=step / (grads * grad),
                       it_s=1 / step, steps=steps, fig4_h=FIG4_ITERATIONS * step / 3600)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        rows.append(row)
        print(f"  2. {algo}: " + (f"{row['step_ms']:.3f} ms per step" if "step_ms" in row else row["error"]), flush=True)
    return rows


def mnist_table(rows: list[dict]) -> str:
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["algo"]] + ["-"] * 6 + [f"FAIL: {r['error']}"])
            continue
        fig4 = "-"
        if r["algo"] == "fspda":
            fig4 = f"{r['fig4_h']:.2f} h ({'PASS' if r['it_s'] >= GOAL_IT_S else 'FAIL'}: goal >= {GOAL_IT_S:,} it/s)"
        out.append([r["algo"], f"{r['step_ms']:.3f}", f"{r['grads']} x {r['grad_ms']:.3f}", f"{r['ratio']:.2f}",
                    f"{r['it_s']:,.0f}", f"{r['steps']:,}", fig4, "ok"])
    return limits.table(["algorithm", "ms / step", "gradients ms", "step / gradients", "iterations / s",
                         "steps timed", "FSPDA Fig. 4 at 10^7 it. (projected)", "status"], out)


# ------------------------------------------------------------------------- 3. scale in agents
def resident(field: str) -> int:
    """Bytes of /proc/self/status's ``VmRSS`` (now) or ``VmHWM`` (peak): unlike ``ru_maxrss``,
    which a child inherits from its parent at fork, the peak is this program's own."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field + ":"))


def one_size(n: int, d: int, device: str, seconds: float, extra: list[str]) -> None:
    """Child process of section 3: build, then step up to SCALE_ITERATIONS or ``seconds``; prints a
    JSON line per phase and about every second of steps (the parent keeps the last one it gets,
    so a size stopped at the time budget still has its rate so far)."""
    torch.set_num_threads(1)
    cuda = device.startswith("cuda")
    for module in ("decopt.cli", "decopt.config", "decopt.runner"):     # the imports belong to the baseline
        importlib.import_module(module)
    base = 0 if cuda else resident("VmRSS")
    if cuda:
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats(device)

    def say(phase: str, **kw) -> None:
        sync(device)
        peak = torch.cuda.max_memory_allocated(device) if cuda else resident("VmHWM")
        print(json.dumps({"phase": phase, "peak": peak, "base": base, **kw}), flush=True)

    say("building")
    t0 = limits.CLOCK()
    net, problem, algorithm = build_job([*SCALE, f"graph.n={n}", f"problem.dim={d}", f"run.device={device}", *extra])
    state = algorithm.init(problem.x0())
    net.begin(0)
    state = algorithm.step(state, 0)                      # first step: allocations, kernel selection
    sync(device)
    built = limits.CLOCK() - t0
    say("stepping", build_s=built)
    steps, t, t1 = 0, 1, limits.CLOCK()
    shown = t1
    while steps < SCALE_ITERATIONS and limits.CLOCK() - t1 < seconds:
        net.begin(t)
        state = algorithm.step(state, t)
        t, steps = t + 1, steps + 1
        if limits.CLOCK() - shown >= 1.0:
            say("stepping", build_s=built, steps=steps, sec=limits.CLOCK() - t1)
            shown = limits.CLOCK()
    sync(device)
    elapsed = limits.CLOCK() - t1
    say("done", build_s=built, steps=steps, sec=elapsed, finite=bool(torch.isfinite(state["x"]).all()))


def scale(device: str, sizes: list[int], dims: list[int], seconds: float, deadline: float,
          extra: list[str]) -> list[dict]:
    """Section 3: one row per (d, n); each size in its own process, within the time and memory left
    (the time until ``deadline`` is shared equally by the dimensions still to run)."""
    budget = available_memory(device)
    rows = []
    for j, d in enumerate(dims):
        last, end = None, time.time() + (deadline - time.time()) / (len(dims) - j)
        for n in sizes:
            row = {"d": d, "n": n}
            rows.append(row)
            left = end - time.time()
            if last is not None and "sec" in last:
                grow = n / last["n"]
                need_s = grow * (last["build_s"] + last["sec"] * SCALE_ITERATIONS / max(last["steps"], 1))
                need_s = min(need_s, grow * last["build_s"] + seconds)
                need_b = grow * (last["peak"] - last["base"])
                if need_b > budget:
                    row["note"] = f"skipped: ~{need_b / 2**30:.1f} GiB projected, budget {budget / 2**30:.1f} GiB"
                elif need_s > left:
                    row["note"] = f"skipped: ~{need_s:.0f} s projected, {max(left, 0):.0f} s left"
            elif last is not None:
                row["note"] = "skipped: the smaller size did not finish"
            if left <= 1 and "note" not in row:
                row["note"] = "skipped: no time left"
            if "note" in row:
                print(f"  3. d={d} n={n}: {row['note']}", flush=True)
                continue
            cmd = [sys.executable, __file__, "--device", device, "--one-size", str(n), str(d),
                   "--step-seconds", str(seconds), "--clock", clock_name()] + [a for o in extra for a in ("--set", o)]
            try:
                proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=left)
                out, err, code = proc.stdout, proc.stderr, proc.returncode
            except subprocess.TimeoutExpired as exc:
                out, err, code = exc.stdout or "", exc.stderr or "", None
                out = out.decode() if isinstance(out, bytes) else out
                err = err.decode() if isinstance(err, bytes) else err
            lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
            info = lines[-1] if lines else {"phase": "starting"}
            row.update({k: v for k, v in info.items() if k != "phase"})
            if code is None:
                row["note"] = f"stopped: time budget ({left:.0f} s) spent while {info['phase']}"
            elif code != 0:
                tail = (err.strip().splitlines() or ["no message"])[-1][:200]
                row["note"] = f"failed while {info['phase']} (exit {code}): {tail}"
            elif row["steps"] < SCALE_ITERATIONS:
                row["note"] = f"{row['steps']} of {SCALE_ITERATIONS} iterations in the {seconds:g} s step budget"
            if not row.get("finite", True):
                row["note"] = (row.get("note", "") + "; non-finite iterate").lstrip("; ")
            last = row
            print(f"  3. d={d} n={n}: {row.get('steps', 0)} iterations in {row.get('sec', 0):.2f} s "
                  f"{row.get('note', '')}", flush=True)
    return rows


def scale_table(rows: list[dict], device: str) -> str:
    mem = "peak device memory MiB (max_memory_allocated)" if device.startswith("cuda") else \
        "peak RSS MiB (VmHWM; after imports)"
    out = []
    for r in rows:
        done = r.get("steps") and "sec" in r
        rate = r["n"] * r["steps"] / r["sec"] if done else None
        peak = f"{r['peak'] / 2**20:,.0f}" + (f" ({r['base'] / 2**20:,.0f})" if r.get("base") else "") if "peak" in r else "-"
        out.append([r["d"], f"{r['n']:,}", f"{r['build_s']:.1f}" if "build_s" in r else "-",
                    r.get("steps", "-"), f"{1e3 * r['sec'] / r['steps']:.2f}" if done else "-",
                    f"{rate:,.0f}" if rate else "-", f"{rate * r['d'] / 1e6:,.1f}" if rate else "-",
                    peak, r.get("note", "")])
    return limits.table(["d", "n", "build s", "iterations", "ms / iteration", "agent-steps / s",
                         "M agent-coordinates / s", mem, "note"], out)


# ------------------------------------------------------------------------------------ report
def header(device: str, argv: list[str]) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=REPO, capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    from decopt.version import __version__

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return "\n".join([
        f"command: python benchmarks/gpu_check.py {' '.join(argv)}",
        f"date: {now}; host: {limits.cpu_name()}, {os.cpu_count()} cores, load average {load}",
        f"device: {device}: {device_name(device)}",
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); decopt {__version__} ({commit}); "
        f"clock: {clock_name()}{' (synchronized)' if device.startswith('cuda') else ''}"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="a ~1-minute version")
    ap.add_argument("--out", type=Path, default=None, help="the report (default out/gpu_check_<device>.md)")
    ap.add_argument("--data", type=Path, default=None, help="data root with mnist/ ($DECOPT_DATA, ../shared/data)")
    ap.add_argument("--sections", default="1,2,3")
    ap.add_argument("--algos", default=None, help="section 1: comma-separated (default: every registered one)")
    ap.add_argument("--sizes", default=None, help="section 3: comma-separated n (default 10^3 ... 10^6)")
    ap.add_argument("--dims", default="10,100", help="section 3: comma-separated d")
    ap.add_argument("--clock", choices=("cpu", "wall"), default=None,
                    help="cpu: process time, one thread (default on the CPU: robust to other jobs); wall (CUDA)")
    ap.add_argument("--budget", type=float, default=None, help="section 3: seconds in all (default 240, quick 30)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every job")
    ap.add_argument("--one-size", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--step-seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: error: --device {args.device}: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    limits.set_clock(args.clock or ("cpu" if args.device == "cpu" else "wall"))
    if args.one_size:
        one_size(*args.one_size, args.device, args.step_seconds, args.set)
        return 0
    torch.set_num_threads(1)
    start = time.time()
    out = args.out or Path("out") / f"gpu_check_{args.device.replace(':', '')}.md"
    print(f"gpu_check: report -> {out}", flush=True)
    sections = {int(s) for s in args.sections.split(",")}
    parts = [f"# Device check ({args.device}{', quick' if args.quick else ''})", "", "```", header(args.device, argv),
             "```", ""]
    failed = False
    if 1 in sections:
        from decopt.algorithms import REGISTRY

        algos = args.algos.split(",") if args.algos else sorted(REGISTRY)
        iterations = 20 if args.quick else 40
        rows = equivalence(algos, args.device, iterations, args.set)
        failed |= any(r["verdict"] != "PASS" for r in rows)
        parts += [f"## 1. The trajectory on {args.device} = the trajectory on the CPU (float64, {iterations} "
                  f"iterations, rtol {RTOL:g})", "", f"Small least-squares job ({' '.join(SMALL)}); the metrics at every "
                  "evaluation and every field of the final state.", "", equivalence_table(rows, args.device), ""]
    if 2 in sections:
        data = Path(args.data or os.environ.get("DECOPT_DATA") or REPO.parent / "shared" / "data")
        rows = mnist_steps(args.device, data, 2.0 if args.quick else 15.0, args.set)
        failed |= any("error" in r for r in rows)
        parts += ["## 2. FSPDA and DoCoM on mnist_mlp (d = 79,510; 10 agents, batch 256, float32)", "",
                  "FSPDA: Fig. 4's FSPDA-SA 1 % (complete graph, one "
                  "active edge, sorted split); DoCoM: Exp. 2's (ring, top-k 5 %) at batch 256. ms / step: the "
                  "difference of two runs of 10 and 10 + (steps timed) iterations; the Fig. 4 projection is "
                  "10^7 steps, its evaluations aside.",
                  "", mnist_table(rows), ""]
    if 3 in sections:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else \
            ([10 ** 3, 10 ** 4, 10 ** 5] if args.quick else [10 ** 3, 10 ** 4, 10 ** 5, 10 ** 6])
        dims = [int(s) for s in args.dims.split(",")]
        seconds = 2.0 if args.quick else 10.0
        budget = args.budget or (30 if args.quick else 240)
        deadline = time.time() + budget
        rows = scale(args.device, sizes, dims, seconds, deadline, args.set)
        parts += ["## 3. TiCoPD (top-k 10 %) on a ring, least squares (10 samples per agent, full local gradients), float32", "",
                  f"Up to {SCALE_ITERATIONS} iterations or {seconds:g} s of steps per size, after the first step; "
                  f"agent-steps / s = n x iterations / s; {budget:g} s (wall) for the section.", "", scale_table(rows, args.device), ""]
    parts.append(f"Total: {time.time() - start:.0f} s.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts) + "\n")
    print(f"gpu_check: report written to {out} ({time.time() - start:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
