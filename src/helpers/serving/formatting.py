"""Short texts for messages and status documents: an exception's first line, a UTC time."""

from __future__ import annotations

import pandas as pd


def iso_time(seconds: float) -> str:
    """``seconds`` since the epoch as an ISO 8601 UTC time, to the millisecond.

    >>> iso_time(0)
    '1970-01-01T00:00:00.000+00:00'
    """
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat(timespec="milliseconds")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
