"""TiCoPD: Two-timescale Compressed Primal-Dual (Liu, Yau & Wai), specs/ticopd.md.

Two algorithms, two registry names:

* ``ticopd`` (P1, ICASSP 2025; authors' slide eqs. (9a)-(9c), code [C1]): static graph,
  **node-wise mirror** x̂_i. Per iteration, with s_i = (L X̂)_i kept as a running aggregate::

      c_i      = Q(x_i - x̂_i)                               # the only message: one broadcast
      x_i     <- x_i - alpha_t (g_i + lambda_i + theta s_i)                 (9a)
      lambda_i <- lambda_i + eta s_i                                        (9b, dual on the mirror)
      x̂_i     <- x̂_i + gamma c_i ;  s_i <- s_i + gamma (deg_i c_i - sum_{j~i} c_j)   (9c)

  Compression uses x^t before the primal step; the primal and dual steps use L X̂^t before
  the mirror step ([C1] order). Lambda^0 = 0 (so sum_i lambda_i = 0 for ever); X̂^0 = 0 by
  default as in [C1] (specs/ticopd.md pitfall 9), or x^0 with ``copy_init=x0`` (s^0 = 0).
  Options: ``dual_on=x`` is the slide's literal (9b), lambda += eta L X^t; it needs the
  neighbours' *exact* iterates, sent as one extra uncompressed broadcast (counted in bits).
  ``beta < 1`` is [C1]'s pull x_i <- beta x_i + (1 - beta) x̂_i before the primal step
  (gradient still taken at x_i^t). ``momentum``/``weight_decay`` reproduce the codebase's
  heavy ball and L2 on the gradient (both off by default; never applied to lambda).

* ``ticopd_robust`` (P2, IEEE TSP 2025; code [C2]): random links, **edge-wise mirrors** (one
  pair per directed edge), noisy compression through the ``compressor`` (e.g. ``noisy``
  around ``topk``). Agent i keeps, per out-arc i -> j, ``xhat_out`` = x̂_{i->j} (its own
  mirror as j holds it) and ``xhat_in`` = x̂_{j->i} (j's mirror)::

      D_i      = sum_{j in N_i^t} (x̂_{i->j} - x̂_{j->i})          # active edges (random_lap)
      x_i     <- x_i - alpha_t (g_i + lambda_i) - alpha_0 theta D_i
      lambda_i <- lambda_i + eta D_i
      m_{i->j} = Q(x_i^{t+1} - x̂_{i->j})  on every active edge, both directions
      x̂_{i->j} <- x̂_{i->j} + gamma m_{i->j} ;  x̂_{j->i} <- x̂_{j->i} + gamma m_{j->i}

  The compressed message is of the post-update iterate ([C2] order). Sender and receiver
  apply the same (noisy) decoded message, so both copies of every mirror stay identical.
  Mirrors start at 0 ([C2]; ``copy_init=x0``: at the common x^0).
  ``random_lap=false`` sums D_i over all neighbours (stale mirrors on inactive edges).
  ``penalty_lr=initial`` is [C2]'s theta * lr_0 (the penalty does not follow the schedule);
  ``scheduled`` uses alpha_t. On a static graph every edge is active every iteration.

State layout: every tensor has one row per *local agent* except ``TiCoPDRobust.arc_state``
(``xhat_out``, ``xhat_in``), which have one row per local out-arc, in ``net.out_arcs`` order
(arc 2e = i -> j, 2e + 1 = j -> i of edge e = (i, j), i < j). Checkpoints / MPI gathering
must treat those keys as arc rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..compressors.identity import Identity
from ..errors import ConfigError
from .base import Algorithm, StepSize
from .public_copy import check_copy_init, copy_start

DUAL_ON = ("xhat", "x")
PENALTY_LR = ("initial", "scheduled")


@dataclass
class _TiCoPDCommon(StepSize):
    """Shared keys. ``lr`` = alpha (primal, slow), ``eta`` (dual ascent, slow), ``theta``
    (augmented-Lagrangian penalty weight), ``gamma`` (mirror step, fast: alpha / gamma << 1),
    ``copy_init``: zero | x0, the mirrors' start (zero: [C1], [C2])."""

    lr: float = 0.05
    eta: float = 0.05
    theta: float = 1.0
    gamma: float = 1.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    copy_init: str = "zero"

    def check(self) -> None:
        self.check_step()
        check_copy_init(self.copy_init)
        if self.eta < 0:
            raise ConfigError(f"algo.eta={self.eta}: must be >= 0 (0 turns the dual off)")
        if self.theta < 0:
            raise ConfigError(f"algo.theta={self.theta}: must be >= 0")
        if not 0 < self.gamma <= 2:
            raise ConfigError(f"algo.gamma={self.gamma}: the mirror step must be in (0, 2]")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"algo.momentum={self.momentum}: must be in [0, 1)")
        if self.weight_decay < 0:
            raise ConfigError(f"algo.weight_decay={self.weight_decay}: must be >= 0")


