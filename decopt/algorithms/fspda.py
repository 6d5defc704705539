"""FSPDA-SA: Fully Stochastic Primal-Dual Algorithm (Yau, Liu & Wai, arXiv 2410.18774; v1
"FSPDA"), specs/fspda.md. Default = the paper's eqs. (4a)-(4b)::

    X^{t+1}      = X^t - alpha G^t - eta Lambda^t - gamma L_t(X^t)          (4a)
    Lambda^{t+1} = Lambda^t + beta L_t(X^t)                                 (4b)
    [L_t(X)]_i   = sum_{(i,j) in E^t} S_ij^t ⊙ (x_i - x_j)

E^t are the active edges of ``graph.links`` (``one_edge``, ``bernoulli``, or every edge on a
static graph, the p = 1 case of the paper's ablation) and S_ij^t a random-k coordinate mask
**shared by both endpoints** of the active edge (``masked_gossip``: keyed on (seed, t, edge), so
no index is sent; each direction carries the k kept values of x, in ``compressor=none``'s
precision, fp64 in float64 runs). ``run.bits_convention=paper`` adds the int64 indices the
official code sends once per active edge, 64 k bits (specs/fspda.md P12; on every arc with
``shared_mask=false``). ``algo.mask_ratio`` is the kept fraction 1 - r of the code's
``--compress_ratio r`` (per parameter tensor, no rescaling); ``mask_ratio=1`` exchanges every
coordinate. The mask is part of the algorithm (the random selection I(xi) of the extended
graph), so ``compressor`` must stay ``none``. ``algo.k_rule`` sets k_l: ``exact`` (default;
specs/fspda.md §2.1's k_l = max(1, floor(d_l (1 - r))) in exact arithmetic) or ``code`` (the
official ``pcode/utils/sparsification.py``: ``max(1, int(d_l * (1 - r)))`` in floating point;
specs/fspda.md P4). They differ where d_l (1 - r) is an integer that float rounding puts just
below it: on the MNIST MLP at r = 0.9, 7,951 (exact) vs 7,948 (code).

Official-code options ([C2] ``pcode/optim/fspda.py``, spec §2.3), all off by default:
``momentum`` (heavy ball, code 0.9), ``weight_decay`` (code 1e-4), ``eta_follows_lr``
(eta_t = eta lr_t / lr) and ``dual_update=official`` (lambda_i += beta sum_j S ⊙ (x_i^{t+1} -
x_j^t): own new, neighbour old; breaks sum_i lambda_i = 0). ``shared_mask=false`` is the
ablation of pitfall P2: each endpoint draws its own mask for what it sends, and the receiver
differences on the coordinates it received. ``async_cbar`` turns on the asynchronous mode of
spec §2.4 (``asynchrony``: random gradient availability, idle agents defer their dual drift).
The variance-reduced variant is ``fspda_storm``.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from ..errors import ConfigError
from .asynchrony import Asynchrony, check_cbar
from .base import StepSize, agent_rows
from .checks import check_choice, check_nonnegative, check_positive, check_unit
from .primal_dual import MaskedPrimalDual, PrimalDualState
from .transforms import check_momentum, check_weight_decay

torch = lazy.load("torch")

DUAL_UPDATES = ("paper", "official")
K_RULES = ("exact", "code")


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
        check_nonnegative("algo", eta=self.eta, beta=self.beta)
        check_positive("algo", gamma=self.gamma)
        check_unit("algo", mask_ratio=self.mask_ratio)
        check_choice("algo.k_rule", self.k_rule, K_RULES)
        check_weight_decay(self.weight_decay)


@dataclass
class FSPDAConfig(FSPDAKeys):
    """FSPDA-SA (Yau, Liu & Wai, arXiv 2410.18774): fully stochastic primal-dual, masked gossip.
    A random-k coordinate mask per active edge (keyed, no indices sent; keep compressor=none, whose
    precision sets the value width). Defaults are the paper's (4a)-(4b) with plain SGD."""

    name: str = "fspda"
    dual_update: str = "paper"  # paper: beta S(x_i^t - x_j^t) (4b) | official: beta S(x_i^{t+1} - x_j^t) as in the code
    momentum: float = 0.0  # heavy ball on the gradient (code default 0.9); 0 = the paper
    eta_follows_lr: bool = False  # code: eta_t = eta * lr_t / lr (matters under a schedule)
    async_cbar: list[float] | None = None  # async: [cbar] or cbar_i per agent; gradient w.p. 1/cbar_i, scaled by cbar_i

    def check(self) -> None:
        super().check()
        check_choice("algo.dual_update", self.dual_update, DUAL_UPDATES)
        check_momentum(self.momentum)
        if self.async_cbar is not None:
            check_cbar(self.async_cbar)
            if self.momentum or self.weight_decay:
                raise ConfigError("algo.async_cbar: the asynchronous model is plain SGD; set algo.momentum=0 "
                                  "and algo.weight_decay=0")


@dataclass(eq=False)
class FSPDAState(PrimalDualState):
    """+ ``drift``, the deferred dual drift per agent (a column; asynchronous mode only), and the
    heavy-ball buffer (``momentum``, None when off)."""

    drift: torch.Tensor = agent_rows()
    momentum: torch.Tensor = agent_rows()


class FSPDA(MaskedPrimalDual):
    """FSPDA-SA (see the module docstring)."""

    name = "fspda"
    config = FSPDAConfig

    def __init__(self, cfg, net, problem, compressor):
        super().__init__(cfg, net, problem, compressor)
        self.asynchrony = None if cfg.async_cbar is None else Asynchrony(cfg.async_cbar, net)
        self._work = None

    def init(self, x0) -> FSPDAState:
        """x^0; Lambda^0 = 0; the heavy-ball buffer and the deferred drift where they are on."""
        drift = {} if self.asynchrony is None else self.asynchrony.init_fields(x0)
        return self.init_state(x0, FSPDAState, **drift)

    def iterate(self, state):
        return state.x if self.asynchrony is None else self.asynchrony.iterate(state)

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
        upd = torch.mul(g, alpha, out=self._buffer(g)).add_(lam, alpha=eta)     # alpha G + eta Lambda
        if asynchrony is not None:                          # an agent with an active edge is awake
            asynchrony.defer(upd, state.drift, awake, eta)
        C.add_to(X.sub_(upd), -cfg.gamma)                                       # (4a)
        if cfg.dual_update == "paper":
            C.add_to(lam, cfg.beta)                                             # (4b)
        else:                                                                   # own x^{t+1}, neighbour x^t
            rnd.received(X).add_to(lam, cfg.beta)
        return state

    def _buffer(self, like):
        """One (n_local, d) work buffer kept between steps (saves an allocation per step)."""
        if self._work is None or self._work.shape != like.shape or self._work.dtype != like.dtype:
            self._work = torch.empty_like(like)
        return self._work
