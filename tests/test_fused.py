"""Fused multi-step path (``Algorithm.fused_steps``, DSGD-GD on gaussian_mean and strategic_spam)
and seeds as replicas.

The NumPy fused path is the per-step trajectory to rounding (metrics to 1e-12 relative) with exactly
the same bits, samples and per-arc ledger; the torch one (float32, other problems) is it bit for bit; a resumed fused run is the uninterrupted one bit for bit;
configurations it does not cover still step. Replica r of a ``problem.replicas=R`` run is the
single run with seed ``run.seed + r``.
"""
import csv

import numpy as np
import pytest
import torch

import decopt
from decopt.algorithms.dsgd_gd import DSGDGD
from decopt.cli import compose
from decopt.config import validate
from decopt.runner import FUSED_CHUNK, build

from conftest import SHARED_DATA

GM = ["algo=dsgd_gd", "problem=gaussian_mean", "graph=ring", "graph.n=25", "run.dtype=float64",
      "run.eval_grid=geometric"]
SPAM = ["algo=dsgd_gd", "problem=strategic_spam", f"problem.data_dir={SHARED_DATA / 'spambase'}", "graph=ring",
        "graph.n=25", "run.dtype=float64", "run.eval_grid=geometric"]
EXACT = ("iteration", "bits", "samples")
needs_spambase = pytest.mark.skipif(not (SHARED_DATA / "spambase" / "spambase.data").exists(),
                                    reason="no Spambase copy")


def csv_rows(path, name="metrics.csv"):
    with open(path / name) as fh:
        return list(csv.DictReader(fh))


def fused_path(*overrides, job=GM):
    *_, algo = build(validate(compose([*job, *overrides])))
    return algo.fused_steps()


def assert_same_rows(got, ref, rel):
    assert [r["iteration"] for r in got] == [r["iteration"] for r in ref]
    for a, b in zip(got, ref):
        assert a.keys() == b.keys()
        for k in b:
            if k in EXACT:
                assert a[k] == b[k], (k, a["iteration"])
            elif k != "wall_time":
                assert float(a[k]) == pytest.approx(float(b[k]), rel=rel, abs=1e-300), (k, a["iteration"])


@pytest.mark.parametrize("job,extra,iterations", [
    (GM, [], 2 * FUSED_CHUNK + 1500),
    (GM, ["problem.batch_size=3", "problem.replicas=3", "problem.dim=2", "run.link_latency=0.001"],
     2 * FUSED_CHUNK + 1500),
    (GM, ["problem.batch_size=null", "problem.eps_mean=1.05"], 2 * FUSED_CHUNK + 1500),   # exact gradient; diverges
    (GM, ["algo.schedule=constant", "algo.lr=0.05"], FUSED_CHUNK + 1500),                 # gamma_t = lr
    pytest.param(SPAM, [], 2 * FUSED_CHUNK + 1500, marks=needs_spambase),
    pytest.param(SPAM, ["problem.batch_size=3", "problem.replicas=2", "problem.bias=true", "problem.eps_mean=1"],
                 FUSED_CHUNK + 1500, marks=needs_spambase),
    pytest.param(SPAM, ["problem.batch_size=null", "problem.eps_mean=0.5"], 1500, marks=needs_spambase),
], ids=["gm-paper", "gm-batch-replicas-latency", "gm-exact-grad-diverging", "gm-constant-lr", "spam-paper",
        "spam-batch-replicas-bias", "spam-full-batch"])
def test_fused_path_is_the_per_step_trajectory(tmp_path, monkeypatch, job, extra, iterations):
    over = [*job, *extra, f"run.iterations={iterations}", "run.checkpoint_every=3000"]
    assert fused_path(*extra, job=job) is not None
    fused = decopt.run(*over, run_dir=tmp_path / "fused")
    monkeypatch.setattr(DSGDGD, "fused_steps", lambda self: None)
    step = decopt.run(*over, run_dir=tmp_path / "step")
    assert fused.summary["status"] == step.summary["status"]
    assert fused.summary["iterations"] == step.summary["iterations"]
    got, ref = csv_rows(tmp_path / "fused"), csv_rows(tmp_path / "step")
    assert len(ref) > 40                                            # the geometric grid, ~20 rows per decade
    assert_same_rows(got, ref, rel=1e-12)
    assert csv_rows(tmp_path / "fused", "traffic.csv") == csv_rows(tmp_path / "step", "traffic.csv")
    np.testing.assert_allclose(fused.state["x"], step.state["x"], rtol=1e-12)


