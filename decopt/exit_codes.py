"""Exit codes of ``python -m decopt run``, the MPI launcher and the ``experiments/`` scripts.

One definition for scripts and schedulers (Slurm, CI, shell loops): a run's ``summary.json``
``status`` maps to the process exit code below. A sweep exits with the most severe code among its
points (``FAILED`` > ``BAD_INPUT`` > ``INTERRUPTED`` > ``DIVERGED`` > ``COMPLETED``).
"""
from __future__ import annotations

COMPLETED = 0      # status completed
FAILED = 1         # status failed: an unexpected error (a traceback), a rank that died
BAD_INPUT = 2      # a bad config, data file or run directory: one line on stderr, nothing ran
DIVERGED = 3       # status diverged: non-finite iterate or metrics, or beyond run.diverge_threshold
INTERRUPTED = 130  # status interrupted: SIGINT/SIGTERM, final checkpoint written (128 + SIGINT)
PIPE_CLOSED = 141  # stdout's reader went away (``plot DIR | head -1``): quiet, as after SIGPIPE (128 + 13)

BY_STATUS = {"completed": COMPLETED, "failed": FAILED, "diverged": DIVERGED, "interrupted": INTERRUPTED}
SEVERITY = (COMPLETED, DIVERGED, INTERRUPTED, BAD_INPUT, FAILED)


def for_status(status: str) -> int:
    """The exit code of a run that ended with ``status`` (summary.json)."""
    return BY_STATUS[status]


def worst(codes) -> int:
    """The code a sweep exits with: the most severe of its points' codes (COMPLETED if none)."""
    return max(codes, key=SEVERITY.index, default=COMPLETED)
