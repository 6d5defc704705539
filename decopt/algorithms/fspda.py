"""FSPDA-SA: Fully Stochastic Primal-Dual Algorithm (Yau, Liu & Wai, arXiv 2410.18774; v1
"FSPDA"), specs/fspda.md §2.2, the paper's eqs. (4a)-(4b)::

    X^{t+1}      = X^t - alpha G^t - eta Lambda^t - gamma L_t(X^t)          (4a)
    Lambda^{t+1} = Lambda^t + beta L_t(X^t)                                 (4b)
    [L_t(X)]_i   = sum_{(i,j) in E^t} S_ij^t ⊙ (x_i - x_j)

E^t: the active edges of ``graph.links``; S_ij^t: a random-k mask shared by both endpoints
(``masked_gossip``). ``k_rule=code`` is the code's float rounding of k_l (P4: 7,948 vs 7,951 kept
on the MNIST MLP at r = 0.9).

Official-code options ([C2] ``pcode/optim/fspda.py``, §2.3), off by default: ``momentum``,
``weight_decay``, ``eta_follows_lr`` and ``dual_update=official`` (lambda_i += beta sum_j S ⊙
(x_i^{t+1} - x_j^t); breaks sum_i lambda_i = 0). ``shared_mask=false`` is the ablation of
pitfall P2; ``async_cbar`` the asynchronous mode of §2.4 (``asynchrony``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..lazy import torch
from ..schema import check_choice, check_range
from .asynchrony import Asynchrony, check_cbar
from .base import StepSize, agent_rows
from .primal_dual import MaskedPrimalDual, PrimalDualState


@dataclass
class FSPDAKeys(StepSize):
    """The keys of FSPDA-SA (``fspda``) and FSPDA-STORM (``fspda_storm``)."""

    lr: float = 0.05  # alpha: gradient step; code --lr
    eta: float = 0.01  # eta: dual weight in the primal step, 0 = dual off (eta << alpha on sparse graphs); code --eta
    gamma: float = 0.5  # gamma: consensus/penalty step on masked coordinates; 0.5 = exact pairwise average
    beta: float = 1.0  # beta: dual ascent step (dual gain eta*beta); code --beta
    mask_ratio: float = 0.1  # 1 - r: fraction kept per active edge (code --compress_ratio r = 0.9); 1 = dense
    k_rule: str = "exact"  # per-layer k: exact floor(d_l (1 - r)) | code: the official int(d_l * (1 - r)) in floats
    shared_mask: bool = True  # both endpoints use the same mask (false: one per arc, the ablation of pitfall P2)
    weight_decay: float = 0.0  # mu: L2 weight added to the gradient (code 1e-4); 0 = the paper

    def check(self) -> None:
        super().check()
        check_range("algo", ">= 0", eta=self.eta, beta=self.beta, weight_decay=self.weight_decay)
        check_range("algo", "> 0", gamma=self.gamma)
        check_range("algo", "in (0, 1]", mask_ratio=self.mask_ratio)
        check_choice("algo.k_rule", self.k_rule, ("exact", "code"))


@dataclass
class FSPDAConfig(FSPDAKeys):
    """FSPDA-SA (Yau, Liu & Wai, arXiv 2410.18774): fully stochastic primal-dual, masked gossip."""

    name: str = "fspda"
    dual_update: str = "paper"  # paper: beta S(x_i^t - x_j^t) (4b) | official: beta S(x_i^{t+1} - x_j^t) as in the code
    momentum: float = 0.0  # heavy ball on the gradient (code default 0.9); 0 = the paper
    eta_follows_lr: bool = False  # code: eta_t = eta * lr_t / lr (matters under a schedule)
    async_cbar: list[float] | None = None  # async: [cbar] or cbar_i per agent; gradient w.p. 1/cbar_i, scaled by cbar_i

    def check(self) -> None:
        super().check()
        check_choice("algo.dual_update", self.dual_update, ("paper", "official"))
        check_range("algo", "in [0, 1)", momentum=self.momentum)
        if self.async_cbar is not None:
            check_cbar(self.async_cbar)
            if self.momentum or self.weight_decay:
                raise ConfigError("algo.async_cbar: the asynchronous model is plain SGD; set algo.momentum=0 "
                                  "and algo.weight_decay=0")


@dataclass(eq=False)
class FSPDAState(PrimalDualState):
    """+ the deferred dual drift (a column; asynchronous mode) and the heavy-ball buffer."""

    drift: torch.Tensor = agent_rows()
    momentum: torch.Tensor = agent_rows()


class FSPDA(MaskedPrimalDual):
    name = "fspda"
    config = FSPDAConfig

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.asynchrony = None if cfg.async_cbar is None else Asynchrony(cfg.async_cbar, net)

    def init(self, x0) -> FSPDAState:
        self._work = torch.empty_like(x0)                   # alpha G + eta Lambda, kept between steps
        drift = None if self.asynchrony is None else x0.new_zeros(len(x0), 1)     # sum of eta_t while idle
        return self.init_state(x0, FSPDAState, drift=drift)

    def iterate(self, state):
        return state.x if state.drift is None else state.x - state.drift * state.lam      # caught up

    def step(self, state, t):
        cfg, asynchrony = self.cfg, self.asynchrony
        X, lam = state.x, state.lam
        alpha = cfg.step_size(t)
        eta = cfg.eta * alpha / cfg.lr if cfg.eta_follows_lr else cfg.eta
        if asynchrony is not None:                          # catch up the woken agents' deferred drift
            weight, awake = asynchrony.wake(state, t)
        g = self.problem.grad(X, t)
        if asynchrony is not None:
            g = g * weight                                  # c_i cbar_i: unbiased
        g = self.direction(g, X, state)
        rnd = self.gossip.round(t, [X])
        C = rnd.laplacian(X)                                                    # L_t(X^t), sparse
        upd = torch.mul(g, alpha, out=self._work).add_(lam, alpha=eta)     # alpha G + eta Lambda
        if asynchrony is not None:                          # an agent with an active edge is awake
            asynchrony.defer(upd, state.drift, awake, eta)
        C.add_to(X.sub_(upd), -cfg.gamma)                                       # (4a)
        if cfg.dual_update == "paper":
            C.add_to(lam, cfg.beta)                                             # (4b)
        else:                                                                   # own x^{t+1}, neighbour x^t
            rnd.received(X).add_to(lam, cfg.beta)
        return state
