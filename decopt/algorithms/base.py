"""Algorithm = state + step, in the spirit of optax's ``init`` + ``update``."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import lazy_loader as lazy

from ..comm import Network
from ..compressors import Compressor
from ..problems import Problem
from ..registry import register
from .checks import check_choice, check_positive
from .gradients import batch_samples

torch = lazy.load("torch")

AGENT, ARC = "agent", "arc"


def agent_rows(**kw):
    """A state field with one row per local agent (``net.rows``)."""
    return field(default=None, metadata={"rows": AGENT}, **kw)


def arc_rows(**kw):
    """A state field with one row per local out-arc (``net.out_arcs`` order)."""
    return field(default=None, metadata={"rows": ARC}, **kw)


@dataclass(eq=False)
class State(Mapping):
    """An algorithm's explicit, typed state (optax's ``init`` returns one; ``update`` advances it).

    Each algorithm subclasses it with one field per tensor, declared ``agent_rows()`` or
    ``arc_rows()``; a field left None is off in this configuration (e.g. ``momentum`` at 0).
    Checkpoints, resume and MPI gathering read ``rows()``, never tensor shapes. Read-only
    mapping access (``state["x"]``, ``items()``) covers the set fields, for callers and tests."""

    x: torch.Tensor = agent_rows()

    def rows(self) -> dict[str, str]:
        """``{field: "agent" | "arc"}`` of the fields set in this configuration."""
        return {f.name: f.metadata["rows"] for f in fields(self) if getattr(self, f.name) is not None}

    def __getitem__(self, key: str) -> torch.Tensor:
        value = getattr(self, key, None) if key in self.rows() else None
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self):
        return iter(self.rows())

    def __len__(self) -> int:
        return len(self.rows())


class Algorithm:
    """Holds no iterates itself: ``init`` builds the ``State``, ``step`` advances it.

    ``links`` says which link models the method is defined for: ``"static"`` (needs every edge
    every iteration), ``"random"`` (built for random links), or ``"any"``. ``no_compressor``, when
    set, says why the method takes only ``compressor=none``. ``config.validate`` checks both.
    """

    name = "base"
    links = "any"
    no_compressor: str | None = None

    def __init_subclass__(cls, **kw):
        """A subclass that names itself (``name``, ``config``) is the choice ``algo=<name>``."""
        super().__init_subclass__(**kw)
        if "name" in cls.__dict__:
            register("algo", cls.name, cls.config, cls)

    def __init__(self, cfg, net: Network, problem: Problem, compressor: Compressor):
        self.cfg, self.net, self.problem, self.compressor = cfg, net, problem, compressor

    @classmethod
    def link_model(cls, cfg) -> str:
        """The link models this configuration is defined for (``links``; a variant may narrow it)."""
        return cls.links

    def init(self, x0: torch.Tensor) -> State:
        raise NotImplementedError

    def step(self, state: State, t: int) -> State:
        raise NotImplementedError

    def fused_steps(self):
        """Optional fast path: a function ``advance(state, t, count) -> state`` that runs iterations
        t .. t + count - 1 in one call with the trajectory (to rounding), bits and ledger of ``count``
        ``net.begin(s)`` + ``step(state, s)`` calls; None (the default) where this configuration
        has none, and the runner steps."""
        return None

    def iterate(self, state: State) -> torch.Tensor:
        """The primal iterate X (one row per local agent) at which metrics are taken."""
        return state.x

    def mix(self, X: torch.Tensor) -> torch.Tensor:
        """W X as the agents receive it: neighbours' rows through the compressor (Q(x_j)), the own
        row exact; one broadcast."""
        sent = self.net.broadcast(X, self.compressor)
        return self.net.mix(sent, own=None if sent is X else X)

    def metrics(self, state: State) -> dict:
        """Algorithm-specific metrics (e.g. the sum of duals); computed with network reductions."""
        return {}

    grads_per_step = 1          # stochastic gradient evaluations per agent per iteration

    def samples(self, t: int) -> float:
        """Gradient samples drawn by all agents in the first t iterations (the ``samples`` column):
        evaluations x minibatch (the local data size for a full batch), plus any initial batch."""
        return float(self.net.n * self.grads_per_step * t * batch_samples(self.problem))


SCHEDULES = ("constant", "inverse")


@dataclass
class StepSize:
    """``constant``: gamma_t = lr.  ``inverse``: gamma_t = lr / (a1 + t) (a0 = lr in the papers)."""

    lr: float = 0.05            # gamma: step size (gamma_t = lr, or lr / (a1 + t) with schedule=inverse)
    schedule: str = "constant"  # constant: gamma_t = lr | inverse: gamma_t = lr / (a1 + t)
    a1: float = 1.0             # a_1: offset in the inverse schedule lr / (a1 + t); unused when constant

    def check(self) -> None:
        """The step-size keys; a config's own ``check`` calls it first (``super().check()``)."""
        check_positive("algo", lr=self.lr)
        check_choice("algo.schedule", self.schedule, SCHEDULES)
        if self.schedule == "inverse":
            check_positive("algo", a1=self.a1)

    def step_size(self, t: int) -> float:
        return self.lr if self.schedule == "constant" else self.lr / (self.a1 + t)
