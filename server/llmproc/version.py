"""The package version, in a module of its own so that any layer can name it without
importing the package root (and with it everything else)."""

__version__ = "0.1.0"
