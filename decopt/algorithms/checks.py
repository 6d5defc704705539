"""Range checks of config values, shared by every algorithm's ``check`` (one of each kind)."""
from __future__ import annotations

from ..errors import ConfigError


def check_positive(prefix: str, **values) -> None:
    """Every value > 0: ``check_positive("algo", gamma=cfg.gamma)``."""
    for key, v in values.items():
        if v is None or not v > 0:
            raise ConfigError(f"{prefix}.{key}={v}: must be > 0")


def check_nonnegative(prefix: str, **values) -> None:
    """Every value >= 0 (0 turns its term off): penalty and dual weights."""
    for key, v in values.items():
        if v is None or v < 0:
            raise ConfigError(f"{prefix}.{key}={v}: must be >= 0")


def check_unit(prefix: str, **values) -> None:
    """Every value in (0, 1]: weights such as a momentum's beta."""
    for key, v in values.items():
        if v is None or not 0 < v <= 1:
            raise ConfigError(f"{prefix}.{key}={v}: must be in (0, 1]")


def check_choice(key: str, value, choices, why: str = "") -> None:
    """``value`` is one of ``choices``: ``check_choice("algo.variant", cfg.variant, VARIANTS)``."""
    if value not in choices:
        raise ConfigError(f"{key}={value}: choose one of {', '.join(choices)}" + (f" ({why})" if why else ""))

