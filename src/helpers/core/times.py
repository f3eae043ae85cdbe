"""Timestamps: a user's dates and times read one way, in the zone the data lives in.

* :func:`as_utc` reads a date or date-time as a UTC instant (capture windows).
* :func:`parse_times` turns a column of datetimes, ISO text (with or without an offset, date
  only), or epoch seconds / milliseconds into timestamps, naive or in one zone.
* :func:`in_zone` converts (aware) or places (naive) timestamps in a named zone;
  :func:`check_zone` names the zone or fails with one line.
* :func:`bound_in_zone` reads a window bound in the data's zone, so bounds and data compare.
* :func:`zone_name` says which zone a column of timestamps is in.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.errors import DataError, ParamsError

NAIVE = "naive"  # what zone_name says of timestamps without a zone
EPOCH_UNITS = {"s": "seconds", "ms": "milliseconds"}
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"  # a time, then Z or +hh:mm
_PLAUSIBLE_YEARS = (1900, 2300)  # epoch numbers outside these years have the wrong unit


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


# --------------------------------------------------------------------------- zones


def check_zone(name: str, key: str = "data.time.timezone") -> str:
    """``name`` if it is a known time zone (IANA name such as ``Europe/Paris``, or ``UTC``).

    >>> check_zone("Europe/Paris")
    'Europe/Paris'
    """
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ParamsError(f"{key}: unknown time zone {name!r}; use an IANA name such as Europe/Paris, "
                          "America/New_York or UTC") from None
    return name


def zone_name(times: pd.Series) -> str:
    """The zone of a column of timestamps (``UTC``, ``Europe/Paris``, ``UTC+01:00``) or ``naive``."""
    tz = getattr(times.dt, "tz", None) if pd.api.types.is_datetime64_any_dtype(times) else None
    return NAIVE if tz is None else str(tz)


def in_zone(times: pd.Series, zone: str | None, key: str = "data.time.timezone") -> pd.Series:
    """``times`` converted to ``zone`` (aware times) or taken as wall-clock times there (naive).

    ``None`` keeps the times as they are. A wall-clock time that a daylight-saving change skips
    moves forward; one that it repeats is told apart by the order of the rows when it can be
    (an hour seen twice: summer time, then winter time), else taken as summer time.
    """
    if zone is None:
        return times
    check_zone(zone, key)
    if times.dt.tz is not None:
        return times.dt.tz_convert(zone)
    try:
        return times.dt.tz_localize(zone, ambiguous="infer", nonexistent="shift_forward")
    except ValueError:
        return times.dt.tz_localize(zone, ambiguous=np.ones(len(times), dtype=bool), nonexistent="shift_forward")


def bound_in_zone(text: Any, tz: Any, label: str) -> pd.Timestamp:
    """A window bound (``2011-07-01``, ``2011-07-01T08:00``, ``...+02:00``) comparable with times in ``tz``.

    A bound without an offset is a wall-clock time in ``tz``; one with an offset is converted to
    ``tz``. Naive data (``tz`` None) takes bounds without an offset only.

    >>> bound_in_zone("2011-07-01", "Europe/Paris", "windows.current.start")
    Timestamp('2011-07-01 00:00:00+0200', tz='Europe/Paris')
    """
    try:
        stamp = pd.Timestamp(text)
    except (TypeError, ValueError):
        raise ParamsError(f"{label}: {text!r} is not a date or date-time; write 2011-07-01 or "
                          "2011-07-01T08:00") from None
    if tz is None:
        if stamp.tzinfo is not None:
            raise ParamsError(f"{label}: {text!r} has a UTC offset but the data's times have no zone; drop the "
                              "offset, or set data.time.timezone to the zone the data's times are in")
        return stamp
    if stamp.tzinfo is None:
        return stamp.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    return stamp.tz_convert(tz)


# --------------------------------------------------------------------------- parsing a time column


def parse_times(values: pd.Series, unit: str | None = None, label: str = "data.time.column") -> pd.Series:
    """A column of datetimes, date/time text or epoch numbers as timestamps (NaT where missing).

    * datetimes, naive or aware, stay as they are;
    * text: ISO 8601 date-times with or without an offset (``Z``, ``+02:00``), dates alone, or
      another form pandas recognises; text that all carries one offset keeps it, mixed offsets
      (a daylight-saving change) give UTC; text mixing offsets and none is an error;
    * numbers need ``unit`` (``s`` or ``ms``): epoch seconds or milliseconds, in UTC.

    Raises
    ------
    DataError
        One line naming ``label`` and how to fix the column.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"{label}: holds true/false values, not times; name a date/time column")
    if unit is not None or pd.api.types.is_numeric_dtype(values):
        return _epochs(values, unit, label)
    return _texts(values, label)


def _epochs(values: pd.Series, unit: str | None, label: str) -> pd.Series:
    if unit is None:
        raise DataError(f"{label}: holds numbers, not dates; if they are epoch seconds or milliseconds set "
                        "data.time.unit: s or ms")
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        raise DataError(f"{label}: {_first(values, bad)} is not a number of epoch {EPOCH_UNITS[unit]} "
                        "(data.time.unit); fix the value or unset data.time.unit")
    times = pd.to_datetime(numbers, unit=unit, utc=True)
    years = times.dropna().dt.year
    if len(years) and (years.min() < _PLAUSIBLE_YEARS[0] or years.max() > _PLAUSIBLE_YEARS[1]):
        raise DataError(f"{label}: as epoch {EPOCH_UNITS[unit]} the values run from year {years.min()} to "
                        f"{years.max()}; is data.time.unit right (s: seconds, ms: milliseconds)?")
    return times


def _texts(values: pd.Series, label: str) -> pd.Series:
    try:
        return pd.to_datetime(values, format="ISO8601")
    except ValueError as exc:
        if "Mixed timezones" in str(exc):
            return _mixed_offsets(values, label)
    try:
        return pd.to_datetime(values)  # another common form: pandas infers it from the first value
    except (ValueError, TypeError, OverflowError):
        pass
    bad = pd.to_datetime(values, format="ISO8601", errors="coerce").isna() & values.notna()
    example = _first(values, bad) if bad.any() else repr(values.dropna().iloc[0])
    raise DataError(f"{label}: {example} is not a date or time; write ISO 8601 such as 2011-07-01, "
                    "2011-07-01T08:00 or 2011-07-01T08:00:00+02:00 (or epoch numbers with data.time.unit)")


def _mixed_offsets(values: pd.Series, label: str) -> pd.Series:
    present = values.dropna().astype(str)
    with_offset = present.str.contains(_OFFSET, regex=True)
    if not with_offset.all():
        raise DataError(f"{label}: mixes times with a UTC offset ({present[with_offset].iloc[0]!r}) and without "
                        f"({present[~with_offset].iloc[0]!r}); give every value an offset, or none")
    return pd.to_datetime(values, format="ISO8601", utc=True)


def _first(values: pd.Series, bad: pd.Series) -> str:
    position = int(np.flatnonzero(bad.to_numpy())[0])
    return f"row {position + 1} ({values.iloc[position]!r})"
