"""benchmarks/gpu_check.py (issue 19) keeps running: its comparison catches a difference, and the
check itself runs on the CPU for two algorithms (section 1) and one small size (section 3)."""
import importlib.util
import sys

import pytest
import torch

from conftest import REPO

BENCHMARKS = REPO / "benchmarks"


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(BENCHMARKS))                       # the benchmarks import limits.py
    spec = importlib.util.spec_from_file_location("gpu_check", BENCHMARKS / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCHMARKS))


def test_max_rel_holds_the_trajectory_to_1e_10(gpu_check):
    """Relative agreement to RTOL, NaN agrees with NaN, and a column that is 0 to rounding is held
    to ATOL absolute; anything past them is reported above RTOL."""
    b = torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    assert gpu_check.max_rel(b.clone(), b) == 0
    assert gpu_check.max_rel(b * (1 + 1e-12), b) <= gpu_check.RTOL
    assert gpu_check.max_rel(b * (1 + 1e-8), b) > gpu_check.RTOL
    nan = torch.tensor([float("nan"), 1.0], dtype=torch.float64)
    assert gpu_check.max_rel(nan.clone(), nan) == 0
    assert gpu_check.max_rel(torch.tensor([0.0, 1.0]), nan) == float("inf")
    rounding = torch.tensor([1e-16, 0.0], dtype=torch.float64)                  # a dual sum
    assert gpu_check.max_rel(torch.tensor([3e-16, 1e-16], dtype=torch.float64), rounding) <= gpu_check.RTOL
    assert gpu_check.max_rel(torch.tensor([1e-12, 0.0], dtype=torch.float64), rounding) > gpu_check.RTOL


def test_the_check_runs_on_the_cpu(gpu_check, tmp_path):
    """``--device cpu --quick`` on two algorithms and one small size writes the report: every
    algorithm PASSes (a run against itself), the size reports its rate and peak memory. (The
    budget is the section's wall-clock limit, generous here for a busy machine.)"""
    out = tmp_path / "report.md"
    code = gpu_check.main(["--device", "cpu", "--quick", "--sections", "1,3", "--algos", "dsgd,ticopd",
                           "--sizes", "100", "--dims", "10", "--budget", "600", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    rows = {line.split("|")[1].strip(): line.split("|") for line in text.splitlines() if line.startswith("| ")}
    for algo in ("dsgd", "ticopd"):
        assert rows[algo][-2].strip() == "PASS", text
    size = rows["10"]                                        # d = 10, n = 100
    assert size[2].strip() == "100" and float(size[6].replace(",", "")) > 0, text
    assert "torch " in text and "device: cpu" in text
