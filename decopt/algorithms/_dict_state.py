"""TRANSITION (issue 16), deleted after the merge: gives the ``rows()`` of a typed ``State`` to the
dict states of algorithms not yet converted (their ``arc_state`` names the arc rows)."""
from __future__ import annotations

import functools


class DictState(dict):
    def rows(self) -> dict[str, str]:
        return {k: "arc" if k in getattr(self.algo, "arc_state", ()) else "agent" for k in self}

    @property
    def x(self):
        return self["x"]


def adapt(cls, **kw):
    """``Algorithm.__init_subclass__``: wrap a subclass's ``init`` so a dict comes back as a DictState."""
    init = cls.__dict__.get("init")
    if init is None:
        return

    @functools.wraps(init)
    def wrapped(self, x0):
        state = init(self, x0)
        if isinstance(state, dict) and not isinstance(state, DictState):
            state = DictState(state)
            state.algo = self
        return state

    cls.init = wrapped
