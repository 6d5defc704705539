"""One job, as its steps (``run_job``):

* **build** the pieces from a validated config: graph, network, problem, compressor, algorithm
  (``Job.build``; on every MPI rank or none);
* **resume** from the run directory's checkpoint, or start fresh (``_start``);
* **loop**: a step or a fused advance at a time, stop signals, divergence, checkpoints (``Loop``);
* **record**: the metrics rows (streamed to the run directory), the loggers, progress (``Record``);
* **finish**: the summary, the traffic ledger, the ``Result`` (``_finish``).
"""
from __future__ import annotations

import bisect
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from . import checkpoint, loggers, provenance
from .algorithms import Algorithm, State, build_algorithm
from .comm import Network, StackedNetwork
from .compressors import build_compressor
from .config import Settings, check_kept, check_memory, validate
from .errors import ConfigError, RunDirError
from .graphs import Graph, Links, build_graph, expected_weights, mixing_gap
from .lazy import torch
from .metrics import evaluate, finite, state_finite
from .problems import Problem, build_problem
from .progress import Progress
from .results import CHECKPOINT, RunDir, read_metrics
from .stop import StopOnSignal

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


def run_job(cfg: dict, run_dir=None, comm=None) -> Result:
    """Run one job. ``cfg`` is a composed config (dict or DictConfig); ``run_dir`` is written by
    the root process only, which holds its lock until the job ends; ``comm`` is an MPI
    communicator for the ``mpi`` backend."""
    settings = validate(cfg)
    root = comm is None or comm.Get_rank() == 0
    out = RunDir(run_dir) if (root and run_dir is not None) else None
    try:
        torch.set_num_threads(settings.run.threads)
        job = Job.build(settings, comm)                                             # build
        config = checkpoint.job_config(settings)
        state = job.algo.init(job.problem.x0())
        t0, elapsed, last_row = _start(cfg, config, out, state, job.net, comm)      # resume (or start)
        record = Record(job, out, run_dir, config, t0, last_row)                    # record
        save = None if run_dir is None else partial(_save_checkpoint, out, net=job.net, config=config)
        loop = Loop(job, record, elapsed, save)                                     # loop
        state = loop.run(state, t0)
        return _finish(job, loop, record, out, run_dir, state)                      # finish
    finally:
        if out is not None:
            out.close()


# ---------------------------------------------------------------------------------------- build
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


@dataclass
class Job:
    """The pieces of one job on this process, and ``info``: what the summary says of them."""

    settings: Settings
    comm: object
    graph: Graph
    net: Network
    problem: Problem
    algo: Algorithm
    info: dict = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, comm=None) -> Job:
        """``build`` on every rank, or a ConfigError on every rank (else the MPI world aborts)."""
        try:
            job = cls(settings, comm, *build(settings, comm))
        except ConfigError as exc:
            _built_together(comm, exc)
            raise
        _built_together(comm, None)
        job.info = job.describe()
        return job

    @property
    def root(self) -> bool:
        return self.comm is None or self.comm.Get_rank() == 0

    @property
    def world(self) -> int:
        return self.comm.Get_size() if self.comm is not None else 1

    def describe(self) -> dict:
        """The backend, sizes, graph (with the spectral gap of E[W_t] on random links, and how it was
        obtained: ``graphs.SpectralGap``) and components."""
        s, graph = self.settings, self.graph
        gap = mixing_gap(graph, expected_weights(graph, s.graph.mixing, s.graph.weight, self.net.links))
        return {"backend": self.net.backend, "world_size": self.world, "n_agents": graph.n,
                "dimension": self.problem.d, "graph": graph.name, "edges": graph.m,
                "spectral_gap": gap.value, "spectral_gap_method": gap.method,
                "bits_convention": s.run.bits_convention, "algorithm": self.algo.name,
                "compressor": s.compressor.name, "problem": s.problem.name}


