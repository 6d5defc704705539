"""Hydra sweeps: every point is validated before the first runs; a point that fails at run time
records ``failed`` in its own directory and the sweep goes on; sub-directories never leave
``hydra.sweep.dir``; the exit code is the worst of the points' (decopt.exit_codes)."""
import json
import os
import shutil

import pytest

from decopt import exit_codes

from conftest import SHARED_DATA, run_cli

SPAMBASE = SHARED_DATA / "spambase"
needs_spambase = pytest.mark.skipif(not (SPAMBASE / "spambase.data").is_file(),
                                    reason=f"no Spambase copy in {SPAMBASE} (set DECOPT_DATA to a data root)")
SPAM = ["problem=strategic_spam", "algo=dsgd_gd", "graph.n=4", "problem.batch_size=2", "run.iterations=20",
        "run.eval_every=10", "run.progress=none"]


def summaries(sweep):
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.rglob("summary.json")}


def test_sweep_with_a_diverging_point(tmp_path):
    proc = run_cli("run", "-m", "algo.lr=50,0.05", "run.iterations=3000", "run.eval_every=100",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == exit_codes.DIVERGED, proc.stderr
    by_lr = {name.split("algo.lr=")[1].split(",")[0]: s for name, s in summaries(tmp_path).items()}
    assert len(by_lr) == 2
    assert by_lr["50"]["status"] == "diverged" and by_lr["50"]["iterations"] < 3000
    assert by_lr["0.05"]["status"] == "completed" and by_lr["0.05"]["iterations"] == 3000
    assert proc.stdout.count(f"decopt: sweep {tmp_path}") == 2            # at the start and at the end


def test_sweep_with_a_bad_point_runs_nothing(tmp_path):
    proc = run_cli("run", "-m", "algo.lr=0.05,-1,0.1", "run.iterations=100", f"hydra.sweep.dir={tmp_path / 's'}")
    assert proc.returncode == exit_codes.BAD_INPUT
    assert proc.stderr.strip().splitlines() == ["decopt: error: sweep point [algo.lr=-1 run.iterations=100]: "
                                                "algo.lr=-1.0: must be > 0"], proc.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def bad_spambase(tmp_path):
    """A Spambase directory whose file exists (validation passes) but is not Spambase (loading fails)."""
    bad = tmp_path / "bad_spambase"
    bad.mkdir()
    (bad / "spambase.data").write_text("1,2,3\n")
    return bad


@needs_spambase
def test_a_point_failing_at_run_time_is_recorded_and_the_sweep_goes_on(tmp_path):
    """The second point's data file is malformed: found when it is built (after validation)."""
    missing = bad_spambase(tmp_path)
    proc = run_cli("run", "-m", f"problem.data_dir={SPAMBASE},{missing},{SPAMBASE}", *SPAM,
                   f"hydra.sweep.dir={tmp_path / 's'}")
    assert proc.returncode == exit_codes.BAD_INPUT, proc.stderr[-3000:]
    assert proc.stderr.count("decopt: error:") == 1 and str(missing) in proc.stderr, proc.stderr
    by_num = {name.split("_", 1)[0]: s for name, s in summaries(tmp_path / "s").items()}
    assert sorted(by_num) == ["0", "1", "2"]
    assert by_num["1"]["status"] == "failed" and str(missing) in by_num["1"]["error"]
    assert by_num["0"]["status"] == by_num["2"]["status"] == "completed"


@needs_spambase
def test_a_dotdot_value_cannot_write_outside_the_sweep_dir(tmp_path):
    """``problem.data_dir=../../../data/spambase`` is a valid directory (from cwd), and its ``..``
    went into the sub-directory name: three levels up from the sweep directory."""
    data = tmp_path / "data" / "spambase"
    shutil.copytree(SPAMBASE, data)
    cwd = tmp_path / "c1" / "c2" / "c3"
    cwd.mkdir(parents=True)
    sweep = tmp_path / "sweep"
    before = set(tmp_path.rglob("*"))
    value = os.path.relpath(data, cwd)
    assert value.startswith("../../../")
    proc = run_cli("run", "-m", f"problem.data_dir={value}", "run.seed=1,2", *SPAM, f"hydra.sweep.dir={sweep}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = set(tmp_path.rglob("*")) - before
    outside = sorted(str(p) for p in new if sweep not in p.parents and p != sweep)
    assert outside == [], outside
    assert len(summaries(sweep)) == 2
    assert all(p.parent.parent == sweep for p in sweep.rglob("summary.json"))   # one component per point


def test_subdir_override_with_dotdot_is_refused(tmp_path):
    proc = run_cli("run", "-m", "run.seed=1,2", "run.iterations=10", f"hydra.sweep.dir={tmp_path / 's'}",
                   "hydra.sweep.subdir=../escape${hydra.job.num}")
    assert proc.returncode == exit_codes.BAD_INPUT
    assert len(proc.stderr.strip().splitlines()) == 1 and "hydra.sweep.subdir" in proc.stderr, proc.stderr
    assert not (tmp_path / "escape0").exists()


def test_a_data_error_after_validation_exits_2_with_one_line(tmp_path):
    """A single run whose data file is malformed: validation passes, building fails."""
    missing = bad_spambase(tmp_path)
    proc = run_cli("run", *SPAM, f"problem.data_dir={missing}", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == exit_codes.BAD_INPUT
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("decopt: error: ") and str(missing) in lines[0], proc.stderr
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["status"] == "failed" and str(missing) in s["error"]
