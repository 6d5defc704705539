"""decopt: decentralized optimization with compressed, noisy messages, stacked or over MPI."""
from .api import run
from .version import __version__

__all__ = ["run", "__version__"]
