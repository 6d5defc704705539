"""Config schemas, their registration with Hydra, and validation before any work starts.

Every registered component (``decopt.registry``) is a config group choice: its dataclass is
stored in Hydra's ConfigStore as ``<group>/<name>`` (defaults live only in the dataclass), and a
preset in ``conf/<group>/<name>.yaml`` (``compressor=qsgd8``) extends a stored one. Hydra
checks types and key names while composing; ``validate`` then re-checks the composed (possibly
broadcast) config against the same dataclasses, which also catches keys smuggled in with
``+key=`` and values out of range, and returns typed objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from . import graphs, registry
from .comm import CONVENTIONS
from .errors import ConfigError
from .schema import INT_LIMIT, numbers as _numbers, typed as _typed

DTYPES = ("float32", "float64")
PROGRESS = ("auto", "bar", "log", "none")
EVAL_GRIDS = ("auto", "linear", "geometric")
MAX_THREADS = 1024             # torch threads per process
MAX_ITERATIONS = 10 ** 12      # run.iterations above this is a typo, not a plan (years of steps)


@dataclass
class RunConfig:
    """The loop: length, seed, evaluation cadence, precision, device, checkpoints, bit convention."""

    iterations: int = 1000                 # iterations T of the algorithm
    seed: int = 0                          # root seed of every keyed random draw, in [0, 2^63)
    eval_every: int = 50                   # metrics every this many iterations (eval_grid=linear); the last is always
    dtype: str = "float32"                 # float32 | float64: precision of iterates and data
    device: str = "cpu"                    # cpu | cuda | cuda:K
    checkpoint_every: int = 0              # write a checkpoint every K iterations (and when interrupted); 0 = off
    resume: bool = False                   # continue from the checkpoint in hydra.run.dir (python -m decopt resume)
    bits_convention: str = "broadcast"     # broadcast: one count a message | edge: one a directed link | paper (FSPDA)
    progress: str = "auto"                 # auto: a bar on a terminal, log lines otherwise | bar | log | none
    log_every_s: float = 10.0              # seconds between progress log lines (when no bar is shown)
    eval_grid: str = "auto"                # linear (every eval_every) | geometric (20 per decade) | auto
    diverge_threshold: float | None = 1e10  # status diverged once any |iterate entry| exceeds it; null = off
    link_latency: float = 0.0              # seconds per message on a link (alpha); link model
    link_bandwidth: float | None = None    # bits per second per link (beta); null = infinite; either logs sim_time
    threads: int = 1                       # torch threads per process: 1 is fastest for per-agent-sized operations
    compile: bool = False                  # torch.compile the step, replaying its eager kernels (CUDA graphs on a GPU)
    paper_metrics: bool = False            # add the papers' own metric columns (decopt.metrics)
    loggers: list[str] = field(default_factory=list)   # trackers, any of tensorboard, mlflow, wandb (decopt.loggers)
    mlflow_uri: str | None = None          # MLflow tracking URI; null = a file store in <run dir>/mlruns

    def check(self) -> None:
        if not 0 <= self.iterations <= MAX_ITERATIONS:
            raise ConfigError(f"run.iterations={self.iterations}: must be in [0, 10^12]")
        if not 0 <= self.seed < INT_LIMIT:
            raise ConfigError(f"run.seed={self.seed}: must be in [0, 2^63)")
        if not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"run.threads={self.threads}: must be in [1, {MAX_THREADS}]")
        if self.eval_every < 1:
            raise ConfigError(f"run.eval_every={self.eval_every}: must be >= 1")
        if self.dtype not in DTYPES:
            raise ConfigError(f"run.dtype={self.dtype}: choose one of {', '.join(DTYPES)}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"run.device={self.device}: choose cpu or cuda")
        if self.device.startswith("cuda"):
            import torch
            if not torch.cuda.is_available():
                raise ConfigError(f"run.device={self.device}: no CUDA device is available here; use run.device=cpu")
        if self.checkpoint_every < 0:
            raise ConfigError(f"run.checkpoint_every={self.checkpoint_every}: must be >= 0 (0 = off)")
        if self.bits_convention not in CONVENTIONS:
            raise ConfigError(f"run.bits_convention={self.bits_convention}: choose one of {', '.join(CONVENTIONS)}")
        if self.link_latency < 0:
            raise ConfigError(f"run.link_latency={self.link_latency}: must be >= 0 (seconds per message)")
        if self.link_bandwidth is not None and not self.link_bandwidth > 0:
            raise ConfigError(f"run.link_bandwidth={self.link_bandwidth}: must be > 0 (bits per second) or null")
        if self.eval_grid not in EVAL_GRIDS:
            raise ConfigError(f"run.eval_grid={self.eval_grid}: choose one of {', '.join(EVAL_GRIDS)}")
        if self.diverge_threshold is not None and not self.diverge_threshold > 0:
            raise ConfigError(f"run.diverge_threshold={self.diverge_threshold}: must be > 0 or null (off)")
        if self.progress not in PROGRESS:
            raise ConfigError(f"run.progress={self.progress}: choose one of {', '.join(PROGRESS)}")
        from .loggers import check

        check(self.loggers)


@dataclass
class BackendConfig:
    """The backends of this schema: ``stacked``: every agent in this process (the simulator);
    ``mpi``: agents split into contiguous blocks over MPI ranks (automatic under ``mpirun`` with
    more than one rank)."""

    name: str = "stacked"

    def check(self) -> None:
        pass


registry.register("backend", "stacked", BackendConfig)
registry.register("backend", "mpi", BackendConfig)
GROUPS = {group: registry.schemas(group) for group in registry.GROUPS}


def _help_text() -> str:
    """Hydra's help page: the same as ``run --help`` (decopt.catalog), ``$`` escaped for its template."""
    from .catalog import help_text

    return help_text().replace("$", "$$")


