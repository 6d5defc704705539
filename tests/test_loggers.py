"""run.loggers: TensorBoard, MLflow and W&B, read back with the libraries' own readers."""
from __future__ import annotations

import csv
import importlib.util
import json
import struct
import subprocess
import sys

import pytest

import decopt
from decopt import loggers
from decopt.cli import compose
from decopt.config import validate
from decopt.errors import ConfigError

INSTALLED = [name for name, module in loggers.PACKAGES.items() if importlib.util.find_spec(module)]


def need(name: str):
    if name not in INSTALLED:
        pytest.skip(reason=f"{loggers.PACKAGES[name]} is not installed (pip install decopt-lab[{name}])")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One short run logging to every installed tracker; its directory and metrics.csv rows."""
    if not INSTALLED:
        pytest.skip(reason="no tracker installed (pip install decopt-lab[all])")
    out = tmp_path_factory.mktemp("tracked") / "run"
    decopt.run("run.iterations=60", "run.eval_every=20", "algo.lr=0.03", f"run.loggers=[{','.join(INSTALLED)}]",
               "run.progress=none", run_dir=str(out))
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    return out, rows


def column(rows, key):
    return [int(r["iteration"]) for r in rows], [float(r[key]) for r in rows]


def test_tensorboard_reads_back_metrics_csv(run):
    need("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, rows = run
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    steps, values = column(rows, "loss")
    logged = events.Scalars("loss")
    assert [e.step for e in logged] == steps == [0, 20, 40, 60]
    assert [e.value for e in logged] == pytest.approx(values, rel=1e-6)          # TensorBoard keeps float32
    assert [e.value for e in events.Scalars("bits")] == pytest.approx(column(rows, "bits")[1])
    assert events.Scalars("summary/final/loss")[0].value == pytest.approx(values[-1], rel=1e-6)
    texts = {tag: events.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode() for tag in ("run_dir", "config")}
    assert texts["run_dir"] == str(out.resolve())
    assert "    algo.lr: 0.03" in texts["config"].splitlines()
    assert set(events.PluginTagToContent("hparams")) == {"_hparams_/experiment", "_hparams_/session_start_info",
                                                         "_hparams_/session_end_info"}


def test_mlflow_reads_back_metrics_csv(run, tmp_path):
    need("mlflow")
    from mlflow.tracking import MlflowClient

    out, rows = run
    client = MlflowClient(tracking_uri=(out / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("decopt").experiment_id])
    history = client.get_metric_history(found.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == list(zip(*column(rows, "loss")))
    assert found.data.params["algo.lr"] == "0.03" and found.data.params["run.loggers"] == json.dumps(INSTALLED)
    assert found.data.params["run_dir"] == found.data.tags["decopt.run_dir"] == str(out.resolve())
    assert found.data.metrics["summary/final/loss"] == float(rows[-1]["loss"])
    assert found.info.status == "FINISHED" and found.data.tags["decopt.status"] == "completed"
    logged = json.loads(open(client.download_artifacts(found.info.run_id, "summary.json", str(tmp_path))).read())
    written = json.loads((out / "summary.json").read_text())
    assert logged["final"] == written["final"] and logged["iterations"] == written["iterations"] == 60


def wandb_records(path):
    """The records of a W&B ``.wandb`` file (LevelDB-style log blocks), parsed with wandb's protobufs."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, part = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:                      # a block's tail too short for a header: padding
            pos += block - pos % block
            continue
        _, size, kind = struct.unpack("<IHB", data[pos:pos + 7])
        part, pos = part + data[pos + 7:pos + 7 + size], pos + 7 + size
        if kind in (1, 4):                               # a whole record, or its last fragment
            record = wandb_internal_pb2.Record()
            record.ParseFromString(part)
            yield record
            part = b""
        elif kind == 0:
            break


