"""``python -m decopt run [overrides]`` | ``resume RUN_DIR`` | ``plot DIR...``"""
from __future__ import annotations

import os
import sys

USAGE = """usage: python -m decopt COMMAND [args]

commands:
  run [overrides]   run one job (or a sweep with -m); --help lists every group, choice and key
  resume RUN_DIR    continue an interrupted run in place (run.iterations=N runs it longer); --help
  plot DIR [DIR...] paper-style figures (PNG + PDF) and a table of final metrics; --help
  data fetch NAME   download and verify a dataset (mnist, spambase, femnist, leaf_synthetic); --help
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from .cli import main as run_main

        return run_main(rest)
    if command == "resume":
        from .cli import resume_main

        return resume_main(rest)
    if command == "plot":
        from .plotting import main as plot_main

        return plot_main(rest)
    if command == "data":
        from .data import main as data_main

        return data_main(rest)
    print(f"decopt: error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


def _quiet_pipe() -> int:
    """``python -m decopt plot DIR | head -1``: the reader went away; exit quietly like other tools do
    (stdout pointed at /dev/null so the interpreter's final flush cannot raise again)."""
    from .exit_codes import PIPE_CLOSED

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return PIPE_CLOSED


if __name__ == "__main__":
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = _quiet_pipe()
    sys.exit(code)
