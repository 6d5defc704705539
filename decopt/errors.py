"""The errors decopt raises on purpose."""


class ConfigError(ValueError):
    """A bad configuration: one line that names the key, the value and what is allowed."""


class PayloadError(ValueError):
    """A received or decoded message is malformed (wrong size, type or header)."""
