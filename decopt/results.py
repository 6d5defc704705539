"""The run directory (DESIGN §7): config.yaml, metrics.csv (flushed per row), summary.json
(written atomically), traffic.csv (the per-directed-edge ledger) and checkpoints."""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import yaml

FIRST_COLUMNS = ("iteration", "bits", "wall_time", "loss", "grad_norm_sq", "consensus_error")


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


class RunDir:
    """Writes one run's files. Only the writing process (rank 0) creates one."""

    def __init__(self, path, resume: bool = False):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the run directory {self.path}: {exc.strerror}") from None
        self.metrics_path = self.path / "metrics.csv"
        self._fh = None
        self._writer = None
        self.columns: list[str] | None = None
        if resume and self.metrics_path.exists():
            with open(self.metrics_path) as fh:
                header = fh.readline().strip()
            self.columns = header.split(",") if header else None

    def write_config(self, cfg: dict) -> None:
        atomic_write(self.path / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))

    def truncate_metrics(self, last_iteration: int) -> list[dict]:
        """Keep the rows up to ``last_iteration`` (resume); return them."""
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path) as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["iteration"]) <= last_iteration]
        text = ",".join(self.columns) + "\n" + "".join(
            ",".join(r[c] for c in self.columns) + "\n" for r in rows) if self.columns else ""
        atomic_write(self.metrics_path, text)
        return rows

    def append_metrics(self, row: dict) -> None:
        if self._fh is None:
            exists = self.metrics_path.exists() and self.columns is not None
            if self.columns is None:
                extra = [k for k in row if k not in FIRST_COLUMNS]
                self.columns = list(FIRST_COLUMNS) + extra
            self._fh = open(self.metrics_path, "a" if exists else "w", newline="")
            self._writer = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="ignore")
            if not exists:
                self._writer.writeheader()
        self._writer.writerow({k: _fmt(row.get(k, "")) for k in self.columns})
        self._fh.flush()

    def write_summary(self, summary: dict) -> None:
        atomic_write(self.path / "summary.json", json.dumps(_jsonable(summary), indent=2) + "\n")

    def write_ledger(self, ledger: dict) -> None:
        lines = ["src,dst,bits,messages"] + [f"{s},{d},{b},{m}" for s, d, b, m in
                                              zip(ledger["src"], ledger["dst"], ledger["bits"], ledger["messages"])]
        atomic_write(self.path / "traffic.csv", "\n".join(lines) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _fmt(v):
    if isinstance(v, float):
        return repr(v)
    return v


def read_metrics(path) -> dict:
    """Columns of a run's metrics.csv as lists of floats (no pandas needed)."""
    with open(Path(path) / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    cols = rows[0].keys() if rows else []
    return {c: [float(r[c]) if r[c] not in ("",) else math.nan for r in rows] for c in cols}
