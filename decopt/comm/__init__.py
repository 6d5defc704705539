"""Backends behind one ``Network`` interface: ``stacked`` (in-process) and ``mpi``."""
from .ledger import CONVENTIONS, Ledger
from .network import Network
from .stacked import StackedNetwork

__all__ = ["CONVENTIONS", "Ledger", "Network", "StackedNetwork"]
