"""DSGD with greedy deployment (Li, Yau, Wai, NeurIPS 2022) for multi-agent performative prediction.

At iteration t (paper eq. (5), specs/dsgd_gd.md; runner index t = paper t)::

    Z_i ~ D_i(theta_i^t)                                   # deploy the own pre-mixing iterate, sample
    theta^{t+1} = W theta^t - gamma_{t+1} grad_theta l(theta^t; Z)   # Z held fixed: no dZ/dtheta
    gamma_t = a0 / (a1 + t)                                # a0 = algo.lr (schedule=inverse)

The gradient is taken with the induced data fixed (``Performative.grad``), so the method targets
the performatively stable point theta_PS, not the performative optimum; on a problem whose data do
not react to the model it is DSGD with the diminishing step.

Fused steps: with exact messages on static links (stacked backend), the runner advances many
iterations per call: a NumPy loop where the problem has a descent kernel (float64, CPU), ``step``'s
torch operations without the message round otherwise (float32 included, bit for bit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compressors import Identity
from ..host import numpy_view
from ..lazy import torch
from .base import Algorithm, StepSize


@dataclass
class DSGDGDConfig(StepSize):
    """DSGD with greedy deployment (Li, Yau & Wai 2022) for performative prediction. The defaults
    meet the theory's a0 (mu - eps_avg L) >= 2 (a0 >= 20 on gaussian_mean at eps_avg = 0.9)."""

    name: str = "dsgd_gd"
    lr: float = 25.0  # a_0: gamma_t = a0 / (a1 + t); want a0 (1 - eps_avg) >= 2
    schedule: str = "inverse"  # inverse: gamma_t = lr / (a1 + t), the paper's | constant: gamma_t = lr
    a1: float = 50.0  # a_1: keeps gamma_1 = a0 / (a1 + 1) <= 0.5


class DSGDGD(Algorithm):
    name = "dsgd_gd"
    config = DSGDGDConfig
    DENSE_MAX = 64              # agents up to which the fused path applies a dense W

    def step(self, state, t):
        g = self.problem.grad(state.x, t)                   # deploy x_i, Z_i ~ D_i(x_i), Z fixed
        state.x = self.mix(state.x).sub_(g, alpha=self.cfg.step_size(t + 1))
        return state

    def fused_steps(self):
        """Many iterations per call (``Algorithm.fused_steps``) where the message is x itself (the
        identity codec at the state's precision) on static links: every round is the same broadcast.
        Eq. (5) as a NumPy loop (y = W x, then the problem's ``descent_kernel`` step) in float64 on the
        CPU, the per-step trajectory to rounding; otherwise ``step`` without its message round."""
        net, comp, kernel = self.net, self.compressor, self.problem.descent_kernel
        if not (net.backend == "stacked" and net.links.static and type(comp) is Identity
                and comp.wire_torch == net.dtype):
            return None
        bits = comp.fixed_bits(net.n, self.problem.d * comp.precision)
        numpy_loop = (kernel is not None and net.device.type == "cpu" and net.dtype == torch.float64
                      and net.n <= self.DENSE_MAX)
        if numpy_loop:
            W = numpy_view(net.mix(torch.eye(net.n, dtype=net.dtype)))     # W exactly as step applies it
            y, dot = np.empty((net.n, self.problem.d)), np.dot

        def advance(state, t, count):
            if numpy_loop:
                x, end = numpy_view(state.x), t + count
                gamma = np.broadcast_to(self.cfg.step_size(np.arange(t + 1, end + 1, dtype=np.float64)), (count,))
                with np.errstate(all="ignore"):        # as torch: overflow gives inf, caught at evaluations
                    while t < end:
                        k, step = kernel(t, end - t, gamma[count - (end - t):], x, y)
                        for j in range(k):
                            dot(W, x, out=y)
                            step(j)
                        t += k
            else:
                for s in range(t, t + count):
                    g = self.problem.grad(state.x, s)
                    state.x = net.mix(state.x).sub_(g, alpha=self.cfg.step_size(s + 1))
            net.count_broadcasts(bits, count)
            return state

        return advance
