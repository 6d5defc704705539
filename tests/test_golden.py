"""The golden set (tests/golden/cases.py): every registered algorithm and the default job give,
bit for bit, the metrics and final state recorded before the redesign (issue 16)."""
import csv
import pathlib
import sys

import pytest
import torch
from safetensors.torch import load_file

from decopt.algorithms import REGISTRY

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from cases import CASES  # noqa: E402
from record import run_case  # noqa: E402


def test_every_registered_algorithm_has_a_golden_case():
    covered = {next((o.split("=", 1)[1] for o in over if o.startswith("algo=")), "dsgd") for over in CASES.values()}
    assert set(REGISTRY) <= covered, f"no golden case for {sorted(set(REGISTRY) - covered)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_run_is_bit_identical(tmp_path, name):
    rows, state = run_case(name, tmp_path / "run")
    with open(GOLDEN / f"{name}.csv") as fh:
        want = list(csv.DictReader(fh))
    assert rows == want, f"{name}: metrics differ from tests/golden/{name}.csv"
    ref = load_file(str(GOLDEN / f"{name}.safetensors"))
    assert sorted(state) == sorted(ref), f"{name}: state keys {sorted(state)} != golden {sorted(ref)}"
    for key, value in ref.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), f"{name}: state {key} differs"
