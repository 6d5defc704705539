"""Learning problems and real data (issue 10): batched gradients vs per-agent autograd, the
partitions, a real MNIST run, and clear errors when data is missing."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from decopt.comm.stacked import StackedNetwork
from decopt.errors import ConfigError
from decopt.graphs import Links
from decopt.graphs.topologies import ring
from decopt.problems import REGISTRY
from decopt.problems import datasets
from decopt.problems.partition import label_histograms, partition
from decopt.rng import Key, Stream, integers

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST, SPAMBASE, LEAF = DATA / "mnist", DATA / "spambase", DATA / "leaf_synthetic"


def need(path: Path):
    return pytest.mark.skipif(not path.is_dir(), reason=f"shared data folder {path} not found")


def net_of(n: int, dtype=torch.float64):
    g = ring(n)
    return StackedNetwork(g, Links(g), dtype=dtype)


def build(name: str, n: int, dtype=torch.float64, seed: int = 0, **kw):
    schema, cls = REGISTRY[name]
    cfg = schema(name=name, **kw)
    cfg.check()
    return cls(cfg, net_of(n, dtype), seed)


def femnist_dir(tmp: Path, shards=3, per_user=(5, 7), test=True) -> Path:
    """A tiny FEMNIST in LEAF's json layout: train/ with `shards` files of two writers each, test/."""
    rng = np.random.default_rng(0)

    def shard(path, k):
        users = [f"f{k}_{j}" for j in range(2)]
        ud = {u: {"x": rng.random((m, 784)).round(4).tolist(), "y": rng.integers(0, 62, m).tolist()}
              for u, m in zip(users, per_user)}
        path.write_text(json.dumps({"users": users, "num_samples": list(per_user), "user_data": ud}))

    (tmp / "train").mkdir(parents=True)
    for k in range(shards):
        shard(tmp / "train" / f"all_data_{k}_niid_0_keep_0_train_9.json", k)
    if test:
        (tmp / "test").mkdir()
        shard(tmp / "test" / "all_data_0_niid_0_keep_0_test_9.json", 0)
    return tmp


# ---------------------------------------------------------------- per-agent autograd references
def ref_mlp(p, h):
    return torch.nn.Sequential(torch.nn.Linear(p, h), torch.nn.Sigmoid(), torch.nn.Linear(h, 10)).double()


def ref_lenet():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 62)).double()


def reference(problem, name, x, A, Y):
    """Loss and gradient of one agent's objective by ordinary autograd (torch modules / formulas)."""
    x = x.detach().clone().requires_grad_(True)
    if name in ("mnist_mlp", "digits_mlp", "femnist_lenet"):
        model = ref_mlp(A.shape[1], problem.shapes[0][0]) if name != "femnist_lenet" else ref_lenet()
        torch.nn.utils.vector_to_parameters(x, model.parameters())   # PyTorch's own parameter order
        params = list(model.parameters())
        loss = F.cross_entropy(model(A), Y)
        g = torch.autograd.grad(loss, params)
        g = torch.cat([t.reshape(-1) for t in g])
        reg = problem.wd
    elif name == "leaf_synthetic":
        W = x.view(problem.num_classes, -1)
        y = 2.0 * F.one_hot(Y, problem.num_classes).double() - 1.0
        loss = torch.sigmoid(y * (A @ W.T)).sum(1).mean()
        g, = torch.autograd.grad(loss, x)
        reg = problem.wd
    else:  # spambase_logistic
        z = A @ x
        loss = (F.softplus(z) - Y.double() * z).mean()
        g, = torch.autograd.grad(loss, x)
        reg = problem.wd
    x = x.detach()
    return float(loss.detach()) + 0.5 * reg * float(x @ x), g + reg * x


