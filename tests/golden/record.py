"""Record the golden set (see cases.py): ``python tests/golden/record.py [case ...]``."""
import csv
import pathlib
import sys
import tempfile

from safetensors.torch import save_file

import decopt

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cases import CASES, TIMING  # noqa: E402


def run_case(name: str, where: pathlib.Path):
    result = decopt.run(*CASES[name], run_dir=where)
    assert result.summary["status"] == "completed", (name, result.summary)
    with open(where / "metrics.csv") as fh:
        rows = [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(fh)]
    return rows, {k: v.contiguous() for k, v in result.state.items()}


def main(names: list[str]) -> None:
    for name in names or sorted(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            rows, state = run_case(name, pathlib.Path(tmp) / "run")
        with open(HERE / f"{name}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        save_file(state, str(HERE / f"{name}.safetensors"))
        print(f"{name}: {len(rows)} rows, state {sorted(state)}")


if __name__ == "__main__":
    main(sys.argv[1:])
