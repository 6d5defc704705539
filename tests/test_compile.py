"""``run.compile`` (issue 19): the step under torch.compile, replaying the eager kernels, keeps the
trajectory bit for bit (benchmarks/bench_compile.py measures what it buys)."""
import sys
from pathlib import Path

import pytest
import torch

import decopt

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from cases import CASES

dynamo = pytest.importorskip("torch._dynamo")
pytestmark = pytest.mark.skipif(not dynamo.is_dynamo_supported(), reason="torch.compile (TorchDynamo) "
                                "does not support this Python or platform")


@pytest.mark.parametrize("job", [
    CASES["dsgd"],                                                            # qsgd on random links, float64
    [*CASES["ticopd"], "run.dtype=float32"],                                  # NumPy top-k inside the step
], ids=["dsgd-qsgd-links-float64", "ticopd-topk-float32"])
def test_compiled_step_keeps_the_trajectory(job):
    """Every metric and the final state equal the eager run's, and the step did run compiled."""
    eager = decopt.run(*job, run_dir=False)
    dynamo.reset()
    dynamo.utils.counters.clear()
    compiled = decopt.run(*job, "run.compile=true", run_dir=False)
    assert dynamo.utils.counters["stats"]["unique_graphs"] > 0
    assert {k: v for k, v in compiled.metrics.items() if k != "wall_time"} == \
        {k: v for k, v in eager.metrics.items() if k != "wall_time"}
    for k, v in eager.state.items():
        assert torch.equal(compiled.state[k], v), k
