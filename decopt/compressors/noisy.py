"""``noisy``: a channel around another compressor (ticopd.md §2.2 and §4, robust TiCoPD [C2]).

Every *transmitted* value of the inner message gets i.i.d. noise, uniform(-sigma, sigma)
(``noise=uniform``, the authors' code) or N(0, sigma^2) (``noise=gaussian``): only the
entries the inner codec actually sends (the k kept entries of a sparsifier, all d entries of
a quantizer or dense message, none of an empty gossip message). With ``erasure=q`` a
message is lost with probability q (its bits are still charged: it was transmitted).

``mode=sender`` (default, as in [C2]): the sender adds the noise *before* it updates its own
public copy, so sender and receivers hold identical copies; an erasure is known to both ends
(like an acknowledged loss) and turns the message into zero on both. ``mode=receiver``: only
the receiver sees the noise and the loss (``compress_split`` returns the clean message as the
sender's view); on ``Network.exchange`` each arc gets its own draw, on ``broadcast`` all
holders share one decoded copy per sender, so the two modes coincide there.

Noise and losses are keyed ``(seed, NOISE, t, call)`` at the message's row, so the receiver
re-derives them from the key instead of receiving them: the payload and its bits are the
inner codec's. Advertised: ``delta = (1 - q) * delta_inner`` for the noise-free part, plus an
additive ``noise_var(d) = sigma^2 / 3 (uniform) or sigma^2 (gaussian)`` per sent entry:
E||Q(x) - x||^2 <= (1 - delta) ||x||^2 + noise_var(d). The inner codec's numerics hold
(saturation, finite decoding); the noise is added to its finite values, and a payload is checked
as the inner codec checks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import rng
from ..errors import ConfigError
from ..lazy import torch
from ..registry import register
from ..rng import Key, Stream
from .base import Compressor


NOISES = ("uniform", "gaussian")
MODES = ("sender", "receiver")


@dataclass
class NoisyConfig:
    """noisy channel around another compressor: pick it with
    compressor/inner=<none|topk|randk|qsgd|sign|gossip> and tune it with compressor.inner.<key>=...

    ``inner``: the wrapped compressor (config group ``compressor/inner``); ``noise``:
    uniform | gaussian; ``sigma`` >= 0: half-width (uniform) or standard deviation;
    ``erasure`` in [0, 1): probability a message is lost; ``mode``: sender | receiver."""

    name: str = "noisy"
    inner: Any = None
    noise: str = "uniform"  # uniform(-sigma, sigma) | gaussian N(0, sigma^2), on every transmitted value
    sigma: float = 1e-3             # sigma >= 0: half-width (uniform) or standard deviation (gaussian) of the noise
    erasure: float = 0.0  # probability a message is lost (its bits are still charged)
    mode: str = "sender"  # sender: noise added before the sender updates its copy; receiver: receiver only

    def check(self) -> None:
        if self.noise not in NOISES:
            raise ConfigError(f"compressor.noise={self.noise}: choose one of {', '.join(NOISES)}")
        if not self.sigma >= 0:
            raise ConfigError(f"compressor.sigma={self.sigma}: must be >= 0")
        if not 0 <= self.erasure < 1:
            raise ConfigError(f"compressor.erasure={self.erasure}: must be in [0, 1) (probability a message is lost)")
        if self.mode not in MODES:
            raise ConfigError(f"compressor.mode={self.mode}: choose one of {', '.join(MODES)}")
        self.inner = typed_inner(self.inner)


def typed_inner(node):
    """The inner compressor's typed, checked config (a dict, a DictConfig or a schema object)."""
    from . import SCHEMAS
    from .identity import IdentityConfig

    if node is None:
        return IdentityConfig()
    if hasattr(node, "check") and not isinstance(node, dict) and not hasattr(node, "_get_node"):
        obj = node
    else:
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
        name = data.get("name")
        allowed = [n for n in SCHEMAS if n != "noisy"]
        if name not in allowed:
            raise ConfigError(f"compressor.inner={name}: choose one of {', '.join(allowed)}")
        from ..schema import typed

        try:
            return typed("compressor.inner", data, SCHEMAS[name])
        except ConfigError as exc:
            raise ConfigError(_inner_key(str(exc))) from None
    try:
        obj.check()
    except ConfigError as exc:
        raise ConfigError(_inner_key(str(exc))) from None
    return obj


