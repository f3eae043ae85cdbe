"""Reading tables, building the time axis, cutting windows, checking params against data.

Example
-------
>>> params = load_params("params/default.yaml")  # doctest: +SKIP
>>> frame = load_frame(params)  # doctest: +SKIP
>>> baseline = window(frame, params.windows.baseline, TIME)  # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from helpers.core.config import Params, ReadParams, TimeParams, WindowParams
from helpers.core.errors import DataError, ParamsError
from helpers.core.times import NAIVE, bound_in_zone, check_zone, in_zone, parse_times, zone_name
from helpers.modeling.checks import check_data_path, check_not_folder, check_table, check_times, check_window_labels

TIME = "timestamp"  # name of the time column that load_frame adds
STORED_INDEX = re.compile(r"^__index_level_\d+__$")  # pandas' name for an unnamed index it stored in Parquet


def read_table(path: str | Path, read: ReadParams | None = None, *,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a glob of them, into one frame with a fresh index.

    ``read`` holds the CSV options (``data.read``: separator, decimal mark, encoding, extra
    missing-value strings); ``columns`` reads only those. An unnamed pandas index stored in a
    Parquet file is dropped; a named one comes back as a column.
    """
    text = str(path)
    files = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
    if not files:
        raise DataError(f"{text}: no file matches this pattern; check the path")
    options = read or ReadParams()
    frames = [_read_one(Path(f), options, columns) for f in files]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _read_one(path: Path, read: ReadParams, columns: Sequence[str] | None) -> pd.DataFrame:
    check_not_folder(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found; check data.path or the --data argument")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt", ".gz", ".tsv"):
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")
    try:
        if suffix in (".parquet", ".pq"):
            return _without_stored_index(pd.read_parquet(path, columns=list(columns) if columns else None))
        return _read_csv(path, read, columns)
    except ParamsError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {read.encoding} text ({_one_line(exc)}); set data.read.encoding to the "
                        "file's encoding, e.g. latin-1 or cp1252") from None
    except Exception as exc:  # a corrupt file: name it and say why
        raise DataError(f"{path}: cannot be read as {suffix[1:]} ({_one_line(exc)})") from None


def _read_csv(path: Path, read: ReadParams, columns: Sequence[str] | None) -> pd.DataFrame:
    encoding = _encoding(read.encoding)
    if read.sep == read.decimal:
        raise ParamsError(f"data.read: sep and decimal are both {read.sep!r}; give them different characters")
    return pd.read_csv(path, sep=read.sep, decimal=read.decimal, encoding=encoding,
                       na_values=list(read.na_values) or None, usecols=list(columns) if columns else None)


def _encoding(name: str) -> str:
    """The codec for ``data.read.encoding``; UTF-8 also skips a byte-order mark."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise ParamsError(f"data.read.encoding: unknown encoding {name!r}; use e.g. utf-8, latin-1 or cp1252") from None
    return "utf-8-sig" if codec == "utf-8" else name


def _without_stored_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a fresh index: named index levels become columns, unnamed ones go."""
    named = [n for n in frame.index.names if n is not None and n not in frame.columns]
    if named:
        frame = frame.reset_index(level=named)
    frame = frame.drop(columns=[c for c in frame.columns if STORED_INDEX.match(str(c))])
    return frame.reset_index(drop=True)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def add_time(frame: pd.DataFrame, time: TimeParams) -> pd.DataFrame:
    """Return ``frame`` with a ``timestamp`` column, taken or built as ``time`` says.

    ``time.column`` may hold datetimes (naive or with a zone), ISO text (with or without an
    offset, or dates alone) or, with ``time.unit``, epoch seconds or milliseconds (UTC).
    ``time.timezone`` converts times with a zone to it, and places naive times in it.
    """
    if time.timezone is not None:
        check_zone(time.timezone)
    out = frame.copy()
    if time.column:
        stamps = parse_times(out[time.column], time.unit, f"data.time.column: column {time.column!r}")
    elif time.origin and time.day_column:
        stamps = pd.Timestamp(time.origin) + pd.to_timedelta(out[time.day_column] - 1, unit="D")
        if time.hour_column:
            stamps = stamps + pd.to_timedelta(out[time.hour_column], unit="h")
    else:
        raise ParamsError("data.time: give either column, or origin and day_column")
    out[TIME] = in_zone(stamps, time.timezone)
    return out


def load_frame(params: Params) -> pd.DataFrame:
    """Read ``data.path`` (with ``data.read``) and add the time column."""
    return add_time(read_table(params.data.path, params.data.read), params.data.time)