CASES = {
    "mnist_mlp": (MNIST, 3, dict(data_dir=str(MNIST), train_size=300, batch_size=8, partition="sorted")),
    "digits_mlp": (None, 4, dict(batch_size=8, partition="dirichlet", alpha=0.3)),
    "leaf_synthetic": (LEAF, 25, dict(data_dir=str(LEAF), batch_size=4)),
    "leaf_generated": (None, 4, dict(source="generate", num_dim=30, batch_size=4, partition="users")),
    "spambase_logistic": (SPAMBASE, 5, dict(data_dir=str(SPAMBASE), batch_size=16)),
    "femnist_lenet": (None, 3, dict(batch_size=4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_batched_gradient_matches_per_agent_autograd(case, tmp_path):
    folder, n, kw = CASES[case]
    if folder is not None and not folder.is_dir():
        pytest.skip(reason=f"shared data folder {folder} not found")
    name = "leaf_synthetic" if case == "leaf_generated" else case
    if name == "femnist_lenet":
        kw = dict(kw, data_dir=str(femnist_dir(tmp_path)))
    prob = build(name, n, **kw)
    assert sum(prob.segments) == prob.d
    X = prob.x0()
    X = X + 0.05 * torch.randn(X.shape, generator=torch.Generator().manual_seed(1), dtype=X.dtype)
    t = 7
    G = prob.grad(X, t)
    assert G.shape == (n, prob.d)
    X2 = X.flip(0)                   # two points on one minibatch draw (DoCoM's STORM): each as grad
    G1, G2 = prob.grads((X, X2), t)
    assert torch.equal(G1, G) and torch.equal(G2, prob.grad(X2, t))
    pos = integers(Key(0, Stream.BATCH, t), range(n), kw["batch_size"], prob.sizes)   # the keyed draw
    losses, Gfull = prob.loss_grad(X)
    for i in range(n):
        rows = torch.as_tensor(prob.parts[i][pos[i]])
        _, g_ref = reference(prob, name, X[i], prob.train_x[rows], prob.train_y[rows])
        assert torch.allclose(G[i], g_ref, rtol=0, atol=1e-10), (case, i, float((G[i] - g_ref).abs().max()))
        if i < 3:  # full local objective, too
            rows = torch.as_tensor(prob.parts[i])
            l_ref, g_ref = reference(prob, name, X[i], prob.train_x[rows], prob.train_y[rows])
            assert abs(float(losses[i]) - l_ref) < 1e-10
            assert torch.allclose(Gfull[i], g_ref, rtol=0, atol=1e-10)


def test_dimensions_match_the_papers(tmp_path):
    assert build("digits_mlp", 2).d == 64 * 100 + 100 + 100 * 10 + 10
    assert build("femnist_lenet", 3, data_dir=str(femnist_dir(tmp_path))).d == 66_126
    if MNIST.is_dir():
        p = build("mnist_mlp", 2, data_dir=str(MNIST), train_size=100)
        assert p.d == 79_510 and p.segments == [78_400, 100, 1000, 10]
    if LEAF.is_dir():
        p = build("leaf_synthetic", 25, data_dir=str(LEAF))
        assert p.d == 5005
        assert list(p.sizes_all) == [91, 14, 470, 51, 79, 6, 5, 4, 3, 6, 25, 9, 19, 403, 84, 51, 38, 24,
                                     5, 4, 4, 10, 4, 31, 3]


# ---------------------------------------------------------------- partitions
@need(MNIST)
def test_sorted_partition_gives_each_agent_one_mnist_class():
    _, y, _, _ = datasets.load_mnist(MNIST)
    parts = partition("sorted", y, 10, seed=0)
    hist = label_histograms(parts, y, 10)
    frac = hist / hist.sum(1, keepdims=True)
    assert [len(p) for p in parts] == [6000] * 10
    assert np.array_equal(frac.argmax(1), np.arange(10))          # agent k mostly sees digit k
    assert frac.max(1).min() > 0.85                                  # >= 87% of its samples
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(y)))


def test_dirichlet_skew_depends_on_alpha():
    y = np.repeat(np.arange(10), 600)
    glob = np.full(10, 0.1)
    skewed = label_histograms(partition("dirichlet", y, 10, seed=3, alpha=0.05), y, 10)
    flat = label_histograms(partition("dirichlet", y, 10, seed=3, alpha=1000.0), y, 10)
    fs, ff = skewed / skewed.sum(1, keepdims=True), flat / flat.sum(1, keepdims=True)
    assert fs.max(1).mean() > 0.5                                  # mostly one or two classes
    assert np.abs(ff - glob).max() < 0.05                          # nearly uniform
    for kind in ("iid", "dirichlet"):                              # deterministic in the seed, disjoint cover
        a, b = partition(kind, y, 7, seed=5, alpha=0.5), partition(kind, y, 7, seed=5, alpha=0.5)
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
        assert np.array_equal(np.sort(np.concatenate(a)), np.arange(len(y)))


# ---------------------------------------------------------------- the pipeline is real
@need(MNIST)
def test_short_mnist_run_reaches_85_percent(tmp_path):
    from decopt.api import run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # one thread: robust to a shared, oversubscribed test machine
    try:
        start = time.perf_counter()
        res = run("algo=dsgd", "problem=mnist_mlp", f"problem.data_dir={MNIST}", "graph=ring", "graph.n=10",
                  "algo.lr=0.2", "run.iterations=150", "run.eval_every=75", "run.progress=none",
                  run_dir=str(tmp_path / "mn"))
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    assert elapsed < 60, elapsed
    final = res.summary["final"]
    assert res.summary["status"] == "completed"
    assert final["accuracy"] > 0.85, final
    assert {"loss", "grad_norm_sq", "train_accuracy"} <= set(final)


def test_digits_runs_without_any_data_directory(tmp_path, monkeypatch):
    from decopt.api import run

    monkeypatch.delenv("DECOPT_DATA", raising=False)
    res = run("algo=dsgd", "problem=digits_mlp", "graph=ring", "graph.n=4", "run.iterations=100",
              "run.eval_every=50", "run.progress=none", run_dir=str(tmp_path / "dg"))
    final = res.summary["final"]
    assert final["accuracy"] > 0.5 and final["worst_agent_accuracy"] <= final["accuracy"] + 0.1


@need(LEAF)
def test_leaf_synthetic_metrics_and_conventions():
    p = build("leaf_synthetic", 25, data_dir=str(LEAF), dtype=torch.float64)
    X = p.x0()
    assert float(X.abs().max()) <= (1 / 1001) ** 0.5
    W = torch.zeros(p.d, dtype=torch.float64).view(5, 1001)
    W[:, -1] = torch.tensor([-5.0, 0, 0, 0, 0], dtype=torch.float64)  # class 0 has the smallest score
    assert (p._predict(W.reshape(1, -1), p.test_x[None])[0] == 0).all()  # argmin convention
    m = p.agent_metrics(X)
    assert set(m) == {"worst_agent_loss", "worst_agent_grad_norm_sq", "worst_agent_accuracy"}


# ---------------------------------------------------------------- missing data
def test_missing_data_is_a_one_line_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DECOPT_DATA", raising=False)
    with pytest.raises(ConfigError, match=r"problem\.data_dir.*DECOPT_DATA"):
        REGISTRY["mnist_mlp"][0]().check()
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {"mnist_mlp": "train-images-idx3-ubyte", "spambase_logistic": "spambase.data",
             "leaf_synthetic": "leaf_synthetic_25x5x1000.npz", "femnist_lenet": "json"}
    for name, expected in cases.items():
        with pytest.raises(ConfigError) as err:
            REGISTRY[name][0](name=name, data_dir=str(empty)).check()
        msg = str(err.value)
        assert "problem.data_dir" in msg and expected in msg and "\n" not in msg, msg
    monkeypatch.setenv("DECOPT_DATA", str(tmp_path))               # a root without mnist/
    with pytest.raises(ConfigError, match=r"\$DECOPT_DATA/mnist"):
        REGISTRY["mnist_mlp"][0]().check()


def test_missing_mnist_cli_exits_2_with_one_line(cli, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DECOPT_DATA"}
    proc = cli("run", "algo=dsgd", "problem=mnist_mlp", f"problem.data_dir={tmp_path}", "graph.n=10",
               f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "problem.data_dir" in lines[0] and "train-images-idx3-ubyte" in lines[0]
    assert "Traceback" not in proc.stderr


def test_femnist_shard_count_must_match_agents(tmp_path):
    with pytest.raises(ConfigError, match="graph.n=5"):
        build("femnist_lenet", 5, data_dir=str(femnist_dir(tmp_path)))


@need(SPAMBASE)
def test_spambase_loader():
    x, y = datasets.load_spambase(SPAMBASE)
    assert x.shape == (4601, 57) and y.sum() == 1813
    assert abs(x[:, 0].mean() - 0.10455) < 1e-4


def test_digits_same_trajectory_under_mpi(tmp_path):
    """Keyed minibatches and rank-split metrics: mpirun -n 2 reproduces the stacked run."""
    import subprocess
    import sys

    from conftest import HAVE_MPIRUN, mpi_env, mpirun_cmd

    if not HAVE_MPIRUN:
        pytest.skip(reason="no mpirun/mpiexec on PATH")
    args = ["-m", "decopt", "run", "algo=dsgd", "problem=digits_mlp", "graph=ring", "graph.n=4",
            "run.iterations=20", "run.eval_every=10", "run.dtype=float64", "run.progress=none"]
    repo = Path(__file__).resolve().parents[1]
    runs = {}
    for P in (1, 2):
        run_dir = f"hydra.run.dir={tmp_path / str(P)}"
        cmd = mpirun_cmd(P, *args, run_dir) if P > 1 else [sys.executable, *args, run_dir]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=mpi_env(), cwd=repo)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[P] = json.loads((tmp_path / str(P) / "summary.json").read_text())["final"]
    for key in ("loss", "grad_norm_sq", "accuracy", "train_accuracy", "worst_agent_loss", "worst_agent_accuracy"):
        assert abs(runs[1][key] - runs[2][key]) <= 1e-10 * (1 + abs(runs[1][key])), key
