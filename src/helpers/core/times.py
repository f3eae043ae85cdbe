"""Timestamps: one way to read a user's date or date-time as a UTC instant."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from helpers.core.errors import DataError


def as_utc(value: str | dt.date | dt.datetime | None, label: str) -> pd.Timestamp | None:
    """``value`` as a UTC timestamp (naive values are taken as UTC); ``None`` stays ``None``.

    >>> as_utc("2011-07-01", "start")
    Timestamp('2011-07-01 00:00:00+0000', tz='UTC')
    """
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError(f"capture window: {label}: expected a date like 2011-07-01, got {value!r}") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def utc_now_iso() -> str:
    """Now, in UTC, as ISO text to the second (``2026-12-01T22:38:00+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def utc_stamp() -> str:
    """Now, in UTC, as a file-name stamp (``20261201-223800``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
