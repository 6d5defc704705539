"""``python -m decopt run ...``: the Hydra application.

Config errors are caught before any work (every point of a sweep) and printed as one line (exit
code 2); the exit code is the run's status (``decopt.exit_codes``), a sweep's the worst of its points'. Under
``mpirun`` only rank 0 runs Hydra; it broadcasts each job to the other ranks (see
``decopt.comm.mpi`` and the shared notes on Hydra + MPI).
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from . import exit_codes
from .errors import ConfigError, RunDirError

CONF_DIR = str(Path(__file__).resolve().parent / "conf")
GROUPS = ("algo", "graph", "compressor", "problem", "backend")
log = logging.getLogger("decopt")

_STAMP = datetime.now()


def register_stamp(stamp: datetime | None = None) -> None:
    """``${decopt_stamp:FMT}``: one timestamp per launch (broadcast from rank 0 under MPI)."""
    global _STAMP
    if stamp is not None:
        _STAMP = stamp
    OmegaConf.register_new_resolver("decopt_stamp", lambda fmt: _STAMP.strftime(fmt), replace=True,
                                    use_cache=True)   # cached in the config: launchers' jobs get its value
    OmegaConf.register_new_resolver("decopt_subdir", subdir_name, replace=True)


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def compose(overrides: list[str]):
    """The job config for ``overrides`` (no Hydra run), or a one-line ConfigError."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.errors import HydraException

    from .config import register

    register()
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key in GROUPS and value and value not in choices(key):
            raise ConfigError(f"{key}={value}: unknown choice; choose one of {', '.join(choices(key))}")
    plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return hydra_compose(config_name="config", overrides=plain)
    except HydraException as exc:
        raise ConfigError(_hydra_message(exc)) from None
    except Exception as exc:  # omegaconf errors raised while composing
        raise ConfigError(_hydra_message(exc)) from None


def _hydra_message(exc: Exception) -> str:
    """One line from a Hydra/OmegaConf composition error: ``key: reason``."""
    cause = exc.__cause__ or exc
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    key = next((ln.split("full_key:")[1].strip() for ln in lines if ln.startswith("full_key:")), None)
    reason = lines[0] if lines else type(cause).__name__
    if cause is not exc and str(exc).strip():
        first = str(exc).strip().splitlines()[0]
        reason = f"{reason} ({first.rstrip('.')})" if "override" in first else reason
    return f"{key}: {reason}" if key else reason


def _is_query(argv: list[str]) -> bool:
    """--help, --cfg, --info, ... : Hydra answers these itself."""
    return any(a.startswith(("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--resolve",
                             "--package", "-p", "--shell-completion", "-sc")) for a in argv)


