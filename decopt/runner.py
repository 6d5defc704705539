"""The loop: build the pieces from a validated config, step, evaluate, write the run directory."""
from __future__ import annotations

import bisect
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import provenance
from .algorithms import build_algorithm
from .comm import StackedNetwork
from .compressors import build_compressor
from .config import Settings, check_kept, check_memory, validate
from .errors import ConfigError
from .graphs import Links, build_graph, mixing_matrix, spectral_gap
from .metrics import evaluate, finite, state_finite
from .problems import build_problem
from .progress import Progress
from .results import RunDir, read_metrics

log = logging.getLogger("decopt")

CHECKPOINT = "checkpoint.pt"


@dataclass
class Result:
    """What a run returns: its directory, summary, metrics columns and final (local) state."""

    run_dir: Path | None
    summary: dict
    metrics: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    def frame(self):
        """The metrics as a pandas DataFrame (pandas is optional)."""
        import pandas

        return pandas.DataFrame(self.metrics)


def block(rank: int, size: int, n: int) -> range:
    """Contiguous block of agents owned by ``rank`` (the first n % size ranks get one more)."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))


def make_graph(settings: Settings, world: int = 1):
    """The job's graph; ``graph.n`` defaults to the number of MPI ranks (or 10 alone)."""
    gcfg = settings.graph
    graph = build_graph(gcfg, seed=settings.run.seed, n=gcfg.n or (world if world > 1 else None))
    if graph.n < world:
        raise ConfigError(f"graph.n={graph.n}: smaller than the {world} MPI ranks; every rank needs at least "
                          f"one agent (mpirun -n <= {graph.n}, or a larger graph.n)")
    check_memory(settings, graph.n, graph.m)              # the edge list's size is known only now
    return graph


def build(settings: Settings, comm=None):
    """Graph, network, compressor, problem and algorithm for one job on this process."""
    world = comm.Get_size() if comm is not None else 1
    rank = comm.Get_rank() if comm is not None else 0
    run, gcfg = settings.run, settings.graph
    dtype = getattr(torch, run.dtype)
    graph = make_graph(settings, world)
    links = Links(graph, gcfg.links, gcfg.link_p, seed=run.seed)
    kw = dict(mixing=gcfg.mixing, weight=gcfg.weight, seed=run.seed, dtype=dtype, device=run.device,
              bits_convention=run.bits_convention, link_latency=run.link_latency,
              link_bandwidth=run.link_bandwidth)
    if world > 1 or (comm is not None and settings.backend.name == "mpi"):
        from .comm.mpi import MPINetwork

        net = MPINetwork(graph, links, comm, block(rank, world, graph.n), **kw)
    else:
        net = StackedNetwork(graph, links, **kw)
    problem = build_problem(settings.problem, net, run.seed)
    check_kept(settings, problem.d)
    compressor = build_compressor(settings.compressor, 64 if run.dtype == "float64" else 32, problem.segments)
    algorithm = build_algorithm(settings.algo, net, problem, compressor)
    return graph, net, problem, algorithm


def _due(t: int, every: int, last: int) -> bool:
    return t % every == 0 or t == last


GEOMETRIC_PER_DECADE = 20
FUSED_CHUNK = 4096      # most iterations per fused call (algo.fused_steps): signals and progress stay responsive


