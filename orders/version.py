"""The package's version: the one place it is written (pyproject.toml reads it from here).

A literal, not `importlib.metadata`: reading the installed metadata imports `email`, `zipfile`
and `csv` (about 4,000 objects the garbage collector walks for as long as the bot runs).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
