"""The run directory (DESIGN §7): config.yaml, metrics.csv (one whole line per write), summary.json
(written atomically), traffic.csv (the per-directed-edge ledger), resumes.jsonl (one line per
resume), the checkpoint, and run.lock.

A run holds an exclusive lock on ``run.lock`` for its whole life, so a second run on the same
directory fails at once. Every file is opened without following symbolic links: a link planted in
the run directory is a one-line error and its target is never touched.
"""
from __future__ import annotations

import csv
import errno
import fcntl
import json
import logging
import math
import os
from pathlib import Path

import yaml

from .errors import RunDirError

FIRST_COLUMNS = ("iteration", "bits", "wall_time", "loss", "grad_norm_sq", "consensus_error")
METRICS, RESUMES, LOCK = "metrics.csv", "resumes.jsonl", "run.lock"
CHECKPOINT, LEGACY_CHECKPOINT = "checkpoint.safetensors", "checkpoint.pt"
# what a fresh run removes: a run directory never mixes two runs' files
RUN_FILES = (METRICS, "summary.json", "traffic.csv", RESUMES, CHECKPOINT, LEGACY_CHECKPOINT)
INTEGER_COLUMNS = ("iteration", "bits", "samples")

log = logging.getLogger("decopt")


def _open(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that never follows a symbolic link (one-line RunDirError if ``path`` is one)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_error(path) from None
        raise


def _link_error(path: Path) -> RunDirError:
    return RunDirError(f"{path}: is a symbolic link; decopt never follows links in a run directory (remove it)")


def _no_link(path: Path) -> None:
    if path.is_symlink():
        raise _link_error(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` by ``data`` in one step: a temporary file created exclusively, synced, renamed."""
    path = Path(path)
    _no_link(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)                 # a stale (or planted) temporary: never written through
    fd = _open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, data.encode() if isinstance(data, str) else data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes (never through a link), or None if it does not exist."""
    try:
        fd = _open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


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
    """One run's files, written by the root process only. Creating one takes the directory's lock
    (RunDirError if another run holds it); ``close`` releases it."""

    def __init__(self, path):
        self._fd = self._lock = None
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the run directory {self.path}: {exc.strerror}") from None
        for name in RUN_FILES + ("config.yaml",):
            _no_link(self.path / name)            # fail before any work, not at the end
        self.metrics_path = self.path / METRICS
        self.columns: list[str] | None = None
        self._lock = _open(self.path / LOCK, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._lock, 32).decode(errors="replace").strip() or "?"
            os.close(self._lock)
            self._lock = None
            raise RunDirError(f"hydra.run.dir={self.path}: in use by another run (pid {holder}); wait for it "
                              f"to finish or choose another directory") from None
        os.ftruncate(self._lock, 0)
        os.write(self._lock, f"{os.getpid()}\n".encode())

    # --- starting: fresh, or from a checkpoint ------------------------------------------------
    def start_fresh(self, cfg: dict) -> None:
        """A new run: remove every file of an earlier run here, write config.yaml."""
        for name in RUN_FILES:
            _no_link(self.path / name)
            (self.path / name).unlink(missing_ok=True)
        self.write_config(cfg)

    def keep_metrics_to(self, last_iteration: int) -> dict | None:
        """Resume: keep the whole metrics rows up to ``last_iteration`` (a torn last line, e.g.
        from a full disk, is cut); return the last kept row (None if none). Streams the file."""
        try:
            fd = _open(self.metrics_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        last, tmp = None, self.path / f".{METRICS}.tmp"
        tmp.unlink(missing_ok=True)
        with os.fdopen(fd, "rb") as src, os.fdopen(_open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as dst:
            for number, line in enumerate(src, 1):
                if not line.endswith(b"\n"):
                    log.warning("%s: cut a torn last line (line %d)", self.metrics_path, number)
                    break
                fields = line.decode().rstrip("\n").split(",")
                if self.columns is None:
                    self.columns = fields
                    dst.write(line)
                    continue
                if len(fields) != len(self.columns):
                    raise RunDirError(f"{self.metrics_path}: line {number} has {len(fields)} fields, the header "
                                      f"{len(self.columns)}; the file is corrupt (start a fresh run)")
                row = dict(zip(self.columns, fields))
                if int(row["iteration"]) <= last_iteration:
                    dst.write(line)
                    last = row
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, self.metrics_path)
        return None if last is None else _parse_row(last)

    # --- writing ----------------------------------------------------------------------------
    def write_config(self, cfg: dict) -> None:
        atomic_write(self.path / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))

    def append_metrics(self, row: dict) -> None:
        """Append one row as one whole line in one write (the header first in a new file)."""
        if self._fd is None:
            self._fd = _open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            if self.columns is None:
                self.columns = list(FIRST_COLUMNS) + [k for k in row if k not in FIRST_COLUMNS]
            if os.fstat(self._fd).st_size == 0:
                self._write_line(",".join(self.columns))
        self._write_line(",".join(_fmt(row.get(k, "")) for k in self.columns))

    def _write_line(self, text: str) -> None:
        data = (text + "\n").encode()
        if os.write(self._fd, data) != len(data):
            raise OSError(errno.EIO, f"short write to {self.metrics_path}")

    def append_resume(self, record: dict) -> None:
        fd = _open(self.path / RESUMES, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            _write_all(fd, (json.dumps(_jsonable(record)) + "\n").encode())
        finally:
            os.close(fd)

    def resumes(self) -> list[dict]:
        """The resume records of this run (resumes.jsonl), oldest first."""
        data = read_bytes(self.path / RESUMES) or b""
        return [json.loads(line) for line in data.decode().splitlines(keepends=True) if line.endswith("\n")]

    def write_checkpoint(self, data: bytes) -> None:
        atomic_write(self.path / CHECKPOINT, data)

    def read_checkpoint(self) -> bytes | None:
        """The checkpoint's bytes, None if there is none; an old pickle checkpoint is refused unread."""
        data, legacy = read_bytes(self.path / CHECKPOINT), self.path / LEGACY_CHECKPOINT
        if data is None and (legacy.exists() or legacy.is_symlink()):
            raise RunDirError(f"run.resume: {legacy} is a pickle checkpoint of an older decopt; it is never "
                              f"loaded (a pickle can run code): start a fresh run (run.resume=false)")
        return data

    def write_summary(self, summary: dict) -> None:
        atomic_write(self.path / "summary.json", json.dumps(_jsonable(summary), indent=2) + "\n")

    def write_ledger(self, ledger: dict) -> None:
        lines = ["src,dst,bits,messages"] + [f"{s},{d},{b},{m}" for s, d, b, m in
                                              zip(ledger["src"], ledger["dst"], ledger["bits"], ledger["messages"])]
        atomic_write(self.path / "traffic.csv", "\n".join(lines) + "\n")

    def close(self) -> None:
        """Close metrics.csv and release the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __del__(self):
        self.close()


def _fmt(v) -> str:
    if isinstance(v, float):
        return repr(float(v))
    return str(v)


def _parse_row(row: dict) -> dict:
    return {k: _integer(v) if k in INTEGER_COLUMNS else float(v) for k, v in row.items() if v != ""}


def _integer(text: str) -> int:
    try:
        return int(text)                    # exact, however large (bits)
    except ValueError:
        return int(float(text))


def read_metrics(path) -> dict:
    """Columns of a run's metrics.csv as lists of floats (no pandas needed); {} without one."""
    data = read_bytes(Path(path) / METRICS)
    if data is None:
        return {}
    lines = [ln for ln in data.decode().splitlines(keepends=True) if ln.endswith("\n")]    # not a torn last line
    rows = list(csv.DictReader(lines))
    cols = rows[0].keys() if rows else []
    return {c: [float(r[c]) if r[c] not in ("",) else math.nan for r in rows] for c in cols}