# ---------------------------------------------------------------------------------------- record
class Record:
    """Metrics rows: evaluated at a state, streamed to the run directory's metrics.csv (kept in
    memory only without a run directory), logged to the trackers; and the progress display.
    ``last``: the last finite row (a resumed run's last row until a new one)."""

    def __init__(self, job: Job, out: RunDir | None, run_dir, config: dict, t0: int, last: dict | None):
        run = job.settings.run
        self.job, self.out, self.last = job, out, last
        self.rows = [] if run_dir is None else None
        self.tracker = loggers.start(run.loggers, run_dir, config, t0, run.mlflow_uri) if job.root else None
        self.progress = Progress(run.iterations, t0, enabled=job.root, mode=run.progress, every_s=run.log_every_s)

    def metrics(self, state) -> dict | None:
        """The metrics at ``state``, or None unless they and the state are finite on every rank
        (collective: every rank gets the same answer)."""
        job = self.job
        metrics = evaluate(job.problem, job.algo, job.net, state, paper=job.settings.run.paper_metrics)
        bad = 0 if finite(metrics) and state_finite(state) else 1
        return None if int(job.net.allreduce(torch.tensor(bad))) else metrics

    def write(self, t: int, metrics: dict, wall_time: float) -> None:
        """The row of iteration t: the counters (bits, samples, times), then the metrics."""
        net = self.job.net
        row = {"iteration": t, "bits": net.total_bits(), "samples": self.job.algo.samples(t), "wall_time": wall_time}
        if net.link_model:
            row["sim_time"] = net.total_sim_time()
        row.update(metrics)
        if self.out is not None:
            self.out.append_metrics(row)
        if self.rows is not None:
            self.rows.append(row)
        if self.tracker is not None:
            self.tracker.log(row)
        self.last = row


# ---------------------------------------------------------------------------------------- loop
def _due(t: int, every: int, last: int) -> bool:
    return t % every == 0 or t == last


GEOMETRIC_PER_DECADE = 20
FUSED_CHUNK = 4096      # most iterations per fused call (algo.fused_steps): signals and progress stay responsive


