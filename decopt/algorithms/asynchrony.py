"""Asynchrony as random gradient availability (FSPDA's slides, specs/fspda.md §2.4).

Agent i's gradient is available with probability 1 / cbar_i and rescaled by cbar_i (unbiased:
c_i cbar_i grad f_i, E[c_i] = 1 / cbar_i). An agent with neither a gradient nor an active edge is
idle: its dual drift -eta_t lambda_i is deferred in the state's ``drift`` column and applied when
it wakes.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..lazy import torch
from ..rng import Key, Stream, uniform


ASYNC_CALL = 0x6173796E         # "asyn": call id of the gradient-availability draw (LINKS stream)


def check_cbar(cbar) -> None:
    if not cbar or any(not c >= 1 for c in cbar):
        raise ConfigError(f"algo.async_cbar={cbar}: one value >= 1 for all agents or one per agent")


class Asynchrony:
    """cbar_i per local agent (one value for all, or one per agent of the network)."""

    def __init__(self, cbar, net):
        c = np.asarray(cbar, dtype=float)
        if c.size not in (1, net.n):
            raise ConfigError(f"algo.async_cbar: {c.size} values; give one, or one per agent ({net.n})")
        c = np.array(np.broadcast_to(c, (net.n,))[net.rows.start:net.rows.stop])
        self.net, self.cbar = net, torch.as_tensor(c, dtype=net.dtype, device=net.device)

    def wake(self, state, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw who has a gradient at t; agents that have one or an active edge catch up their
        deferred drift. Returns the gradient weight c_i cbar_i and the 0/1 ``awake`` column."""
        net = self.net
        u = uniform(Key(net.seed, Stream.LINKS, t, ASYNC_CALL), net.rows, 1, device=net.device)[:, 0]
        avail = u.to(net.dtype) * self.cbar < 1.0                                            # P = 1 / cbar
        edge = np.bincount(net.out_src[net.active_out()], minlength=net.n_local) > 0
        awake = (avail | torch.as_tensor(edge, device=net.device)).to(net.dtype)[:, None]
        state.x.sub_(state.drift * awake * state.lam)       # catch up the deferred -eta lambda drift
        state.drift.mul_(1 - awake)
        return (avail.to(net.dtype) * self.cbar)[:, None], awake

    @staticmethod
    def defer(update: torch.Tensor, drift: torch.Tensor, awake: torch.Tensor, eta: float) -> None:
        """Idle agents skip ``update`` (in place) and defer their dual drift eta instead."""
        update.mul_(awake)
        drift.add_((1 - awake) * eta)
