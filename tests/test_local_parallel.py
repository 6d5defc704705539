"""``hydra/launcher=local_parallel``: a sweep's points run side by side in processes of their own
(joblib), and land in the sweep directory as with the basic launcher, where ``decopt plot`` reads them."""
import json
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="hydra-joblib-launcher (.[slurm]) missing")


def test_points_run_in_parallel_processes(tmp_path, capsys):
    from decopt.plotting import main as plot_main

    driver = subprocess.Popen([sys.executable, "-m", "decopt", "run", "-m", "hydra/launcher=local_parallel",
                               "hydra.launcher.n_jobs=2", "run.iterations=40", "run.eval_every=10", "run.seed=0,1",
                               f"hydra.sweep.dir={tmp_path}"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr[-2000:]
    assert f"decopt: sweep {tmp_path}: 2 points, exit code 0" in stdout
    points = sorted(p.parent for p in tmp_path.glob("*/summary.json"))
    summaries = [json.loads((p / "summary.json").read_text()) for p in points]
    assert [(s["status"], s["iterations"]) for s in summaries] == [("completed", 40)] * 2
    pids = {int((p / "run.lock").read_text()) for p in points}        # each run's process holds its lock
    assert len(pids) == 2 and driver.pid not in pids
    assert plot_main([str(tmp_path), "--out", str(tmp_path / "plots")]) == 0      # decopt plot reads the sweep
    assert any(line.endswith(".png") for line in capsys.readouterr().out.splitlines())
    assert "| algo=dsgd | 2 | completed |" in (tmp_path / "plots" / "table.md").read_text()