def _schedule(run, problem):
    """``(due, next_due)``: ``due(t)`` says whether to evaluate after t iterations, every
    ``eval_every`` iterations (``linear``), or about 20 times per decade of iterations
    (``geometric``: t = ceil(10^(k/20)), for runs over many decades); ``auto`` takes the
    problem's preference (``problem.eval_grid``). The last iteration is always evaluated.
    ``next_due(t)``: the first evaluation after t (t < run.iterations)."""
    grid = run.eval_grid if run.eval_grid != "auto" else problem.eval_grid
    every, last = run.eval_every, run.iterations
    if grid == "linear":
        return (lambda t: _due(t, every, last)), (lambda t: min((t // every + 1) * every, last))
    top = math.log10(max(last, 1)) * GEOMETRIC_PER_DECADE
    points = {math.ceil(10 ** (k / GEOMETRIC_PER_DECADE) - 1e-9) for k in range(int(top) + 2)}
    points.add(last)
    ordered = sorted(points)
    return points.__contains__, lambda t: ordered[bisect.bisect_right(ordered, t)]


def compiled(step, device: torch.device):
    """``step`` under torch.compile (``run.compile``) with a backend that replays ATen's eager kernels,
    so that the trajectory stays the eager one bit for bit: CUDA graphs on a GPU (one launch per
    captured stretch instead of one per kernel), ``aot_eager`` elsewhere. Inductor's generated kernels
    would not keep it: ATen rounds ``y - lr * g`` once (a fused multiply-add in its vectorized
    kernels), Inductor's C++ twice, or fuses products ATen rounds apart."""
    fn = torch.compile(step, backend="cudagraphs" if device.type == "cuda" else "aot_eager")

    def call(state, t):
        with torch._dynamo.config.patch(trace_numpy=False):      # NumPy code (keyed draws, top-k) runs as NumPy
            return fn(state, t)
    return call


def _exploded(X, threshold) -> bool:
    """True when an entry of the iterate exceeds ``threshold`` in magnitude (run.diverge_threshold)."""
    return bool(threshold) and bool((X.abs() > threshold).any())


class Loop:
    """Advance the state from t0 to ``run.iterations``: one ``step`` at a time (``compiled`` with
    ``run.compile``), or one fused call (``Algorithm.fused_steps``) up to the next evaluation or
    checkpoint; nothing is read back from the device in between (tests/test_host_sync.py). Where
    due, record the metrics, and stop (``status``) on a non-finite value or an iterate beyond
    ``run.diverge_threshold`` (``diverged``) or on a stop signal (``interrupted``: every rank at
    the same iteration, after a checkpoint); ``save(t, wall_time, state)`` writes the checkpoint
    every ``run.checkpoint_every`` iterations and on a stop (None: no run directory)."""

    def __init__(self, job: Job, record: Record, elapsed: float, save=None):
        self.job, self.record, self.save, self.run_cfg = job, record, save, job.settings.run
        self.due, self.next_due = _schedule(self.run_cfg, job.problem)
        self.fused = job.algo.fused_steps()              # None: one step at a time
        self.step = compiled(job.algo.step, job.net.device) if self.run_cfg.compile else job.algo.step
        self.status, self.t0, self.done = "completed", 0, 0
        self.elapsed, self.compute, self.session, self.start = elapsed, 0.0, 0.0, 0.0

    def wall_time(self) -> float:
        """Seconds of every session of the run so far."""
        return self.elapsed + time.perf_counter() - self.start

    def run(self, state, t0: int):
        """The final state; ``status``, ``done`` (iterations), ``session`` and ``compute`` (seconds) say how it went."""
        job, last = self.job, self.run_cfg.iterations
        self.t0 = self.done = t0
        self.start = time.perf_counter()
        with StopOnSignal(job.net, job.world, on_stuck=_killed_while_waiting(self.record.out, job.comm)) as stop:
            try:
                if t0 == 0:
                    self._evaluate(state)
                while self.done < last and self.status == "completed":
                    state = self._advance(state)
                    if self.due(self.done) and not (self._evaluate(state) and self._bounded(state)):
                        break
                    self.record.progress.update(self.done, self.record.last)
                    if self._checkpoint_or_stop(state, stop):
                        break
            finally:
                self.record.progress.close()
        self.session = time.perf_counter() - self.start
        return state

    def _advance(self, state):
        """One step, or one fused call; its compute time (less communication) adds to ``compute``."""
        net, t = self.job.net, self.done
        if self.fused is None:
            net.begin(t)
            self.done = t + 1
        else:
            self.done = self._chunk_end(t)
        c0, s0 = net.comm_time, time.perf_counter()
        state = self.step(state, t) if self.fused is None else self.fused(state, t, self.done - t)
        self.compute += time.perf_counter() - s0 - (net.comm_time - c0)
        return state

    def _chunk_end(self, t: int) -> int:
        """Where a fused call from t stops: the next evaluation or checkpoint, at most FUSED_CHUNK on."""
        end, every = min(self.next_due(t), t + FUSED_CHUNK), self.run_cfg.checkpoint_every
        return min(end, (t // every + 1) * every) if every else end

    def _evaluate(self, state) -> bool:
        """Record the row of iteration ``done``; False (diverged) when a value is not finite on some rank."""
        metrics = self.record.metrics(state)
        if metrics is None:
            return self._diverged("non-finite iterate or metrics")
        self.record.write(self.done, metrics, self.wall_time())
        return True

    def _bounded(self, state) -> bool:
        """False (diverged) when the iterate exceeds ``run.diverge_threshold`` on some rank (collective)."""
        threshold = self.run_cfg.diverge_threshold
        exploded = torch.tensor(int(_exploded(self.job.algo.iterate(state), threshold)))
        return not int(self.job.net.allreduce(exploded)) or self._diverged(
            f"iterate beyond run.diverge_threshold={threshold:g}")

    def _diverged(self, why: str) -> bool:
        self.status = "diverged"
        log.warning("iteration %d: %s; stopping (status diverged)", self.done, why)
        return False

    def _checkpoint_or_stop(self, state, stop: StopOnSignal) -> bool:
        """Write the checkpoint when due or stopping; whether every rank stops here (collective)."""
        stopping, every = stop.agreed(self.done), self.run_cfg.checkpoint_every
        if self.save is not None and (stopping or (every and self.done % every == 0)):
            self.save(self.done, self.wall_time(), state)
        if stopping:
            self.status = "interrupted"
            log.warning("iteration %d: %s received; checkpoint written, stopping", self.done, stop.requested)
        return stopping


# ---------------------------------------------------------------------------------------- finish
def _finish(job: Job, loop: Loop, record: Record, out: RunDir | None, run_dir, state) -> Result:
    """The summary (status, the last finite row, the job, timings, provenance) and the traffic
    ledger, written by the root; the trackers closed; the Result."""
    net, iters = job.net, max(1, loop.done - loop.t0)
    summary = {
        "status": loop.status,
        "iterations": loop.done,
        "final": record.last or {},        # the last finite row; {} if the first evaluation was not finite
        **job.info,
        "wall_time": loop.elapsed + loop.session,    # every session of the run
        "time_per_iteration": {"total": loop.session / iters, "compute": loop.compute / iters,    # this session
                               "communication": net.comm_time / iters},
        "provenance": provenance.collect() if job.root else {},
    }
    if loop.status == "diverged":
        summary["diverged_at"] = loop.done
    ledger = net.ledger()                              # collective on the mpi backend
    if out is not None:
        resumes = out.resumes()
        if resumes:
            summary["resumes"] = resumes
        out.write_summary(summary)
        out.write_ledger(ledger)
    if record.tracker is not None:
        record.tracker.close(summary)
    return Result(Path(run_dir) if run_dir is not None else None, summary, state,
                  _columns(record.rows) if record.rows is not None else None)


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
    from .version import __version__

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
