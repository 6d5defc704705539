"""``python -m decopt run ...``: the Hydra application.

Config errors are caught before any work (every point of a sweep) and printed as one line (exit
code 2); the exit code is the run's status (``decopt.exit_codes``), a sweep's the worst of its points'. Under
``mpirun`` only rank 0 runs Hydra; it broadcasts each job to the other ranks (see
``decopt.mpi_jobs`` and the shared notes on Hydra + MPI).
"""
from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import traceback
from datetime import datetime
from pathlib import Path

from . import catalog, exit_codes, registry
from .errors import ConfigError, RunDirError

CONF_DIR = str(Path(__file__).resolve().parent / "conf")
log = logging.getLogger("decopt")

_STAMP = datetime.now()


def register_stamp(stamp: datetime | None = None) -> None:
    """``${decopt_stamp:FMT}``: one timestamp per launch (broadcast from rank 0 under MPI)."""
    from omegaconf import OmegaConf

    global _STAMP
    if stamp is not None:
        _STAMP = stamp
    OmegaConf.register_new_resolver("decopt_stamp", lambda fmt: _STAMP.strftime(fmt), replace=True,
                                    use_cache=True)   # cached in the config: launchers' jobs get its value
    OmegaConf.register_new_resolver("decopt_subdir", subdir_name, replace=True)


