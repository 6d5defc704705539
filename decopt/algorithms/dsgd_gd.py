"""DSGD with greedy deployment (Li, Yau, Wai, NeurIPS 2022) for multi-agent performative prediction.

At iteration t (paper eq. (5), runner index t = paper t)::

    Z_i ~ D_i(theta_i^t)                                   # deploy the own pre-mixing iterate, sample
    theta^{t+1} = W theta^t - gamma_{t+1} grad_theta l(theta^t; Z)   # Z held fixed: no dZ/dtheta
    gamma_t = a0 / (a1 + t)                                # a0 = algo.lr (schedule=inverse)

The sample gradient is taken with the induced data fixed (``problem.sample`` then
``problem.sample_grad``), so the method targets the performatively stable point theta_PS, not the
performative optimum. On a problem whose data do not react to the model it is plain DSGD with
the diminishing step. Messages are the exact iterates (a compressor other than ``none`` gives
neighbours Q(theta_j), as in ``dsgd``).

Fused steps (``fused_steps``): where messages are exact on static links, eq. (5) is y = W theta^t,
then theta^{t+1} = y - gamma_{t+1} grad l(theta^t; Z^{t+1}), which the runner advances many
iterations per call: a NumPy loop where the problem has a descent kernel (``Problem.descent_kernel``:
Gaussian mean estimation, strategic spam) in float64 on the CPU, ``step``'s torch operations
without the message round otherwise (float32 included, bit for bit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..compressors import Identity
from ..host import numpy_view
from .base import Algorithm, State, StepSize


@dataclass
class DSGDGDConfig(StepSize):
    """DSGD with greedy deployment (Li, Yau & Wai 2022) for performative prediction. Pairs with
    problem=gaussian_mean. The defaults meet the theory's a0 mu_tilde >= 2, mu_tilde = mu - eps_avg L
    (1 - eps_avg for Gaussian mean estimation: a0 >= 20 at eps_avg = 0.9), and gamma_1 <= 0.5."""

    name: str = "dsgd_gd"
    lr: float = 25.0  # a_0: gamma_t = a0 / (a1 + t); want a0 (1 - eps_avg) >= 2
    schedule: str = "inverse"  # inverse: gamma_t = lr / (a1 + t), the paper's | constant: gamma_t = lr
    a1: float = 50.0  # a_1: keeps gamma_1 = a0 / (a1 + 1) <= 0.5


class DSGDGD(Algorithm):
    name = "dsgd_gd"
    config = DSGDGDConfig
    links = "any"
    DENSE_MAX = 64              # agents up to which the fused path applies a dense W

    def init(self, x0) -> State:
        return State(x=x0.clone())

    def gradient(self, x, t):
        """Phase 1: deploy x_i, draw Z_i ~ D_i(x_i); the sample gradient at x with Z fixed
        (``Performative.grad``; a plain problem's stochastic gradient otherwise)."""
        return self.problem.grad(x, t)

    def step(self, state, t):
        g = self.gradient(state.x, t)
        state.x = self.mix(state.x).sub_(g, alpha=self.cfg.step_size(t + 1))
        return state

    def fused_steps(self):
        """Many iterations per call (``Algorithm.fused_steps``) where messages are exact (the identity
        codec at the state's precision: the message is x itself) on static links of the stacked
        backend. Every round is then the same static broadcast, counted ``count`` times at once.

        * A problem with a NumPy descent kernel, on the CPU in float64 with at most DENSE_MAX agents:
          eq. (5) as a NumPy loop on a view of the state, per iteration ``np.dot(W, x, out=y)`` then
          the kernel's step x <- y - gamma_{t+1} g (the per-step trajectory to rounding).
        * Otherwise (float32, a device, another problem): ``step``'s torch operations without the
          message round, bit for bit the per-step trajectory."""
        net, comp = self.net, self.compressor
        if not (net.backend == "stacked" and net.links.static and type(comp) is Identity
                and comp.wire_torch == net.dtype):
            return None
        bits = comp.fixed_bits(net.n, self.problem.d * comp.precision)
        kernel = self.problem.descent_kernel
        if (kernel is not None and net.device.type == "cpu" and net.dtype == torch.float64
                and net.n <= self.DENSE_MAX):
            return self._numpy_steps(kernel, bits)
        grad, mix, step_size = self.gradient, net.mix, self.cfg.step_size

        def advance(state, t, count):
            x = state.x
            for s in range(t, t + count):
                g = grad(x, s)
                x = mix(x).sub_(g, alpha=step_size(s + 1))
            state.x = x
            net.count_broadcasts(bits, count)
            return state

        return advance

    def _numpy_steps(self, kernel, bits):
        """Eq. (5) as a NumPy loop on a view of the state (``fused_steps``, float64 on the CPU)."""
        net, n, d = self.net, self.net.n, self.problem.d
        W = numpy_view(net.mix(torch.eye(n, dtype=net.dtype)))          # W exactly as step applies it
        y = np.empty((n, d))
        dot = np.dot

        def advance(state, t, count):
            x, end = numpy_view(state.x), t + count
            ts = np.arange(t + 1, end + 1, dtype=np.float64)
            gamma = np.broadcast_to(self.cfg.step_size(ts), ts.shape)      # a constant lr too
            with np.errstate(all="ignore"):            # as torch: overflow gives inf, caught at evaluations
                while t < end:
                    k, step = kernel(t, end - t, gamma[count - (end - t):], x, y)
                    for j in range(k):
                        dot(W, x, out=y)
                        step(j)
                    t += k
            net.count_broadcasts(bits, count)
            return state

        return advance
