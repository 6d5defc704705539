"""MPI backend: agents split over ranks in contiguous blocks, real encoded messages between ranks.

Layout (DESIGN §2). Rank r owns the agents ``rows`` (a contiguous block). A *halo* is the local
rows followed by the *ghost* rows: the agents on other ranks adjacent to a local agent, sorted by
global id. ``broadcast`` returns a halo, ``mix``/``laplacian`` turn a halo into local rows. Per-arc
arrays (``exchange``) have one row per local out-arc ``out_arcs`` (sorted arc ids).

Wire protocol (one message per rank pair and message round, nonblocking, receives posted first):

* the receiver knows from the graph and the keyed link draw which rows (agents for
  ``broadcast``, arcs for ``exchange``) it gets from each peer, so nothing but payload bytes
  travels: a single row is sent as the compressor's encoded bytes, unchanged (its length is the
  message length); k > 1 rows are ``int64 sizes[k]`` followed by the k payloads;
* receive buffers hold ``capacity`` bytes, agreed by both ends from the graph and d. A bigger
  body is announced with an 8-byte size message and follows with another tag; both ends then
  grow the capacity the same way, so variable-size payloads (top-k, thresholds) always fit;
* on random links only active edges carry messages; both ends compute ``links.active(t)``.

Bits: the bytes actually sent between ranks (8 * payload length), the compressor's count for
in-memory deliveries. ``comm_time`` is the wall time of message rounds (posting, packing,
waiting, unpacking); the codec's ``compress``/``encode``/``decode`` are compute, tracked apart
in ``codec_time``. Metric reductions (``allreduce``/``gather``) are not counted.

``agree_built`` is the one collective outside the network: whether every rank built a job. The
driver that runs jobs on every rank is ``decopt.mpi_jobs``.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import PayloadError
from .network import Network
from ..lazy import torch


TAG_BODY, TAG_OVER, TAG_BIG = 701, 702, 703
_DUPS: dict = {}


def _mpi():
    from mpi4py import MPI

    return MPI


def _decode(compressor, payload, d, dtype, key, row, sparse=False):
    """The received row (``decode_sparse`` with ``sparse``); the message key and keyed row id go
    only to codecs that need them. A NaN or inf from a diverging rank of this job is passed on as
    the stacked backend would (``check_finite=False``): the run then ends ``diverged``, not failed."""
    decode = compressor.decode_sparse if sparse else compressor.decode
    if getattr(compressor, "needs_key", False):
        return decode(payload, d, dtype, key, row, check_finite=False)
    return decode(payload, d, dtype, check_finite=False)


def private_comm(comm, purpose: str = "p2p"):
    """A duplicate of ``comm`` for ``purpose`` (one per parent and purpose, reused by every job):
    ``p2p`` carries the network's messages, ``agree`` the build agreement. Collective on first use."""
    key = (comm.py2f() if hasattr(comm, "py2f") else id(comm), purpose)
    if key not in _DUPS:
        _DUPS[key] = comm.Dup()
    return _DUPS[key]


