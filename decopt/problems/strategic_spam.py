"""Strategic spam classification (Li, Yau, Wai 2022, Exp. B): logistic regression with a ridge
term on UCI Spambase where each agent's users respond to its deployed model.

    l(theta; (x, y)) = log(1 + exp(<x, theta>)) - y <x, theta> + (reg / 2) ||theta||^2,  y in {0, 1}

A user of population i with base sample (x, y) reports x + eps_i theta_i (best response of a
linear utility with quadratic cost; note the plus sign), y unchanged; a constant bias feature, when
used, is not shifted. DSGD-GD draws ``batch_size`` base samples uniformly from agent i's training
shard (keyed (seed, BATCH, t, agent) in the iteration-major layout, drawn for a block of
iterations at once) and shifts them by eps_i theta_i.

Per-agent parameters. In the paper's model (specs/dsgd_gd.md §4.2) population i differs from the
others only by its base data D_i^o (here agent i's shard of the seed's iid split) and its
sensitivity eps_i, which sets its users' cost of moving, ||x' - x||^2 / (2 eps_i); the loss,
beta and the strategic features (all but a constant bias, when used) are shared. By default
eps_i = eps_mean (1 + eps_spread u_i), u_i evenly spaced in [-1, 1] (the paper's {0.4, ..., 1.6}
eps_avg, [S]); a given instance is posed with ``problem.eps=[eps_1, ..., eps_n]`` (finite, >= 0:
eps_i = 0 is a population that does not respond), one per agent of ``graph.n``, and theta_PS
(``ps_error``) is that instance's.

Metrics: ``loss`` / ``grad_norm_sq`` are f(xbar; xbar) and ||grad f(xbar; xbar)||^2 on the training
data shifted by xbar itself; ``accuracy`` on the held-out set shifted by eps_avg xbar;
``ps_error`` = ||xbar - theta_PS||^2 when repeated risk minimisation (Newton, at set-up) converges.
Data: the ``data_dir`` key (null: ``$DECOPT_DATA/spambase``); preprocessing as in
``spambase_logistic`` (``features`` 48 word frequencies, standardised).

``replicas=R`` runs R independent copies as the column blocks of one iterate (d = R dim): replica r
splits the training set over the agents and draws its samples with the keys of ``run.seed + r``
(the split depends on the seed; the test set does not), so it is the ``replicas=1`` run with that
seed, to rounding. Per-replica metrics ``<name>_r<k>`` (``Problem.replicas``); unsuffixed, sums
over the replicas, except ``accuracy``, their mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..host import numpy_view
from ..lazy import scipy, torch
from ..registry import register
from ..rng import Key, Stream, integers_steps
from . import datasets
from .partition import partition
from .base import ProblemConfig
from .performative import Performative, check_per_agent, sensitivities
from .spambase import spambase_split


@dataclass
class StrategicSpamConfig(ProblemConfig):
    """Strategic spam classification (Li, Yau & Wai 2022): logistic + ridge on Spambase, users shift features
    by +eps_i theta_i (best response); metrics on data shifted by the evaluated theta.

    eps_mean: eps_avg; eps_spread: eps_i = eps_mean (1 + spread u_i), u_i evenly in [-1, 1]
    ({0.4, ..., 1.6} eps_avg for 25 agents); eps: explicit per-agent list eps_i (overrides both);
    reg: ridge weight (beta in the paper); batch_size: base samples per agent per iteration;
    test_fraction: held-out share (3:1 in the paper: 138 training e-mails per agent for 25 agents);
    replicas: independent copies run as one (replica r = seed run.seed + r, see the module docstring)."""

    name: str = "strategic_spam"
    data_dir: str | None = None  # folder with spambase.data (null: $DECOPT_DATA/spambase)
    eps_mean: float = 0.1  # eps_avg in {0.01, 0.1, 1} in the paper
    eps_spread: float = 0.6  # eps_i = eps_avg (1 + spread u_i): {0.4, ..., 1.6} eps_avg
    eps: list | None = None  # explicit list of eps_i >= 0, one per agent of graph.n, overrides the two above
    reg: float = 0.01  # beta: ridge weight
    batch_size: int | None = 1  # base samples per agent per iteration (null = full local shard)
    features: int = 48  # 48 word_freq columns (the paper's d) or all 57
    standardize: bool = True  # z-score with the training split's statistics
    bias: bool = False  # append a constant (not shifted) feature
    test_fraction: float = 0.25  # 3:1 split: 138 training e-mails per agent for 25 agents
    rrm_iterations: int = 100  # repeated risk minimisation steps for theta_PS (ps_error only if it converges)
    replicas: int = 1  # independent copies run as one: replica r = the run with run.seed + r

    def check(self) -> None:
        if self.eps_mean < 0 or self.eps_spread < 0:
            raise ConfigError("problem.eps_mean and problem.eps_spread must be >= 0")
        if self.reg < 0:
            raise ConfigError(f"problem.reg={self.reg}: must be >= 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"problem.batch_size={self.batch_size}: must be >= 1 or null (full local data)")
        if self.features not in (48, 57):
            raise ConfigError(f"problem.features={self.features}: choose 48 (word frequencies) or 57 (all)")
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"problem.test_fraction={self.test_fraction}: must be in [0, 1)")
        if self.replicas < 1:
            raise ConfigError(f"problem.replicas={self.replicas}: must be >= 1")
        check_per_agent("problem.eps", self.eps, low=0.0)
        datasets.check_spambase(self.data_dir)

    def footprint(self, n: int, batch: int) -> tuple[int, int]:
        """``(d, floats)`` for n agents and a minibatch of ``batch``: a lower bound for ``config.check_memory``."""
        d = (self.features + self.bias) * self.replicas
        return d, n * max(batch, 1) * d                               # one iteration's samples


class StrategicSpam(Performative):
    SAMPLE_VALUES = 1 << 16         # sample indices drawn per block (iterations x agents x replicas x batch)

    def __init__(self, cfg: StrategicSpamConfig, net, seed):
        super().__init__(net, seed)
        xtr, ytr, xte, yte = spambase_split(cfg.data_dir, cfg.features, cfg.standardize, cfg.bias,
                                            cfg.test_fraction)
        R = self.replicas = cfg.replicas
        shards = [partition("iid", ytr, net.n, seed + r) for r in range(R)]
        self.m = min(len(p) for p in shards[0])                          # equal shards (138 for n = 25)
        # the training rows of local agent i in replica r: (n_local, R, m)
        self._rows = torch.as_tensor(np.stack([[np.sort(parts[i])[: self.m] for parts in shards] for i in net.rows]),
                                     device=self.device)
        as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)
        self._xtr, self._ytr = as_t(xtr), as_t(ytr)                      # samples are gathered from these
        self.A, self.y = self._xtr[self._rows], self._ytr[self._rows]    # (n_local, R, m, dim), (n_local, R, m)
        self.A_test, self.y_test = as_t(xte), as_t(yte)
        self.dim, self.batch_size, self.reg = xtr.shape[1], cfg.batch_size, cfg.reg
        self.d = R * self.dim
        shift = np.ones(self.dim)
        if cfg.bias:
            shift[-1] = 0.0                                              # the constant is not strategic
        self.shift = as_t(shift)
        eps = sensitivities(net.n, net.rows, cfg.eps_mean, cfg.eps_spread, cfg.eps)
        self.eps = as_t(eps)[:, None]
        self._eps_shift = (self.eps * self.shift)[:, None, :].expand(net.n_local, R, self.dim).contiguous()  # eps_i s
        self.eps_avg = float(net.sum(torch.as_tensor(eps)[:, None])[0]) / net.n
        self._block_len = max(1, self.SAMPLE_VALUES // (net.n_local * R * (self.batch_size or 1)))
        self._block_index = None
        ps = [self._rrm(self.A[:, r], self.y[:, r], cfg.rrm_iterations) for r in range(R)]
        self.theta_ps = None if any(p is None for p in ps) else torch.cat(ps)

    # --- the two phases -------------------------------------------------------------------
    def _block(self, t):
        """``(rows, labels, at)``: the samples of the block of iterations holding t, as training-set
        rows and their labels, shape (block, n_local, R, batch_size), and t's place in the block.
        Replica r's indices into agent i's shard are keyed (seed + r, BATCH, t, agent) in the
        iteration-major layout (``rng.integers_steps``); blocks start at multiples of their length,
        so any resume or rank draws the same."""
        i, at = divmod(t, self._block_len)
        if i != self._block_index:
            steps = range(i * self._block_len, (i + 1) * self._block_len)
            idx = torch.stack([integers_steps(Key(self.seed + r, Stream.BATCH), steps, self.net.rows, self.batch_size,
                                              self.net.n, self.m, device=self.device)
                               for r in range(self.replicas)], dim=2)
            rows = torch.take_along_dim(self._rows[None], idx, dim=3)
            self._block_index, self._block_rows, self._block_labels = i, rows, self._ytr[rows]
        return self._block_rows, self._block_labels, at

    def sample(self, X, t):
        """Base samples (the full shard when ``batch_size`` is None), shifted by eps_i x_i:
        (features, labels) of shapes (n_local, R, b, dim), (n_local, R, b)."""
        if self.batch_size is None:
            A, y = self.A, self.y
        else:
            rows, labels, at = self._block(t)
            A, y = self._xtr[rows[at]], labels[at]
        return A + (self._eps_shift * X.view(self._eps_shift.shape))[:, :, None, :], y

    def sample_grad(self, X, Z):
        return self._terms(X, *Z)[1]

    def _terms(self, X, A, y):
        """Per agent and replica losses (n_local, R) and the gradients (n_local, d) of l at X on the
        samples (A, y)."""
        x = X.view(len(X), self.replicas, self.dim)
        z = torch.einsum("nrbd,nrd->nrb", A, x)
        loss = (torch.nn.functional.softplus(z) - y * z).mean(2) + 0.5 * self.reg * (x * x).sum(2)
        coef = (torch.sigmoid(z) - y) / A.shape[2]
        return loss, (torch.einsum("nrbd,nrb->nrd", A, coef) + self.reg * x).reshape(X.shape)

    def loss_grad(self, X):
        return self._terms(X, self.A + (self._eps_shift * X.view(self._eps_shift.shape))[:, :, None, :], self.y)

    def descent_kernel(self, t: int, count: int, scale, x, y):
        """``Problem.descent_kernel``: x <- y - scale_j grad l(x; Z) for the samples of iterations
        t + j (to the end of t's block), the math of ``sample`` + ``sample_grad`` in ten in-place array
        ops per iteration on buffers allocated once per call: a = A_Z + eps_i s x_i, z = <a, x_i>,
        c = scale_j / b (sigmoid(z) - y_Z), y -= sum_b c a (torch's broadcasting addcmul: 2x NumPy's
        multiply + subtract here), x <- y - scale_j reg x."""
        n, R, dim = len(x), self.replicas, self.dim
        xv, yv, x4 = x.reshape(n, R, dim), y.reshape(n, R, dim), x.reshape(n, R, 1, dim)
        full = self.batch_size is None
        if full:
            k, b, A, labels = count, self.m, numpy_view(self.A), numpy_view(self.y)
        else:
            rows, labels, at = self._block(t)
            k, b, data = min(count, len(rows) - at), self.batch_size, numpy_view(self._xtr)
            rows, labels = numpy_view(rows[at:at + k]), numpy_view(labels[at:at + k])
        es = numpy_view(self._eps_shift)                 # (n, R, dim): NumPy's broadcasting loops are slower
        a, s, z = np.empty((n, R, b, dim)), np.empty((n, R, dim)), np.empty((n, R, b))
        s4, zr = s[:, :, None, :], z[:, :, None, :]
        ty, ta0, tz = torch.from_numpy(yv), torch.from_numpy(a[:, :, 0]), torch.from_numpy(z)
        sb, sr = scale[:k] / b, scale[:k] * self.reg
        take, add, sub, mul, vecdot, matmul, addcmul, expit = (np.take, np.add, np.subtract, np.multiply, np.vecdot,
                                                                np.matmul, torch.addcmul, scipy.special.expit)

        def step(j):
            mul(es, xv, out=s)
            if full:
                add(A, s4, out=a)
            else:
                take(data, rows[j], axis=0, out=a, mode="clip")      # rows are in range: no bounds pass
                add(a, s4, out=a)
            vecdot(a, x4, out=z)
            expit(z, out=z)
            sub(z, labels if full else labels[j], out=z)
            mul(z, sb[j], out=z)
            if b == 1:
                addcmul(ty, ta0, tz, value=-1.0, out=ty)
            else:
                matmul(zr, a, out=s4)
                sub(yv, s, out=yv)
            mul(xv, sr[j], out=xv)
            sub(yv, xv, out=xv)

        return k, step

    # --- theta_PS: repeated risk minimisation, then Newton on the stability condition -------
    def _rrm(self, A0, y, iterations: int):
        """theta_PS solves G(theta) = grad_1 f(theta; theta) = 0. A few repeated-risk-minimisation
        steps theta^{k+1} = argmin_theta f(theta; theta^k) (each a Newton solve) bring theta near it
        (RRM alone contracts slowly when eps_avg L / mu is near 1), then Newton's method on G itself,
        whose Jacobian includes the data's dependence on theta. None when this does not converge
        (no unique stable point is guaranteed for large eps). ``A0``, ``y``: one replica's shards,
        (n_local, m, dim) and (n_local, m)."""
        net, n, m, dim = self.net, self.net.n, self.m, self.dim
        A0, y = A0.double(), y.double().reshape(-1)
        es = (self.eps * self.shift).double()                             # (n_local, dim): eps_i s
        eye = torch.eye(dim, dtype=torch.float64, device=self.device)
        mean = lambda v: net.allreduce(v) / (n * m)
        shifted = lambda at: (A0 + (es * at)[:, None, :]).reshape(-1, dim)   # the samples, (n_local m, dim)

        def newton(theta, data_at):
            """argmin_x f(x; data_at) (data_at = theta for RRM) or the root of G (data_at = None)."""
            x = theta.clone()
            fixed = None if data_at is None else shifted(data_at)
            for _ in range(60):
                A = shifted(x) if fixed is None else fixed
                s = torch.sigmoid(A @ x)
                r, Aw = s - y, A * (s * (1 - s))[:, None]
                g = mean(A.T @ r) + self.reg * x
                J = mean(A.T @ Aw) + self.reg * eye
                if data_at is None:                                       # d/dtheta of the shifted data
                    J = J + mean(Aw.view(-1, m, dim).sum(1).T @ (es * x))
                    J = J + torch.diag(mean(r.view(-1, m).sum(1) @ es))
                step = torch.linalg.solve(J, g)
                x = x - step
                if not torch.isfinite(x).all() or float(x.norm()) > 1e6:
                    return None
                if float(step.norm()) < 1e-13 * (1 + float(x.norm())):
                    return x
            if data_at is not None or float(g.norm()) < 1e-10:         # RRM steps may stay inexact
                return x
            return None

        theta = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for _ in range(min(iterations, 10)):
            theta = newton(theta, theta)
            if theta is None:
                return None
        theta = newton(theta, None)
        return None if theta is None else theta.to(self.dtype)

    def extra_metrics(self, xbar, loss):
        """``accuracy`` on the test set shifted by eps_avg xbar (with replicas: ``accuracy_r<k>`` and
        their mean), ``ps_error`` (with replicas: ``ps_error_r<k>`` and their sum)."""
        xb = xbar.view(self.replicas, self.dim)
        z = (self.A_test[None] + self.eps_avg * (xb * self.shift)[:, None, :]) @ xb[:, :, None]
        acc = ((z[:, :, 0] > 0).to(self.dtype) == self.y_test).to(self.dtype).mean(1)
        row = {"accuracy": float(acc.mean()), **self.per_replica("accuracy", acc)}
        if self.theta_ps is not None:
            ps = ((xbar - self.theta_ps) ** 2).view(self.replicas, self.dim).sum(1)
            row.update({"ps_error": float(ps.sum()), **self.per_replica("ps_error", ps)})
        return row


register("problem", "strategic_spam", StrategicSpamConfig, StrategicSpam)
