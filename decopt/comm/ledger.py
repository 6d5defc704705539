"""The traffic ledger of one process: bits per convention, bits and messages per out-arc, and the
simulated time of the link model.

Bit conventions (``run.bits_convention``; the ``bits`` column and the per-arc ledger, traffic.csv,
both follow it, on every backend). Bits are those of the payloads on decopt's wire:

* ``broadcast`` (default): a message broadcast to all (active) neighbours counts once; a per-arc
  message (``exchange``) once per arc. This is the count of TiCoPD P1 (one broadcast per agent per
  iteration, specs/ticopd.md §5); on one-edge links (one active neighbour per sender) it equals
  ``edge``.
* ``edge``: a broadcast counts once per directed link it crosses. This is how the DoCoM notebook
  counts (every message on each of the 2|E| directed links, specs/docom.md "Bit accounting"; it
  also charges 32 bits per top-k index and 64 per value, which are the codec's business:
  ``compressor.index_bits`` / ``value_bits``).
* ``paper``: the FSPDA paper's count. It equals ``broadcast`` except where the FSPDA code sends
  what decopt derives from a shared key: the coordinate mask, keyed on (seed, t, edge) at both
  ends here, which the official code sends once per active edge as int64 indices from the
  higher-numbered endpoint (specs/fspda.md §2.1, P2, P12). ``with_mask_indices`` then adds
  ``PAPER_INDEX_BITS * k`` on that arc: 2 b k + 64 k per active edge for FSPDA-SA (b value
  bits), 4 b k + 64 k for FSPDA-STORM, the table of specs/fspda.md §3.4 (101,888 bits at
  r = 0.99 on the MNIST MLP with fp32 values, against 50,944 under ``broadcast``). For every
  other algorithm ``paper`` is ``broadcast`` (TiCoPD's count; DoCoM's is ``edge``).

Link model (``run.link_latency`` alpha, ``run.link_bandwidth`` beta): a message of b bits takes
``alpha + b / beta`` seconds on its link; links work in parallel, so a message round lasts as
long as its slowest carrying arc, and ``sim_time`` is the sum over rounds.
"""
from __future__ import annotations

import numpy as np

CONVENTIONS = ("broadcast", "edge", "paper")
PAPER_INDEX_BITS = 64            # int64 indices of a mask the paper's code sends (``paper`` convention)


class Ledger:
    """Counts for the out-arcs ``src -> dst`` (global agent ids) this process sends on.

    ``defer_time``: keep each round's slowest carrying arc in ``rounds`` (-1: nothing carried)
    instead of adding its time, for a backend whose round time is a max over processes
    (``add_rounds`` then adds the maxed rounds)."""

    def __init__(self, src: np.ndarray, dst: np.ndarray, convention: str = "broadcast",
                 latency: float = 0.0, bandwidth: float | None = None, defer_time: bool = False):
        self.src, self.dst, self.convention = src, dst, convention
        self.latency, self.bandwidth = float(latency), bandwidth
        self.timed = self.latency > 0 or bandwidth is not None
        self.bits = 0                                              # cumulative, per convention
        self.arc_bits = np.zeros(src.size, dtype=np.int64)
        self.arc_msgs = np.zeros(src.size, dtype=np.int64)
        self.sim_time = 0.0                                        # simulated seconds
        self.rounds: list[int] | None = [] if defer_time else None

    def round_time(self, bits: int) -> float:
        """Seconds of a round whose slowest carrying arc holds ``bits``: ``alpha + bits / beta``."""
        per_bit = 0.0 if self.bandwidth is None else 1.0 / self.bandwidth
        return float(self.latency + bits * per_bit)

    def record(self, arc_bits: np.ndarray, sender_bits: np.ndarray, sender_sent: np.ndarray,
               times: int = 1) -> None:
        """Add ``times`` identical rounds: bits per out-arc (0 where nothing was sent) and per
        local sender (``sender_sent``: whether it sent at all)."""
        carried = arc_bits > 0
        self.arc_bits += arc_bits * times
        self.arc_msgs += carried * times
        if self.timed:
            if self.rounds is not None:
                self.rounds.append(int(arc_bits[carried].max()) if carried.any() else -1)
            elif carried.any():
                self.sim_time += times * self.round_time(arc_bits[carried].max())
        if self.convention == "edge":
            self.bits += times * int(arc_bits.sum())
        else:
            self.bits += times * int(sender_bits[sender_sent].sum())

    def add_rounds(self, rounds: np.ndarray) -> None:
        """Add the time of deferred rounds (their slowest arcs, maxed over processes), in order."""
        for b in rounds[rounds >= 0].tolist():
            self.sim_time += self.round_time(b)

    def with_mask_indices(self, arc_bits: np.ndarray, mask_entries: int, shared: bool) -> np.ndarray:
        """``arc_bits`` plus, under ``paper``, the int64 indices of a keyed mask of ``mask_entries``
        entries that the paper's code sends: once per active edge, on the arc from the
        higher-numbered agent, for a ``shared`` mask; on every carrying arc otherwise."""
        if self.convention != "paper" or not mask_entries:
            return arc_bits
        sends = arc_bits > 0
        if shared:
            sends &= self.src > self.dst
        return arc_bits + sends * (PAPER_INDEX_BITS * mask_entries)

    def state_dict(self) -> dict:
        return {"bits": self.bits, "arc_bits": self.arc_bits.copy(), "arc_msgs": self.arc_msgs.copy(),
                "sim_time": self.sim_time}

    def load_state_dict(self, d: dict, arcs: np.ndarray) -> None:
        """Counters from a checkpoint whose per-arc arrays are global: ``arcs`` are this ledger's rows."""
        self.bits = int(d["bits"])
        self.sim_time = float(d.get("sim_time", 0.0))
        self.arc_bits[:] = d["arc_bits"][arcs]
        self.arc_msgs[:] = d["arc_msgs"][arcs]

    def traffic(self) -> dict:
        """Cumulative bits and messages per directed edge ``src -> dst`` (traffic.csv)."""
        return {"src": self.src.copy(), "dst": self.dst.copy(), "bits": self.arc_bits.copy(),
                "messages": self.arc_msgs.copy()}