def _inner_key(msg: str) -> str:
    if msg.startswith("compressor.") and not msg.startswith("compressor.inner."):
        return "compressor.inner." + msg[len("compressor."):]
    return msg


class Noisy(Compressor):
    name = "noisy"

    @classmethod
    def from_config(cls, cfg: NoisyConfig, dtype_bits: int, segments=None) -> "Noisy":
        """The channel around the compressor ``cfg.inner`` describes."""
        from . import build_compressor

        return cls(cfg, build_compressor(typed_inner(cfg.inner), dtype_bits, segments))

    def __init__(self, cfg, inner: Compressor):
        self.inner = inner
        self.noise, self.sigma, self.erasure, self.mode = cfg.noise, float(cfg.sigma), float(cfg.erasure), cfg.mode
        self.unbiased = inner.unbiased and self.erasure == 0
        self.needs_key = inner.needs_key or self.sigma > 0 or self.erasure > 0

    def delta(self, d: int) -> float:
        return (1.0 - self.erasure) * self.inner.delta(d)

    def noise_var(self, d: int) -> float:
        """Bound on the added squared error: per-entry variance times d."""
        per = self.sigma ** 2 / 3 if self.noise == "uniform" else self.sigma ** 2
        return per * d

    def _draw(self, key: Key, rows, n: int, d: int, device):
        nkey = Key(key.seed, Stream.NOISE, key.t, key.call)
        half = (d + 1) // 2
        width = 1 + (0 if self.sigma == 0 else (d if self.noise == "uniform" else 2 * half))
        u = rng.uniform(nkey, rows, width, device=device)
        lost = u[:, 0] < self.erasure
        noise = None
        if self.sigma > 0:
            z = 2.0 * u[:, 1:] - 1.0 if self.noise == "uniform" else rng.box_muller(u[:, 1:], d)
            noise = self.sigma * z
        return lost, noise

    def plan(self, V, key, rows):
        n, d = V.shape
        lost, noise = self._draw(key, rows, n, d, V.device)
        return {"inner": self.inner.plan(V, key, rows), "lost": lost, "noise": noise, "n": n}

    def bits(self, plan):
        return self.inner.bits(plan["inner"])

    def _view(self, plan, d, dtype, device, channel: bool):
        out = self.inner.values(plan["inner"], d, dtype, device)
        if not channel:
            return out
        if plan["noise"] is not None:
            z = plan["noise"].to(device=device, dtype=dtype)
            sup = self.inner.support(plan["inner"], d, device)
            out = out + (z if sup is None else torch.where(sup, z, torch.zeros((), dtype=dtype, device=device)))
        if self.erasure > 0:
            out = torch.where(plan["lost"].to(device)[:, None], torch.zeros((), dtype=dtype, device=device), out)
        return out

    def values(self, plan, d, dtype, device):
        return self._view(plan, d, dtype, device, True)

    def support(self, plan, d, device):
        return self.inner.support(plan["inner"], d, device)

    def compress_split(self, V, key, rows):
        p = self.plan(V, key, rows)
        d = V.shape[1]
        recv = self._view(p, d, V.dtype, V.device, True)
        sent = recv if self.mode == "sender" else self._view(p, d, V.dtype, V.device, False)
        return sent, recv, self.bits(p)

    def pack(self, plan, i):
        return self.inner.pack(plan["inner"], i)

    def check_finite(self, plan):
        self.inner.check_finite(plan["inner"])

    def unpack(self, payload, d, key, row):
        ip = self.inner.unpack(payload, d, key, row)
        lost, noise = self._draw(key, [row], 1, d, "cpu")
        return {"inner": ip, "lost": lost, "noise": noise, "n": 1}


register("compressor", "noisy", NoisyConfig, Noisy)
