"""Public copies: the compressed gossip of CHOCO, BEER, DoCoM and TiCoPD.

A public copy ``h_i`` (CHOCO's x-hat, BEER's H and G, DoCoM's theta-hat and g-hat) is held by
agent i and every neighbour and changes only by the compressed messages i sends, so all holders
stay bit-identical. The methods need only the gossip direction ``E = (W - I) H``, which each agent
keeps from the messages it receives, ``e_i += sum_j W_ij (q_j - q_i)``: the state holds local rows.
"""
from __future__ import annotations

from ..compressors.sparse import add_
from ..lazy import torch
from ..schema import check_choice, check_range


def check_copy_init(value) -> None:
    check_choice("algo.copy_init", value, ("zero", "x0"), "where the copies start: 0 or the common x0")


def check_copy_keys(cfg) -> None:
    """The keys of CHOCO, BEER and DoCoM: ``gamma``, ``momentum``, ``copy_init``, ``variant``."""
    check_range("algo", "> 0", gamma=cfg.gamma)
    check_range("algo", "in [0, 1)", momentum=cfg.momentum)
    check_copy_init(cfg.copy_init)
    check_choice("algo.variant", cfg.variant, ("paper", "pytorch"))     # pytorch: the authors' "parallel" code


def copy_start(cfg, x0: torch.Tensor) -> torch.Tensor | None:
    """The copies' start that ``algo.copy_init`` names: x0, or None for 0. x0 must be the same row
    at every agent (``Problem.x0`` is) so that every holder knows it without talking."""
    if cfg.copy_init != "x0":
        return None
    if len(x0) > 1 and not bool((x0 == x0[:1]).all()):
        raise ValueError("algo.copy_init=x0 needs the same starting point at every agent")
    return x0


def init_copy(like: torch.Tensor, start: torch.Tensor | None = None):
    """A public copy ``(h, e)``: h = ``start`` (identical rows, so e = (W - I) h = 0 exactly) or 0."""
    h = torch.zeros_like(like) if start is None else start.clone()
    return h, torch.zeros_like(like)


def init_arc_copies(like: torch.Tensor, start: torch.Tensor | None, src: torch.Tensor):
    """One copy per local out-arc i -> j, as the sender (``out``) and the receiver (``in``) hold it:
    0, or the sender's row of ``start`` (``src``: the sender row per arc)."""
    h = like.new_zeros(len(src), like.shape[1]) if start is None else start[src]
    return h, h.clone()


def push(net, compressor, delta: torch.Tensor, h: torch.Tensor, e: torch.Tensor) -> None:
    """One message round: every agent sends ``Q(delta_i)``; ``h += q``, ``e += (W - I) q`` (sparse
    halos touch only the kept entries)."""
    q = net.broadcast(delta, compressor, sparse=True)
    add_(h, q[: net.n_local])
    net.gossip_into(e, q)
