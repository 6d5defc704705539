"""One call from Python: ``decopt.run("algo=dsgd", "graph.n=50", run_dir="out/x")``."""
from __future__ import annotations

from datetime import datetime


def run(*overrides: str, run_dir=None, overrides_dict: dict | None = None):
    """Run one job with the CLI's overrides and return its :class:`decopt.runner.Result`.

    ``run_dir``: where to write the run directory (default ``outputs/<date>/<time>`` like the CLI;
    ``False`` writes nothing). ``overrides_dict`` adds ``key=value`` pairs from a mapping.
    """
    from .cli import compose
    from .runner import run_job

    args = list(overrides) + [f"{k}={_value(v)}" for k, v in (overrides_dict or {}).items()]
    dir_args = [a for a in args if a.startswith("hydra.run.dir=")]
    cfg = compose(args)
    if run_dir is None:
        run_dir = dir_args[-1].split("=", 1)[1] if dir_args else datetime.now().strftime(
            "outputs/%Y-%m-%d/%H-%M-%S-%f")
    return run_job(cfg, run_dir or None)


def _value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)
