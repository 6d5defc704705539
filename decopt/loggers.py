"""Experiment tracking: ``run.loggers=[tensorboard, mlflow, wandb]`` (any subset; none by default).

Each tracker is an optional extra (``pip install decopt-lab[tensorboard]``, ``[mlflow]``, ``[wandb]``
or ``[all]``), runs on the root rank only, works offline and writes inside the run directory:
TensorBoard event files in ``<run dir>/tensorboard``, an MLflow file store in ``<run dir>/mlruns``
(or ``run.mlflow_uri``), a W&B offline run in ``<run dir>/wandb``. Each logs the flat config as
hyper-parameters, every metrics row (step = iteration), the summary and the run directory's path.
Every session (a fresh run or a resume) is one tracker run; TensorBoard hides the steps an
interrupted session logged after the checkpoint that a resume continues from (``purge_step``).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

from .errors import ConfigError

PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}     # logger -> module it needs
MLFLOW_EXPERIMENT = "decopt"
WANDB_PROJECT = "decopt"


def check(names: list[str]) -> None:
    """``run.loggers``: known names, each once, each package installed (found, not imported)."""
    shown = f"run.loggers=[{','.join(names)}]"
    for name in names:
        if name not in PACKAGES:
            raise ConfigError(f"{shown}: unknown logger {name!r}; choose any of {', '.join(PACKAGES)}")
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise ConfigError(f"{shown}: {PACKAGES[name]} is not installed; pip install decopt-lab[{name}]")
    if len(set(names)) != len(names):
        raise ConfigError(f"{shown}: a logger is named twice")


def start(names, run_dir, config: dict, t0: int = 0, mlflow_uri: str | None = None) -> "Trackers | None":
    """The trackers of one session (None without loggers); ``config`` is the flat ``{"group.key": value}``."""
    if not names:
        return None
    if run_dir is None:
        raise ConfigError(f"run.loggers=[{','.join(names)}]: the trackers write into the run directory; "
                          f"give one (run_dir=False writes nothing)")
    path = Path(run_dir).resolve()
    params = {**{k: _param(v) for k, v in config.items()}, "run_dir": str(path)}
    made = {"tensorboard": _TensorBoard, "mlflow": _MLflow, "wandb": _WandB}
    return Trackers([made[name](path, params, t0, mlflow_uri) for name in names])


class Trackers:
    """The open trackers: ``log(row)`` per metrics row, ``close(summary)`` once."""

    def __init__(self, trackers):
        import atexit

        self.trackers = trackers
        atexit.register(self.close, {"status": "failed"})      # a run that raised: closed at exit, flushed

    def log(self, row: dict) -> None:
        step = int(row["iteration"])
        values = {k: float(v) for k, v in row.items() if k != "iteration" and _number(v)}
        for tracker in self.trackers:
            tracker.log(step, values)

    def close(self, summary: dict) -> None:
        import atexit

        atexit.unregister(self.close)
        trackers, self.trackers = self.trackers, []
        for tracker in trackers:
            tracker.close(summary)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _param(v):
    """A hyper-parameter value every tracker takes: a number, bool or string (lists as text)."""
    return v if v is None or isinstance(v, (bool, int, float, str)) else json.dumps(v, default=str)


def _scalars(summary: dict, prefix: str = "summary") -> dict:
    """The summary's finite numbers, flat: ``summary/final/loss``, ``summary/time_per_iteration/total``."""
    out = {}
    for k, v in summary.items():
        if isinstance(v, dict) and k != "provenance":
            out.update(_scalars(v, f"{prefix}/{k}"))
        elif _number(v) and math.isfinite(v):
            out[f"{prefix}/{k}"] = float(v)
    return out


class _TensorBoard:
    def __init__(self, path: Path, params: dict, t0: int, mlflow_uri):
        from torch.utils.tensorboard import SummaryWriter

        self.params = params
        # a resume hides the steps after its checkpoint that the interrupted session logged
        self.writer = SummaryWriter(str(path / "tensorboard"), purge_step=t0 + 1 if t0 else 0)
        self.writer.add_text("run_dir", params["run_dir"], t0)
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in params.items()), t0)

    def log(self, step: int, values: dict) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def close(self, summary: dict) -> None:
        from torch.utils.tensorboard.summary import hparams

        final = _scalars(summary)
        hp = {k: ("null" if v is None else v) for k, v in self.params.items()}
        for part in hparams(hp, final):              # the HParams tab: config vs final metrics
            self.writer.file_writer.add_summary(part)
        step = int(summary.get("iterations") or 0)
        for k, v in final.items():
            self.writer.add_scalar(k, v, step)
        self.writer.add_text("summary", "    " + json.dumps(summary, indent=1, default=str).replace("\n", "\n    "),
                             step)
        self.writer.close()


class _MLflow:
    STATUS = {"completed": "FINISHED", "interrupted": "KILLED"}     # else FAILED

    def __init__(self, path: Path, params: dict, t0: int, mlflow_uri):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")     # MLflow 3 refuses ./mlruns without it
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=mlflow_uri or (path / "mlruns").as_uri())
        found = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        experiment = found.experiment_id if found else self.client.create_experiment(MLFLOW_EXPERIMENT)
        tags = {"decopt.run_dir": params["run_dir"], "decopt.start_iteration": str(t0)}
        self.run_id = self.client.create_run(experiment, run_name=path.name, tags=tags).info.run_id
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):                # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log(self, step: int, values: dict) -> None:
        from mlflow.entities import Metric

        now = _millis()
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def close(self, summary: dict) -> None:
        from mlflow.entities import Metric

        now, step = _millis(), int(summary.get("iterations") or 0)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in _scalars(summary).items()])
        self.client.set_tag(self.run_id, "decopt.status", summary.get("status", "failed"))
        self.client.log_dict(self.run_id, summary, "summary.json")
        self.client.set_terminated(self.run_id, self.STATUS.get(summary.get("status"), "FAILED"))


class _WandB:
    EXIT = {"completed": 0}     # else 1: W&B marks the run failed

    def __init__(self, path: Path, params: dict, t0: int, mlflow_uri):
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT), dir=str(path),
                              name=path.name, config=params, mode="offline", reinit="create_new",
                              settings=wandb.Settings(silent=True, console="off"))
        self.run.summary["run_dir"] = params["run_dir"]

    def log(self, step: int, values: dict) -> None:
        self.run.log(values, step=step)

    def close(self, summary: dict) -> None:
        self.run.summary.update({k.replace("/", "."): v for k, v in _scalars(summary).items()})
        self.run.summary["status"] = summary.get("status", "failed")
        self.run.finish(exit_code=self.EXIT.get(summary.get("status"), 1))


def _millis() -> int:
    import time

    return int(time.time() * 1000)
