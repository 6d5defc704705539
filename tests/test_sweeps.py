"""A Hydra sweep runs every point; one diverging point does not stop the others."""
import json

from conftest import run_cli


def test_sweep_with_a_diverging_point(tmp_path):
    proc = run_cli("run", "-m", "algo.lr=50,0.05", "run.iterations=3000", "run.eval_every=100",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    summaries = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("*/summary.json")}
    assert len(summaries) == 2
    by_lr = {name.split("algo.lr=")[1].split(",")[0]: s for name, s in summaries.items()}
    assert by_lr["50"]["status"] == "diverged" and by_lr["50"]["iterations"] < 3000
    assert by_lr["0.05"]["status"] == "completed" and by_lr["0.05"]["iterations"] == 3000


def test_sweep_point_with_a_bad_value_fails_alone(tmp_path):
    proc = run_cli("run", "-m", "algo.lr=-1,0.05", "run.iterations=100", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1
    summaries = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("*/summary.json")}
    failed = [s for s in summaries.values() if s["status"] == "failed"]
    assert len(failed) == 1 and "algo.lr=-1.0: must be > 0" in failed[0]["error"]
    assert sum(s["status"] == "completed" for s in summaries.values()) == 1
