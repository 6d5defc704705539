"""Stopping a run at an iteration boundary on SIGINT/SIGTERM/SIGUSR1, every MPI rank at the same one."""
from __future__ import annotations

import signal
import socket
import threading
import time

from .lazy import torch


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGUSR1")
STOP_CHECK_S = 0.02    # MPI: the ranks agree on a stop about this often (prterun kills 0.25 s after SIGTERM)
STUCK_S = 0.1          # MPI: a signal not acted on this long finds rank 0 blocked on a dead or killed peer


class StopOnSignal:
    """Turn SIGINT/SIGTERM/SIGUSR1 into a request to stop at an iteration boundary.

    On one process a signal stops the run after the current iteration. On several ranks every
    rank calls ``agreed(t)`` at the same t; one in about every STOP_CHECK_S seconds is a small
    allreduce (the stop flag, and rank 0's choice of the next checking t), so all ranks stop at
    the same iteration. Signal handlers run only when the main thread is in Python, so on MPI a
    watcher thread (woken through ``signal.set_wakeup_fd``) calls ``on_stuck`` when a signal is
    not acted on within STUCK_S: the main thread is blocked on a peer that died, and the launcher
    is ending the job."""

    def __init__(self, net, world: int = 1, on_stuck=None):
        self.net, self.world, self.on_stuck = net, world, on_stuck
        self.requested, self.acting, self._old, self._wake = None, False, {}, None
        self._next, self._last = 0, None

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in STOP_SIGNALS:
            sig = getattr(signal, name)
            self._old[sig] = signal.signal(sig, self._handle)
        if self.world > 1 and self.on_stuck is not None:
            self._wake = socket.socketpair()
            self._wake[1].setblocking(False)
            self._old_fd = signal.set_wakeup_fd(self._wake[1].fileno(), warn_on_full_buffer=False)
            threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _handle(self, signum, frame):
        if self.requested:                      # a second signal: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def _watch(self):
        try:
            got = self._wake[0].recv(1)
        except OSError:
            return
        if got and not self.acting and not _sleep_unless(lambda: self.acting or self._wake is None, STUCK_S):
            self.on_stuck(signal.Signals(got[0]).name)

    def agreed(self, t: int) -> bool:
        """Whether every rank stops after iteration t (collective on several ranks)."""
        if self.world == 1:
            self.acting = bool(self.requested)
            return self.acting
        if t < self._next:
            return False
        now = time.perf_counter()
        gap = 0
        if self.net.rank == 0:               # iterations in about STOP_CHECK_S, from the last interval
            rate = (t - self._last[0]) / max(now - self._last[1], 1e-6) if self._last else 1.0
            gap = max(1, min(10_000, int(rate * STOP_CHECK_S)))
        flag, gap = self.net.allreduce(torch.tensor([int(self.requested is not None), gap])).tolist()
        self._next, self._last = t + gap, (t, now)
        self.acting = bool(flag)
        if self.acting and self.requested is None:
            self.requested = "a signal on another rank"
        return self.acting

    def __exit__(self, *exc):
        self.acting = True                      # finished, failed or stopping: the watcher stands down
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        if self._wake is not None:
            signal.set_wakeup_fd(self._old_fd)
            for s in self._wake:
                s.close()
            self._wake = None
        return False


def _sleep_unless(done, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``done()``; whether it became true."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.005)
    return done()
