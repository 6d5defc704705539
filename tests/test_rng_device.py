"""Keyed randomness on the tensor's device: the torch Philox (decopt.philox) draws NumPy's numbers.

The ``torch_draws`` fixture lifts the one rule that keeps CPU draws in NumPy (``rng._drawing_device``),
so the torch path runs here on the CPU; on a CUDA device it runs without it."""
import csv
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from safetensors.torch import load_file

import decopt
from decopt import philox, rng
from decopt.rng import Key, Stream

from conftest import SHARED_DATA
from test_golden import GOLDEN

sys.path.insert(0, str(GOLDEN))
from record import run_case  # noqa: E402

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ULPS = 4            # normals: torch's log1p, cos and sin are not NumPy's (each differs by <= 1 ulp)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def force_torch(monkeypatch) -> list:
    """From now on draws with a device are made by the torch Philox on it, the CPU included; returns
    the list that records them."""
    monkeypatch.setattr(rng, "_drawing_device", lambda device: None if device is None else torch.device(device))
    drawn, unit_rows = [], philox._unit_rows
    monkeypatch.setattr(philox, "_unit_rows", lambda *a: drawn.append(a[2]) or unit_rows(*a))
    return drawn


@pytest.fixture
def torch_draws(monkeypatch):
    return force_torch(monkeypatch)


keys = st.builds(Key, st.integers(0, 2 ** 64 - 1), st.sampled_from(list(Stream)), st.integers(0, 2 ** 40),
                 st.integers(0, 2 ** 40))
row_sets = st.one_of(st.builds(lambda a, n: range(a, a + n), st.integers(0, 50), st.integers(0, 20)),
                     st.lists(st.integers(0, 60), max_size=12))         # unsorted, repeated, empty


def _same(got: torch.Tensor, want: np.ndarray):
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == want.shape
    assert got.dtype == torch.from_numpy(want).dtype
    np.testing.assert_array_equal(got.cpu().numpy(), want)


def _ulps(a: np.ndarray, b: np.ndarray) -> int:
    """Largest distance in units in the last place (same-signed or zero values)."""
    return int(np.abs(a.view(np.int64) - b.view(np.int64)).max(initial=0))


@given(key=st.integers(0, 2 ** 128 - 1), block=st.integers(0, 2 ** 60), start=st.integers(0, 40),
       count=st.integers(0, 50), data=st.data())
@FAST
def test_philox_words_are_numpys(key, block, start, count, data):
    bg = np.random.Philox(key=key)
    bg.advance(block)
    stream = bg.random_raw(start + count).view(np.int64)          # words 4 block, 4 block + 1, ...
    np.testing.assert_array_equal(philox.run(key, 4 * block + start, count, "cpu").numpy(), stream[start:])
    at = data.draw(st.lists(st.integers(0, max(start + count - 1, 0)), max_size=8 if start + count else 0))
    got = philox.words(key, torch.tensor(at, dtype=torch.int64) + 4 * block)
    np.testing.assert_array_equal(got.numpy(), stream[at])


@given(key=keys, rows=row_sets, width=st.integers(0, 9), data=st.data())
@FAST
def test_uniform_integers_normal_are_numpys(torch_draws, key, rows, width, data):
    _same(rng.uniform(key, rows, width, device="cpu"), rng.uniform(key, rows, width))
    high = data.draw(st.one_of(st.integers(1, 2 ** 31), st.lists(st.integers(1, 2 ** 40), min_size=len(rows),
                                                                   max_size=len(rows)).map(np.array)))
    dtype = np.int32 if np.max(high, initial=1) <= 2 ** 31 and data.draw(st.booleans()) else np.int64
    _same(rng.integers(key, rows, width, high, dtype, device="cpu"), rng.integers(key, rows, width, high, dtype))
    z, want = rng.normal(key, rows, width, device="cpu").numpy(), rng.normal(key, rows, width)
    assert z.shape == want.shape and _ulps(z, want) <= ULPS


@given(key=keys, data=st.data())
@FAST
def test_iteration_major_layouts_are_numpys(torch_draws, key, data):
    total, width = data.draw(st.integers(1, 12)), data.draw(st.integers(0, 7))
    a, n = data.draw(st.integers(0, 1000)), data.draw(st.integers(0, 5))
    steps = range(a, a + n)
    rows = data.draw(st.one_of(st.just(range(total)),
                               st.builds(lambda a, n: range(a, min(a + n, total)), st.integers(0, total - 1),
                                         st.integers(0, total)),
                               st.lists(st.integers(0, total - 1), max_size=8)))
    _same(rng.uniform_steps(key, steps, rows, width, total, device="cpu"),
          rng.uniform_steps(key, steps, rows, width, total))
    _same(rng.integers_steps(key, steps, rows, width, total, 7, device="cpu"),
          rng.integers_steps(key, steps, rows, width, total, 7))
    z, want = rng.normal_steps(key, steps, rows, width, total, device="cpu").numpy(), \
        rng.normal_steps(key, steps, rows, width, total)
    assert z.shape == want.shape and _ulps(z, want) <= ULPS


@given(key=keys, rows=row_sets, high=st.integers(1, 3000), data=st.data())
@FAST
def test_sample_is_numpys(torch_draws, key, rows, high, data):
    k = data.draw(st.integers(1, high))
    _same(rng.sample(key, rows, high, k, device="cpu"), rng.sample(key, rows, high, k))