class MPINetwork(Network):
    """Agents ``rows`` of ``graph`` on this rank of ``comm``; see the module docstring."""

    backend = "mpi"
    round_time_is_global = True
    initial_capacity: int | None = None     # bytes per receive buffer; None: from the graph and d

    def __init__(self, graph, links, comm, rows: range, **kw):
        super().__init__(graph, links, rows, **kw)
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._p2p = private_comm(comm)
        self.codec_time = 0.0
        n, lo, hi = graph.n, rows.start, rows.stop
        bounds = comm.allgather((lo, hi))
        owner = np.full(n, -1, dtype=np.int64)
        for r, (a, b) in enumerate(bounds):
            owner[a:b] = r
        if (owner < 0).any() or sum(b - a for a, b in bounds) != n:
            raise ValueError(f"mpi: rank blocks {bounds} do not partition the {n} agents")
        self.owner, self.bounds = owner, bounds
        src, dst = graph.arcs
        self._src, self._dst = src, dst
        local_src = (src >= lo) & (src < hi)
        local_dst = (dst >= lo) & (dst < hi)

        # halo: local rows, then ghosts (remote neighbours of local agents) sorted by global id
        self.ghosts = np.unique(src[local_dst & ~local_src])
        self.n_halo = self.n_local + self.ghosts.size
        halo = np.full(n, -1, dtype=np.int64)
        halo[lo:hi] = np.arange(self.n_local)
        halo[self.ghosts] = self.n_local + np.arange(self.ghosts.size)
        self._halo_of = halo

        # arcs into local agents: the terms of mix / laplacian
        ia = np.flatnonzero(local_dst)
        self._in_edge = ia >> 1
        self._in_host = (halo[src[ia]], dst[ia] - lo, self._in_edge)
        self._in_src = torch.as_tensor(self._in_host[0], device=self.device)
        self._in_dst = torch.as_tensor(self._in_host[1], device=self.device)
        self._in_w = torch.as_tensor(self.edge_w[ia >> 1], dtype=self.dtype, device=self.device)
        self._W = self._operator(ia, self.edge_w[ia >> 1], self.self_w)
        self._A = self._operator(ia, np.ones(ia.size))
        self._W_diag = torch.as_tensor(self.self_w, dtype=self.dtype, device=self.device)[:, None]
        self._deg = torch.as_tensor(graph.degree[lo:hi], dtype=self.dtype, device=self.device)[:, None]

        # out-arcs (rows of exchange): source row, reverse position for in-memory delivery
        oa = self.out_arcs
        pos = np.full(2 * graph.m, -1, dtype=np.int64)
        pos[oa] = np.arange(oa.size)
        self._pos = pos
        self._oa_src = src[oa] - lo
        self._oa_edge = oa >> 1
        self._oa_local = local_dst[oa]
        self._rev = pos[oa ^ 1]                          # -1 where the reverse arc is remote

        # per-peer plans: arcs from my agents to peer q, and from q's agents to mine (sorted ids)
        peer_out = owner[dst[oa]]
        in_remote = ia[~local_src[ia]]
        peer_in = owner[src[in_remote]]
        self.peers = sorted(set(peer_out[~self._oa_local].tolist()) | set(peer_in.tolist()))
        self._send_plan, self._recv_plan = {}, {}
        for q in self.peers:
            sel = np.flatnonzero(peer_out == q)                      # positions in out_arcs
            arcs_in = in_remote[peer_in == q]                        # arc ids q -> me, sorted
            self._send_plan[q] = (sel, oa[sel] >> 1, self._oa_src[sel])
            self._recv_plan[q] = (arcs_in, arcs_in >> 1, src[arcs_in], pos[arcs_in ^ 1])
        self._static = {
            q: (np.unique(self._send_plan[q][2]), np.unique(self._recv_plan[q][2])) for q in self.peers}
        self._kmax_b = {(q, w): self._static[q][w == "r"].size for q in self.peers for w in "sr"}
        self._kmax_x = {(q, w): (self._send_plan[q][0] if w == "s" else self._recv_plan[q][0]).size
                        for q in self.peers for w in "sr"}
        self._all_arcs = np.ones(oa.size, dtype=bool)
        self._bstatic = None
        self._caps: dict = {}
        self._bufs: dict = {}
        self._MPI = _mpi()
        self._statuses: list = []

    # --- set-up helpers ----------------------------------------------------------------------
    def _operator(self, ia, w, diag=None):
        """n_local x n_halo matrix: weight w on in-arc src -> dst (and ``diag`` on the local diagonal)."""
        rows = self._dst[ia] - self.rows.start
        cols = self._halo_of[self._src[ia]]
        vals = np.asarray(w, dtype=np.float64)
        if diag is not None:
            rows = np.concatenate([rows, np.arange(self.n_local)])
            cols = np.concatenate([cols, np.arange(self.n_local)])
            vals = np.concatenate([vals, diag])
        idx = torch.as_tensor(np.stack([rows, cols]), device=self.device)
        M = torch.sparse_coo_tensor(idx, torch.as_tensor(vals, dtype=self.dtype), (self.n_local, self.n_halo),
                                    device=self.device, check_invariants=True).coalesce()
        return M.to_dense() if self.n_local * self.n_halo <= 4096 else M.to_sparse_csr()

    def _check_halo(self, H):
        if H.shape[0] != self.n_halo:
            raise ValueError(f"mpi: expected a halo of {self.n_halo} rows (from broadcast), got {H.shape[0]} "
                             f"(this rank holds {self.n_local} agents)")

    # --- message rounds ---------------------------------------------------------------------
    def _capacity(self, key, k_max: int, d: int) -> int:
        cap = self._caps.get(key)
        if cap is None:
            cap = self._caps[key] = self.initial_capacity or (8 * k_max + k_max * (8 * d + 64) + 64)
        return cap

    def _round(self, ch: str, d: int, sends: dict, recvs: dict, kmax: dict) -> dict:
        """One message round: ``sends[q]`` = payloads for peer q (in plan order), ``recvs[q]`` = the
        number of rows expected from q. Returns ``{q: [memoryview payload, ...]}``."""
        MPI = self._MPI
        BYTE = MPI.BYTE
        comm, bufs = self._p2p, self._bufs
        reqs, posted = [], []
        for q, k in recvs.items():
            cap = self._capacity((ch, q, "r"), kmax[q, "r"], d)
            buf = bufs.get((ch, q))
            if buf is None or buf.size < cap:
                buf = bufs[ch, q] = np.empty(cap, dtype=np.uint8)
            reqs.append(comm.Irecv([buf, cap, BYTE], q, MPI.ANY_TAG))
            posted.append((q, k, buf))
        keep, grown = [], []
        for q, payloads in sends.items():
            k = len(payloads)
            if k == 1:
                body = payloads[0]
            else:
                body = np.array([len(p) for p in payloads], dtype=np.int64).tobytes() + b"".join(payloads)
            key = (ch, q, "s")
            n = len(body)
            if n <= self._capacity(key, kmax[q, "s"], d):
                reqs.append(comm.Isend([body, n, BYTE], q, TAG_BODY))
            else:
                size = np.array([n], dtype=np.int64)
                reqs.append(comm.Isend([size, 8, BYTE], q, TAG_OVER))
                reqs.append(comm.Isend([body, n, BYTE], q, TAG_BIG))
                keep.append(size)
                grown.append((key, n))
            keep.append(body)
        statuses = self._statuses
        while len(statuses) < len(reqs):
            statuses.append(MPI.Status())
        MPI.Request.Waitall(reqs, statuses[:len(reqs)])
        for key, size in grown:
            self._caps[key] = max(size, 2 * self._caps[key])
        out = {}
        for (q, k, buf), st in zip(posted, statuses):
            count = st.Get_count(BYTE)
            if st.Get_tag() == TAG_OVER:
                count = int(buf[:8].view(np.int64)[0])
                key = (ch, q, "r")
                self._caps[key] = max(count, 2 * self._caps[key])
                buf = bufs[ch, q] = np.empty(self._caps[key], dtype=np.uint8)
                comm.Recv([buf, count, BYTE], q, TAG_BIG)
            mv = memoryview(buf)[:count]
            if k == 1:
                out[q] = [mv]
                continue
            if count < 8 * k:
                raise PayloadError(f"mpi: message from rank {q} has {count} bytes, fewer than its {k}-row header")
            sizes = np.frombuffer(buf, dtype=np.int64, count=k)
            ends = 8 * k + np.cumsum(sizes)
            if ends[-1] != count:
                raise PayloadError(f"mpi: message from rank {q}: payload sizes sum to {ends[-1] - 8 * k}, "
                                   f"received {count - 8 * k} bytes")
            starts = ends - sizes
            out[q] = [mv[s:e] for s, e in zip(starts.tolist(), ends.tolist())]
        return out

    # --- messages ----------------------------------------------------------------------------
    def _broadcast_plan(self):
        """Who sends which agent rows to whom this iteration: ``send {q: local rows}``,
        ``recv {q: (count, halo rows, global ids)}``, the local rows to encode and, per peer,
        their positions among them. Computed once for static links."""
        act = self.active
        if act is None and self._bstatic is not None:
            return self._bstatic
        send, recv = {}, {}
        for q in self.peers:
            if act is None:
                s, r = self._static[q]
            else:
                _, e, s = self._send_plan[q]
                s = np.unique(s[act[e]])
                _, e, r, _ = self._recv_plan[q]
                r = np.unique(r[act[e]])
            if s.size:
                send[q] = s
            if r.size:
                recv[q] = (r.size, self._halo_of[r].tolist(), r.tolist())
        enc = np.unique(np.concatenate(list(send.values()))) if send else np.empty(0, np.int64)
        at = {q: np.searchsorted(enc, r).tolist() for q, r in send.items()}
        complete = sum(c for c, _, _ in recv.values()) == self.ghosts.size
        plan = (send, recv, enc, at, complete)
        if act is None:
            self._bstatic = plan
        return plan

    def broadcast(self, V, compressor, sparse=False):
        t0 = time.perf_counter()
        key = self.next_key()
        d, act, nl = V.shape[1], self.active, self.n_local
        send, recv, enc, at, complete = self._broadcast_plan()
        if enc.size:                                    # rows with remote receivers: one plan for both
            Vhat, bits, payloads = compressor.compress_encode(V, key, self.rows, enc, sparse)
        else:
            compress = compressor.compress_sparse if sparse else compressor.compress
            (Vhat, bits), payloads = compress(V, key, self.rows), []
        bits = np.array(bits, dtype=np.int64)
        if payloads:
            bits[enc] = [8 * len(p) for p in payloads]
        t1 = time.perf_counter()
        got = self._round("b", d, {q: [payloads[j] for j in js] for q, js in at.items()},
                          {q: c for q, (c, _, _) in recv.items()}, self._kmax_b)
        t2 = time.perf_counter()
        H = Vhat.new_empty((self.n_halo, d))              # a tensor, or SparseRows
        H[:nl] = Vhat
        if not complete:
            H[nl:] = 0                                  # ghosts on inactive links: nothing received
        for q, msgs in got.items():
            _, halo, ids = recv[q]
            for h, g, p in zip(halo, ids, msgs):
                H[h] = _decode(compressor, p, d, V.dtype, key, g, sparse)
        t3 = time.perf_counter()
        arc_on = self._all_arcs if act is None else act[self._oa_edge]
        arc_bits = np.where(arc_on, bits[self._oa_src], 0)
        sent = np.bincount(self._oa_src[arc_on], minlength=nl) > 0
        self.traffic.record(arc_bits, bits, sent)
        self.comm_time += t2 - t1
        self.codec_time += (t1 - t0) + (t3 - t2)
        return H

    def exchange(self, M, compressor, shared=False, compact=False, mask_entries=0):
        t0 = time.perf_counter()
        key = self.next_key()
        d, act = M.shape[1], self.active
        oa = self.out_arcs
        rows = self.active_out() if compact else np.arange(oa.size)     # out-arc position of each row of M
        row_of = np.full(oa.size, -1, dtype=np.int64)
        row_of[rows] = np.arange(rows.size)
        keyrows = (oa >> 1 if shared else oa)[rows]
        Msent, Mhat, bits = compressor.compress_split(M, key, keyrows)
        arc_bits = np.zeros(oa.size, dtype=np.int64)
        arc_bits[rows] = bits
        if act is not None and not compact:
            arc_on = act[self._oa_edge]
            arc_bits[~arc_on] = 0
            on = torch.as_tensor(arc_on, device=M.device, dtype=M.dtype)[:, None]
            Msent, Mhat = (Mhat * on,) * 2 if Msent is Mhat else (Msent * on, Mhat * on)
        t1 = time.perf_counter()
        send_pos, recv_pos = {}, {}
        for q in self.peers:
            sel = self._send_plan[q][0]
            arcs_in, e_in, _, rpos = self._recv_plan[q]
            if act is not None:
                sel = sel[act[self._oa_edge[sel]]]
                rpos = rpos[act[e_in]]
            if sel.size:
                send_pos[q] = sel
            if rpos.size:
                recv_pos[q] = rpos
        encoded = {}
        if send_pos:
            pos = np.concatenate(list(send_pos.values()))
            payloads = compressor.encode(M[torch.as_tensor(row_of[pos], device=M.device)], key, keyrows[row_of[pos]])
            encoded = dict(zip(pos.tolist(), payloads))
            for a, p in encoded.items():
                arc_bits[a] = 8 * len(p)
        t2 = time.perf_counter()
        got = self._round("x", d, {q: [encoded[a] for a in s.tolist()] for q, s in send_pos.items()},
                          {q: r.size for q, r in recv_pos.items()}, self._kmax_x)
        t3 = time.perf_counter()
        R = torch.zeros_like(M)
        loc = rows[self._oa_local[rows]]
        if loc.size:
            R[torch.as_tensor(row_of[loc], device=M.device)] = Mhat[torch.as_tensor(row_of[self._rev[loc]],
                                                                                 device=M.device)]
        for q, payloads in got.items():
            arcs = self._recv_plan[q][0]
            if act is not None:
                arcs = arcs[act[arcs >> 1]]
            for a, arc, p in zip(row_of[recv_pos[q]].tolist(), arcs.tolist(), payloads):
                R[a] = _decode(compressor, p, d, M.dtype, key, arc >> 1 if shared else arc)
        t4 = time.perf_counter()
        arc_bits = self.traffic.with_mask_indices(arc_bits, mask_entries, shared)
        self.traffic.record(arc_bits, arc_bits, arc_bits > 0)
        M.copy_(Msent)
        self.comm_time += t3 - t2
        self.codec_time += (t1 - t0) + (t2 - t1) + (t4 - t3)
        return R

    # --- the link model: a round lasts as long as its slowest arc on any rank ---------------
    def total_sim_time(self):
        """Sum over rounds of the slowest carrying arc's time, maxed over ranks (collective)."""
        if self.link_model:
            MPI = _mpi()
            rounds = np.array(self.traffic.rounds, dtype=np.int64)
            self.traffic.rounds.clear()
            self.comm.Allreduce(MPI.IN_PLACE, rounds, op=MPI.MAX)
            self.traffic.add_rounds(rounds)
        return self.traffic.sim_time

    # --- linear operators on halos -----------------------------------------------------------
    def _active_in(self):
        return torch.as_tensor(np.flatnonzero(self.active[self._in_edge]), device=self.device)

    def _host_in_arcs(self):
        return self._in_host

    def mix(self, H, own=None):
        self._check_halo(H)
        nl = self.n_local
        if self.active is None:
            out = self._W @ H
            return out if own is None else out.add_(self._W_diag * (own - H[:nl]))
        own = H[:nl] if own is None else own
        a = self._active_in()
        src, dst = self._in_src[a], self._in_dst[a]
        return own.clone().index_add_(0, dst, self._in_w[a, None] * (H[src] - own[dst]))

    def laplacian(self, H):
        self._check_halo(H)
        nl = self.n_local
        if self.active is None:
            return self._deg * H[:nl] - self._A @ H
        a = self._active_in()
        src, dst = self._in_src[a], self._in_dst[a]
        out = torch.zeros(nl, *H.shape[1:], dtype=H.dtype, device=H.device)
        out.index_add_(0, dst, H[dst] - H[src])
        return out

    # --- reductions (setup and metrics: not timed, not counted) -------------------------------
    def allreduce(self, x):
        MPI = _mpi()
        a = np.ascontiguousarray(x.detach().cpu().numpy()).reshape(-1).copy()
        if a.dtype == np.bool_:
            a = a.astype(np.int64)
        self.comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
        return torch.from_numpy(a).reshape(x.shape).to(x.device)

    def _gather_rows(self, a: np.ndarray, counts: list[int]) -> np.ndarray | None:
        """Concatenate every rank's rows of ``a`` (rows of equal size) on rank 0, in rank order."""
        MPI = _mpi()
        a = np.ascontiguousarray(a)
        row_bytes = a.dtype.itemsize * int(np.prod(a.shape[1:], dtype=np.int64))
        sizes = [c * row_bytes for c in counts]
        send = a.view(np.uint8).reshape(-1) if a.size else np.empty(0, np.uint8)
        if self.rank == 0:
            out = np.empty((sum(counts),) + a.shape[1:], dtype=a.dtype)
            displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64).tolist()
            recv = out.view(np.uint8).reshape(-1) if out.size else np.empty(0, np.uint8)
            self.comm.Gatherv([send, MPI.BYTE], [recv, (sizes, displs), MPI.BYTE], root=0)
            return out
        self.comm.Gatherv([send, MPI.BYTE], None, root=0)
        return None

    def _arc_order(self) -> np.ndarray:
        return np.argsort(self.owner[self._src], kind="stable")   # rank-order concatenation of out_arcs

    def _gather_arcs(self, a: np.ndarray) -> np.ndarray | None:
        counts = np.bincount(self.owner[self._src], minlength=self.size).tolist()
        got = self._gather_rows(a, counts)
        if got is None:
            return None
        full = np.empty_like(got)
        full[self._arc_order()] = got
        return full

    def gather(self, X, rows):
        """All n agent rows (``rows="agent"``) or all 2m arc rows (``rows="arc"``) on rank 0; None elsewhere."""
        a = X.detach().cpu().numpy()
        if rows == "agent":
            got = self._gather_rows(a, [b - s for s, b in self.bounds])
        elif rows == "arc":
            got = self._gather_arcs(a)
        else:
            raise ValueError(f"rows={rows!r}: 'agent' or 'arc'")
        return torch.from_numpy(got).to(X.device) if got is not None else None

    # --- checkpoints and the ledger ----------------------------------------------------------
    def state_dict(self):
        total = self.comm.allreduce(int(self.traffic.bits))
        return {"bits": total, "arc_bits": self._gather_arcs(self.traffic.arc_bits),
                "arc_msgs": self._gather_arcs(self.traffic.arc_msgs), "sim_time": self.total_sim_time()}

    def load_state_dict(self, d):
        super().load_state_dict(d)
        if self.rank != 0:
            self.traffic.bits = 0                           # total_bits() sums over ranks

    def ledger(self):
        """The global ledger on rank 0 (None elsewhere); collective."""
        bits, msgs = self._gather_arcs(self.traffic.arc_bits), self._gather_arcs(self.traffic.arc_msgs)
        if self.rank != 0:
            return None
        return {"src": self._src.copy(), "dst": self._dst.copy(), "bits": bits, "messages": msgs}


AGREE_S = 10.0         # a rank that failed to build waits this long for the others to say so too


def agree_built(comm, exc) -> None:
    """After building a job (collective): return when every rank built it, raise ``exc`` marked
    ``all_ranks`` when every rank failed alike (a bad config or data file: the world goes on to
    the next job), else raise RuntimeError so that this rank aborts the world. A rank that failed
    while the others wait inside a collective of the build aborts after AGREE_S."""
    MPI = _mpi()
    agree = private_comm(comm, "agree")
    failed = np.array([int(exc is not None)], dtype=np.int64)
    count = np.zeros(1, dtype=np.int64)
    req = agree.Iallreduce(failed, count, op=MPI.SUM)
    if exc is None:
        req.Wait()
    else:
        end = time.monotonic() + AGREE_S
        while not req.Test():
            if time.monotonic() > end:
                raise RuntimeError(f"only this rank failed to build the job: {exc}") from exc
            time.sleep(0.01)
    if count[0] == comm.Get_size():
        exc.all_ranks = True
        return
    if count[0]:
        raise RuntimeError(f"{count[0]} of {comm.Get_size()} ranks failed to build the job"
                           + (f": {exc}" if exc is not None else "")) from exc
