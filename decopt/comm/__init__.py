"""Backends behind one ``Network`` interface: ``stacked`` (in-process) and ``mpi``."""
from .network import CONVENTIONS, Network
from .stacked import StackedNetwork

__all__ = ["CONVENTIONS", "Network", "StackedNetwork"]
