"""DSGD with greedy deployment (Li, Yau, Wai, NeurIPS 2022) for multi-agent performative prediction.

At iteration t (paper eq. (5), runner index t = paper t)::

    Z_i ~ D_i(theta_i^t)                                   # deploy the own pre-mixing iterate, sample
    theta^{t+1} = W theta^t - gamma_{t+1} grad_theta l(theta^t; Z)   # Z held fixed: no dZ/dtheta
    gamma_t = a0 / (a1 + t)

The sample gradient is taken with the induced data fixed (``problem.sample`` then
``problem.sample_grad``), so the method targets the performatively stable point theta_PS, not the
performative optimum. On a problem whose data do not react to the model it is plain DSGD with
the diminishing step. Messages are the exact iterates (a compressor other than ``none`` gives
neighbours Q(theta_j), as in ``dsgd``).

Fused steps (``fused_steps``): when the sample gradient is affine in the iterate, a X + c_t
(``problem.affine_grad``, e.g. Gaussian mean estimation) and messages are exact on static links,
eq. (5) is the affine recursion theta^{t+1} = W theta^t - (gamma_{t+1} a) theta^t - gamma_{t+1} c_t,
which the runner advances many iterations per call in a NumPy loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..compressors import Identity
from .base import Algorithm
from .copies import check_positive


@dataclass
class DSGDGDConfig:
    """gamma_t = a0 / (a1 + t). Theory wants a0 * mu_tilde >= 2 with mu_tilde = mu - eps_avg L
    (1 - eps_avg for Gaussian mean estimation, so a0 >= 20 at eps_avg = 0.9) and gamma_1 <= 0.5."""

    name: str = "dsgd_gd"
    a0: float = 25.0
    a1: float = 50.0

    def check(self) -> None:
        check_positive("algo", a0=self.a0, a1=self.a1)

    def step_size(self, t: int) -> float:
        return self.a0 / (self.a1 + t)


class DSGDGD(Algorithm):
    name = "dsgd_gd"
    links = "any"
    DENSE_MAX = 64              # agents up to which the fused path applies a dense W

    def init(self, x0):
        return {"x": x0.clone()}

    def gradient(self, x, t):
        """Phase 1: deploy x_i, draw Z_i ~ D_i(x_i); the sample gradient at x with Z fixed
        (``Performative.grad``; a plain problem's stochastic gradient otherwise)."""
        return self.problem.grad(x, t)

    def step(self, state, t):
        x = state["x"]
        g = self.gradient(x, t)
        sent = self.net.broadcast(x, self.compressor)
        mixed = self.net.mix(sent, own=None if sent is x else x)
        state["x"] = mixed.sub_(g, alpha=self.cfg.step_size(t + 1))
        return state

    def fused_steps(self):
        """The affine recursion above (``Algorithm.fused_steps``), four in-place NumPy ops per
        iteration on a view of the state: y = W x - gamma c_t, x = y - (gamma a) x. Only where it is
        ``step``'s trajectory: a problem with ``affine_grad``, the stacked backend on CPU in float64
        with at most DENSE_MAX agents, static links, and the identity codec in float64 (the message
        is x itself). Every round is the same static broadcast: counted ``count`` times at once."""
        net, comp = self.net, self.compressor
        affine = getattr(self.problem, "affine_grad", None)
        if not (affine is not None and net.backend == "stacked" and net.device.type == "cpu"
                and net.dtype == torch.float64 and net.n <= self.DENSE_MAX and net.links.static
                and type(comp) is Identity and comp.wire_torch == net.dtype):
            return None
        n, d = net.n, self.problem.d
        W = net.mix(torch.eye(n, dtype=net.dtype)).numpy()          # W exactly as step applies it
        bits = comp.fixed_bits(n, d * comp.precision)
        y = np.empty((n, d))
        dot, mul, sub = np.dot, np.multiply, np.subtract

        def advance(state, t, count):
            x, end = state["x"].numpy(), t + count
            with np.errstate(all="ignore"):            # as torch: overflow gives inf, caught at evaluations
                while t < end:
                    a, c = affine(t, end - t)
                    gamma = self.cfg.step_size(np.arange(t + 1, t + 1 + len(c), dtype=np.float64))[:, None, None]
                    for ga, gc in zip(gamma * a.numpy(), gamma * c.numpy()):
                        dot(W, x, out=y)
                        sub(y, gc, out=y)
                        mul(ga, x, out=x)
                        sub(y, x, out=x)
                    t += len(c)
            net.count_broadcasts(bits, count)
            return state

        return advance