@dataclass
class TiCoPDConfig(_TiCoPDCommon):
    """P1. ``dual_on``: ``xhat`` (default, implementable; [C1]) or ``x`` (slide's literal (9b),
    one extra exact broadcast per iteration). ``beta``: [C1]'s pull toward the mirror (1 = off)."""

    name: str = "ticopd"
    dual_on: str = "xhat"
    beta: float = 1.0

    def check(self) -> None:
        super().check()
        if self.dual_on not in DUAL_ON:
            raise ConfigError(f"algo.dual_on={self.dual_on}: choose one of {', '.join(DUAL_ON)}")
        if not 0 < self.beta <= 1:
            raise ConfigError(f"algo.beta={self.beta}: must be in (0, 1] (1 = no pull toward the mirror)")


@dataclass
class TiCoPDRobustConfig(_TiCoPDCommon):
    """P2 ([C2]). ``random_lap``: Laplacian over active edges only (default) or over all
    neighbours with stale mirrors. ``penalty_lr``: ``initial`` ([C2], theta * lr_0) or
    ``scheduled`` (theta * alpha_t)."""

    name: str = "ticopd_robust"
    random_lap: bool = True
    penalty_lr: str = "initial"

    def check(self) -> None:
        super().check()
        if self.penalty_lr not in PENALTY_LR:
            raise ConfigError(f"algo.penalty_lr={self.penalty_lr}: choose one of {', '.join(PENALTY_LR)}")


def scatter_rows(like, idx, vals):
    """``out[idx[a]] += vals[a]`` into a zero tensor shaped like ``like`` (arcs -> agent rows).
    ``index_put_(accumulate=True)``: ``index_add_`` opens an OpenMP region per call, which is
    orders of magnitude slower on tiny tensors when the cores are shared."""
    return torch.zeros_like(like).index_put_((idx,), vals, accumulate=True)


def _gradient(algo, state, X, t):
    """g = grad F(X) (+ weight decay); heavy ball ``buf = mu buf + g`` when momentum > 0."""
    cfg = algo.cfg
    g = algo.problem.grad(X, t)
    if cfg.weight_decay:
        g = g.add(X, alpha=cfg.weight_decay)
    if cfg.momentum:
        buf = state["momentum"]
        buf.mul_(cfg.momentum).add_(g)
        return buf
    return g


class _PrimalDual(Algorithm):
    def init(self, x0):
        """x^0, zeros for the dual Lambda and the aggregate (L x̂), the node-wise mirror x̂ at
        ``copy_init`` (0, or the common x^0, whose L x̂ is 0)."""
        z = torch.zeros_like(x0)
        start = copy_start(self.cfg, x0)
        xhat = z.clone() if start is None else start.clone()
        state = {"x": x0.clone(), "lam": z.clone(), "xhat": xhat, "lxhat": z.clone()}
        return self._optional(state, x0)

    def _optional(self, state, x0):
        if self.cfg.momentum:
            state["momentum"] = torch.zeros_like(x0)
        return state

    def metrics(self, state):
        s = self.net.sum(state["lam"])
        return {"dual_sum": float(s.norm())}


