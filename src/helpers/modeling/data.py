"""Reading tables, building the time axis, cutting windows, checking params against data.

Example
-------
>>> params = load_params("params/default.yaml")  # doctest: +SKIP
>>> frame = load_frame(params)  # doctest: +SKIP
>>> baseline = window(frame, params.windows.baseline, TIME)  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

import pandas as pd

from helpers.core.config import Params, TimeParams, WindowParams
from helpers.core.errors import DataError, ParamsError
from helpers.modeling.checks import check_data_path, check_not_folder, check_table, check_times, check_window_labels

TIME = "timestamp"  # name of the time column that load_frame adds


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a glob of Parquet/CSV files, into one frame."""
    text = str(path)
    files = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
    if not files:
        raise DataError(f"{text}: no file matches this pattern; check the path")
    frames = [_read_one(Path(f)) for f in files]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _read_one(path: Path) -> pd.DataFrame:
    check_not_folder(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found; check data.path or the --data argument")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path)
    except Exception as exc:  # a corrupt file: name it and say why
        raise DataError(f"{path}: cannot be read as {suffix[1:]} ({exc.__class__.__name__}: {exc})") from None
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def add_time(frame: pd.DataFrame, time: TimeParams) -> pd.DataFrame:
    """Return ``frame`` with a ``timestamp`` column, taken or built as ``time`` says."""
    out = frame.copy()
    if time.column:
        out[TIME] = pd.to_datetime(out[time.column])
    elif time.origin and time.day_column:
        stamp = pd.Timestamp(time.origin) + pd.to_timedelta(out[time.day_column] - 1, unit="D")
        if time.hour_column:
            stamp = stamp + pd.to_timedelta(out[time.hour_column], unit="h")
        out[TIME] = stamp
    else:
        raise ParamsError("data.time: give either column, or origin and day_column")
    return out


def load_frame(params: Params) -> pd.DataFrame:
    """Read ``data.path`` and add the time column."""
    return add_time(read_table(params.data.path), params.data.time)


def window(frame: pd.DataFrame, span: WindowParams, time_column: str = TIME) -> pd.DataFrame:
    """Rows with ``start <= time < end``, in time order, with a fresh index."""
    start, end = pd.Timestamp(span.start), pd.Timestamp(span.end)
    mask = (frame[time_column] >= start) & (frame[time_column] < end)
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
        frame = read_table(path)
    except DataError as exc:
        raise ParamsError(f"{where}: data.path: {exc}") from None
    _check_columns(frame, params, where)
    check_table(frame, params, where)
    try:
        frame = add_time(frame, params.data.time)
    except (ValueError, TypeError) as exc:
        raise ParamsError(f"{where}: data.time: cannot build timestamps ({exc})") from None
    check_times(frame[TIME], params, where)
    for name in ("baseline", "current"):
        span = getattr(params.windows, name)
        rows = window(frame, span)
        if rows.empty:
            first, last = frame[TIME].min(), frame[TIME].max()
            raise ParamsError(
                f"{where}: windows.{name}: no rows between {span.start} and {span.end}; "
                f"the data covers {first:%Y-%m-%d} to {last:%Y-%m-%d}"
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
            raise ParamsError(
                f"{where}: {key_path}: column {', '.join(map(repr, missing))} not in "
                f"{params.data.path}; its columns are {', '.join(frame.columns)}"
            )
