"""The errors decopt raises on purpose."""


class ConfigError(ValueError):
    """A bad configuration: one line that names the key, the value and what is allowed."""


class PayloadError(ValueError):
    """A received or decoded message is malformed (wrong size, type or header)."""


class RunDirError(ConfigError):
    """The run directory refuses the job (held by another run, a planted link, another job's or a
    pickle checkpoint, a corrupt metrics file): one line, and nothing in the directory is changed."""