class TiCoPD(_PrimalDual):
    """P1: node-wise mirror on a static graph (see the module docstring)."""

    name = "ticopd"
    config = TiCoPDConfig
    links = "static"

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam, xhat, lxhat = state["x"], state["lam"], state["xhat"], state["lxhat"]
        halo = net.broadcast(X - xhat, self.compressor)        # c_j = Q(x_j - x̂_j), local rows first
        if cfg.dual_on == "x":                                 # literal (9b): exact L X^t
            dual_dir = net.laplacian(net.broadcast(X, self._exact()))
        else:
            dual_dir = lxhat
        g = _gradient(self, state, X, t)
        if cfg.beta != 1.0:
            X.mul_(cfg.beta).add_(xhat, alpha=1.0 - cfg.beta)
        X.sub_(g.add(lam).add_(lxhat, alpha=cfg.theta), alpha=self.cfg.step_size(t))   # (9a)
        lam.add_(dual_dir, alpha=cfg.eta)                                                 # (9b)
        xhat.add_(halo[: net.n_local], alpha=cfg.gamma)                                  # (9c)
        lxhat.add_(net.laplacian(halo), alpha=cfg.gamma)
        return state

    def _exact(self):
        if not hasattr(self, "_identity"):
            self._identity = Identity(64 if self.net.dtype == torch.float64 else 32)
        return self._identity


class TiCoPDRobust(_PrimalDual):
    """P2: edge-wise mirrors, random links, (noisy) compressed messages per active arc."""

    name = "ticopd_robust"
    config = TiCoPDRobustConfig
    links = "any"
    arc_state = ("xhat_out", "xhat_in")

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        src, _ = net.graph.arcs
        self._src_np = src[net.out_arcs] - net.rows.start                # local sender row per out-arc
        self._src = torch.as_tensor(self._src_np, device=net.device)
        self._edge = net.out_arcs >> 1

    def init(self, x0):
        z = torch.zeros_like(x0)
        start = copy_start(self.cfg, x0)
        arcs = x0.new_zeros(len(self.net.out_arcs), x0.shape[1]) if start is None else start[self._src]
        state = {"x": x0.clone(), "lam": z, "xhat_out": arcs, "xhat_in": arcs.clone()}
        return self._optional(state, x0)

    def _arc_mask(self):
        """0/1 column over local out-arcs: active this iteration (all ones on static links)."""
        act = self.net.active
        if act is None:
            return None
        return torch.as_tensor(act[self._edge], device=self.net.device, dtype=self.net.dtype)[:, None]

    def step(self, state, t):
        cfg, net = self.cfg, self.net
        X, lam, a, b = state["x"], state["lam"], state["xhat_out"], state["xhat_in"]
        on = self._arc_mask()
        diff = a - b
        if on is not None and cfg.random_lap:
            diff.mul_(on)
        D = scatter_rows(X, self._src, diff)                              # ~ sum_j (x_i - x_j)
        g = _gradient(self, state, X, t)
        alpha = cfg.step_size(t)
        pen = (cfg.lr if cfg.penalty_lr == "initial" else alpha) * cfg.theta
        X.sub_(g.add(lam), alpha=alpha).sub_(D, alpha=pen)
        lam.add_(D, alpha=cfg.eta)
        M = X[self._src] - a                                              # x_i^{t+1} - x̂_{i->j}
        recv = net.exchange(M, self.compressor)                          # M <- what was sent
        a.add_(M, alpha=cfg.gamma)
        b.add_(recv, alpha=cfg.gamma)
        return state