@pytest.mark.parametrize("high,k", [(1000, 30), (200, 40), (50, 10)])
def test_sample_extension_blocks_are_numpys(torch_draws, monkeypatch, high, k):
    """Candidate blocks of length k: most rows need further keyed blocks."""
    monkeypatch.setattr(rng, "_sequence_length", lambda high, k: k)
    key = Key(5, Stream.COMPRESS, 2, 1)
    _same(rng.sample(key, [4, 1, 9, 1, 30], high, k, device="cpu"), rng.sample(key, [4, 1, 9, 1, 30], high, k))


def test_cpu_draws_stay_in_numpy_unless_asked():
    """The rule: NumPy arrays without a device, zero-copy tensors on the CPU, torch on another device."""
    key = Key(1, Stream.BATCH, 3)
    assert isinstance(rng.uniform(key, range(3), 4), np.ndarray)
    _same(rng.normal(key, range(3), 5, device="cpu"), rng.normal(key, range(3), 5))
    u = rng.uniform(key, range(50), 40)                     # a CPU tensor's normals are NumPy's too
    _same(rng.box_muller(torch.from_numpy(u), 39), rng.box_muller(u, 39))
    assert rng._drawing_device("cpu") is None and rng._drawing_device("cuda:1") == torch.device("cuda:1")


# golden cases whose per-iteration draws cover every site: qsgd dithering, Bernoulli links and
# minibatches (dsgd), rand-k subsets (beer), channel noise (ticopd_inverse), shared and per-arc
# masks and one-edge links (fspda, fspda_storm), wake-up draws (fspda_async)
EXACT = ["dsgd", "beer", "ticopd_inverse", "fspda", "fspda_storm", "fspda_async"]


@pytest.mark.parametrize("name", EXACT)
def test_torch_draws_give_the_golden_trajectory(torch_draws, tmp_path, name):
    rows, state = run_case(name, tmp_path / "run")
    assert len(torch_draws) >= 40                   # one or more per iteration, by the torch Philox
    with open(GOLDEN / f"{name}.csv") as fh:
        assert rows == list(csv.DictReader(fh))
    for k, v in load_file(str(GOLDEN / f"{name}.safetensors")).items():
        assert torch.equal(state[k], v), k


def test_torch_normals_give_the_golden_trajectory_to_rounding(torch_draws, tmp_path):
    """gaussian_mean's noise is Box-Muller: torch's log1p/cos/sin move a draw by an ulp or two,
    so the trajectory agrees to rounding, not bit for bit."""
    rows, state = run_case("dsgd_gd_perf", tmp_path / "run")
    assert torch_draws
    with open(GOLDEN / "dsgd_gd_perf.csv") as fh:
        want = list(csv.DictReader(fh))
    assert [r.keys() for r in rows] == [w.keys() for w in want]
    for r, w in zip(rows, want):
        np.testing.assert_allclose([float(v) for v in r.values()], [float(v) for v in w.values()], rtol=1e-12)
    for k, v in load_file(str(GOLDEN / "dsgd_gd_perf.safetensors")).items():
        torch.testing.assert_close(state[k], v, rtol=1e-12, atol=1e-14)


SPAMBASE = SHARED_DATA / "spambase"
DATA_JOBS = {   # per-agent minibatch bounds (a Dirichlet partition), the iteration-major block draws
    "spambase_logistic": ["problem=spambase_logistic", "problem.partition=dirichlet", "problem.batch_size=8"],
    "strategic_spam": ["algo=dsgd_gd", "problem=strategic_spam", "problem.batch_size=4"],
}


@pytest.mark.skipif(not (SPAMBASE / "spambase.data").exists(), reason="no Spambase copy")
@pytest.mark.parametrize("name", sorted(DATA_JOBS))
def test_torch_draws_give_the_numpy_trajectory_on_data(monkeypatch, tmp_path, name):
    job = [*DATA_JOBS[name], f"problem.data_dir={SPAMBASE}", "graph.n=6", "run.dtype=float64", "run.iterations=30",
           "run.eval_every=10", "run.seed=5"]
    runs, drawn = [], []
    for forced in (False, True):
        if forced:
            drawn = force_torch(monkeypatch)
        result = decopt.run(*job, run_dir=tmp_path / str(forced))
        with open(tmp_path / str(forced) / "metrics.csv") as fh:
            runs.append(([{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(fh)], result.state))
    (want_rows, want_state), (rows, state) = runs
    assert drawn                                            # the forced run drew with torch
    assert rows == want_rows
    assert state.keys() == want_state.keys() and all(torch.equal(state[k], want_state[k]) for k in state)


@cuda
def test_cuda_draws_are_numpys():
    key, dev = Key(9, Stream.COMPRESS, 4, 2), torch.device("cuda")
    for rows in (range(0, 1000), [7, 3, 3, 999]):
        u = rng.uniform(key, rows, 33, device=dev)
        assert u.device.type == "cuda"
        _same(u, rng.uniform(key, rows, 33))
        _same(rng.integers(key, rows, 33, np.arange(1, len(rows) + 1), device=dev),
              rng.integers(key, rows, 33, np.arange(1, len(rows) + 1)))
        _same(rng.sample(key, rows, 500, 40, device=dev), rng.sample(key, rows, 500, 40))
        _same(rng.uniform_steps(key, range(5, 9), rows, 3, 1000, device=dev),
              rng.uniform_steps(key, range(5, 9), rows, 3, 1000))
        assert _ulps(rng.normal(key, rows, 33, device=dev).cpu().numpy(), rng.normal(key, rows, 33)) <= ULPS
