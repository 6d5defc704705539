"""The package version (one place: the package, its checkpoints and its provenance read it)."""
__version__ = "0.1.0"
