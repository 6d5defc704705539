"""The loop: build the pieces from a validated config, step, evaluate, write the run directory."""
from __future__ import annotations

import bisect
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import checkpoint, loggers, provenance
from .algorithms import State, build_algorithm
from .comm import StackedNetwork
from .compressors import build_compressor
from .config import Settings, check_kept, check_memory, validate
from .errors import ConfigError, RunDirError
from .graphs import Links, build_graph, mixing_matrix, spectral_gap
from .metrics import evaluate, finite, state_finite
from .problems import build_problem
from .progress import Progress
from .results import CHECKPOINT, RunDir, read_metrics

log = logging.getLogger("decopt")


@dataclass
class Result:
    """What a run returns: its directory, summary, final (local) state and metrics columns.

    ``metrics`` is read from the run directory's metrics.csv on first use: the loop streams rows
    to disk and keeps none, so memory stays flat however many rows a run writes. Without a run
    directory (``run_dir=False``) the rows are kept in memory during the run and returned here."""

    run_dir: Path | None
    summary: dict
    state: dict = field(default_factory=dict)
    _metrics: dict | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict:
        if self._metrics is None:
            self._metrics = read_metrics(self.run_dir) if self.run_dir is not None else {}
        return self._metrics

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
    the root process only, which holds its lock until the job ends; ``comm`` is an MPI
    communicator for the ``mpi`` backend."""
    settings = validate(cfg)
    root = comm is None or comm.Get_rank() == 0
    out = RunDir(run_dir) if (root and run_dir is not None) else None
    try:
        return _job(cfg, settings, run_dir, out, comm)
    finally:
        if out is not None:
            out.close()


def _job(cfg, settings, run_dir, out, comm) -> Result:
    run = settings.run
    torch.set_num_threads(run.threads)
    root = comm is None or comm.Get_rank() == 0
    world = comm.Get_size() if comm is not None else 1
    try:
        graph, net, problem, algo = build(settings, comm)
    except ConfigError as exc:
        _built_together(comm, exc)                 # every rank raised it alike (else the world aborts)
        raise
    _built_together(comm, None)
    ckpt_path = Path(run_dir) / CHECKPOINT if run_dir is not None else None
    config = checkpoint.job_config(settings)

    state = algo.init(problem.x0())
    rows = [] if run_dir is None else None          # kept in memory only without a run directory
    t0, elapsed, last_row = _start(cfg, config, out, state, net, comm)
    tracker = loggers.start(run.loggers, run_dir, config, t0, run.mlflow_uri) if root else None

    W = mixing_matrix(graph, settings.graph.mixing, settings.graph.weight, net.links)    # E[W_t] on random links
    info = {
        "backend": net.backend, "world_size": world, "n_agents": graph.n, "dimension": problem.d,
        "graph": graph.name, "edges": graph.m, "spectral_gap": spectral_gap(W),
        "bits_convention": run.bits_convention, "algorithm": algo.name,
        "compressor": settings.compressor.name, "problem": settings.problem.name,
    }
    progress = Progress(run.iterations, t0, enabled=root, mode=run.progress, every_s=run.log_every_s)
    status, last_finite, done = "completed", last_row, t0
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
        if rows is not None:
            rows.append(row)
        if tracker is not None:
            tracker.log(row)
        return row

    def healthy(metrics) -> bool:
        """Finite metrics and state on every rank (every rank stops together)."""
        bad = 0 if finite(metrics) and state_finite(state) else 1
        return not int(net.allreduce(torch.tensor(bad)))

    start = time.perf_counter()
    with _StopOnSignal(net, on_stuck=_killed_while_waiting(out, comm)) as stop:
        try:
            if t0 == 0:
                metrics = evaluate(problem, algo, net, state, paper=run.paper_metrics)
                if healthy(metrics):
                    last_finite = record(0, metrics)
                else:
                    status = "diverged"
                    log.warning("iteration 0: non-finite iterate or metrics; stopping (status diverged)")
            while done < run.iterations and status == "completed":
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
                    metrics = evaluate(problem, algo, net, state, paper=run.paper_metrics)
                    if not healthy(metrics):
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
                stopping = stop.agreed(done)
                checkpoint_due = run.checkpoint_every and done % run.checkpoint_every == 0
                if ckpt_path is not None and (checkpoint_due or stopping):
                    _save_checkpoint(out, done, elapsed + time.perf_counter() - start, state, net, config)
                if stopping:
                    status = "interrupted"
                    log.warning("iteration %d: %s received; checkpoint written, stopping", done, stop.requested)
                    break
        finally:
            progress.close()
    session = time.perf_counter() - start
    iters = max(1, done - t0)
    summary = {
        "status": status,
        "iterations": done,
        "final": last_finite or {},        # the last finite row; {} if the first evaluation was not finite
        **info,
        "wall_time": elapsed + session,    # every session of the run
        "time_per_iteration": {"total": session / iters, "compute": comp_time / iters,    # this session
                               "communication": net.comm_time / iters},
        "provenance": provenance.collect() if root else {},
    }
    if status == "diverged":
        summary["diverged_at"] = done
    ledger = net.ledger()                              # collective on the mpi backend
    if out is not None:
        resumes = out.resumes()
        if resumes:
            summary["resumes"] = resumes
        out.write_summary(summary)
        out.write_ledger(ledger)
    if tracker is not None:
        tracker.close(summary)
    return Result(Path(run_dir) if run_dir is not None else None, summary, state,
                  _columns(rows) if rows is not None else None)


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGUSR1")
STOP_CHECK_S = 0.02    # MPI: the ranks agree on a stop about this often (prterun kills 0.25 s after SIGTERM)
STUCK_S = 0.1          # MPI: a signal not acted on this long finds rank 0 blocked on a dead or killed peer


class _StopOnSignal:
    """Turn SIGINT/SIGTERM/SIGUSR1 into a request to stop at an iteration boundary.

    On one process a signal stops the run after the current iteration. On several ranks every
    rank calls ``agreed(t)`` at the same t; one in about every STOP_CHECK_S seconds is a small
    allreduce (the stop flag, and rank 0's choice of the next checking t), so all ranks stop at
    the same iteration. Signal handlers run only when the main thread is in Python, so on MPI a
    watcher thread (woken through ``signal.set_wakeup_fd``) calls ``on_stuck`` when a signal is
    not acted on within STUCK_S: the main thread is blocked on a peer that died, and the launcher
    is ending the job."""

    def __init__(self, net, on_stuck=None):
        self.net, self.on_stuck = net, on_stuck
        self.requested, self.acting, self._old, self._wake = None, False, {}, None
        self.world = getattr(net, "size", 1)
        self._next, self._last = 0, None

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self
        for name in STOP_SIGNALS:
            sig = getattr(signal, name)
            self._old[sig] = signal.signal(sig, self._handle)
        if self.world > 1 and self.on_stuck is not None:
            import socket

            self._wake = socket.socketpair()
            self._wake[1].setblocking(False)
            self._old_fd = signal.set_wakeup_fd(self._wake[1].fileno(), warn_on_full_buffer=False)
            threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _handle(self, signum, frame):
        import signal

        if self.requested:                      # a second signal: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def _watch(self):
        import signal

        try:
            got = self._wake[0].recv(1)
        except OSError:
            return
        if got and not self.acting and not _sleep_unless(lambda: self.acting or self._wake is None, STUCK_S):
            self.on_stuck(signal.Signals(got[0]).name)

    def agreed(self, t: int) -> bool:
        """Whether every rank stops after iteration t (collective on several ranks)."""
        if self.world == 1:
            self.acting = bool(self.requested)
            return self.acting
        if t < self._next:
            return False
        now = time.perf_counter()
        gap = 0
        if self.net.rank == 0:               # iterations in about STOP_CHECK_S, from the last interval
            rate = (t - self._last[0]) / max(now - self._last[1], 1e-6) if self._last else 1.0
            gap = max(1, min(10_000, int(rate * STOP_CHECK_S)))
        flag, gap = self.net.allreduce(torch.tensor([int(self.requested is not None), gap])).tolist()
        self._next, self._last = t + gap, (t, now)
        self.acting = bool(flag)
        if self.acting and self.requested is None:
            self.requested = "a signal on another rank"
        return self.acting

    def __exit__(self, *exc):
        import signal

        self.acting = True                      # finished, failed or stopping: the watcher stands down
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        if self._wake is not None:
            signal.set_wakeup_fd(self._old_fd)
            for s in self._wake:
                s.close()
            self._wake = None
        return False


def _sleep_unless(done, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``done()``; whether it became true."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.005)
    return done()


def _killed_while_waiting(out, comm):
    """What rank 0 records when a stop signal finds it blocked in communication (None elsewhere)."""
    if out is None or comm is None or comm.Get_size() == 1:
        return None
    started = time.time()

    def record(signame):
        done = out.path / "summary.json"
        if done.exists() and done.stat().st_mtime >= started:
            return                              # a failing rank recorded its own error
        out.write_summary({"status": "failed", "iterations": None, "final": {}, "backend": "mpi",
                           "world_size": comm.Get_size(),
                           "error": f"{signame} from the MPI launcher while rank 0 waited for other ranks: a rank "
                                    f"died or the job was killed (mpirun's stderr names the rank)"})
    return record


def _built_together(comm, exc) -> None:
    """On several ranks: whether every rank built the job (collective, see ``comm.mpi.agree_built``)."""
    if comm is not None and comm.Get_size() > 1:
        from .comm.mpi import agree_built

        agree_built(comm, exc)


def _columns(rows: list[dict]) -> dict:
    keys = list(rows[0]) if rows else []
    return {k: [r.get(k, math.nan) for r in rows] for k in keys}


def _start(cfg, config: dict, out: RunDir | None, state: State, net, comm) -> tuple[int, float, dict | None]:
    """Prepare the run directory and load the checkpoint to resume from: ``(t0, elapsed, last
    metrics row)``. The root reads and checks the files; every rank gets the checkpoint (or the
    same ConfigError)."""
    found = error = None
    if out is not None:
        try:
            found = _open_run(cfg, config, out, state)
        except RunDirError as exc:
            error = exc
    if comm is not None:
        found, error = comm.bcast((found, error), root=0)
        if error is not None:
            error.all_ranks = True                      # every rank raises it: the MPI driver goes on
    if error is not None:
        raise error
    if found is None:
        return 0, 0.0, None
    manifest, tensors, last_row = found
    for k, rows in state.rows().items():                # exactly the state's fields (checked)
        v = state[k]
        saved = net.local(tensors[f"state.{k}"].to(v.device), rows)
        if saved.shape != v.shape or saved.dtype != v.dtype:
            raise RunDirError(f"run.resume: the checkpoint's state.{k} is {saved.dtype} {tuple(saved.shape)}, "
                              f"this job's {v.dtype} {tuple(v.shape)}")
        v.copy_(saved)
    traffic = {**manifest["network"], "arc_bits": tensors["net.arc_bits"].numpy(),
               "arc_msgs": tensors["net.arc_msgs"].numpy()}
    net.load_state_dict(traffic)
    return manifest["t"], manifest["elapsed"], last_row


def _open_run(cfg, config: dict, out: RunDir, state: State):
    """Root: a fresh run directory (None), or the checked checkpoint ``(manifest, tensors, last row)``."""
    resume = config["run.resume"]
    data = out.read_checkpoint() if resume else None
    if data is None:
        if resume:
            log.warning("run.resume: no checkpoint in %s; starting from iteration 0", out.path)
        from omegaconf import OmegaConf

        out.start_fresh(OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg))
        return None
    where = out.path / CHECKPOINT
    manifest, tensors = checkpoint.decode(data, where)
    changed = checkpoint.check(manifest, tensors, config, state.rows(), where)
    from . import __version__

    if manifest["decopt_version"] != __version__:
        log.warning("%s: written by decopt %s, resumed by %s", where, manifest["decopt_version"], __version__)
    last_row = out.keep_metrics_to(manifest["t"])
    out.append_resume({"from": manifest["t"], "to": config["run.iterations"],
                       "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "changed": changed})
    return manifest, tensors, last_row


def _save_checkpoint(out: RunDir | None, t: int, elapsed: float, state: State, net, config: dict) -> None:
    """Gather the state on the root (collective) and write it there as one file, atomically."""
    rows = state.rows()
    full = {k: net.gather(state[k], kind) for k, kind in rows.items()}
    traffic = net.state_dict()
    if out is not None:
        out.write_checkpoint(checkpoint.encode(t, elapsed, full, rows, traffic, config))