def _schedule(run, problem):
    """``(due, next_due)``: ``due(t)`` says whether to evaluate after t iterations, every
    ``eval_every`` iterations (``linear``), or about 20 times per decade of iterations
    (``geometric``: t = ceil(10^(k/20)), for runs over many decades); ``auto`` takes the
    problem's preference (``problem.eval_grid``, linear by default). The last iteration is always
    evaluated. ``next_due(t)``: the first evaluation after t (t < run.iterations)."""
    grid = run.eval_grid if run.eval_grid != "auto" else getattr(problem, "eval_grid", "linear")
    every, last = run.eval_every, run.iterations
    if grid == "linear":
        return (lambda t: _due(t, every, last)), (lambda t: min((t // every + 1) * every, last))
    top = math.log10(max(last, 1)) * GEOMETRIC_PER_DECADE
    points = {math.ceil(10 ** (k / GEOMETRIC_PER_DECADE) - 1e-9) for k in range(int(top) + 2)}
    points.add(last)
    ordered = sorted(points)
    return points.__contains__, lambda t: ordered[bisect.bisect_right(ordered, t)]


def _exploded(X, threshold) -> bool:
    """True when an entry of the iterate exceeds ``threshold`` in magnitude (run.diverge_threshold)."""
    return bool(threshold) and bool((X.abs() > threshold).any())


def run_job(cfg: dict, run_dir=None, comm=None) -> Result:
    """Run one job. ``cfg`` is a composed config (dict or DictConfig); ``run_dir`` is written by
    the root process only; ``comm`` is an MPI communicator for the ``mpi`` backend."""
    settings = validate(cfg)
    run = settings.run
    torch.set_num_threads(run.threads)
    root = comm is None or comm.Get_rank() == 0
    world = comm.Get_size() if comm is not None else 1
    graph, net, problem, algo = build(settings, comm)
    out = RunDir(run_dir, resume=run.resume) if (root and run_dir is not None) else None
    ckpt_path = Path(run_dir) / CHECKPOINT if run_dir is not None else None

    state = algo.init(problem.x0())
    t0, elapsed, rows = 0, 0.0, []
    resume = run.resume and ckpt_path is not None and ckpt_path.exists()
    if comm is not None:
        resume = comm.bcast(resume, root=0)          # every rank resumes, or none
    if resume:
        t0, elapsed = _load_checkpoint(ckpt_path, state, net)
        if out is not None:
            rows = [{k: int(float(v)) if k in ("iteration", "bits", "samples") else float(v)
                     for k, v in r.items() if v != ""} for r in out.truncate_metrics(t0)]
    if out is not None:
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
        out.write_config(plain)

    W = mixing_matrix(graph, settings.graph.mixing, settings.graph.weight, net.links)    # E[W_t] on random links
    info = {
        "backend": net.backend, "world_size": world, "n_agents": graph.n, "dimension": problem.d,
        "graph": graph.name, "edges": graph.m, "spectral_gap": spectral_gap(W),
        "bits_convention": run.bits_convention, "algorithm": algo.name,
        "compressor": settings.compressor.name, "problem": settings.problem.name,
    }
    progress = Progress(run.iterations, t0, enabled=root, mode=run.progress, every_s=run.log_every_s)
    status, last_finite, done = "completed", (rows[-1] if rows else None), t0
    comp_time = 0.0

    due, next_due = _schedule(run, problem)
    fused = algo.fused_steps()                     # None: one step at a time

    def chunk_end(t):
        """Where a fused call from t stops: the next evaluation or checkpoint, at most FUSED_CHUNK on."""
        end = min(next_due(t), t + FUSED_CHUNK)
        if run.checkpoint_every:
            end = min(end, (t // run.checkpoint_every + 1) * run.checkpoint_every)
        return end

    def record(t_now, row_metrics):
        row = {"iteration": t_now, "bits": net.total_bits(), "samples": algo.samples(t_now),
               "wall_time": elapsed + time.perf_counter() - start}
        if net.link_model:
            row["sim_time"] = net.total_sim_time()
        row.update(row_metrics)
        if out is not None:
            out.append_metrics(row)
        rows.append(row)
        return row

    start = time.perf_counter()
    with _StopOnSignal(enabled=world == 1) as stop:
        try:
            if t0 == 0:
                last_finite = record(0, evaluate(problem, algo, net, state))
            while done < run.iterations:
                t = done
                if fused is None:
                    net.begin(t)
                    done = t + 1
                else:
                    done = chunk_end(t)
                c0, s0 = net.comm_time, time.perf_counter()
                state = algo.step(state, t) if fused is None else fused(state, t, done - t)
                comp_time += time.perf_counter() - s0 - (net.comm_time - c0)
                if due(done):
                    metrics = evaluate(problem, algo, net, state)
                    bad = 0 if finite(metrics) and state_finite(state) else 1
                    if int(net.allreduce(torch.tensor(bad))):    # every rank stops together
                        status = "diverged"
                        log.warning("iteration %d: non-finite iterate or metrics; stopping (status diverged)", done)
                        break
                    last_finite = record(done, metrics)
                    if int(net.allreduce(torch.tensor(int(_exploded(algo.iterate(state), run.diverge_threshold))))):
                        status = "diverged"
                        log.warning("iteration %d: iterate beyond run.diverge_threshold=%g; stopping (status diverged)",
                                    done, run.diverge_threshold)
                        break
                progress.update(done, last_finite)
                checkpoint_due = run.checkpoint_every and done % run.checkpoint_every == 0
                if ckpt_path is not None and (checkpoint_due or stop.requested):
                    _save_checkpoint(ckpt_path, done, elapsed + time.perf_counter() - start, state, net, comm)
                if stop.requested:
                    status = "interrupted"
                    log.warning("iteration %d: %s received; checkpoint written, stopping", done, stop.requested)
                    break
        finally:
            progress.close()
    wall = elapsed + time.perf_counter() - start
    iters = max(1, done - t0)
    summary = {
        "status": status,
        "iterations": done,
        "final": last_finite or {},
        **info,
        "wall_time": wall,
        "time_per_iteration": {"total": wall / iters, "compute": comp_time / iters,
                               "communication": net.comm_time / iters},
        "provenance": provenance.collect() if root else {},
    }
    if status == "diverged":
        summary["diverged_at"] = done
    ledger = net.ledger()                              # collective on the mpi backend
    if out is not None:
        out.write_summary(summary)
        out.write_ledger(ledger)
        out.close()
    metrics = read_metrics(out.path) if out is not None else _columns(rows)
    return Result(Path(run_dir) if run_dir is not None else None, summary, metrics, state)


class _StopOnSignal:
    """Turn SIGINT/SIGTERM into a request to stop after the current iteration."""

    def __init__(self, enabled: bool):
        self.enabled, self.requested, self._old = enabled, None, {}

    def __enter__(self):
        import signal
        import threading

        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        import signal

        if self.requested:                      # a second signal: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        import signal

        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False


def _columns(rows: list[dict]) -> dict:
    keys = list(rows[0]) if rows else []
    return {k: [r.get(k, math.nan) for r in rows] for k in keys}


def _save_checkpoint(path: Path, t: int, elapsed: float, state: dict, net, comm) -> None:
    full = {k: net.gather(v) for k, v in state.items()}
    traffic = net.state_dict()
    if comm is None or comm.Get_rank() == 0:
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"t": t, "elapsed": elapsed, "state": full, "traffic": traffic}, tmp)
        os.replace(tmp, path)


def _load_checkpoint(path: Path, state: dict, net) -> tuple[int, float]:
    ck = torch.load(path, map_location=net.device, weights_only=False)
    for k, v in ck["state"].items():
        state[k].copy_(net.local(v))
    net.load_state_dict(ck["traffic"])
    return int(ck["t"]), float(ck["elapsed"])