def data_timezone(params: Params) -> str:
    """The zone of the times :func:`load_frame` builds (``UTC``, ``Europe/Paris``, ...), or ``naive``.

    Reads only the time column, and only when the zone depends on the data.
    """
    time = params.data.time
    if time.timezone is not None:
        return check_zone(time.timezone)
    if not time.column:
        return NAIVE
    if time.unit is not None:
        return "UTC"
    values = read_table(params.data.path, params.data.read, columns=[time.column])[time.column]
    return zone_name(parse_times(values, None, f"data.time.column: column {time.column!r}"))


def window(frame: pd.DataFrame, span: WindowParams, time_column: str = TIME, label: str = "window") -> pd.DataFrame:
    """Rows with ``start <= time < end``, in time order, with a fresh index.

    The bounds are read in the zone of the frame's times (:func:`helpers.core.times.bound_in_zone`);
    ``label`` names them in errors (``windows.baseline``).
    """
    times = frame[time_column]
    tz = times.dt.tz if pd.api.types.is_datetime64_any_dtype(times) else None
    start = bound_in_zone(span.start, tz, f"{label}.start")
    end = bound_in_zone(span.end, tz, f"{label}.end")
    mask = (times >= start) & (times < end)
    return frame.loc[mask].sort_values(time_column).reset_index(drop=True)


def check_params_against_data(params: Params) -> pd.DataFrame:
    """Fail with one line when the data file, a column or a window does not fit the params.

    Returns the loaded frame (with its time column) so callers need not read it twice.
    """
    where = params.source or "params"
    path = params.data.path
    check_data_path(path, where)
    if not any(ch in path for ch in "*?[") and not Path(path).is_file():
        raise ParamsError(f"{where}: data.path: file not found: {path}")
    try:
        frame = read_table(path, params.data.read)
    except DataError as exc:
        raise ParamsError(f"{where}: data.path: {exc}") from None
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc}") from None
    _check_columns(frame, params, where)
    check_table(frame, params, where)
    try:
        frame = add_time(frame, params.data.time)
    except (DataError, ParamsError) as exc:
        raise ParamsError(f"{where}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ParamsError(f"{where}: data.time: cannot build timestamps ({exc})") from None
    check_times(frame[TIME], params, where)
    for name in ("baseline", "current"):
        span = getattr(params.windows, name)
        try:
            rows = window(frame, span, label=f"windows.{name}")
        except ParamsError as exc:
            raise ParamsError(f"{where}: {exc}") from None
        if rows.empty:
            first, last = frame[TIME].min(), frame[TIME].max()
            zone = zone_name(frame[TIME])
            raise ParamsError(
                f"{where}: windows.{name}: no rows between {span.start} and {span.end}; "
                f"the data covers {first:%Y-%m-%d} to {last:%Y-%m-%d}" + ("" if zone == NAIVE else f" ({zone})")
            )
        check_window_labels(rows, params, where, name)
    return frame


def _check_columns(frame: pd.DataFrame, params: Params, where: str) -> None:
    columns = set(frame.columns)
    checks = [("data.target", [params.data.target])]
    checks.append(("data.features", params.data.features))
    time = params.data.time
    for key in ("column", "day_column", "hour_column"):
        value = getattr(time, key)
        if value:
            checks.append((f"data.time.{key}", [value]))
    for key_path, names in checks:
        missing = [n for n in names if n not in columns]
        if missing:
            hint = ""
            if len(frame.columns) == 1:
                hint = f"; the file read as one column: is data.read.sep ({params.data.read.sep!r}) right?"
            raise ParamsError(
                f"{where}: {key_path}: column {', '.join(map(repr, missing))} not in "
                f"{params.data.path}; its columns are {', '.join(map(str, frame.columns))}{hint}"
            )


def window_rows(params: Params, path: str, start: str, end: str) -> pd.DataFrame:
    """Rows of ``path`` with ``start <= time < end`` (read with ``data.read``, time built as
    ``data.time`` says), in order: the traffic ``driftgate replay`` sends.

    Raises
    ------
    DataError
        When a date is malformed, a column is missing or the window is empty.
    """
    for label, text in (("--from", start), ("--to", end)):
        try:
            pd.Timestamp(text)
        except (TypeError, ValueError):
            raise DataError(f"{label}: expected a date like 2011-07-01, got {text!r}") from None
    if pd.Timestamp(start) >= pd.Timestamp(end):
        raise DataError(f"--from {start} must be before --to {end}")
    frame = read_table(path, params.data.read)
    needed = [*params.data.features, params.data.target]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(missing)} missing; its columns are {', '.join(map(str, frame.columns))}"
        )
    rows = window(add_time(frame, params.data.time), WindowParams(start=start, end=end), TIME)
    if rows.empty:
        raise DataError(f"{path}: no rows from {start} to {end}")
    return rows