def compose(overrides: list[str]):
    """The job config for ``overrides`` (no Hydra run), or a one-line ConfigError."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.errors import HydraException

    from .config import register

    register()
    check_words(overrides)
    plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return hydra_compose(config_name="config", overrides=plain)
    except HydraException as exc:
        raise ConfigError(_hydra_message(exc)) from None
    except Exception as exc:  # omegaconf errors raised while composing
        raise ConfigError(_hydra_message(exc)) from None


HYDRA_FLAGS = ("-m", "--multirun", "-h", "--help", "--hydra-help", "--version", "--cfg", "-c", "--resolve", "--package",
               "-p", "--info", "-i", "--run", "-r", "--shell-completion", "-sc", "--config-path", "-cp",
               "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")
WITH_VALUE = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
              "--experimental-rerun")


def _picked(overrides: list[str]) -> dict:
    """``{group: [choices]}`` named on the command line (a sweep names several)."""
    picked = {}
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key in catalog.GROUPS or key in catalog.NESTED:
            picked[key] = value.split(",") if "(" not in value else []
    return picked


def check_words(argv: list[str]) -> None:
    """Refuse, in one line with a "did you mean", what no config has: a flag that is no Hydra option
    (``--iterations 10``: write ``run.iterations=10``), an unknown choice, an unknown key. Reads the
    catalog only (no torch, no Hydra): a typo costs well under a second."""
    picked = {**{g: [c] for g, c in catalog.default_choices().items()}, "compressor/inner": ["none"], **_picked(argv)}
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            flag = arg.split("=")[0]
            if flag not in HYDRA_FLAGS and not (i and argv[i - 1] in WITH_VALUE):
                raise ConfigError(_flag_message(arg, argv[i + 1] if i + 1 < len(argv) else None))
            continue
        if i and argv[i - 1] in WITH_VALUE or "=" not in arg:
            continue
        key, _, value = arg.lstrip("+~").partition("=")
        if key in catalog.GROUPS or key in catalog.NESTED:
            options = catalog.choices(key)
            for pick in picked[key]:
                if pick and pick not in options:
                    hint = catalog.suggest(pick, options)
                    listed = f" (choose one of {', '.join(options)})" if hint else f"; choose one of {', '.join(options)}"
                    raise ConfigError(f"{key}={pick}: unknown choice{hint}{listed}")
        elif "." in key and not key.startswith("hydra."):
            _check_key(key, picked)


def _check_key(key: str, picked: dict) -> None:
    group, _, leaf = key.partition(".")
    if group == "run":
        known, where = {k.name for k in catalog.run_keys()}, "run"
    elif group in catalog.GROUPS and not leaf.startswith("inner."):
        picks = [c for c in picked.get(group, []) if c in catalog.choices(group)]
        known = {k.name for c in picks for _, keys in [catalog.choice(group, c)] for k in keys}
        where = " or ".join(f"{group}={c}" for c in picks)
    else:
        return                                      # compressor.inner.* and unknown groups: Hydra says
    if not known or leaf in known:
        return
    moved = [m for c in picked.get(group, []) for m in [registry.renamed(group, c, leaf)] if m]
    if moved:
        raise ConfigError(moved[0])
    leaves = sorted(known - {"name"})
    close = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.6)
    full = [f"{group}.{k}" for k in leaves]
    hint = f"; did you mean {group}.{close[0]}?" if close else ""
    raise ConfigError(f"{key}: unknown key for {where}{hint}" + ("" if hint else f"; known keys: {', '.join(full)}"))


def _flag_message(arg: str, following: str | None) -> str:
    """``--iterations 10`` is not how decopt takes keys: say how to write it."""
    name, _, value = arg.lstrip("-").partition("=")
    value = value or (following if following is not None and not following.startswith("-") and "=" not in following
                      else "VALUE")
    keys = [f"run.{k.name}" for k in catalog.run_keys()] + [
        f"{g}.{k.name}" for g, c in catalog.default_choices().items() for k in catalog.choice(g, c)[1]]
    leaf = name.replace("-", "_")
    exact = [k for k in keys if k.rsplit(".", 1)[1] == leaf]
    close = exact or [k for k in keys if k.rsplit(".", 1)[1] in difflib.get_close_matches(
        leaf, [k.rsplit(".", 1)[1] for k in keys], n=1)]
    how = f"write {close[0]}={value}" if close else "write config keys as key=value (run.iterations=10)"
    return f"{arg}: not an option; {how} (python -m decopt run --help lists every key)"


def _hydra_message(exc: Exception) -> str:
    """One line from a Hydra/OmegaConf composition error: ``key: reason``."""
    cause = exc.__cause__ or exc
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    key = next((ln.split("full_key:")[1].strip() for ln in lines if ln.startswith("full_key:")), None)
    reason = lines[0] if lines else type(cause).__name__
    listed = re.search(r"is not a ListConfig.*override ([\w.]+)=([^\s)]+)", f"{reason} {exc}", re.S)
    if listed:                                                  # run.loggers=tensorboard
        return f"{listed[1]}={listed[2]}: takes a list; write {listed[1]}=[{listed[2]}]"
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

    from omegaconf import OmegaConf

    from .runner import run_job
    from .summary import print_summary

    from . import slurm

    out = HydraConfig.get().runtime.output_dir
    ranks = slurm.job_ranks() if comm is None and cfg.backend.name == "mpi" else 1
    if ranks > 1:                                 # a Slurm job of hydra/launcher=slurm: start its ranks
        code = slurm.run_ranks(list(HydraConfig.get().overrides.task), out, ranks)
        if code:                                  # srun's code when Slurm ends the step: not always 130
            slurm.leave_if_requeued(code)
        return code
    job = OmegaConf.to_container(cfg, resolve=True)
    job["run"]["resume"] |= slurm.restarted()     # a requeued Slurm job continues from its checkpoint
    if comm is not None:
        job["backend"]["name"] = "mpi"            # chosen automatically under mpirun (> 1 rank)
        comm.bcast({"cfg": job, "out": out}, root=0)
    try:
        if comm is not None:
            from .mpi_jobs import run_guarded     # any failure after validation aborts every rank

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
    code = exit_codes.for_status(result.summary["status"])
    if result.summary["status"] == "interrupted":
        slurm.leave_if_requeued(code)
        print(f"decopt: interrupted; continue with: {resume_command(out)}", flush=True)
    return code


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


def _first_rank() -> bool:
    """Rank 0 under mpirun, or no launcher (read from the launcher's variables: no MPI, no torch)."""
    return all(os.environ.get(v, "0") == "0" for v in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"))


ERROR_GRACE_S = 1.0     # under mpirun: the other ranks wait this long, so that rank 0 prints before the launcher ends it


def _error(exc: Exception) -> int:
    """Print a bad-input error once (under mpirun every rank finds it; rank 0 prints) and return exit 2."""
    if _first_rank():
        print(f"decopt: error: {exc}", file=sys.stderr, flush=True)
    else:
        import time

        time.sleep(ERROR_GRACE_S)             # a rank that exits first makes prterun kill rank 0 mid-print
    return exit_codes.BAD_INPUT


def main(argv: list[str]) -> int:
    """Entry for ``decopt run``: help and typos first (no torch), then validate (one-line errors,
    exit 2), then run Hydra."""
    if any(a in ("-h", "--help") for a in argv):
        picked = {g: c[0] for g, c in _picked(argv).items() if len(c) == 1 and c[0] in catalog.choices(g)}
        if _first_rank():
            print(catalog.help_text(picked), end="")
        return 0
    try:
        check_words(argv)
        resume = [a.split("=", 1)[1].lower() for a in argv if a.lstrip("+").startswith("run.resume=")]
        if resume and resume[-1] == "true" and not any(a.startswith("hydra.run.dir=") for a in argv):
            raise ConfigError("run.resume=true: resumes the run in hydra.run.dir, and none was given (a new run "
                              "would start); write: python -m decopt resume <run dir>")
    except ConfigError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        return _error(exc)
    from .comm.launch import world_size

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
            return _error(exc)

    if world_size() > 1:
        from .mpi_jobs import mpi_main

        return mpi_main(hydra_main, argv)
    return hydra_main(argv)


RESUME_USAGE = """usage: python -m decopt resume RUN_DIR [key=value ...]

Continue the run in RUN_DIR in place, from its checkpoint, with the config in its config.yaml.
Only these keys may change: {keys}.
Under MPI: mpirun -n P python -m decopt resume RUN_DIR
"""


def resume_command(run_dir) -> str:
    """The command that continues the run in ``run_dir`` (printed by every interrupted run)."""
    import shlex

    return f"python -m decopt resume {shlex.quote(str(run_dir))}"


def _literal(value) -> str:
    """``value`` as a Hydra override value that composes back to it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_literal(v)}" for k, v in value.items()) + "}"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def resume_argv(run_dir: str, changes: list[str]) -> list[str]:
    """The ``run`` overrides that continue ``run_dir`` in place: its config.yaml, ``run.resume=true``,
    ``hydra.run.dir`` and the allowed ``changes``; a one-line ConfigError for a directory that is no
    run, has no checkpoint, or a change that would make another job."""
    import yaml

    from .checkpoint import RESUMABLE
    from .results import CHECKPOINT, read_bytes

    allowed = [k for k in RESUMABLE if k not in ("run.resume", "backend.name")]
    path = Path(run_dir)
    config = path / "config.yaml"
    if not path.is_dir() or not config.is_file():
        raise ConfigError(f"resume: {run_dir} is not a decopt run directory (no config.yaml); give the directory "
                          f"a run printed at its end")
    try:
        cfg = yaml.safe_load(read_bytes(config))
    except yaml.YAMLError as exc:
        raise ConfigError(f"resume: {config} is not valid YAML ({str(exc).splitlines()[0]})") from None
    missing = [g for g in (*catalog.GROUPS, "run") if not isinstance(cfg, dict) or not isinstance(cfg.get(g), dict)]
    if missing:
        raise ConfigError(f"resume: {run_dir} is not a decopt run directory (its config.yaml has no "
                          f"{', '.join(missing)})")
    if not (path / CHECKPOINT).is_file():
        raise ConfigError(f"resume: {run_dir} has no {CHECKPOINT} to continue from (a run writes one with "
                          f"run.checkpoint_every=K, and when interrupted)")
    new = {}
    for change in changes:
        key, eq, value = change.partition("=")
        if not eq or key not in allowed:
            hint = catalog.suggest(key, allowed) if eq else ""
            raise ConfigError(f"resume: {change}: only {', '.join(allowed)} may change on resume{hint}")
        new[key] = value
    argv = []
    for group in catalog.GROUPS[:-1]:                   # the backend: stacked, or mpi under mpirun
        node = cfg[group]
        argv.append(f"{group}={node['name']}")
        for key, value in node.items():
            if isinstance(value, dict) and "name" in value:          # compressor.inner
                argv.append(f"{group}/{key}={value['name']}")
                argv += [f"{group}.{key}.{k}={_literal(v)}" for k, v in value.items() if k != "name"]
            elif key != "name":
                argv.append(f"{group}.{key}={_literal(value)}")
    argv += [f"run.{k}={_literal(v)}" for k, v in cfg["run"].items() if f"run.{k}" not in new and k != "resume"]
    return argv + [f"{k}={v}" for k, v in new.items()] + ["run.resume=true", f"hydra.run.dir={_literal(str(path))}"]


def resume_main(argv: list[str]) -> int:
    """Entry for ``decopt resume RUN_DIR [key=value ...]``."""
    if not argv or argv[0] in ("-h", "--help"):
        from .checkpoint import RESUMABLE

        print(RESUME_USAGE.format(keys=", ".join(k for k in RESUMABLE if k not in ("run.resume", "backend.name"))),
              end="")
        return 0 if argv else exit_codes.BAD_INPUT
    try:
        args = resume_argv(argv[0], argv[1:])
    except ConfigError as exc:
        return _error(exc)
    return main(args)


register_stamp()   # at import: the jobs of hydra/launcher=slurm|local_parallel resolve the run directories
