"""A run directory that cannot be corrupted: one run at a time (a lock), whole metrics lines,
a torn line cut on resume, no stale checkpoint, no symlink followed, rows streamed to disk."""
import csv
import errno
import fcntl
import math
import os

import pytest

import decopt
from decopt import runner
from decopt.errors import ConfigError

BASE = ["graph.n=4", "problem.dim=4", "problem.samples=8", "run.dtype=float64", "algo=dsgd",
        "compressor=qsgd", "problem.batch_size=4", "run.progress=none"]


def lines(path):
    return (path / "metrics.csv").read_text().splitlines()


def iterations(path):
    return [int(r["iteration"]) for r in csv.DictReader(lines(path))]


def same_rows(a, b):
    strip = lambda p: [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(lines(p))]
    return strip(a) == strip(b)


def test_second_run_on_the_same_directory_fails_at_once(tmp_path):
    decopt.run(*BASE, "run.iterations=10", run_dir=tmp_path)          # creates run.lock
    before = lines(tmp_path)
    with open(tmp_path / "run.lock", "a") as held:                     # another run holds the directory
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError) as err:
            decopt.run(*BASE, "run.iterations=20", run_dir=tmp_path)
    assert "\n" not in str(err.value) and "in use by another run" in str(err.value) and str(tmp_path) in str(err.value)
    assert lines(tmp_path) == before
    decopt.run(*BASE, "run.iterations=20", run_dir=tmp_path)          # free again: runs


def test_torn_write_leaves_no_merged_row(tmp_path, monkeypatch):
    """A full disk mid-row: half a line, then OSError. Resuming cuts the torn line: every row
    parses, no iteration repeats, and the rows are the uninterrupted run's."""
    over = [*BASE, "run.eval_every=1", "run.checkpoint_every=10"]
    decopt.run(*over, "run.iterations=40", run_dir=tmp_path / "full")
    real_write, rows_written = os.write, []

    def full_disk(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("metrics.csv"):
            rows_written.append(data)
            if len(rows_written) == 26:
                real_write(fd, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    part = tmp_path / "part"
    with pytest.raises(OSError, match="No space"):
        decopt.run(*over, "run.iterations=40", run_dir=part)
    monkeypatch.setattr(os, "write", real_write)
    assert not (part / "metrics.csv").read_text().endswith("\n")      # the torn line is there
    decopt.run(*over, "run.iterations=40", "run.resume=true", run_dir=part)
    its = iterations(part)
    assert its == list(range(41))
    assert same_rows(part, tmp_path / "full")


def test_resume_without_checkpoint_starts_over(tmp_path):
    decopt.run(*BASE, "run.iterations=20", "run.eval_every=5", run_dir=tmp_path / "r")
    decopt.run(*BASE, "run.iterations=30", "run.eval_every=5", "run.resume=true", run_dir=tmp_path / "r")
    decopt.run(*BASE, "run.iterations=30", "run.eval_every=5", run_dir=tmp_path / "fresh")
    assert iterations(tmp_path / "r") == list(range(0, 31, 5))
    assert same_rows(tmp_path / "r", tmp_path / "fresh")


def test_fresh_run_leaves_no_stale_checkpoint(tmp_path):
    decopt.run(*BASE, "run.iterations=20", "run.checkpoint_every=10", run_dir=tmp_path)
    assert (tmp_path / "checkpoint.safetensors").exists()
    (tmp_path / "checkpoint.pt").write_bytes(b"old")
    decopt.run(*BASE, "run.iterations=5", run_dir=tmp_path)           # a new run, no checkpoints
    assert not (tmp_path / "checkpoint.safetensors").exists() and not (tmp_path / "checkpoint.pt").exists()
    r = decopt.run(*BASE, "run.iterations=8", "run.eval_every=4", "run.resume=true", run_dir=tmp_path)
    assert "resumes" not in r.summary and iterations(tmp_path) == [0, 4, 8]


@pytest.mark.parametrize("name,resume", [("metrics.csv", False), ("metrics.csv", True), ("config.yaml", False),
                                         ("summary.json", True), ("run.lock", False),
                                         ("checkpoint.safetensors", True)])
def test_planted_symlink_is_not_followed(tmp_path, name, resume):
    run_dir, target = tmp_path / "run", tmp_path / "precious.txt"
    decopt.run(*BASE, "run.iterations=10", "run.checkpoint_every=5", run_dir=run_dir)
    target.write_text("keep me\n")
    (run_dir / name).unlink()
    (run_dir / name).symlink_to(target)
    with pytest.raises(ConfigError) as err:
        decopt.run(*BASE, "run.iterations=20", f"run.resume={str(resume).lower()}", run_dir=run_dir)
    assert "\n" not in str(err.value) and name in str(err.value) and "symbolic link" in str(err.value)
    assert target.read_text() == "keep me\n"


def test_nan_at_first_evaluation_is_not_final(tmp_path, monkeypatch):
    real = runner.evaluate
    calls = []

    def nan_first(*args, **kw):
        row = real(*args, **kw)
        calls.append(1)
        return {**row, "loss": math.nan} if len(calls) == 1 else row

    monkeypatch.setattr(runner, "evaluate", nan_first)
    r = decopt.run(*BASE, "run.iterations=20", run_dir=tmp_path)
    s = r.summary
    assert s["status"] == "diverged" and s["diverged_at"] == 0 and s["iterations"] == 0
    assert s["final"] == {}
    assert r.metrics == {}                                              # no row was written


def test_metrics_come_from_the_file_and_without_a_run_dir_from_memory(tmp_path):
    on_disk = decopt.run(*BASE, "run.iterations=20", "run.eval_every=5", run_dir=tmp_path)
    (tmp_path / "metrics.csv").write_text("iteration,loss\n0,1.5\n")   # proof that it is read from the file
    assert on_disk.metrics == {"iteration": [0.0], "loss": [1.5]}
    in_memory = decopt.run(*BASE, "run.iterations=20", "run.eval_every=5", run_dir=False)
    assert in_memory.metrics["iteration"] == [0, 5, 10, 15, 20]
