"""Users' data as it comes: every form of time, windows in the data's zone, CSV options, real tables.

Each time form holds the same hourly rows ``i = 0..71``; the window ``[2024-01-02, 2024-01-03)``
keeps the rows whose wall-clock time in the data's zone falls on 2 January, counted by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.core.config import DriftParams, ReadParams, TimeParams, WindowParams, load_params
from helpers.core.errors import DataError, ParamsError
from helpers.core.times import bound_in_zone, in_zone, parse_times, zone_name
from helpers.modeling import data
from helpers.pipeline.context import StepContext
from helpers.pipeline.manifest import new_manifest
from helpers.stats.compare import compare
from support import DATA, ROOT, run_cli, write_params

HOURS = 72
START = pd.Timestamp("2024-01-01 00:00")  # a Monday in winter: Paris is UTC+1, New York UTC-5
DAY_TWO = WindowParams(start="2024-01-02", end="2024-01-03")
SECOND_DAY = list(range(24, 48))  # rows whose wall-clock hour falls on 2 January


def _naive() -> pd.Series:
    return pd.Series(pd.date_range(START, periods=HOURS, freq="h"))


def _utc() -> pd.Series:
    return _naive().dt.tz_localize("UTC")


UTC_TIMES = SECOND_DAY  # forms whose row i is START + i hours UTC: 2 January UTC holds rows 24..47
PARIS_WALL = list(range(25, 49))  # row i is START + i wall-clock in Paris (UTC+1): UTC 2 January is rows 25..48
PLUS_TWO_WALL = list(range(26, 50))  # the same at +02:00

TIME_FORMS: dict[str, tuple[str, Callable[[], pd.Series], dict[str, str], str, list[int], list[int] | None]] = {
    # id: (file type, the "when" column, data.time beyond column, zone, rows of the window in the data's zone,
    #      rows of the same window given in UTC (+00:00) or None for naive data, which takes no offset)
    "datetime-naive": ("parquet", _naive, {}, "naive", SECOND_DAY, None),
    "datetime-utc-parquet": ("parquet", _utc, {}, "UTC", SECOND_DAY, UTC_TIMES),
    "datetime-paris-parquet": ("parquet", lambda: _naive().dt.tz_localize("Europe/Paris"), {}, "Europe/Paris",
                               SECOND_DAY, PARIS_WALL),
    "iso-naive-text": ("csv", lambda: _naive().dt.strftime("%Y-%m-%dT%H:%M:%S"), {}, "naive", SECOND_DAY, None),
    "iso-space-minutes": ("csv", lambda: _naive().dt.strftime("%Y-%m-%d %H:%M"), {}, "naive", SECOND_DAY, None),
    "iso-z": ("csv", lambda: _naive().dt.strftime("%Y-%m-%dT%H:%M:%SZ"), {}, "UTC", SECOND_DAY, UTC_TIMES),
    "iso-offset": ("csv", lambda: _naive().dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"), {}, "UTC+02:00", SECOND_DAY,
                   PLUS_TWO_WALL),
    "epoch-s": ("csv", lambda: _utc().astype("int64") // 10**6, {"unit": "s"}, "UTC", SECOND_DAY, UTC_TIMES),
    "epoch-ms": ("parquet", lambda: _utc().astype("int64") // 10**3, {"unit": "ms"}, "UTC", SECOND_DAY, UTC_TIMES),
    # 2 January in Paris starts at 23:00 UTC on 1 January: rows 23..46
    "iso-z-to-paris": ("csv", lambda: _naive().dt.strftime("%Y-%m-%dT%H:%M:%SZ"), {"timezone": "Europe/Paris"},
                       "Europe/Paris", list(range(23, 47)), UTC_TIMES),
    # 2 January in New York starts at 05:00 UTC: rows 29..52
    "utc-parquet-to-new-york": ("parquet", _utc, {"timezone": "America/New_York"}, "America/New_York",
                                list(range(29, 53)), UTC_TIMES),
    "epoch-s-to-paris": ("csv", lambda: _utc().astype("int64") // 10**6, {"unit": "s", "timezone": "Europe/Paris"},
                         "Europe/Paris", list(range(23, 47)), UTC_TIMES),
    # naive wall-clock times placed in a zone keep their hours: the window holds the same rows
    "naive-placed-in-paris": ("parquet", _naive, {"timezone": "Europe/Paris"}, "Europe/Paris", SECOND_DAY,
                              PARIS_WALL),
}


def _write(folder: Path, kind: str, when: pd.Series) -> Path:
    frame = pd.DataFrame({"row": np.arange(HOURS), "when": when, "y": np.arange(HOURS) * 0.5})
    path = folder / f"times.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("form", list(TIME_FORMS))
def test_every_time_form_gives_the_window_counted_by_hand(tmp_path: Path, form: str) -> None:
    kind, values, extra, zone, rows, utc_rows = TIME_FORMS[form]
    frame = data.read_table(_write(tmp_path, kind, values()))
    timed = data.add_time(frame, TimeParams(column="when", **extra))
    assert zone_name(timed[data.TIME]) == zone
    assert data.window(timed, DAY_TWO)["row"].tolist() == rows
    if utc_rows is not None:  # bounds with an offset are instants, whatever the data's zone
        utc_day = WindowParams(start="2024-01-02T00:00:00+00:00", end="2024-01-03T00:00:00+00:00")
        assert data.window(timed, utc_day)["row"].tolist() == utc_rows


def test_origin_day_and_hour_form_and_a_date_only_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"row": np.arange(HOURS), "day": np.arange(HOURS) // 24 + 1, "hr": np.arange(HOURS) % 24})
    timed = data.add_time(frame, TimeParams(origin="2024-01-01", day_column="day", hour_column="hr"))
    assert zone_name(timed[data.TIME]) == "naive" and data.window(timed, DAY_TWO)["row"].tolist() == SECOND_DAY
    daily = pd.DataFrame({"row": range(5), "when": [f"2024-01-0{d}" for d in range(1, 6)]})
    path = tmp_path / "daily.csv"
    daily.to_csv(path, index=False)
    timed = data.add_time(data.read_table(path), TimeParams(column="when"))
    assert data.window(timed, WindowParams(start="2024-01-02", end="2024-01-04"))["row"].tolist() == [1, 2]


def test_offsets_that_change_with_daylight_saving_give_utc_and_convert_back() -> None:
    text = pd.Series(["2024-03-30T12:00:00+01:00", "2024-03-31T12:00:00+02:00", None])
    utc = parse_times(text)
    assert zone_name(utc) == "UTC" and utc.iloc[:2].tolist() == [pd.Timestamp("2024-03-30 11:00", tz="UTC"),
                                                               pd.Timestamp("2024-03-31 10:00", tz="UTC")]
    assert pd.isna(utc.iloc[2])
    paris = in_zone(utc, "Europe/Paris")
    assert [t.hour for t in paris.iloc[:2]] == [12, 12]


def test_naive_times_in_a_zone_keep_a_repeated_autumn_hour_apart() -> None:
    wall = pd.Series(pd.to_datetime(["2024-10-27 01:00", "2024-10-27 02:00", "2024-10-27 02:00", "2024-10-27 03:00"]))
    placed = in_zone(wall, "Europe/Paris")
    assert placed.dt.tz_convert("UTC").dt.hour.tolist() == [23, 0, 1, 2]


def test_window_bounds_are_read_in_the_data_zone() -> None:
    assert bound_in_zone("2024-07-01", "Europe/Paris", "w") == pd.Timestamp("2024-06-30 22:00", tz="UTC")
    assert bound_in_zone("2024-07-01T02:00+02:00", "UTC", "w") == pd.Timestamp("2024-07-01 00:00", tz="UTC")
    assert bound_in_zone("2024-07-01", None, "w") == pd.Timestamp("2024-07-01")
    with pytest.raises(ParamsError, match=r"^windows.current.start: '2024-07-01T00:00\+02:00' has a UTC offset but "
                                          r"the data's times have no zone"):
        bound_in_zone("2024-07-01T00:00+02:00", None, "windows.current.start")


@pytest.mark.parametrize(
    ("values", "time", "message"),
    [
        (["2024-01-01", "yesterday"], {}, r"data.time.column: column 'when': row 2 \('yesterday'\) is not a date or "
                                          r"time; write ISO 8601"),
        ([1704067200, 1704070800], {}, r"column 'when': holds numbers, not dates; .* set data.time.unit: s or ms"),
        ([1704067200000, 1704070800000], {"unit": "s"}, r"as epoch seconds the values run from year \d+ .* "
                                                          r"is data.time.unit right"),
        (["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01T03:00:00"], {},
         r"mixes times with a UTC offset \('2024-01-01T00:00:00Z'\) and without \('2024-01-01T03:00:00'\)"),
        (["2024-01-01", "2024-01-02"], {"timezone": "Europe/Pariss"},
         r"data.time.timezone: unknown time zone 'Europe/Pariss'; use an IANA name"),
        ([True, False], {}, r"column 'when': holds true/false values"),
    ],
    ids=["unparseable-text", "numbers-without-unit", "milliseconds-as-seconds", "offset-and-none", "unknown-zone",
         "booleans"],
)
def test_bad_times_are_one_line_naming_the_key_and_the_fix(values: list, time: dict, message: str) -> None:
    frame = pd.DataFrame({"when": values})
    with pytest.raises((DataError, ParamsError), match=message) as info:
        data.add_time(frame, TimeParams(column="when", **time))
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ through params: validate, manifest, describe


def _bike_with_time(folder: Path, tz: str | None) -> Path:
    """The embedded data with a ``when`` datetime column (in ``tz``, or naive) as Parquet."""
    frame = pd.read_csv(DATA)
    when = pd.Timestamp("2011-01-01") + pd.to_timedelta(frame["day"] - 1, unit="D") + pd.to_timedelta(frame["hr"],
                                                                                                       unit="h")
    frame["when"] = when.dt.tz_localize(tz) if tz else when
    path = folder / "bikes.parquet"
    frame[frame["temp"] > 0.05].to_parquet(path)  # a filtered frame: its index is stored
    return path


def test_validate_on_tz_aware_parquet_with_a_stored_index(tmp_path: Path) -> None:
    path = _bike_with_time(tmp_path, "UTC")
    params = write_params(tmp_path, **{"data.path": str(path), "data.time": {"column": "when"}})
    done = run_cli("validate", "--params", str(params))
    assert done.returncode == 0, done.stderr
    assert "valid (" in done.stdout
    loaded = load_params(params)
    frame = data.check_params_against_data(loaded)
    assert "__index_level_0__" not in frame.columns and frame.index.equals(pd.RangeIndex(len(frame)))
    expected = ((frame["when"] >= pd.Timestamp("2011-07-01", tz="UTC")) &
                (frame["when"] < pd.Timestamp("2011-08-01", tz="UTC"))).sum()
    assert len(data.window(frame, loaded.windows.current)) == expected > 0
    paris = write_params(tmp_path, name="paris.yaml",
                         **{"data.path": str(path), "data.time": {"column": "when", "timezone": "Europe/Paris"}})
    assert run_cli("validate", "--params", str(paris)).returncode == 0
    wrong = run_cli("validate", "--params", str(paris), "-p", "data.time.timezone=Mars/Olympus")
    assert wrong.returncode == 2
    assert wrong.stderr.strip().endswith("data.time.timezone: unknown time zone 'Mars/Olympus'; use an IANA name such "
                                         "as Europe/Paris, America/New_York or UTC")


def test_the_zone_is_in_the_manifest_and_the_step_description(tmp_path: Path) -> None:
    path = _bike_with_time(tmp_path, "UTC")
    cases = [({}, "naive"), ({"data.path": str(path), "data.time": {"column": "when"}}, "UTC"),
             ({"data.path": str(path), "data.time": {"column": "when", "timezone": "Asia/Tokyo"}}, "Asia/Tokyo")]
    for i, (changes, zone) in enumerate(cases):
        params = load_params(write_params(tmp_path, name=f"p{i}.yaml", **changes))
        manifest = new_manifest("run", params, [], ROOT)
        assert manifest["data_timezone"] == zone
        json.dumps(manifest)
        context = StepContext("drift", params, tmp_path, data.check_params_against_data(params))
        described = context.describe()["value"]["time zone"]
        assert described == ("naive (times carry no zone)" if zone == "naive" else zone)


# --------------------------------------------------------------------------- reading tables


def test_csv_with_semicolons_decimal_commas_latin1_and_missing_markers(tmp_path: Path) -> None:
    path = tmp_path / "mesures.csv"
    path.write_bytes("température moyenne;ville;ok\n1,5;Köln;True\n-2,25;Zürich;False\nn/a;Orléans;True\n"
                     .encode("latin-1"))
    read = ReadParams(sep=";", decimal=",", encoding="latin-1", na_values=["n/a"])
    frame = data.read_table(path, read)
    assert list(frame.columns) == ["température moyenne", "ville", "ok"]
    assert frame["température moyenne"].tolist()[:2] == [1.5, -2.25] and pd.isna(frame["température moyenne"][2])
    assert frame["ville"].tolist() == ["Köln", "Zürich", "Orléans"]
    assert frame["ok"].dtype == bool and frame["ok"].tolist() == [True, False, True]


def test_a_wrong_encoding_or_broken_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("ville\nKöln\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv: not utf-8 text \(UnicodeDecodeError: .*\); set "
                                        r"data.read.encoding to the file's encoding, e.g. latin-1") as info:
        data.read_table(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ParamsError, match="data.read.encoding: unknown encoding 'latin-42'"):
        data.read_table(path, ReadParams(encoding="latin-42"))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('a,b\n1,2\n3,4,5,6\n"open quote\n')
    with pytest.raises(DataError, match=r"ragged.csv: cannot be read as csv \(ParserError: ") as info:
        data.read_table(ragged)
    assert "\n" not in str(info.value)


def test_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffnom,valeur\nà,1\n".encode())
    assert list(data.read_table(path).columns) == ["nom", "valeur"]


def test_a_stored_pandas_index_never_becomes_a_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": range(10), "b c": list("abcdefghij")})
    frame[frame["a"] % 3 == 0].to_parquet(tmp_path / "filtered-1.parquet")
    frame[frame["a"] % 3 == 1].to_parquet(tmp_path / "filtered-2.parquet")
    read = data.read_table(tmp_path / "filtered-1.parquet")
    assert list(read.columns) == ["a", "b c"] and read["a"].tolist() == [0, 3, 6, 9]
    assert read.index.equals(pd.RangeIndex(4))
    both = data.read_table(tmp_path / "filtered-*.parquet")
    assert list(both.columns) == ["a", "b c"] and len(both) == 7
    frame.set_index("b c").to_parquet(tmp_path / "named.parquet")  # a named index is the user's column
    named = data.read_table(tmp_path / "named.parquet")
    assert list(named.columns) == ["b c", "a"] and named["b c"].tolist() == list("abcdefghij")


def test_spaced_non_ascii_names_and_booleans_are_compared(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 800
    base = pd.DataFrame({"vitesse du vent": rng.normal(0, 1, n), "météo": rng.choice(["soleil", "pluie"], n),
                         "férié": rng.random(n) < 0.2})
    target = pd.DataFrame({"vitesse du vent": rng.normal(1, 1, n), "météo": rng.choice(["soleil", "pluie"], n),
                           "férié": rng.random(n) < 0.6})
    base.to_csv(tmp_path / "base.csv", index=False)
    target[target["vitesse du vent"] > -5].to_parquet(tmp_path / "target.parquet")
    read = data.read_table(tmp_path / "base.csv"), data.read_table(tmp_path / "target.parquet")
    report = compare(*read, DriftParams())
    assert {f.feature: (f.type, f.compared) for f in report.features} == {
        "vitesse du vent": ("numeric", True), "météo": ("categorical", True), "férié": ("categorical", True)}
    assert report.feature("vitesse du vent").drifted and report.feature("férié").drifted


def test_params_data_read_reaches_validate_and_driftgate_drift(tmp_path: Path) -> None:
    semicolons = tmp_path / "bikes.csv"
    pd.read_csv(DATA).to_csv(semicolons, sep=";", decimal=",", index=False, encoding="latin-1")
    plain = write_params(tmp_path, **{"data.path": str(semicolons)})
    done = run_cli("validate", "--params", str(plain))
    assert done.returncode == 2 and "is data.read.sep (',') right?" in done.stderr
    read = {"sep": ";", "decimal": ",", "encoding": "latin-1"}
    good = write_params(tmp_path, name="read.yaml", **{"data.path": str(semicolons), "data.read": read})
    assert run_cli("validate", "--params", str(good)).returncode == 0
    loaded = data.load_frame(load_params(good))
    assert loaded["temp"].dtype == float and len(loaded) == 8645
    drift_only = tmp_path / "drift.yaml"
    drift_only.write_text(yaml.safe_dump({"data": {"read": read}, "drift": {"coefficient_sample": 0}}))
    for argv in (["--params", str(drift_only)], ["--params", str(good)],
                 ["-p", "data.read.sep=;", "-p", "data.read.decimal=,", "-p", "data.read.encoding=latin-1"]):
        out = run_cli("drift", "--baseline", str(semicolons), "--target", str(semicolons), *argv)
        assert out.returncode == 0, out.stderr
        assert "temp" in out.stdout
    rejected = run_cli("drift", "--baseline", str(semicolons), "--target", str(semicolons), "-p", "data.path=x.csv")
    assert rejected.returncode == 2 and "data.read.* keys apply to driftgate drift" in rejected.stderr
