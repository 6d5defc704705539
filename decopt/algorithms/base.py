"""Algorithm = state + step, in the spirit of optax's ``init`` + ``update``."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..comm import Network
from ..compressors import Compressor
from ..lazy import torch
from ..problems import Problem
from ..registry import register
from ..schema import check_choice, check_range
from .gradients import batch_samples


def agent_rows():
    """A state field with one row per local agent (``net.rows``)."""
    return field(default=None, metadata={"rows": "agent"})


def arc_rows():
    """A state field with one row per local out-arc (``net.out_arcs`` order)."""
    return field(default=None, metadata={"rows": "arc"})


@dataclass(eq=False)
class State(Mapping):
    """An algorithm's typed state: one field per tensor, ``agent_rows()`` or ``arc_rows()``, None
    where off in this configuration. Checkpoints, resume and MPI gathering read ``rows()``, never
    shapes; mapping access (``state["x"]``, ``items()``) covers the set fields."""

    x: torch.Tensor = agent_rows()

    def rows(self) -> dict[str, str]:
        """``{field: "agent" | "arc"}`` of the fields set in this configuration."""
        return {f.name: f.metadata["rows"] for f in fields(self) if getattr(self, f.name) is not None}

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self.rows():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self.rows())

    def __len__(self) -> int:
        return len(self.rows())


class Algorithm:
    """Holds no iterates: ``init`` builds the ``State``, ``step`` advances it. ``links``: the link
    models it is defined for (``static``, ``random`` or ``any``); ``no_compressor``: why it takes
    only ``compressor=none``, if so."""

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
        """The iterate alone, x^0 (a method with more state overrides this)."""
        return State(x=x0.clone())

    def step(self, state: State, t: int) -> State:
        raise NotImplementedError

    def fused_steps(self):
        """Optional fast path: ``advance(state, t, count)``, iterations t .. t + count - 1 in one call
        with the trajectory, bits and ledger of ``count`` ``net.begin(s)`` + ``step`` calls; or None."""
        return None

    def iterate(self, state: State) -> torch.Tensor:
        """The primal iterate X (one row per local agent) at which metrics are taken."""
        return state.x

    def mix(self, X: torch.Tensor) -> torch.Tensor:
        """W X as received: neighbours' rows through the compressor (Q(x_j)), the own row exact."""
        sent = self.net.broadcast(X, self.compressor)
        return self.net.mix(sent, own=None if sent is X else X)

    def metrics(self, state: State) -> dict:
        """Algorithm-specific metrics (e.g. the sum of duals); computed with network reductions."""
        return {}

    grads_per_step = 1          # stochastic gradient evaluations per agent per iteration

    def samples(self, t: int) -> float:
        """Gradient samples drawn by all agents in the first t iterations (the ``samples`` column)."""
        return float(self.net.n * self.grads_per_step * t * batch_samples(self.problem))


@dataclass
class StepSize:
    """``constant``: gamma_t = lr.  ``inverse``: gamma_t = lr / (a1 + t) (a0 = lr in the papers)."""

    lr: float = 0.05            # gamma: step size (gamma_t = lr, or lr / (a1 + t) with schedule=inverse)
    schedule: str = "constant"  # constant: gamma_t = lr | inverse: gamma_t = lr / (a1 + t)
    a1: float = 1.0             # a_1: offset in the inverse schedule lr / (a1 + t); unused when constant

    def check(self) -> None:
        """The step-size keys; a config's own ``check`` calls it first (``super().check()``)."""
        check_range("algo", "> 0", lr=self.lr)
        check_choice("algo.schedule", self.schedule, ("constant", "inverse"))
        if self.schedule == "inverse":
            check_range("algo", "> 0", a1=self.a1)

    def step_size(self, t: int) -> float:
        return self.lr if self.schedule == "constant" else self.lr / (self.a1 + t)
