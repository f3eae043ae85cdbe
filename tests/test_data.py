"""The embedded data and the data module: checksum, timestamps, windows, reading errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers.core.config import TimeParams, WindowParams
from helpers.core.errors import DataError
from helpers.modeling import data
from support import DATA, ROOT

SHA256 = "ac6950ae6f11efcc69c29d6bb13e8881c001e27d36434660d59444a1414f712c"
WEATHER = ROOT / "data" / "seattle-weather.csv"
WEATHER_SHA256 = "62f0609f787158128aa2bd102967173a4953122dd4f872bf1d502cae1037df0b"


def test_embedded_data_checksum_and_shape() -> None:
    assert data.file_sha256(DATA) == SHA256
    frame = pd.read_csv(DATA)
    assert frame.shape == (8645, 15)
    assert (frame["casual"] + frame["registered"] == frame["bikers"]).all()


def test_weather_data_checksum_shape_classes_and_days() -> None:
    assert data.file_sha256(WEATHER) == WEATHER_SHA256
    frame = pd.read_csv(WEATHER)
    assert frame.shape == (1461, 6)
    assert list(frame.columns) == ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"]
    assert frame["weather"].value_counts().to_dict() == {"sun": 714, "fog": 411, "rain": 259, "drizzle": 54, "snow": 23}
    assert not frame.isna().any().any()
    stamps = data.add_time(frame, TimeParams(column="date"))[data.TIME]
    assert stamps.is_monotonic_increasing and not stamps.duplicated().any()
    assert list(stamps.iloc[[0, -1]]) == [pd.Timestamp("2012-01-01"), pd.Timestamp("2015-12-31")]
    assert (stamps.diff().dropna() == pd.Timedelta(days=1)).all()  # every day, none missing


def test_timestamp_is_origin_plus_day_minus_one_plus_hours() -> None:
    frame = pd.DataFrame({"day": [1, 1, 32, 365], "hr": [0, 5, 23, 23]})
    out = data.add_time(frame, TimeParams(origin="2011-01-01", day_column="day", hour_column="hr"))
    assert list(out[data.TIME]) == [pd.Timestamp("2011-01-01 00:00"), pd.Timestamp("2011-01-01 05:00"),
                                    pd.Timestamp("2011-02-01 23:00"), pd.Timestamp("2011-12-31 23:00")]


def test_embedded_timestamps_span_2011_without_duplicates() -> None:
    frame = data.add_time(pd.read_csv(DATA), TimeParams(origin="2011-01-01", day_column="day", hour_column="hr"))
    assert frame[data.TIME].min() == pd.Timestamp("2011-01-01 00:00")
    assert frame[data.TIME].max() == pd.Timestamp("2011-12-31 23:00")
    assert not frame[data.TIME].duplicated().any()


def test_window_is_half_open_and_sorted() -> None:
    stamps = pd.to_datetime(["2011-02-01 00:00", "2011-01-31 23:00", "2011-01-01 00:00", "2010-12-31 23:00"])
    frame = pd.DataFrame({data.TIME: stamps, "x": [1, 2, 3, 4]})
    out = data.window(frame, WindowParams(start="2011-01-01", end="2011-02-01"))
    assert list(out["x"]) == [3, 2]


def test_read_table_reads_parquet_globs(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "p1.parquet")
    pd.DataFrame({"a": [3]}).to_parquet(tmp_path / "p2.parquet")
    assert list(data.read_table(tmp_path / "p*.parquet")["a"]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("missing.csv", None, "data file not found"),
     ("table.xlsx", b"x", "unsupported file type"),
     ("broken.parquet", b"not parquet", "cannot be read as parquet")],
)
def test_read_table_errors_name_the_file(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        data.read_table(path)
    assert name in str(info.value)
