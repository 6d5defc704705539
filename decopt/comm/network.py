"""The ``Network`` interface algorithms talk to (DESIGN §2). Algorithms never call MPI.

An algorithm holds *local* arrays: one row per agent of this process, ``(n_local, d)``.
Messages go through the network, which returns a *halo* array (the local rows first, then
whatever neighbour rows this process needs); ``mix`` and ``laplacian`` turn a halo back into
local rows. On the stacked backend the halo is simply all n rows.

A sparsifying codec's messages can travel as ``SparseRows`` (``broadcast(..., sparse=True)``), which
``gossip_into`` applies touching only their k entries per row, at the sender and every receiver.

Each iteration starts with ``begin(t)``, which draws the active links and resets the call
counter that keys compressor randomness, so the k-th message round of iteration t is keyed
``(seed, COMPRESS, t, k)`` on every backend.

The bits, per-arc traffic and simulated link time are kept by a :class:`~decopt.comm.ledger.Ledger`
(``net.traffic``), whose module states the bit conventions.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from ..compressors import Compressor
from ..compressors.sparse import SparseRows
from ..graphs import Graph, Links, edge_weights
from ..lazy import torch
from ..rng import Key, Stream
from .ledger import Ledger
from .slots import SlotTable


class Network:
    """What every backend shares: the graph, the mixing weights, the link draw and message keys of
    the current iteration, and the traffic ledger. Backends also set the static in-arcs of the
    local agents: ``_in_src`` (halo row of the sender), ``_in_dst`` (local row), ``_in_w``
    (weight), in arc order, and ``_host_in_arcs()``: the first two and the edge of each as host arrays."""

    backend = "base"
    round_time_is_global = False     # a round lasts as long as its slowest arc on any process

    def __init__(self, graph: Graph, links: Links, rows: range, *, mixing: str = "metropolis",
                 weight: float | None = None, seed: int = 0, dtype=None, device="cpu",
                 bits_convention: str = "broadcast", link_latency: float = 0.0,
                 link_bandwidth: float | None = None):
        self.graph, self.links, self.rows = graph, links, rows
        self.n, self.n_local = graph.n, len(rows)
        self.seed, self.device = seed, torch.device(device)
        self.dtype = dtype or torch.float64
        # W_ij per undirected edge, as stored in run.dtype (held as float64): every backend builds the
        # diagonal 1 - (their sum) from these, so W is the same bit for bit and each row sums to 1
        # (float32 1/3 is 1/3 + 1e-8: a W built from the exact weights drifts x by 3e-8 x per step)
        w = edge_weights(graph, mixing, weight, links.max_active_degree)
        self.edge_w = torch.as_tensor(w, dtype=self.dtype).double().numpy()
        # W_ii = 1 - sum_j W_ij of the local agents (float64), the one diagonal both backends use
        in_w = np.bincount(graph.arcs[1], weights=np.repeat(self.edge_w, 2), minlength=graph.n)
        self.self_w = 1.0 - in_w[rows.start:rows.stop]
        self.t, self._call, self.active, self._active_out = 0, 0, None, None
        self.comm_time = 0.0                                       # seconds spent communicating
        src, dst = graph.arcs
        local = (src >= rows.start) & (src < rows.stop)
        self.out_arcs = np.flatnonzero(local)                      # arcs this process sends on
        self.out_src = src[self.out_arcs] - rows.start              # local sender row of each out-arc
        self.traffic = Ledger(src[self.out_arcs], dst[self.out_arcs], bits_convention, link_latency,
                              link_bandwidth, defer_time=self.round_time_is_global)

    # --- iteration control -------------------------------------------------------------
    def begin(self, t: int) -> None:
        """Start iteration t: draw the active edges, reset the message-round counter."""
        self.t, self._call = t, 0
        self.active = self.links.active(t)
        self._active_out = None

    def active_out(self) -> np.ndarray:
        """Positions in ``out_arcs`` of the out-arcs whose edge is active at this iteration (every
        position on static links): the rows of a ``compact`` exchange."""
        if self._active_out is None:
            every = np.arange(self.out_arcs.size)
            self._active_out = every if self.active is None else every[self.active[self.out_arcs >> 1]]
        return self._active_out

    def next_key(self, stream: Stream = Stream.COMPRESS) -> Key:
        key = Key(self.seed, stream, self.t, self._call)
        self._call += 1
        return key

    # --- traffic -------------------------------------------------------------------------
    @property
    def link_model(self) -> bool:
        """Whether the link model times the rounds (the ``sim_time`` column)."""
        return self.traffic.timed

    def count_broadcasts(self, bits: np.ndarray, times: int) -> None:
        """Account ``times`` broadcast rounds on static links, local sender i sending ``bits[i]``
        to every neighbour, exactly as ``times`` ``broadcast`` calls would: for fused paths that
        advance several iterations without calling ``broadcast``."""
        src = self.out_src
        self.traffic.record(bits[src], bits, np.bincount(src, minlength=self.n_local) > 0, times)

    def _settle(self) -> None:
        """Apply accounting a backend has deferred (see ``StackedNetwork.broadcast``); called
        before the counters are read or saved."""

    def total_bits(self) -> int:
        """Bits sent by all agents so far (the ``bits`` column)."""
        self._settle()
        return int(self.allreduce(torch.tensor(self.traffic.bits, dtype=torch.int64)))

    def total_sim_time(self) -> float:
        """Simulated communication time so far under the link model (the ``sim_time`` column):
        the sum over message rounds of the slowest carrying arc's ``alpha + bits / beta``."""
        self._settle()
        return self.traffic.sim_time

    def state_dict(self) -> dict:
        """Traffic counters for a checkpoint (global arrays; the root's copy is complete)."""
        self._settle()
        return self.traffic.state_dict()

    def load_state_dict(self, d: dict) -> None:
        self._settle()
        self.traffic.load_state_dict(d, self.out_arcs)

    def ledger(self) -> dict:
        """Cumulative bits and messages per local directed edge ``i -> j``."""
        self._settle()
        return self.traffic.traffic()

    # --- the interface every backend implements -------------------------------------------
    def broadcast(self, V: torch.Tensor, compressor: Compressor, sparse: bool = False) -> torch.Tensor | SparseRows:
        """Each local agent sends ``Q(V_i)`` to its (active) neighbours; returns the halo of
        decoded messages (local rows first). Every holder sees exactly the same values.
        ``sparse=True``: as ``SparseRows`` where the codec keeps a few entries per row
        (``Compressor.compress_sparse``), for ``gossip_into``; a dense halo otherwise."""
        raise NotImplementedError

    def mix(self, H: torch.Tensor, own: torch.Tensor | None = None) -> torch.Tensor:
        """``(W_t H)_i = sum_j W_ij H_j`` over active edges (inactive weight stays on the
        diagonal). With ``own``, the self term uses ``own_i`` instead of ``H_i``:
        ``own_i + sum_{j ~ i} W_ij (H_j - own_i)``."""
        raise NotImplementedError

    def gossip_into(self, E: torch.Tensor, H: torch.Tensor | SparseRows) -> torch.Tensor:
        """``E += (W_t - I) H`` in place (E: local rows; H: a halo from ``broadcast``), i.e.
        ``E_i += sum_{j ~ i} W_ij (H_j - H_i)``. A ``SparseRows`` halo on static links is applied as
        one scatter of each row's terms (its own row times ``-sum_j W_ij``, then each in-neighbour's
        times ``W_ij``, in arc order), touching only their k entries; otherwise densely."""
        if isinstance(H, SparseRows) and self.active is None:
            return H.add_gathered(E, self._slots.src, self._slots.w)
        H = H.dense() if isinstance(H, SparseRows) else H
        return E.add_(self.mix(H)).sub_(H[: self.n_local])

    @cached_property
    def _slots(self) -> SlotTable:
        src, dst, edge = self._host_in_arcs()                # host arrays: no read-back from the device
        return SlotTable.of_in_arcs(src, dst, self.edge_w[edge], self.n_local, self.dtype, self.device)

    def _host_in_arcs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def laplacian(self, H: torch.Tensor) -> torch.Tensor:
        """``(L_t H)_i = sum_{j ~ i active} (H_i - H_j)``."""
        raise NotImplementedError

    def exchange(self, M: torch.Tensor, compressor: Compressor, shared: bool = False,
                 compact: bool = False, mask_entries: int = 0) -> torch.Tensor:
        """Per-arc messages: row a of ``M`` travels on local out-arc ``out_arcs[a]`` (active edges
        only); returns, for each out-arc i -> j, the message on its reverse j -> i (zero when
        the edge is inactive) and replaces ``M`` rows by what was actually sent, in place.
        ``compact=True``: ``M`` holds rows for the active out-arcs only (``active_out()``), and so
        does the result: the cost follows the active edges, not the graph.
        ``shared=True`` keys compressor randomness on the undirected edge, so both directions
        use the same draw (e.g. a shared coordinate mask). ``mask_entries``: the size of a keyed
        coordinate mask that decopt does not send but the paper's code does (counted under
        ``bits_convention=paper`` only, see the module docstring)."""
        raise NotImplementedError

    def allreduce(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of ``x`` over processes (setup and metrics only; not counted as traffic)."""
        raise NotImplementedError

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over all agents of the per-agent rows of ``x``."""
        return self.allreduce(x.sum(0))

    def mean(self, X: torch.Tensor) -> torch.Tensor:
        return self.sum(X) / self.n

    def gather(self, X: torch.Tensor, rows: str) -> torch.Tensor | None:
        """Every process's rows of ``X`` on the root (None elsewhere), for checkpoints and tests:
        ``rows="agent"``: one row per local agent, all n in agent order; ``rows="arc"``: one row
        per local out-arc, all 2m in arc order. ``rows`` is the field's kind (``State.rows()``)."""
        raise NotImplementedError

    def local(self, V: torch.Tensor, rows: str) -> torch.Tensor:
        """This process's rows of a global array (the inverse of ``gather``): its agents' rows of
        an (n, ...) array (``rows="agent"``), its out-arcs' rows of a (2m, ...) one (``rows="arc"``)."""
        if rows == "agent":
            return V[self.rows.start:self.rows.stop]
        if rows == "arc":
            return V[torch.as_tensor(self.out_arcs, device=V.device)]
        raise ValueError(f"rows={rows!r}: 'agent' or 'arc'")
