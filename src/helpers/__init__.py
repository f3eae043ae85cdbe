"""Driftgate helpers: every piece of logic the notebooks and the CLI use."""

from __future__ import annotations

__version__ = "0.1.0"