def _is_multirun(argv: list[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in argv)


def run_task(cfg, comm=None) -> int:
    """One job inside Hydra (a single run, or one point of a sweep); its exit code."""
    from hydra.core.hydra_config import HydraConfig

    from .runner import run_job
    from .summary import print_summary

    out = HydraConfig.get().runtime.output_dir
    if comm is None and cfg.backend.name == "mpi":
        from .slurm import job_ranks, run_ranks

        if job_ranks() > 1:                       # a Slurm job of hydra/launcher=slurm: start its ranks
            return run_ranks(list(HydraConfig.get().overrides.task), out, job_ranks())
    job = OmegaConf.to_container(cfg, resolve=True)
    if comm is not None:
        job["backend"]["name"] = "mpi"            # chosen automatically under mpirun (> 1 rank)
        comm.bcast({"cfg": job, "out": out}, root=0)
    try:
        if comm is not None:
            from .comm.mpi import run_guarded     # any failure after validation aborts every rank

            result = run_guarded(job, out, comm)
        else:
            result = run_job(job, out, comm)
    except RunDirError:
        raise                                     # the directory is another run's: leave it as it is
    except ConfigError as exc:
        _failed(out, str(exc))
        raise
    print_summary(result)
    if result.summary["status"] != "completed":
        log.warning("run ended with status %s", result.summary["status"])
    return exit_codes.for_status(result.summary["status"])


def _failed(out: str, message: str) -> None:
    from .results import RunDir

    RunDir(out).write_summary({"status": "failed", "error": message, "iterations": 0, "final": {}})


def hydra_main(argv: list[str], comm=None) -> int:
    """Run Hydra on ``argv`` (the overrides) with ``run_task`` as its task; the exit code (a
    sweep: the worst of its points', ``exit_codes.worst``). A point that fails is recorded in its
    own directory and the sweep goes on."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from .config import register

    register()
    register_stamp()
    codes = []
    sweep = _is_multirun(argv)

    @hydra.main(version_base="1.3", config_path="conf", config_name="config")
    def task(cfg):
        if sweep and not codes:
            print(f"decopt: sweep {HydraConfig.get().sweep.dir}", flush=True)
        try:
            codes.append(run_task(cfg, comm))
        except ConfigError as exc:
            print(f"decopt: error: {exc}", file=sys.stderr, flush=True)
            codes.append(exit_codes.BAD_INPUT)
        except Exception:
            if comm is not None and comm.Get_size() > 1:
                raise
            log.error("job failed:\n%s", traceback.format_exc())
            _failed(HydraConfig.get().runtime.output_dir, traceback.format_exc().strip().splitlines()[-1])
            codes.append(exit_codes.FAILED)
        if sweep:
            sweep_dir[:] = [HydraConfig.get().sweep.dir]
        return codes[-1]

    sweep_dir: list[str] = []
    sys.argv = [sys.argv[0]] + argv
    task()
    if sweep and not codes:                       # the points ran elsewhere: hydra/launcher=slurm|local_parallel
        from .slurm import sweep_results

        where, codes[:] = sweep_results(argv)
        sweep_dir[:] = [where]
    code = exit_codes.worst(codes)
    if sweep_dir:
        print(f"decopt: sweep {sweep_dir[0]}: {len(codes)} points, exit code {code}", flush=True)
    return code


def sweep_points(argv: list[str]) -> list[list[str]]:
    """The overrides of every point of a sweep, in Hydra's basic sweeper's order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([a for a in argv if not a.startswith("-")])
    except HydraException as exc:
        raise ConfigError(_hydra_message(exc)) from None
    return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def check_points(argv: list[str], world: int) -> None:
    """Compose and validate every run (every point of a sweep) before any runs: a one-line
    ConfigError naming the failing point's overrides."""
    from .config import validate
    from .runner import make_graph

    if not _is_multirun(argv):
        make_graph(validate(compose(argv)), world)
        return
    for point in sweep_points(argv):
        for o in point:
            if o.startswith("hydra.sweep.subdir=") and (".." in o.split("=", 1)[1].split("/")
                                                        or o.split("=", 1)[1].startswith("/")):
                raise ConfigError(f"{o}: a sweep subdirectory must stay inside hydra.sweep.dir (no '..', "
                                  f"not absolute)")
        try:
            make_graph(validate(compose(point)), world)
        except ConfigError as exc:
            shown = " ".join(o for o in point if not o.startswith("hydra."))
            raise ConfigError(f"sweep point [{shown}]: {exc}") from None


def subdir_name(text: str) -> str:
    """``${decopt_subdir:...}``: one path component (no separator, so never '..' or absolute)."""
    name = text.replace("/", "_").replace("\\", "_")
    if len(name.encode()) > 200:                     # a file name has at most 255 bytes
        import hashlib

        name = name[:150] + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def _override_value(override: str):
    """The value of ``key=value`` as Hydra reads it (quotes and escapes removed)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).value()


def _check_writable(argv: list[str]) -> None:
    """The run (or sweep) directory can be created and written, else a one-line error."""
    key = "hydra.sweep.dir" if _is_multirun(argv) else "hydra.run.dir"
    given = [str(_override_value(a)) for a in argv if a.startswith(key + "=")]
    target = Path(given[-1]) if given else Path.cwd()
    probe = target / f".decopt-write-test-{os.getpid()}"     # one per process: ranks check at once
    try:
        target.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{key}={target}: cannot write there ({exc.strerror})") from None


def main(argv: list[str]) -> int:
    """Entry for ``decopt run``: validate first (one-line errors, exit 2), then run Hydra."""
    from .comm.launch import world_rank, world_size

    if world_size() > 1:                      # one BLAS/OpenMP thread per rank (set before torch loads)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    if not _is_query(argv):
        try:
            check_points(argv, world_size())
            _check_writable(argv)
        except ConfigError as exc:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if world_rank() == 0:             # under mpirun every rank finds it; one prints
                print(f"decopt: error: {exc}", file=sys.stderr)
            return 2

    if world_size() > 1:
        from .comm.mpi import mpi_main

        return mpi_main(argv)
    return hydra_main(argv)


register_stamp()   # at import: the jobs of hydra/launcher=slurm|local_parallel resolve the run directories
