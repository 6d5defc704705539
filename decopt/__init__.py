"""decopt: decentralized optimization with compressed, noisy messages, stacked or over MPI."""
__version__ = "0.1.0"

from .api import run  # noqa: E402

__all__ = ["run", "__version__"]
