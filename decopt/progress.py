"""Progress on the root process: a live bar on a terminal, periodic log lines otherwise
(carriage-return bars do not pass through mpirun, see shared notes §5)."""
from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("decopt")


class Progress:
    def __init__(self, total: int, start: int, enabled: bool = True, mode: str = "auto", every_s: float = 10.0):
        self.total, self.enabled, self.every_s = total, enabled and mode != "none", every_s
        self.bar = None
        self._last_log = time.perf_counter()
        self._t0, self._start = time.perf_counter(), start
        if self.enabled and (mode == "bar" or (mode == "auto" and sys.stderr.isatty())):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="it", dynamic_ncols=True, leave=False)

    def update(self, t: int, row: dict | None) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(t - self.bar.n)
            if row is not None and row["iteration"] == t:
                self.bar.set_postfix(loss=f"{row['loss']:.4g}", grad=f"{row['grad_norm_sq']:.3g}",
                                     cons=f"{row['consensus_error']:.3g}", refresh=False)
            return
        now = time.perf_counter()
        if now - self._last_log >= self.every_s and row is not None:
            self._last_log = now
            rate = (t - self._start) / max(now - self._t0, 1e-9)
            log.info("iteration %d/%d  loss %.6g  grad_norm_sq %.3g  consensus %.3g  bits %.3g  (%.0f it/s)",
                     t, self.total, row["loss"], row["grad_norm_sq"], row["consensus_error"], row["bits"], rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
