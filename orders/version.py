"""The installed distribution's version, read from its metadata (pyproject.toml is the source)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("orders")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