@pytest.mark.parametrize("job", [GM, pytest.param(SPAM, marks=needs_spambase)], ids=["gm", "spam"])
def test_resumed_fused_run_equals_the_uninterrupted_one(tmp_path, job):
    over = [*job, "problem.batch_size=2", "run.checkpoint_every=1000"]
    full = decopt.run(*over, "run.iterations=12000", run_dir=tmp_path / "full")
    part = tmp_path / "part"
    decopt.run(*over, "run.iterations=3163", run_dir=part)          # ends between checkpoints: resumes at 3000
    resumed = decopt.run(*over, "run.iterations=12000", "run.resume=true", run_dir=part)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]
    assert strip(csv_rows(part)) == strip(csv_rows(tmp_path / "full"))
    assert csv_rows(part, "traffic.csv") == csv_rows(tmp_path / "full", "traffic.csv")
    assert torch.equal(resumed.state["x"], full.state["x"])


SUMMED = ("loss", "grad_norm_sq", "consensus_error", "ps_error", "risk")


@pytest.mark.parametrize("job,extra,metrics", [
    (GM, ["problem.dim=2"], SUMMED),
    pytest.param(SPAM, [], (*SUMMED, "accuracy"), marks=needs_spambase),
], ids=["gm", "spam"])
def test_replica_r_is_the_single_run_with_seed_plus_r(job, extra, metrics):
    shared = [*job, *extra, "problem.batch_size=2", "run.iterations=3000"]
    batch = decopt.run(*shared, "problem.replicas=3", "run.seed=5", run_dir=False).metrics
    singles = [decopt.run(*shared, f"run.seed={5 + r}", run_dir=False).metrics for r in range(3)]
    for r, single in enumerate(singles):
        assert batch["iteration"] == single["iteration"]
        for key in metrics:
            np.testing.assert_allclose(batch[f"{key}_r{r}"], single[key], rtol=1e-10, err_msg=f"{key} replica {r}")
    # the unsuffixed columns are the whole (replicas x dim)-dimensional problem: sums over replicas
    for key in SUMMED:
        np.testing.assert_allclose(batch[key], np.sum([s[key] for s in singles], axis=0), rtol=1e-10)
    if "accuracy" in metrics:                                       # ... but accuracy is their mean
        np.testing.assert_allclose(batch["accuracy"], np.mean([s["accuracy"] for s in singles], axis=0), rtol=1e-10)
    assert batch["bits"][-1] == 3 * singles[0]["bits"][-1]          # messages carry the 3 replicas
    assert len({s["ps_error"][-1] for s in singles}) == 3            # independent seeds differ


@pytest.mark.parametrize("extra", [
    ["run.dtype=float32"],                                          # the default dtype
    ["run.dtype=float32", "problem.batch_size=3", "problem.dim=3", "problem.replicas=2", "run.link_latency=0.001"],
    ["problem=least_squares", "problem.dim=3"],                     # no descent kernel
], ids=["float32", "float32-batch-replicas-latency", "least-squares"])
def test_torch_fused_path_is_the_per_step_trajectory_bit_for_bit(tmp_path, monkeypatch, extra):
    """Where the NumPy kernel does not apply, the fused path runs ``step``'s torch operations without
    the message round: metrics, ledger and state equal the per-step run's bit for bit."""
    over = [*GM, *extra, f"run.iterations={FUSED_CHUNK + 700}", "run.checkpoint_every=3000"]
    assert fused_path(*extra) is not None
    fused = decopt.run(*over, run_dir=tmp_path / "fused")
    monkeypatch.setattr(DSGDGD, "fused_steps", lambda self: None)
    step = decopt.run(*over, run_dir=tmp_path / "step")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]
    assert strip(csv_rows(tmp_path / "fused")) == strip(csv_rows(tmp_path / "step"))
    assert csv_rows(tmp_path / "fused", "traffic.csv") == csv_rows(tmp_path / "step", "traffic.csv")
    assert torch.equal(fused.state["x"], step.state["x"])


@pytest.mark.parametrize("extra", [
    ["graph.links=bernoulli", "graph.link_p=0.5"],                 # random links
    ["compressor=topk", "compressor.ratio=0.5"],                    # messages are not x
    ["compressor=none", "compressor.precision=32"],                 # x rounded to fp32 on the wire
], ids=["random-links", "topk", "fp32-wire"])
def test_configs_without_fused_path_step(extra):
    assert fused_path(*extra) is None
    r = decopt.run(*GM, *extra, "run.iterations=300", run_dir=False)
    assert r.summary["status"] == "completed" and r.metrics["iteration"][-1] == 300
    assert all(np.isfinite(r.metrics["consensus_error"]))
