"""Start-up wall time of the commands a user types first: ``run --help``, a mistyped key, ``import
decopt``. Best of N fresh processes each (``python benchmarks/bench_startup.py [N]``)."""
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "python -m decopt run --help": ["-m", "decopt", "run", "--help"],
    "python -m decopt run run.iteratons=10": ["-m", "decopt", "run", "run.iteratons=10"],
    "python -c 'import decopt'": ["-c", "import decopt"],
}


def best(args, repeat):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - start)
    return min(times)


if __name__ == "__main__":
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"| command | best of {repeat} (s) |\n|---|---|")
    for name, args in CASES.items():
        print(f"| `{name}` | {best(args, repeat):.3f} |")
