"""FSPDA: Fully Stochastic Primal-Dual Algorithm (Yau, Liu & Wai, arXiv 2410.18774), specs/fspda.md.

Two registry names:

* ``fspda`` (FSPDA-SA; v1 "FSPDA"). Default = the paper's eqs. (4a)-(4b)::

      X^{t+1}      = X^t - alpha G^t - eta Lambda^t - gamma L_t(X^t)          (4a)
      Lambda^{t+1} = Lambda^t + beta L_t(X^t)                                 (4b)
      [L_t(X)]_i   = sum_{(i,j) in E^t} S_ij^t ⊙ (x_i - x_j)

  E^t are the active edges of ``graph.links`` (``one_edge``, ``bernoulli``, or every edge on a
  static graph, the p = 1 case of the paper's ablation) and S_ij^t a random-k coordinate mask
  **shared by both endpoints** of the active edge: drawn from the key (seed, t, edge)
  (``rng.sample``), so no index is sent; each direction carries the k kept values of x
  (``bits`` counts k x value-bits per direction per active edge; values travel in
  ``compressor=none``'s precision, fp64 in float64 runs). Only those values are gathered,
  exchanged and scattered back: beyond the gradient, a step costs O(active edges x k).
  ``run.bits_convention=paper`` adds the int64 indices the official code sends once per active
  edge, 64 k bits (specs/fspda.md P12, decopt.comm.network; on every arc with
  ``shared_mask=false``).
  ``algo.mask_ratio`` is the kept fraction 1 - r of the code's ``--compress_ratio r`` (per
  parameter tensor, no rescaling); ``mask_ratio=1`` exchanges every coordinate. The mask is part
  of the algorithm (the random selection I(xi) of the extended graph), so ``compressor`` must
  stay ``none``. ``algo.k_rule`` sets k_l: ``exact`` (default; specs/fspda.md §2.1's
  k_l = max(1, floor(d_l (1 - r))) in exact arithmetic) or ``code`` (the official
  ``pcode/utils/sparsification.py``: ``max(1, int(d_l * (1 - r)))`` in floating point, with
  r = 1 - mask_ratio; specs/fspda.md P4). They differ where d_l (1 - r) is an integer that float
  rounding puts just below it: on the MNIST MLP at r = 0.9, 7,951 (exact) vs 7,948 (code).

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

from ..errors import ConfigError
from ..rng import Key, Stream, sample, uniform
from .base import StepSize
from .ticopd import _PrimalDual

MASK_CALL = 0x6D61736B          # "mask": call id of the shared-mask draw (seed, COMPRESS, t, MASK_CALL)
ASYNC_CALL = 0x6173796E         # "asyn": call id of the gradient-availability draw (LINKS stream)
DUAL_UPDATES = ("paper", "official")
K_RULES = ("exact", "code")


def keep_counts(segments, ratio: float, rule: str = "exact") -> list[int]:
    """Coordinates kept per parameter tensor (d_l when ratio = 1). ``exact``: k_l =
    max(1, floor(d_l * ratio)), float error of the product forgiven; ``code``: the official code's
    ``max(1, int(d_l * (1 - r)))`` in floating point with r = 1 - ratio (its --compress_ratio)."""
    if ratio >= 1:
        return list(segments)
    if rule == "code":
        r = 1.0 - ratio
        return [max(1, int(d * (1.0 - r))) for d in segments]
    return [max(1, int(d * ratio + 1e-9)) for d in segments]


class CoordinateMasks:
    """Random-k coordinate masks S^t, per parameter tensor (k_l of d_l), keyed on (seed, t, id),
    id = the undirected edge (shared by both endpoints) or the arc: a receiver derives the sender's
    mask, so a message is just the k kept values (``k * precision`` bits, no indices). Held as
    sorted index rows ``(len(ids), k)`` (``indices``)."""

    def __init__(self, seed: int, segments, ratio: float, rule: str = "exact"):
        self.seed, self.segments = seed, list(segments)
        self.d = sum(self.segments)
        self.kept = keep_counts(self.segments, ratio, rule)
        self.k = sum(self.kept)

    def _draw(self, t: int, ids: np.ndarray) -> np.ndarray:
        parts, off = [], 0
        for s, (d_l, k_l) in enumerate(zip(self.segments, self.kept)):
            key = Key(self.seed, Stream.COMPRESS, t, MASK_CALL + s)
            parts.append(off + (np.broadcast_to(np.arange(d_l), (ids.size, d_l)) if k_l == d_l
                                else sample(key, ids, d_l, k_l)))
            off += d_l
        return np.concatenate(parts, axis=1)

    def indices(self, t: int, ids, device=None) -> torch.Tensor:
        """Kept coordinates (len(ids), k) of iteration t for global ids, ascending per row."""
        ids, inverse = np.unique(np.asarray(ids, dtype=np.int64).ravel(), return_inverse=True)
        return torch.as_tensor(self._draw(t, ids)[inverse], device=device)

    def masks(self, t: int, ids) -> torch.Tensor:
        """The same masks as booleans (len(ids), d)."""
        idx = self.indices(t, ids)
        return torch.zeros(idx.shape[0], self.d, dtype=torch.bool).scatter_(1, idx, True)


# --- configs ------------------------------------------------------------------------------


@dataclass
class _FSPDACommon(StepSize):
    """``lr`` = alpha (gradient step), ``eta`` (dual weight in the primal step), ``gamma``
    (penalty / consensus step on masked coordinates; 0.5 = exact pairwise average), ``beta``
    (dual ascent step; effective dual gain eta * beta), ``mask_ratio`` (kept fraction 1 - r),
    ``k_rule`` (exact | code: how k_l is rounded, see the module docstring)."""

    lr: float = 0.05  # alpha: gradient step; code --lr
    eta: float = 0.01  # eta: dual weight in the primal step; code --eta (eta << alpha on sparse graphs)
    gamma: float = 0.5  # gamma: consensus/penalty step on masked coordinates; 0.5 = exact pairwise average
    beta: float = 1.0  # beta: dual ascent step (dual gain eta*beta); code --beta
    mask_ratio: float = 0.1  # 1 - r: fraction kept per active edge (code --compress_ratio r = 0.9); 1 = dense
    k_rule: str = "exact"  # per-layer k: exact floor(d_l (1 - r)) | code: the official int(d_l * (1 - r)) in floats
    shared_mask: bool = True  # both endpoints use the same mask (false: ablation of pitfall P2)
    weight_decay: float = 0.0  # mu: L2 added to the gradient (code 1e-4); 0 = the paper

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
        if self.k_rule not in K_RULES:
            raise ConfigError(f"algo.k_rule={self.k_rule}: choose one of {', '.join(K_RULES)}")
        if self.weight_decay < 0:
            raise ConfigError(f"algo.weight_decay={self.weight_decay}: must be >= 0")


@dataclass
class FSPDAConfig(_FSPDACommon):
    """FSPDA-SA (Yau, Liu, Wai; arXiv 2410.18774, eqs. 4a-4b): random active edges (graph.links), a random-k
    coordinate mask shared by both endpoints of each active edge (keyed on (seed, t, edge), no indices
    sent; keep compressor=none, whose precision sets the value width). X <- X - alpha G - eta Lambda -
    gamma L_t(X);   Lambda <- Lambda + beta L_t(X).

    FSPDA-SA; defaults are the paper's (4a)-(4b) with plain SGD."""

    name: str = "fspda"
    dual_update: str = "paper"  # paper: beta S(x_i^t - x_j^t) (4b) | official: beta S(x_i^{t+1} - x_j^t) as in the code
    momentum: float = 0.0  # heavy ball on the gradient (code default 0.9); 0 = the paper
    eta_follows_lr: bool = False  # code: eta_t = eta * lr_t / lr (matters under a schedule)
    async_cbar: list[float] | None = None  # async: [cbar] or cbar_i per agent; gradient w.p. 1/cbar_i, scaled by cbar_i

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
    """FSPDA-STORM (arXiv 2410.18774 v2; code fspda_storm.py): STORM recursions on the primal update and the
    dual direction; two gradients on the same minibatch (at x^t and x^{t-1}), two masked vectors per
    direction per active edge (same shared mask). d = alpha g(x^t) + eta lambda + gamma q;  m = d + (1 -
    a)(m - dtil);  x <- x - m q = L_t(X^t);  u = q + (1 - b)(u - qtil);  lambda <- lambda + beta u.

    FSPDA-STORM; ``storm_momentum`` = a, ``storm_dual_momentum`` = b (1 = plain SGDA)."""

    name: str = "fspda_storm"
    storm_momentum: float = 0.1  # a: primal STORM weight (1 = no variance reduction); code --storm_momentum
    storm_dual_momentum: float = 0.1  # b: dual STORM weight (1 = off); code --storm_dual_momentum

    def check(self) -> None:
        super().check()
        for key in ("storm_momentum", "storm_dual_momentum"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"algo.{key}={getattr(self, key)}: must be in (0, 1]")


