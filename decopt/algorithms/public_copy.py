"""Public copies: the compressed-gossip mechanism of CHOCO, BEER, DoCoM and TiCoPD.

A *public copy* ``h_i`` (CHOCO's x-hat, BEER's H and G, DoCoM's theta-hat and g-hat) is held by
agent i and by every neighbour, and changes only by the compressed messages agent i sends, so all
holders stay bit-identical. The algorithms never need a neighbour's copy itself, only the gossip
direction ``e_i = sum_j W_ij (h_j - h_i)``, i.e. ``E = (W - I) H``, which each agent keeps up to
date from the decoded messages it receives: ``e_i += sum_j W_ij (q_j - q_i)``. The state therefore
holds local rows only (``h`` and ``e``), on every backend.
"""
from __future__ import annotations

import lazy_loader as lazy

from ..compressors.sparse import add_
from .checks import check_choice, check_positive
from .transforms import check_momentum

torch = lazy.load("torch")

COPY_INIT = ("zero", "x0")
VARIANTS = ("paper", "pytorch")     # the paper's order | the authors' PyTorch code ("parallel": previous copies)


def check_copy_init(value) -> None:
    check_choice("algo.copy_init", value, COPY_INIT,
                 "where the compressed copies start: 0 or the common starting point x0")


def check_copy_keys(cfg) -> None:
    """The keys of the compressed-gossip methods (CHOCO, BEER, DoCoM): ``gamma`` > 0, ``momentum``,
    ``copy_init`` and ``variant``."""
    check_positive("algo", gamma=cfg.gamma)
    check_momentum(cfg.momentum)
    check_copy_init(cfg.copy_init)
    check_choice("algo.variant", cfg.variant, VARIANTS)


def copy_start(cfg, x0: torch.Tensor) -> torch.Tensor | None:
    """The copies' initial value that ``algo.copy_init`` names: x0 (``x0``) or None for 0 (``zero``).
    ``x0`` must be the common starting point, the same row at every agent (``Problem.x0`` is), so
    that every holder knows the copy without talking; rows that differ raise ValueError (checked on
    this process's rows)."""
    if cfg.copy_init != "x0":
        return None
    if len(x0) > 1 and not bool((x0 == x0[:1]).all()):
        raise ValueError("algo.copy_init=x0 needs the same starting point at every agent")
    return x0


def init_copy(like: torch.Tensor, start: torch.Tensor | None = None):
    """A public copy ``(h, e = (W - I) h)`` that every holder can start without talking: h = ``start``
    (a common starting point, see ``copy_start``: identical rows, so e = 0 exactly) or 0. Which one
    is the algorithm's ``copy_init`` key, never the rounding of a network mean."""
    h = torch.zeros_like(like) if start is None else start.clone()
    return h, torch.zeros_like(like)


def init_arc_copies(like: torch.Tensor, start: torch.Tensor | None, src: torch.Tensor):
    """One copy per local out-arc i -> j, as the sender (``out``) and the receiver (``in``) hold it,
    equal at the start: 0, or the sender's row of ``start`` (``src``: the sender row per arc)."""
    h = like.new_zeros(len(src), like.shape[1]) if start is None else start[src]
    return h, h.clone()


def push(net, compressor, delta: torch.Tensor, h: torch.Tensor, e: torch.Tensor) -> None:
    """One message round: every agent sends ``Q(delta_i)``; ``h += q``, ``e += (W - I) q``. The
    halo of decoded messages comes sparse where the codec keeps a few entries per row (top-k,
    rand-k), so both updates touch only those; remote senders' messages enter ``e`` exactly as
    decoded."""
    q = net.broadcast(delta, compressor, sparse=True)
    add_(h, q[: net.n_local])
    net.gossip_into(e, q)
