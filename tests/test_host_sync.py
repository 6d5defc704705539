"""The step loop never waits for the host between evaluations (issue 19): for every registered
algorithm, during the steps between two evaluations (``Loop`` outside ``_evaluate``, ``_bounded`` and
checkpoints), a host conversion of a tensor raises. On a GPU each of these is a device-to-host copy
that stalls the launch queue.

On the CPU a tensor is always on the host, so ``.cpu()`` and ``.numpy()`` raise unconditionally in
the window; the CPU-only NumPy fast paths (which never run on another device) reach the host
through ``decopt.host.numpy_view``, which checks the device first."""
import sys
from pathlib import Path

import pytest
import torch

import decopt
from decopt.algorithms import REGISTRY
from decopt.runner import Loop

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from cases import CASES

CONVERSIONS = ("item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__")
RANDOM_CODEC = ["compressor=gossip"]      # a keyed coin per message: sizes that vary every round
# DSGD-GD's fused paths (static links, exact messages): NumPy in float64, torch in float32
FUSED = ["graph.n=6", "problem=gaussian_mean", "run.iterations=40", "run.eval_every=10", "algo=dsgd_gd"]


class HostSyncError(AssertionError):
    pass


class HostSyncGuard:
    """While ``armed``, the tensor methods in CONVERSIONS raise HostSyncError (``caught`` counts them)."""

    def __init__(self, monkeypatch):
        self.armed, self.caught = False, []
        for name in CONVERSIONS:
            monkeypatch.setattr(torch.Tensor, name, self._guarded(name, getattr(torch.Tensor, name)))

    def _guarded(self, name, original):
        def method(tensor, *args, **kw):
            if self.armed:
                self.caught.append(name)
                raise HostSyncError(f"Tensor.{name}() between evaluations: a host synchronization")
            return original(tensor, *args, **kw)
        return method

    def window(self, fn):
        """``fn`` run with the guard armed."""
        def armed(*args, **kw):
            self.armed = True
            try:
                return fn(*args, **kw)
            finally:
                self.armed = False
        return armed

    def pause(self, fn):
        """``fn`` (an evaluation, a checkpoint) run with the guard disarmed."""
        def paused(*args, **kw):
            was, self.armed = self.armed, False
            try:
                return fn(*args, **kw)
            finally:
                self.armed = was
        return paused


@pytest.fixture
def guard(monkeypatch):
    g = HostSyncGuard(monkeypatch)
    monkeypatch.setattr(Loop, "run", g.window(Loop.run))
    for name in ("_evaluate", "_bounded"):
        monkeypatch.setattr(Loop, name, g.pause(getattr(Loop, name)))
    monkeypatch.setattr(decopt.runner, "_save_checkpoint", g.pause(decopt.runner._save_checkpoint))
    return g


def configs(algo: str) -> dict:
    """The algorithm's golden cases (a compressor and random links where it takes them, its option
    branches) and, where it takes a compressor, the first of them with a random codec (randomized gossip)."""
    cases = {n: o for n, o in CASES.items() if n != "default" and f"algo={algo}" in o}
    if REGISTRY[algo][1].no_compressor is None:
        name, over = next(iter(cases.items()))
        cases[f"{name}+gossip"] = [o for o in over if not o.startswith("compressor")] + RANDOM_CODEC
    if algo == "dsgd_gd":
        cases |= {f"dsgd_gd_fused_{dtype}": [*FUSED, f"run.dtype={dtype}"] for dtype in ("float64", "float32")}
    return cases


@pytest.mark.parametrize("algo", sorted(REGISTRY))
def test_no_host_sync_between_evaluations(guard, tmp_path, algo):
    """Every case of the algorithm runs 40 iterations (evaluations every 10, a checkpoint every 20)
    with no host conversion outside the evaluations and checkpoints."""
    cases = configs(algo)
    assert cases, f"algo={algo} has no golden case (tests/golden/cases.py)"
    for name, over in cases.items():
        result = decopt.run(*over, "run.checkpoint_every=20", run_dir=tmp_path / name)
        assert result.summary["status"] == "completed", name
        assert not guard.caught, f"{name}: {guard.caught}"


def test_the_guard_catches_a_planted_sync(guard, monkeypatch):
    """A step that reads a value back to the host fails the run."""
    algo = REGISTRY["dsgd"][1]
    step = algo.step
    monkeypatch.setattr(algo, "step", lambda self, state, t: (state.x.sum().item(), step(self, state, t))[1])
    with pytest.raises(HostSyncError, match="item"):
        decopt.run(*CASES["dsgd"], run_dir=False)