# --- algorithms ---------------------------------------------------------------------------


class FSPDA(_PrimalDual):
    """FSPDA-SA (see the module docstring)."""

    name = "fspda"
    config = FSPDAConfig
    links = "any"
    no_compressor = "sparsifies with its own shared mask (algo.mask_ratio)"

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.draw = CoordinateMasks(net.seed, problem.segments, cfg.mask_ratio, cfg.k_rule)
        src, _ = net.graph.arcs
        self._src_np = src[net.out_arcs] - net.rows.start
        self._src = torch.as_tensor(self._src_np, device=net.device)
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
    def _exchange(self, t, Vs):
        """Each active out-arc i -> j carries v_i on its mask for each V in ``Vs``: the k kept
        values only (``compact`` exchange). Returns the flat positions ``i * d + c`` of the kept
        coordinates of what was sent and of what was received (the same when masks are shared),
        and [(sent, received) values per V], all (active out-arcs, k)."""
        net, k, d = self.net, self.draw.k, Vs[0].shape[1]
        pos = net.active_out()
        arcs = net.out_arcs[pos]
        src = self._src[torch.as_tensor(pos, device=net.device)][:, None] * d
        if self.cfg.shared_mask:
            flat_out = flat_in = src + self.draw.indices(t, arcs >> 1, net.device)
        else:                                             # own mask per arc; the reverse arc's on receipt
            idx = self.draw.indices(t, np.concatenate([arcs, arcs ^ 1]), net.device)
            flat_out, flat_in = src + idx[:len(arcs)], src + idx[len(arcs):]
        take = lambda V: V.view(-1).index_select(0, flat_out.view(-1)).view(flat_out.shape)
        M = take(Vs[0]) if len(Vs) == 1 else torch.cat([take(V) for V in Vs], 1)
        got = net.exchange(M, self.compressor, shared=self.cfg.shared_mask, compact=True,   # M <- as sent
                           mask_entries=k)
        pairs = [(M[:, b * k:(b + 1) * k], got[:, b * k:(b + 1) * k]) for b in range(len(Vs))]
        return flat_out, flat_in, pairs

    def _masked_differences(self, flat_out, flat_in, sent, got, V):
        """L_t(V) as (flat positions, values): sum over active arcs i -> j of S ⊙ (v_i - v_j).
        Shared masks: the sent values minus the received ones (identical pair at both ends, so
        the two endpoint terms cancel exactly); unshared: own v on the coordinates received,
        minus them."""
        if self.cfg.shared_mask:
            return flat_out, sent - got
        return flat_in, V.view(-1)[flat_in] - got

    def _scratch(self, like):
        """One (n_local, d) work buffer kept between steps (saves an allocation per step)."""
        buf = getattr(self, "_buf", None)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self._buf = torch.empty_like(like)
        return buf

    @staticmethod
    def _add_sparse(V, flat, vals, alpha):
        """V += alpha * (the sparse L_t(.) given by flat positions and values), in place."""
        V.view(-1).index_add_(0, flat.reshape(-1), vals.reshape(-1), alpha=alpha)
        return V

    def _laplacian(self, flat, vals, like):
        return self._add_sparse(torch.zeros_like(like), flat, vals, 1.0)

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam = state["x"], state["lam"]
        alpha = cfg.step_size(t)
        eta = cfg.eta * alpha / cfg.lr if cfg.eta_follows_lr else cfg.eta
        if self.cbar is not None:
            u = uniform(Key(net.seed, Stream.LINKS, t, ASYNC_CALL), net.rows, 1)[:, 0]
            avail = torch.as_tensor(u, device=net.device, dtype=net.dtype) * self.cbar < 1.0   # P = 1/cbar
            edge = np.bincount(self._src_np[net.active_out()], minlength=net.n_local) > 0
            awake = (avail | torch.as_tensor(edge, device=net.device)).to(net.dtype)[:, None]
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
        flat_out, flat_in, [(sent, got)] = self._exchange(t, [X])
        flat, C = self._masked_differences(flat_out, flat_in, sent, got, X)     # L_t(X^t), sparse
        upd = torch.mul(g, alpha, out=self._scratch(g)).add_(lam, alpha=eta)
        if self.cbar is not None:                          # an agent with an active edge is awake
            upd.mul_(awake)
            state["drift"].add_((1 - awake) * eta)
        self._add_sparse(X.sub_(upd), flat, C, -cfg.gamma)                     # (4a)
        if cfg.dual_update == "paper":
            self._add_sparse(lam, flat, C, cfg.beta)                            # (4b)
        else:                                                                   # own x^{t+1}, neighbour x^t
            self._add_sparse(lam, flat_in, X.view(-1)[flat_in] - got, cfg.beta)
        return state


class FSPDAStorm(FSPDA):
    """FSPDA-STORM (see the module docstring)."""

    name = "fspda_storm"
    config = FSPDAStormConfig

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
        flat_out, flat_in, [(s1, r1), (s2, r2)] = self._exchange(t, [X, Xp])
        q = self._laplacian(*self._masked_differences(flat_out, flat_in, s1, r1, X), X)
        qt = self._laplacian(*self._masked_differences(flat_out, flat_in, s2, r2, Xp), Xp)
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