CONF = Path(__file__).resolve().parent / "conf"


def register() -> None:
    """Store every registered schema in Hydra's ConfigStore as the choice ``<group>/<name>`` (and as
    ``schema/<group>/<name>``, which a preset YAML of the same name extends), every compressor but
    a wrapper as ``compressor/inner/<name>`` (the choice inside ``compressor=noisy``), and the help page."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for group, schemas in GROUPS.items():
        for name, schema in schemas.items():
            node = schema(name=name)
            cs.store(group=f"schema/{group}", name=name, node=node)
            if not (CONF / group / f"{name}.yaml").exists():
                cs.store(group=group, name=name, node=node)
            if group == "compressor" and "inner" not in {f.name for f in fields(schema)}:
                cs.store(group="compressor/inner", name=name, node=node)
    cs.store(group="schema", name="run", node=RunConfig)
    cs.store(group="hydra/help", name="decopt", node={"app_name": "decopt", "header": "", "footer": "",
                                                      "template": _help_text()})


GROUPS_AND_RUN = (*GROUPS, "run")


@dataclass
class Settings:
    """A validated job: one typed object per group."""

    algo: object
    graph: object
    compressor: object
    problem: object
    backend: BackendConfig
    run: RunConfig


def check_renamed(group: str, node, schema) -> None:
    """A key renamed by the step-size contract (``algo.eta`` -> ``algo.lr``): one line naming the new key."""
    known = {f.name for f in fields(schema)}
    for key in node:
        moved = None if key in known else registry.renamed(group, node.get("name"), key)
        if moved:
            raise ConfigError(moved)


def check_representable(settings: "Settings") -> None:
    """Every float key fits ``run.dtype`` (``algo.lr=1e39`` overflows float32 to inf)."""
    top = float(np.finfo(settings.run.dtype).max)
    for group in GROUPS_AND_RUN:
        for key, value in _numbers(group, getattr(settings, group)):
            if isinstance(value, float) and abs(value) > top:
                raise ConfigError(f"{key}={value}: beyond run.dtype={settings.run.dtype} (largest {top:.4g}); "
                                  f"use a smaller value or run.dtype=float64")


def validate(cfg) -> Settings:
    """Typed, checked settings from a composed config (DictConfig or plain dict), or ConfigError."""
    parts = {}
    for group, schemas in GROUPS.items():
        node = cfg.get(group) if hasattr(cfg, "get") else None
        if node is None:
            raise ConfigError(f"{group}: missing; choose one of {', '.join(schemas)}")
        name = node.get("name")
        if name not in schemas:
            raise ConfigError(f"{group}={name}: choose one of {', '.join(schemas)}")
        check_renamed(group, node, schemas[name])
        parts[group] = _typed(group, node, schemas[name])
    parts["run"] = _typed("run", cfg.get("run", {}), RunConfig)
    settings = Settings(**parts)
    check_representable(settings)
    check_memory(settings, settings.graph.n or graphs.DEFAULT_N)
    algo_cls = registry.lookup("algo", settings.algo.name).build
    links, need = settings.graph.links, algo_cls.link_model(settings.algo)
    if need == "static" and links != "static":
        variant = getattr(settings.algo, "variant", None)
        which = f"algo={settings.algo.name}" + (f" with algo.variant={variant}" if variant and variant != "paper" else "")
        raise ConfigError(f"graph.links={links}: {which} needs a static graph (graph.links=static)")
    if need == "random" and links == "static":
        raise ConfigError(f"graph.links=static: algo={settings.algo.name} is built for random links; "
                          f"choose graph.links=bernoulli or one_edge")
    if algo_cls.no_compressor and settings.compressor.name != "none":
        raise ConfigError(f"compressor={settings.compressor.name}: algo={settings.algo.name} "
                          f"{algo_cls.no_compressor}; use compressor=none")
    return settings


def mem_available() -> int | None:
    """Bytes the kernel reports available for new allocations (MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(settings: Settings, n: int, m: int | None = None) -> None:
    """Refuse, before allocating, a job that cannot fit in memory. The estimate is a lower
    bound (two n x d copies of the iterate, the problem's data and one minibatch, the
    graph's edges or the pairs its generator enumerates), so a job that fits is never refused."""
    avail = mem_available()
    if avail is None:
        return
    problem, item = settings.problem, np.dtype(settings.run.dtype).itemsize
    batch = max(problem.batch_size or 0, getattr(settings.algo, "b0", None) or 0)
    d, data = problem.footprint(n, batch)
    m = graphs.edge_count(settings.graph, n) if m is None else m
    parts = {"iterate": item * 2 * n * d, "problem data": item * data, "graph": 16 * (n + m)}
    if sum(parts.values()) > avail:
        gib = lambda b: f"{b / 2**30:.3g} GiB"
        detail = ", ".join(f"{k} {gib(v)}" for k, v in parts.items())
        raise ConfigError(f"graph.n={n} with problem={problem.name} (d={d}): needs at least "
                          f"{gib(sum(parts.values()))} ({detail}), {gib(avail)} available; "
                          f"choose a smaller graph.n or problem size")


def check_kept(settings: Settings, d: int) -> None:
    """``compressor.k`` (or ``compressor.inner.k``) keeps at most d entries, d being known once the
    problem is built: a larger k is refused (it used to be capped at d without a word)."""
    comp, prob = settings.compressor, settings.problem
    for key, cfg in (("compressor", comp), ("compressor.inner", getattr(comp, "inner", None))):
        k = getattr(cfg, "k", None)
        if k is not None and k > d:
            dim = f", problem.dim={prob.dim}" if hasattr(prob, "dim") else ""
            raise ConfigError(f"{key}.k={k}: more than the d={d} entries of a message (problem={prob.name}{dim}); "
                              f"choose {key}.k <= {d} or set {key}.ratio")
