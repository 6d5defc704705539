"""A config node typed against its dataclass schema, with one-line errors naming the key.

The config layer types every group with ``typed``; a component whose config nests another
(``compressor.inner``) types the nested one the same way, without the config layer.
"""
from __future__ import annotations

import math
from dataclasses import fields, is_dataclass

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError

INT_LIMIT = 2 ** 63            # every integer key is below it in magnitude (numpy/torch int64); seeds in [0, 2^63)


def one_line(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()
    return msg[0] if msg else type(exc).__name__


def typed(group: str, node, schema) -> object:
    """``node`` (a DictConfig or a dict) as a checked ``schema`` object: an unknown key, a value of
    the wrong type, a number that is not finite or beyond int64, or a failed ``check()`` is a
    one-line ConfigError naming ``group.key``."""
    data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    known = {f.name for f in fields(schema)}
    for key in data:
        if key not in known:
            where = f"{group}={data.get('name')}" if group != "run" else "run"
            raise ConfigError(f"{group}.{key}: unknown key for {where}; known keys: {', '.join(sorted(known))}")
    try:
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), data))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(f"{group}.{key}: {one_line(exc)}") from None
    for key, value in numbers(group, obj):
        check_number(key, value)
    obj.check()
    return obj


def numbers(prefix: str, obj):
    """``(key, value)`` of every number in a config dataclass: its fields, list entries
    (``key[i]``) and nested configs (``compressor.inner``); bools are not numbers here."""
    for f in fields(obj):
        key, value = f"{prefix}.{f.name}", getattr(obj, f.name)
        if is_dataclass(value):
            yield from numbers(key, value)
        elif isinstance(value, (list, tuple)) and not all(isinstance(item, str) for item in value):   # names: run.loggers
            yield from _list_numbers(key, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield key, value


def _list_numbers(key: str, values):
    """``(key[i], value)`` of a list of numbers, or of lists of numbers (``problem.zbar``: a row per agent)."""
    for i, item in enumerate(values):
        if isinstance(item, (list, tuple)):
            yield from _list_numbers(f"{key}[{i}]", item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ConfigError(f"{key}[{i}]={item}: must be a number")
        else:
            yield f"{key}[{i}]", item


def check_number(key: str, value) -> None:
    """Every numeric key is finite (NaN and inf pass no ``x < 0`` check) and fits int64."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value}: must be a finite number")
    if isinstance(value, int) and not -INT_LIMIT < value < INT_LIMIT:
        raise ConfigError(f"{key}={value}: must be within (-2^63, 2^63)")


RANGES = {                      # check_range's rules, named as its message says them
    "> 0": lambda v: v > 0,
    ">= 0": lambda v: v >= 0,   # 0 turns a term off
    ">= 1": lambda v: v >= 1,
    "in (0, 1]": lambda v: 0 < v <= 1,
    "in [0, 1)": lambda v: 0 <= v < 1,
    "in (0, 2]": lambda v: 0 < v <= 2,
}


def check_range(prefix: str, rule: str, **values) -> None:
    """Every value within ``rule`` (a key of RANGES), or None (an optional key left null):
    ``check_range("algo", "> 0", lr=cfg.lr)``."""
    for key, v in values.items():
        if v is not None and not RANGES[rule](v):
            raise ConfigError(f"{prefix}.{key}={v}: must be {rule}")


def check_choice(key: str, value, choices, why: str = "") -> None:
    """``value`` is one of ``choices``: ``check_choice("algo.variant", cfg.variant, VARIANTS)``."""
    if value not in choices:
        raise ConfigError(f"{key}={value}: choose one of {', '.join(choices)}" + (f" ({why})" if why else ""))