def key(item) -> str:
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_run_reads_back_metrics_csv(run):
    need("wandb")
    out, rows = run
    (path,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(wandb_records(path))
    history = [{key(i): json.loads(i.value_json) for i in r.history.item} for r in records if r.HasField("history")]
    assert [(h["_step"], h["loss"]) for h in history] == list(zip(*column(rows, "loss")))
    (started,) = [r.run for r in records if r.HasField("run")]
    config = {key(i): json.loads(i.value_json) for i in started.config.update}
    assert config["algo.lr"] == 0.03 and config["run_dir"] == str(out.resolve())
    summary = {key(i): json.loads(i.value_json) for r in records if r.HasField("summary") for i in r.summary.update}
    assert summary["status"] == "completed" and summary["summary.final.loss"] == float(rows[-1]["loss"])
    (exit_record,) = [r.exit for r in records if r.HasField("exit")]
    assert exit_record.exit_code == 0


def test_no_loggers_by_default(tmp_path):
    decopt.run("run.iterations=2", "run.progress=none", run_dir=str(tmp_path))
    assert validate(compose([])).run.loggers == []
    assert not {"tensorboard", "mlruns", "wandb"} & {p.name for p in tmp_path.iterdir()}


def test_missing_package_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError) as err:
        validate(compose(["run.loggers=[mlflow]"]))
    assert str(err.value) == "run.loggers=[mlflow]: mlflow is not installed; pip install decopt-lab[mlflow]"


def test_unknown_and_repeated_loggers():
    with pytest.raises(ConfigError, match=r"unknown logger 'tensorbord'; choose any of tensorboard, mlflow, wandb"):
        validate(compose(["run.loggers=[tensorbord]"]))
    if INSTALLED:
        with pytest.raises(ConfigError, match="named twice"):
            validate(compose([f"run.loggers=[{INSTALLED[0]},{INSTALLED[0]}]"]))


def test_bad_logger_from_the_cli_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "decopt", "run", "run.loggers=[tensorbord]",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "decopt: error: run.loggers=[tensorbord]: unknown logger 'tensorbord'; choose any of tensorboard, mlflow, wandb"]
    assert not (tmp_path / "metrics.csv").exists()


def test_loggers_need_a_run_directory():
    if not INSTALLED:
        pytest.skip(reason="no tracker installed (pip install decopt-lab[all])")
    assert decopt.run("run.iterations=2", "run.progress=none", run_dir=False).run_dir is None
    with pytest.raises(ConfigError, match="write into the run directory"):
        decopt.run("run.iterations=2", "run.progress=none", f"run.loggers=[{INSTALLED[0]}]", run_dir=False)


@pytest.mark.mpi
def test_root_rank_alone_logs_under_mpirun(tmp_path):
    from conftest import HAVE_MPIRUN, mpi_env, mpirun_cmd

    need("tensorboard")
    if not (HAVE_MPIRUN and importlib.util.find_spec("mpi4py")):
        pytest.skip(reason="mpi4py or mpirun is missing (pip install decopt-lab[mpi])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    proc = subprocess.run(mpirun_cmd(2, "-m", "decopt", "run", "graph.n=4", "run.iterations=20", "run.eval_every=10",
                                     "run.loggers=[tensorboard]", "run.progress=none", f"hydra.run.dir={out}"),
                          capture_output=True, text=True, cwd=tmp_path, env=mpi_env(), timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (events_file,) = (out / "tensorboard").iterdir()                 # one writer: rank 0's
    events = EventAccumulator(str(events_file))
    events.Reload()
    with open(out / "metrics.csv") as fh:
        steps, values = column(list(csv.DictReader(fh)), "loss")
    logged = events.Scalars("loss")
    assert [e.step for e in logged] == steps == [0, 10, 20]
    assert [e.value for e in logged] == pytest.approx(values, rel=1e-6)


def test_tensorboard_after_resume_equals_metrics_csv(tmp_path):
    """A resume from iteration 40 of a run that got to 60: TensorBoard hides the first session's 50
    and 60 and shows the resumed ones, as metrics.csv keeps them."""
    need("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ("run.eval_every=10", "run.checkpoint_every=40", "run.loggers=[tensorboard]", "run.progress=none")
    decopt.run("run.iterations=60", *args, run_dir=str(tmp_path))
    decopt.run("run.iterations=80", "run.resume=true", *args, run_dir=str(tmp_path))
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    with open(tmp_path / "metrics.csv") as fh:
        steps, values = column(list(csv.DictReader(fh)), "wall_time")
    logged = events.Scalars("wall_time")
    assert [e.step for e in logged] == steps == list(range(0, 90, 10))
    assert [e.value for e in logged] == pytest.approx(values, rel=1e-6)       # the resumed session's rows


def test_a_logger_without_brackets_gets_the_list_spelling():
    from decopt.cli import compose
    from decopt.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        compose(["run.loggers=tensorboard"])
    assert str(err.value) == "run.loggers=tensorboard: takes a list; write run.loggers=[tensorboard]"
