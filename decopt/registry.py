"""Every component by config group and name: the one source of the CLI choices, their Hydra
configs, ``--help`` and the README's tables.

A component module registers itself when imported: an :class:`~decopt.algorithms.Algorithm`
subclass by its ``name`` and ``config`` class attributes, a compressor, problem or graph by one
line, ``register("compressor", "topk", TopKConfig, TopK)``. The packages import all their
modules (``pkgutil``), so a file dropped into ``decopt/algorithms/`` is a choice with no edit
elsewhere; third-party modules come from the ``decopt.plugins`` entry-point group and the
``DECOPT_PLUGINS`` environment variable (comma-separated module names, read by every MPI rank).

No torch here: ``decopt.catalog`` reads the same registrations from the source for ``--help``.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from .errors import ConfigError

GROUPS = ("algo", "graph", "compressor", "problem", "backend")
PACKAGES = {"algo": "decopt.algorithms", "graph": "decopt.graphs", "compressor": "decopt.compressors",
            "problem": "decopt.problems", "backend": "decopt.config"}
ENTRY_POINTS = "decopt.plugins"
ENV = "DECOPT_PLUGINS"

# Keys renamed by the issue-16 step-size contract: group -> old key -> (new key, choices it applies to).
# The gradient step of every algorithm is ``algo.lr`` (with ``algo.schedule`` / ``algo.a1``).
RENAMED = {"algo": {
    "eta": ("lr", ("beer", "choco", "diging", "docom", "gnsd", "gt_hsgd", "swarm_sgd")),
    "a0": ("lr", ("dsgd_gd",)),
}}
STEP_NOTE = "the gradient step of every algorithm is algo.lr"


@dataclass(frozen=True)
class Entry:
    """One registered choice: its config dataclass and what builds it from a config of that schema."""

    group: str
    name: str
    schema: type
    build: object = None


_entries: dict[str, dict[str, Entry]] = {group: {} for group in GROUPS}
_plugins_loaded = False


def register(group: str, name: str, schema: type, build=None) -> None:
    """Make ``group=name`` a choice: ``schema`` is its config dataclass, ``build`` its class or factory."""
    if group not in _entries:
        raise ValueError(f"register: unknown group {group!r}; one of {', '.join(GROUPS)}")
    old = _entries[group].get(name)
    if old is not None and _origin(old.schema) != _origin(schema):            # a module imported again is fine
        raise ValueError(f"{group}={name} is registered twice: {_origin(old.schema)} and {_origin(schema)}")
    _entries[group][name] = Entry(group, name, schema, build)


def _origin(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def plugin_modules() -> list[str]:
    """Third-party component modules: ``DECOPT_PLUGINS`` (comma-separated), then the entry points."""
    names = [m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()]
    return list(dict.fromkeys(names + _entry_point_modules()))


@lru_cache(maxsize=None)
def _entry_point_modules() -> list[str]:
    """The modules of the installed ``decopt.plugins`` entry points (read from each distribution's
    entry_points.txt only: ``importlib.metadata`` would cost ``--help`` half a second)."""
    import sys
    from pathlib import Path

    found = []
    for folder in map(Path, sys.path):
        for meta in folder.glob("*.dist-info/entry_points.txt") if folder.is_dir() else ():
            text = meta.read_text(errors="replace")
            if f"[{ENTRY_POINTS}]" in text:
                section = text.split(f"[{ENTRY_POINTS}]", 1)[1].split("\n[", 1)[0]
                found += [line.split("=", 1)[1].strip().split(":")[0] for line in section.splitlines() if "=" in line]
    return found


def load_plugins() -> None:
    """Import every plugin module (once per process; a plugin registers what it defines)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in plugin_modules():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            _plugins_loaded = False
            raise ConfigError(f"{ENV}: cannot import plugin module {module!r} ({exc})") from None


def entries(group: str) -> dict[str, Entry]:
    """``{name: Entry}`` of a group: its built-in package's modules and the plugins'."""
    importlib.import_module(PACKAGES[group])
    load_plugins()
    return _entries[group]


def lookup(group: str, name: str) -> Entry:
    """The entry of ``group=name``, or a one-line ConfigError listing the choices."""
    found = entries(group)
    if name not in found:
        raise ConfigError(f"{group}={name}: choose one of {', '.join(sorted(found))}")
    return found[name]


def renamed(group: str, choice: str, key: str) -> str | None:
    """The one-line error for a key that was renamed, or None."""
    new, choices = RENAMED.get(group, {}).get(key, (None, ()))
    if choice not in choices:
        return None
    note = f" ({STEP_NOTE})" if new == "lr" and group == "algo" else ""
    return f"{group}.{key}: renamed {group}.{new} for {group}={choice}{note}"


class View(Mapping):
    """A live read-only ``{name: value}`` view of one group (``decopt.algorithms.REGISTRY``, ``SCHEMAS``)."""

    def __init__(self, group: str, value):
        self._group, self._value = group, value

    def __getitem__(self, name):
        return self._value(entries(self._group)[name])

    def __iter__(self):
        return iter(entries(self._group))

    def __len__(self):
        return len(entries(self._group))

    def __repr__(self):
        return f"View({self._group}: {', '.join(self)})"


def schemas(group: str) -> View:
    return View(group, lambda e: e.schema)
