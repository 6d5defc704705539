"""FSPDA: Fully Stochastic Primal-Dual Algorithm (Yau, Liu & Wai, arXiv 2410.18774), specs/fspda.md.

Two registry names:

* ``fspda`` (FSPDA-SA; v1 "FSPDA"). Default = the paper's eqs. (4a)-(4b)::

      X^{t+1}      = X^t - alpha G^t - eta Lambda^t - gamma L_t(X^t)          (4a)
      Lambda^{t+1} = Lambda^t + beta L_t(X^t)                                 (4b)
      [L_t(X)]_i   = sum_{(i,j) in E^t} S_ij^t ⊙ (x_i - x_j)

  E^t are the active edges of ``graph.links`` (``one_edge``, ``bernoulli``, or every edge on a
  static graph, the p = 1 case of the paper's ablation) and S_ij^t a random-k coordinate mask
  **shared by both endpoints** of the active edge: drawn from the key (seed, t, edge), so no
  index is sent; each direction carries the k kept values of x (``bits`` counts
  k x value-bits per direction per active edge; values travel in ``compressor=none``'s
  precision, fp64 in float64 runs). ``algo.mask_ratio`` is the kept fraction 1 - r of the
  code's ``--compress_ratio r`` (per parameter tensor, k_l = max(1, floor(d_l ratio)), no
  rescaling); ``mask_ratio=1`` exchanges every coordinate. The mask is part of the algorithm
  (the random selection I(xi) of the extended graph), so ``compressor`` must stay ``none``.

  Official-code options ([C2] ``pcode/optim/fspda.py``), all off by default:
  ``momentum`` (heavy ball, code 0.9), ``weight_decay`` (code 1e-4), ``eta_follows_lr``
  (eta_t = eta lr_t / lr) and ``dual_update=official`` (lambda_i += beta sum_j
  S ⊙ (x_i^{t+1} - x_j^t): own new, neighbour old; breaks sum_i lambda_i = 0).
  ``shared_mask=false`` is the ablation of pitfall P2: each endpoint draws its own mask for
  what it sends, and the receiver differences on the coordinates it received.

  Asynchronous mode (spec §2.4, ``async_cbar``): agent i's gradient is available with
  probability 1 / cbar_i and rescaled by cbar_i (unbiased). An agent with neither a gradient
  nor an active edge is idle: it does not touch x_i; its dual drift -eta_t lambda_i (lambda_i
  is constant while idle) is deferred in ``drift`` and applied exactly when it wakes
  (x_i -= sum of deferred eta_t * lambda_i). Metrics see the caught-up iterate.

* ``fspda_storm`` (FSPDA-STORM, [C2] ``fspda_storm.py``): two gradients on the same minibatch,
  at x^t and x^{t-1}; one exchange per active edge carries both masked vectors (same mask)::

      d    = alpha g(x^t)     + eta lambda + gamma q,     q    = L_t(X^t)
      dtil = alpha g(x^{t-1}) + eta lambda + gamma qtil,  qtil = L_t(X^{t-1})  (same S^t, E^t)
      m    = d (t = 0) | d + (1 - a)(m - dtil);   x^{t+1} = x^t - m
      u    = q (t = 0) | q + (1 - b)(u - qtil);   lambda += beta u

  a = ``storm_momentum``, b = ``storm_dual_momentum`` (1 = no variance reduction).

State layout: every state tensor has one row per local agent (``arc_state`` is empty).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..compressors.base import Compressor
from ..errors import ConfigError, PayloadError
from ..rng import Key, Stream, uniform
from .base import StepSize
from .ticopd import _PrimalDual, scatter_rows

MASK_CALL = 0x6D61736B          # "mask": call id of the shared-mask draw (seed, COMPRESS, t, MASK_CALL)
ASYNC_CALL = 0x6173796E         # "asyn": call id of the gradient-availability draw (LINKS stream)
DUAL_UPDATES = ("paper", "official")


def keep_counts(segments, ratio: float) -> list[int]:
    """Coordinates kept per parameter tensor: k_l = max(1, floor(d_l * ratio)) (d_l when ratio = 1)."""
    return [d if ratio >= 1 else max(1, int(d * ratio + 1e-9)) for d in segments]


class SharedMask(Compressor):
    """Random-k coordinate mask keyed on (seed, t, id), id = the undirected edge (shared) or the
    arc; no rescaling. The receiver regenerates the mask from (key.t, row), so only the kept
    values travel: ``bits = blocks * k * precision`` per message (``blocks`` vectors under one
    mask, 2 for FSPDA-STORM), and ``8 * len(encode(...)[i]) == bits``. The draw depends on
    (seed, t, id) only (not on the network's message-round counter), so the algorithm can
    derive the same masks for its own bookkeeping; each (t, id) is drawn once (memo)."""

    name = "shared_mask"
    needs_key = True

    def __init__(self, seed: int, segments, ratio: float, precision: int = 64, blocks: int = 1):
        self.seed, self.segments, self.ratio, self.blocks = seed, list(segments), ratio, blocks
        self.d = sum(self.segments)
        self.kept = keep_counts(self.segments, ratio)
        self.k = sum(self.kept)
        self.precision = precision
        self.wire_torch, self.wire_np = {32: (torch.float32, np.float32), 64: (torch.float64, np.float64)}[precision]
        self._memo_t, self._memo_ids, self._memo = None, np.zeros(0, np.int64), None

    def delta(self, d: int) -> float:
        return self.k / self.d

    def _draw(self, t: int, ids: np.ndarray) -> np.ndarray:
        mask = np.zeros((ids.size, self.d), dtype=bool)
        if self.k == self.d:
            mask[:] = True
            return mask
        u = uniform(Key(self.seed, Stream.COMPRESS, t, MASK_CALL), ids, self.d)
        rows = np.arange(ids.size)[:, None]
        off = 0
        for d_l, k_l in zip(self.segments, self.kept):
            if k_l == d_l:
                mask[:, off:off + d_l] = True
            else:
                idx = np.argpartition(u[:, off:off + d_l], k_l - 1, axis=1)[:, :k_l]
                mask[rows, off + idx] = True
            off += d_l
        return mask

    def masks(self, t: int, ids, device=None) -> torch.Tensor:
        """Boolean masks (len(ids), d) of iteration t for global ids; drawn once per (t, id)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if self._memo_t != t:
            self._memo_t, self._memo_ids, self._memo = t, np.zeros(0, np.int64), np.zeros((0, self.d), bool)
        where = np.searchsorted(self._memo_ids, ids)
        hit = (where < self._memo_ids.size) & (self._memo_ids[np.minimum(where, self._memo_ids.size - 1)] == ids) \
            if self._memo_ids.size else np.zeros(ids.size, bool)
        miss = np.unique(ids[~hit])
        if miss.size:
            all_ids = np.concatenate([self._memo_ids, miss])
            order = np.argsort(all_ids, kind="stable")
            self._memo_ids = all_ids[order]
            self._memo = np.concatenate([self._memo, self._draw(t, miss)])[order]
            where = np.searchsorted(self._memo_ids, ids)
        return torch.as_tensor(self._memo[where], device=device)

    def _full(self, t, ids, device):
        S = self.masks(t, ids, device)
        return S.repeat(1, self.blocks) if self.blocks > 1 else S

    def compress(self, V, key, rows):
        rows = np.asarray(rows, dtype=np.int64).ravel() if not isinstance(rows, range) else np.arange(rows.start, rows.stop)
        nz = torch.nonzero(V.any(1)).squeeze(1).cpu().numpy()
        if nz.size == V.shape[0]:           # every row sent: no gather/scatter
            out = torch.where(self._full(key.t, rows, V.device), V, 0.0)
        else:
            out = torch.zeros_like(V)
            if nz.size:                     # all-zero rows decode to zero whatever the mask
                S = self._full(key.t, rows[nz], V.device)
                idx = torch.as_tensor(nz, device=V.device)
                out[idx] = V[idx] * S.to(V.dtype)
        if V.dtype != self.wire_torch:
            out = out.to(self.wire_torch).to(V.dtype)
        bits = np.full(V.shape[0], self.blocks * self.k * self.precision, dtype=np.int64)
        return out, bits

    def encode(self, V, key, rows):
        rows = np.arange(rows.start, rows.stop) if isinstance(rows, range) else np.asarray(rows, np.int64).ravel()
        S = self._full(key.t, rows, V.device).cpu().numpy()
        W = V.detach().to("cpu", self.wire_torch).numpy()
        return [W[i][S[i]].tobytes() for i in range(len(rows))]

    def decode(self, payload, d, dtype=torch.float64, key=None, row=None):
        if key is None or row is None:
            raise ValueError("shared_mask: decode needs the message key and row (the mask is derived from them)")
        want = self.blocks * self.k * self.precision // 8
        if len(payload) != want or d != self.blocks * self.d:
            raise PayloadError(f"shared_mask: payload of {len(payload)} bytes for width {d}, expected {want} "
                               f"bytes for width {self.blocks * self.d}")
        S = self._full(key.t, [int(row)], None).numpy()[0]
        out = np.zeros(d, dtype=self.wire_np)
        out[S] = np.frombuffer(bytes(payload), dtype=self.wire_np)
        return torch.from_numpy(out).to(dtype)


# --- configs ------------------------------------------------------------------------------


@dataclass
class _FSPDACommon(StepSize):
    """``lr`` = alpha (gradient step), ``eta`` (dual weight in the primal step), ``gamma``
    (penalty / consensus step on masked coordinates; 0.5 = exact pairwise average), ``beta``
    (dual ascent step; effective dual gain eta * beta), ``mask_ratio`` (kept fraction 1 - r)."""

    lr: float = 0.05
    eta: float = 0.01
    gamma: float = 0.5
    beta: float = 1.0
    mask_ratio: float = 0.1
    shared_mask: bool = True
    weight_decay: float = 0.0

    def check(self) -> None:
        self.check_step()
        if self.eta < 0:
            raise ConfigError(f"algo.eta={self.eta}: must be >= 0 (0 turns the dual off)")
        if not self.gamma > 0:
            raise ConfigError(f"algo.gamma={self.gamma}: must be > 0")
        if self.beta < 0:
            raise ConfigError(f"algo.beta={self.beta}: must be >= 0")
        if not 0 < self.mask_ratio <= 1:
            raise ConfigError(f"algo.mask_ratio={self.mask_ratio}: the kept fraction must be in (0, 1]")
        if self.weight_decay < 0:
            raise ConfigError(f"algo.weight_decay={self.weight_decay}: must be >= 0")


@dataclass
class FSPDAConfig(_FSPDACommon):
    """FSPDA-SA; defaults are the paper's (4a)-(4b) with plain SGD."""

    name: str = "fspda"
    dual_update: str = "paper"
    momentum: float = 0.0
    eta_follows_lr: bool = False
    async_cbar: list[float] | None = None

    def check(self) -> None:
        super().check()
        if self.dual_update not in DUAL_UPDATES:
            raise ConfigError(f"algo.dual_update={self.dual_update}: choose one of {', '.join(DUAL_UPDATES)}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"algo.momentum={self.momentum}: must be in [0, 1)")
        if self.async_cbar is not None:
            if not self.async_cbar or any(not c >= 1 for c in self.async_cbar):
                raise ConfigError(f"algo.async_cbar={self.async_cbar}: one value >= 1 for all agents or one per agent")
            if self.momentum or self.weight_decay:
                raise ConfigError("algo.async_cbar: the asynchronous model is plain SGD; set algo.momentum=0 "
                                  "and algo.weight_decay=0")


@dataclass
class FSPDAStormConfig(_FSPDACommon):
    """FSPDA-STORM; ``storm_momentum`` = a, ``storm_dual_momentum`` = b (1 = plain SGDA)."""

    name: str = "fspda_storm"
    storm_momentum: float = 0.1
    storm_dual_momentum: float = 0.1

    def check(self) -> None:
        super().check()
        for key in ("storm_momentum", "storm_dual_momentum"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"algo.{key}={getattr(self, key)}: must be in (0, 1]")


# --- algorithms ---------------------------------------------------------------------------


class FSPDA(_PrimalDual):
    """FSPDA-SA (see the module docstring)."""

    name = "fspda"
    links = "any"
    blocks = 1

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        if compressor.name != "none":
            raise ConfigError(f"compressor={compressor.name}: algo={cfg.name} sparsifies with its own shared "
                              f"mask (algo.mask_ratio); use compressor=none")
        self.codec = SharedMask(net.seed, problem.segments, cfg.mask_ratio,
                                getattr(compressor, "precision", 64), self.blocks)
        src, _ = net.graph.arcs
        self._src_np = src[net.out_arcs] - net.rows.start
        self._src = torch.as_tensor(self._src_np, device=net.device)
        self._all = np.arange(len(net.out_arcs))
        self.cbar = None
        if getattr(cfg, "async_cbar", None) is not None:
            c = np.asarray(cfg.async_cbar, dtype=float)
            if c.size not in (1, net.n):
                raise ConfigError(f"algo.async_cbar: {c.size} values; give one, or one per agent ({net.n})")
            c = np.array(np.broadcast_to(c, (net.n,))[net.rows.start:net.rows.stop])
            self.cbar = torch.as_tensor(c, dtype=net.dtype, device=net.device)

    def init(self, x0):
        state = {"x": x0.clone(), "lam": torch.zeros_like(x0)}
        if getattr(self.cfg, "momentum", 0):
            state["momentum"] = torch.zeros_like(x0)
        if self.cbar is not None:
            state["drift"] = torch.zeros(x0.shape[0], 1, dtype=x0.dtype, device=x0.device)
        return state

    def iterate(self, state):
        if "drift" in state:
            return state["x"] - state["drift"] * state["lam"]
        return state["x"]

    # --- one message round on the active edges -----------------------------------------
    def _active(self) -> np.ndarray:
        act = self.net.active
        return self._all if act is None else self._all[act[self.net.out_arcs >> 1]]

    def _exchange(self, t, pos, Vs):
        """Send the masked rows of each V in ``Vs`` on the active out-arcs ``pos`` (the codec
        applies the masks: ``exchange`` replaces M by what was sent); return (source agents,
        received masks or None when unused, [(sent, received) per V]) restricted to ``pos``."""
        net, d = self.net, Vs[0].shape[1]
        arcs = net.out_arcs[pos]
        shared = self.cfg.shared_mask
        src = self._src[torch.as_tensor(pos, device=net.device)]
        rows_v = torch.cat([V[src] for V in Vs], 1) if len(Vs) > 1 else Vs[0][src]
        every = len(pos) == len(net.out_arcs)              # every arc active: no scatter/gather
        if every:
            M = rows_v
        else:
            M = torch.zeros(len(net.out_arcs), self.blocks * d, dtype=net.dtype, device=net.device)
            rows = torch.as_tensor(pos, device=net.device)
            M[rows] = rows_v
        recv = net.exchange(M, self.codec, shared=shared)
        sent, got = (M, recv) if every else (M[rows], recv[rows])
        S_in = None
        if not shared or getattr(self.cfg, "dual_update", "paper") == "official":
            S_in = self.codec.masks(t, arcs >> 1 if shared else arcs ^ 1, net.device)
        pairs = [(sent[:, b * d:(b + 1) * d], got[:, b * d:(b + 1) * d]) for b in range(len(Vs))]
        return src, S_in, pairs

    def _laplacian(self, src, S_in, sent, got, V):
        """sum over active arcs i -> j of S ⊙ (v_i - v_j) into agent rows. Shared masks: the
        sent values minus the received ones (identical pair at both ends, so the two endpoint
        terms cancel exactly); unshared: own v on the coordinates received, minus them."""
        diff = sent - got if self.cfg.shared_mask else torch.where(S_in, V[src], 0.0) - got
        return scatter_rows(V, src, diff)

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam = state["x"], state["lam"]
        alpha = cfg.step_size(t)
        eta = cfg.eta * alpha / cfg.lr if cfg.eta_follows_lr else cfg.eta
        pos = self._active()
        if self.cbar is not None:
            u = uniform(Key(net.seed, Stream.LINKS, t, ASYNC_CALL), net.rows, 1)[:, 0]
            avail = torch.as_tensor(u, device=net.device, dtype=net.dtype) * self.cbar < 1.0   # P = 1/cbar
            edge = torch.as_tensor(np.bincount(self._src_np[pos], minlength=net.n_local) > 0, device=net.device)
            awake = (avail | edge).to(net.dtype)[:, None]
            drift = state["drift"]
            X.sub_(drift * awake * lam)                    # catch up the deferred -eta lambda drift
            drift.mul_(1 - awake)
        g = self.problem.grad(X, t)
        if self.cbar is not None:
            g = g * (avail.to(net.dtype) * self.cbar)[:, None]       # c_i * cbar_i: unbiased
        if cfg.weight_decay:
            g = g.add(X, alpha=cfg.weight_decay)
        if cfg.momentum:
            g = state["momentum"].mul_(cfg.momentum).add_(g)
        src, S_in, [(sent, got)] = self._exchange(t, pos, [X])
        C = self._laplacian(src, S_in, sent, got, X)                     # L_t(X^t)
        upd = g.mul(alpha).add_(lam, alpha=eta).add_(C, alpha=cfg.gamma)
        if self.cbar is not None:
            X.sub_(upd * awake)
            state["drift"].add_((1 - awake) * eta)
        else:
            X.sub_(upd)                                                     # (4a)
        if cfg.dual_update == "paper":
            lam.add_(C, alpha=cfg.beta)                                     # (4b)
        else:                                                               # own x^{t+1}, neighbour x^t
            lam.add_(scatter_rows(X, src, torch.where(S_in, X[src], 0.0) - got), alpha=cfg.beta)
        return state


class FSPDAStorm(FSPDA):
    """FSPDA-STORM (see the module docstring)."""

    name = "fspda_storm"
    blocks = 2

    def init(self, x0):
        z = torch.zeros_like(x0)
        return {"x": x0.clone(), "x_prev": x0.clone(), "lam": z, "m": z.clone(), "u": z.clone()}

    def step(self, state, t):
        cfg = self.cfg
        X, Xp, lam, m, u = state["x"], state["x_prev"], state["lam"], state["m"], state["u"]
        alpha = cfg.step_size(t)
        g = self.problem.grad(X, t)                     # same minibatch (keyed on t) ...
        if cfg.weight_decay:
            g = g.add(X, alpha=cfg.weight_decay)
        src, S_in, [(s1, r1), (s2, r2)] = self._exchange(t, self._active(), [X, Xp])
        q = self._laplacian(src, S_in, s1, r1, X)
        qt = self._laplacian(src, S_in, s2, r2, Xp)
        d = g.mul(alpha).add_(lam, alpha=cfg.eta).add_(q, alpha=cfg.gamma)
        if t == 0:
            m.copy_(d)
            u.copy_(q)
        else:
            gp = self.problem.grad(Xp, t)               # ... at x^{t-1} (not needed at t = 0)
            if cfg.weight_decay:
                gp = gp.add(Xp, alpha=cfg.weight_decay)
            dt = gp.mul(alpha).add_(lam, alpha=cfg.eta).add_(qt, alpha=cfg.gamma)
            m.sub_(dt).mul_(1 - cfg.storm_momentum).add_(d)
            u.sub_(qt).mul_(1 - cfg.storm_dual_momentum).add_(q)
        Xp.copy_(X)
        X.sub_(m)
        lam.add_(u, alpha=cfg.beta)
        return state
