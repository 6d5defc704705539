"""SIGINT/SIGTERM stop a run after the current iteration with a checkpoint, status interrupted and
exit code 130 (decopt.exit_codes.INTERRUPTED)."""
import json
import signal
import subprocess
import sys

import pytest

from decopt import exit_codes

from conftest import REPO, signal_after_rows


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_checkpoint_and_summary(tmp_path, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "decopt", "run", "run.iterations=100000000", "run.eval_every=100",
                             "run.dtype=float64", f"hydra.run.dir={out}"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    signal_after_rows(proc, out, sig)
    assert proc.returncode == exit_codes.INTERRUPTED == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    done = summary["iterations"]
    assert 0 < done < 100000000
    assert (out / "checkpoint.safetensors").exists()

    # resuming continues from the checkpoint, not from scratch
    more = subprocess.run([sys.executable, "-m", "decopt", "run", f"run.iterations={done + 50}", "run.eval_every=100",
                           "run.dtype=float64", "run.resume=true", f"hydra.run.dir={out}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert more.returncode == 0, more.stderr
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["iterations"] == done + 50
