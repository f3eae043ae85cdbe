"""Profiles and drift at scale: a LocalCluster of two worker processes over partitioned Parquet."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers.core.config import ComputeParams, DriftParams
from helpers.core.errors import DataError, ParamsError
from helpers.modeling.data import read_table
from helpers.monitoring.captures_at_scale import labelled_captures, profile_captures
from helpers.stats.coefficient import sample_rows
from helpers.stats.column_scans import infer_types, scan_table
from helpers.stats.column_types import infer_column_types
from helpers.stats.compare import compare
from helpers.stats.dask_cluster import check_scheduler, local_client, runner
from helpers.stats.partition_profiles import ProfileTask, profile_table, sample_positions
from helpers.stats.partitions import open_table
from helpers.stats.profile import NumericProfile
from helpers.stats.profiling import profile_frame
from helpers.stats.results import DriftReport, FeatureDrift
from helpers.stats.scale import approximation_bounds, compare_at_scale
from helpers.stats.statistics import numeric_distances
from support import run_cli

EXACT_METRICS = ("psi", "jensenshannon", "chi2_statistic", "chi2_pvalue", "chi2_dof", "euclidean",
                 "distinct_baseline", "distinct_target")
SIDE_COUNTS = ("rows", "count", "missing", "infinite", "distinct")
SIDE_MOMENTS = ("mean", "std", "min", "max", "missing_rate")
COMPUTE = ComputeParams(scheduler="local", partition_rows=2000, progress=False)


def _frame(rng: np.random.Generator, n: int, start: int, shift: float, rare: bool) -> pd.DataFrame:
    y = rng.exponential(1.0, n)
    y[rng.random(n) < 0.02] = np.nan
    y[:2] = np.inf
    codes = rng.integers(0, 18, n)
    if rare:  # values 18..24 appear only in later partitions: 25 distinct, so numeric overall
        codes[:7] = np.arange(18, 25)
    return pd.DataFrame({
        "x": rng.normal(shift, 1.0, n),
        "y": y,
        "code": rng.integers(0, 5, n),
        "codes25": codes,
        "c": pd.Series(rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05]), dtype=object),
        "num_text": [str(v) for v in rng.integers(0, 1000, n)],
        "id": np.arange(start, start + n),
        "when": pd.date_range("2024-01-01", periods=n, freq="min") + pd.Timedelta(minutes=start),
        "cnt": rng.integers(0, 40, n).astype(float),
    })


def _write(folder: Path, files: int, rows: int, shift: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(files):
        frame = _frame(rng, rows, start=seed * 100_000 + i * rows, shift=shift, rare=i == files - 1)
        frame.to_parquet(folder / f"part-{i:02d}.parquet", row_group_size=1000)
    return str(folder / "*.parquet")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("lake")
    return _write(root / "baseline", 4, 3000, 0.0, seed=1), _write(root / "target", 3, 2500, 0.4, seed=2)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Two worker processes of one thread each (what compute.scheduler: local starts)."""
    with local_client(ComputeParams(scheduler="local", n_workers=2, processes=True)) as c:
        yield c


@pytest.fixture(scope="module")
def in_memory(tables: tuple[str, str]) -> DriftReport:
    return compare(read_table(tables[0]), read_table(tables[1]), DriftParams())


def _assert_same_report(scaled: DriftReport, exact: DriftReport) -> None:
    assert (scaled.baseline_rows, scaled.target_rows) == (exact.baseline_rows, exact.target_rows)
    assert [(f.feature, f.type, f.compared) for f in scaled.features] == [
        (f.feature, f.type, f.compared) for f in exact.features
    ]
    for f in scaled.features:
        g = exact.feature(f.feature)
        assert (f.test, f.threshold, f.drifted) == (g.test, g.threshold, g.drifted), f.feature
        for key in EXACT_METRICS:
            if key in g.metrics:
                assert f.metrics[key] == pytest.approx(g.metrics[key], rel=1e-12, abs=1e-15), (f.feature, key)
        for side in ("baseline", "target"):
            assert {k: f.__dict__[side].get(k) for k in SIDE_COUNTS} == {k: g.__dict__[side].get(k)
                                                                         for k in SIDE_COUNTS}
            for key in SIDE_MOMENTS:
                if key in g.__dict__[side]:
                    assert f.__dict__[side][key] == pytest.approx(g.__dict__[side][key], rel=1e-9), (f.feature, key)
        assert f.histogram == g.histogram, f.feature
        assert f.new_categories == g.new_categories and f.gone_categories == g.gone_categories
        if f.type == "numeric" and f.compared:
            _assert_within_bounds(f, g)
    assert scaled.coefficient == pytest.approx(exact.coefficient, abs=1e-12)
    assert scaled.contributions == pytest.approx(exact.contributions, abs=1e-12)
    assert (scaled.drifted, scaled.n_drifted, scaled.share_drifted) == (exact.drifted, exact.n_drifted,
                                                                          exact.share_drifted)


def _assert_within_bounds(f: FeatureDrift, g: FeatureDrift) -> None:
    """KS and Wasserstein from fine histograms, against scipy-exact values and the stated bound."""
    m, exact = f.metrics, g.metrics
    assert abs(m["ks_statistic"] - exact["ks_statistic"]) <= m["ks_error_bound"] + 1e-12, f.feature
    assert abs(m["wasserstein"] - exact["wasserstein"]) <= m["wasserstein_error_bound"] + 1e-12, f.feature
    assert abs(m["wasserstein_norm"] - exact["wasserstein_norm"]) <= m["wasserstein_norm_error_bound"] + 1e-12
    if f.feature in ("x", "y"):  # continuous: 1024 fine bins make the bounds small (codes fill whole bins)
        assert m["ks_error_bound"] < 0.02 and m["wasserstein_norm_error_bound"] < 0.02
    assert any("KS within" in note for note in f.notes)


def test_report_on_a_local_cluster_equals_the_in_memory_report(tables, client, in_memory) -> None:
    scaled = compare_at_scale(*tables, DriftParams(), COMPUTE, client=client)
    _assert_same_report(scaled, in_memory)
    types = {f.feature: f.type for f in scaled.features}
    assert types == {"x": "numeric", "y": "numeric", "code": "categorical", "codes25": "numeric", "c": "categorical",
                     "num_text": "numeric", "id": "id", "when": "datetime", "cnt": "numeric"}
    assert scaled.feature("x").drifted and not scaled.feature("y").drifted
    assert any("8 baseline and 6 target partitions" in n and "2 workers" in n for n in scaled.notes)


def test_in_process_scheduler_and_dask_dataframes_give_the_same_report(tables, client, in_memory) -> None:
    import dask.dataframe as dd

    in_process = compare_at_scale(*tables, DriftParams(), ComputeParams(partition_rows=5000, progress=False))
    _assert_same_report(in_process, in_memory)
    frames = [dd.read_parquet(glob, split_row_groups=False) for glob in tables]
    from_dask = compare_at_scale(*frames, DriftParams(), COMPUTE, client=client)
    _assert_same_report(from_dask, in_memory)


def test_merged_partition_profiles_equal_the_profile_of_the_concatenation(tables, client) -> None:
    whole = read_table(tables[1])
    types = {"x": "numeric", "y": "numeric", "c": "categorical", "code": "categorical"}
    edges = {"x": np.linspace(-3.0, 3.0, 21), "y": np.linspace(0.0, 5.0, 21)}
    expected = profile_frame(whole, types, edges)
    with runner(COMPUTE, client) as run:
        table = open_table(tables[1], COMPUTE)
        merged, _ = profile_table(table, ProfileTask(types, edges, 1024), run)
    assert merged.rows == expected.rows == len(whole)
    for name, prof in expected.columns.items():
        got = merged.columns[name]
        if isinstance(prof, NumericProfile):
            assert isinstance(got, NumericProfile)
            for key in ("count", "missing", "infinite", "min", "max", "under_sum", "over_sum"):
                assert getattr(got, key) == pytest.approx(getattr(prof, key), rel=1e-12), (name, key)
            assert got.mean == pytest.approx(prof.mean, rel=1e-12) and got.m2 == pytest.approx(prof.m2, rel=1e-9)
            assert got.hist.tolist() == prof.hist.tolist() and got.fine_hist.tolist() == prof.fine_hist.tolist()
        else:
            assert got.counts == prof.counts and got.missing == prof.missing


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(lambda rng, n: rng.permutation(n) + 7, id="shuffled-consecutive-ids"),
        pytest.param(lambda rng, n: np.arange(n) * 3, id="rising-ids"),
        pytest.param(lambda rng, n: np.r_[rng.integers(0, 20, n - 1), 99], id="21-codes-last-is-rare"),
        pytest.param(lambda rng, n: rng.integers(0, 20, n), id="20-codes"),
        pytest.param(lambda rng, n: rng.permutation(n).astype(str), id="numbers-as-text"),
        pytest.param(lambda rng, n: [f"u{i}" for i in rng.permutation(n)], id="text-ids"),
        pytest.param(lambda rng, n: rng.choice(["a", "b", None], n), id="text-categories"),
        pytest.param(lambda rng, n: [f"2024-01-{1 + i % 28:02d} 10:00" for i in range(n)], id="dates-as-text"),
        pytest.param(lambda rng, n: rng.random(n) < 0.3, id="booleans"),
        pytest.param(lambda rng, n: np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)), id="floats"),
        pytest.param(lambda rng, n: np.full(n, np.nan), id="all-missing"),
    ],
)
def test_types_from_partition_scans_equal_whole_table_inference(values) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"v": values(rng, 400)})
    params = DriftParams()
    expected = infer_column_types(frame, params)
    with runner(ComputeParams(progress=False)) as run:
        table = open_table(frame, ComputeParams(partition_rows=70))
        _, scans = scan_table(table, ["v"], params.categorical_max_unique, run)
    assert infer_types(scans, params) == expected


def _baseline_copy(tables: tuple[str, str], folder: Path) -> Path:
    folder.mkdir()
    for path in sorted(Path(tables[0]).parent.glob("*.parquet")):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_a_corrupt_file_gives_an_error_naming_it(tables, client, tmp_path: Path) -> None:
    folder = _baseline_copy(tables, tmp_path / "corrupt-footer")
    (folder / "part-02.parquet").write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(DataError, match=r"part-02\.parquet: cannot be read as parquet"):
        compare_at_scale(str(folder / "*.parquet"), tables[1], DriftParams(), COMPUTE, client=client)


def test_a_corrupt_data_page_read_on_a_worker_gives_an_error_naming_the_file(tables, client, tmp_path: Path) -> None:
    folder = _baseline_copy(tables, tmp_path / "corrupt-page")
    bad = folder / "part-01.parquet"
    data = bytearray(bad.read_bytes())
    data[4:400] = b"\xff" * 396  # the first page headers: the footer still reads, the data does not
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"part-01\.parquet"):
        compare_at_scale(str(folder / "*.parquet"), tables[1], DriftParams(), COMPUTE, client=client)


def test_a_schema_mismatched_file_gives_an_error_naming_it(tables, client, tmp_path: Path) -> None:
    folder = _baseline_copy(tables, tmp_path / "mismatch")
    frame = pd.read_parquet(folder / "part-03.parquet")
    frame["x"] = frame["x"].map("{:.3f} units".format)
    frame.to_parquet(folder / "part-03.parquet")
    with pytest.raises(DataError, match=r"part-03\.parquet: schema differs .* column 'x' holds text"):
        compare_at_scale(str(folder / "*.parquet"), tables[1], DriftParams(), COMPUTE, client=client)
    frame.drop(columns=["x", "y"]).to_parquet(folder / "part-03.parquet")
    with pytest.raises(DataError, match=r"part-03\.parquet: schema differs .* column 'x' is missing"):
        compare_at_scale(str(folder / "*.parquet"), tables[1], DriftParams(), COMPUTE, client=client)


def test_approximation_bounds_hold_for_shifted_and_outlying_targets() -> None:
    rng = np.random.default_rng(5)
    base = pd.DataFrame({"v": rng.normal(0.0, 1.0, 5000)})
    for target_values in (rng.normal(0.5, 2.0, 4000), rng.standard_t(2, 4000) * 3.0, rng.uniform(-1, 1, 300)):
        target = pd.DataFrame({"v": target_values})
        exact = compare(base, target, DriftParams(coefficient_sample=0)).feature("v").metrics
        base_prof = profile_frame(base, {"v": "numeric"}, fine_bins=256)
        target_prof = profile_frame(target, {"v": "numeric"}, base_prof.edges, fine_bins=256)
        b, t = base_prof.columns["v"], target_prof.columns["v"]
        assert isinstance(b, NumericProfile) and isinstance(t, NumericProfile)
        bounds = approximation_bounds(b, t)
        approx = numeric_distances(b, t)
        assert abs(approx["ks_approx"] - exact["ks_statistic"]) <= bounds["ks_error_bound"]
        assert abs(approx["wasserstein_approx"] - exact["wasserstein"]) <= bounds["wasserstein_error_bound"]
        assert math.isclose(bounds["fine_bin_width"], (b.edges[-1] - b.edges[0]) / 256)


def test_sample_positions_are_the_whole_table_draws() -> None:
    rows = [5, 0, 7, 3]
    parts = sample_positions(rows, 6, np.random.default_rng(9))
    whole = sample_rows(sum(rows), 6, np.random.default_rng(9))
    offsets = np.cumsum([0, *rows])[:-1]
    assert np.concatenate([p + o for p, o in zip(parts, offsets, strict=True)]).tolist() == whole.tolist()
    assert all(((p >= 0) & (p < n)).all() for p, n in zip(parts, rows, strict=True))


def test_unknown_scheduler_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match="compute.scheduler: 'spark'"):
        check_scheduler(ComputeParams(scheduler="spark"))


@pytest.mark.slow
def test_driftgate_drift_with_a_compute_section_runs_on_dask(tables, in_memory, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    import argparse
    import json

    from helpers.cli import drift as drift_cli

    settings = tmp_path / "scale.yaml"
    settings.write_text("compute:\n  scheduler: local\n  processes: false  # threads: the CLI starts its own cluster\n"
                        "  progress: false\n")
    parser = argparse.ArgumentParser(prog="driftgate")
    drift_cli.register(parser.add_subparsers(dest="command", required=True))
    argv = ["drift", "--baseline", tables[0], "--target", tables[1], "--params", str(settings)]
    args = parser.parse_args([*argv, "--json", str(tmp_path / "r.json"), "-p", "compute.n_workers=2"])
    assert args.func(args) == 0
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["summary"]["coefficient"] == pytest.approx(in_memory.coefficient, abs=1e-12)
    assert any("partition by partition, Dask (2 workers" in n for n in written["notes"])
    assert "drift" in capsys.readouterr().out
    timed = parser.parse_args([*argv, "--time-column", "when"])
    with pytest.raises(ParamsError, match="--time-column"):
        timed.func(timed)


def _write_captures(root: Path, model: str, frame: pd.DataFrame) -> None:
    """Capture files in the service's layout: two files a day, with feedback for every third row."""
    stamps = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)) * 3, unit="min")
    frame = frame.assign(request_id=[f"r{i}" for i in range(len(frame))], row=np.int32(0), timestamp=stamps,
                         latency_ms=1.0, model_name=model, model_version=np.where(np.arange(len(frame)) < 900,
                                                                                  "1", "2"))
    for (day, half), part in frame.groupby([frame["timestamp"].dt.day, frame.index % 2]):
        folder = root / model / "2026" / "01" / f"{day:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / f"captures-{half}.parquet", index=False)
        labelled = part.iloc[::3]
        feedback = pd.DataFrame({"request_id": labelled["request_id"], "row": labelled["row"],
                                 "label": labelled["prediction"] * 1.1, "timestamp": labelled["timestamp"]})
        feedback.to_parquet(folder / f"feedback-{half}.parquet", index=False)


def test_capture_profiles_keep_only_the_champions_rows(tmp_path: Path) -> None:
    """A shadow's and a canary's rows (same inputs, other predictions) stay out of the profile on
    every path, as :func:`read_captures` leaves them out; a file written before roles existed
    holds the champion's rows."""
    from helpers.modeling.captures import read_captures

    rng = np.random.default_rng(7)
    n = 300
    frame = pd.DataFrame({"x": rng.normal(size=n), "prediction": rng.normal(100.0, 5.0, size=n)})
    stamps = pd.Timestamp("2026-01-01 06:00", tz="UTC") + pd.to_timedelta(np.arange(n), unit="min")
    frame = frame.assign(request_id=[f"r{i}" for i in range(n)], row=np.int32(0), timestamp=stamps, latency_ms=1.0,
                         model_name="m", model_version="1")
    folder = tmp_path / "captures" / "m" / "2026" / "01" / "01"
    folder.mkdir(parents=True)
    frame.iloc[:100].to_parquet(folder / "captures-old.parquet", index=False)  # no role column
    recent = frame.iloc[100:].assign(role=np.where(np.arange(200) % 4 == 0, None, "champion"))  # null: champion
    others = pd.concat([recent.assign(role="shadow", model_version="2", prediction=recent["prediction"] + 1000.0),
                        recent.iloc[:50].assign(role="canary", model_version="3", prediction=-1000.0)])
    pd.concat([recent, others]).to_parquet(folder / "captures-new.parquet", index=False)
    types = {"x": "numeric", "prediction": "numeric"}
    baseline = profile_frame(frame[["x", "prediction"]], types, bins=10)
    start, end = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-02", tz="UTC")

    prof = profile_captures(tmp_path / "captures", "m", start, end, baseline, ["x", "prediction"], ComputeParams())
    champion = read_captures(tmp_path / "captures", "m", start, end)
    assert prof.rows == len(champion) == n  # every champion row, no shadow or canary row
    exact = profile_frame(frame[["x", "prediction"]], types, baseline.edges)
    for column in ("x", "prediction"):
        assert prof.columns[column].hist.tolist() == exact.columns[column].hist.tolist()
    assert prof.columns["prediction"].max == pytest.approx(frame["prediction"].max())


@pytest.mark.slow
def test_monitor_on_dask_gives_the_pandas_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.core.config import load_params
    from helpers.modeling.captures import read_captures, read_labeled_captures
    from helpers.monitoring import monitor
    from support import DATA, write_params

    params_file = write_params(tmp_path)
    params = load_params(params_file)
    features = params.data.features
    data = pd.read_csv(DATA)
    base = data.iloc[:3000][features].assign(prediction=lambda d: d["temp"] * 300.0)
    types = infer_column_types(base, params.drift)[0] | {"prediction": "numeric"}
    baseline = profile_frame(base, types, bins=params.drift.bins)
    later = data.iloc[5000:6400][features].reset_index(drop=True).assign(prediction=lambda d: d["temp"] * 330.0)
    root, model = params.outputs_dir / "captures", params.mlflow.model_name
    _write_captures(root, model, later)
    champion = monitor.Champion("1", "run", baseline, {"rmse": 10.0})
    monkeypatch.setattr(monitor, "load_champion", lambda p: champion)
    window = monitor.resolve_window("day", "2026-01-01T12:00", "2026-01-03T18:00")
    scale = ["compute.scheduler=local", "compute.processes=false", "compute.progress=false"]

    at_scale = labelled_captures(root, model, window.start, window.end, load_params(params_file, scale).compute)
    expected = read_labeled_captures(root, model, window.start, window.end)
    pd.testing.assert_frame_equal(at_scale, expected, check_dtype=False)
    prof = profile_captures(root, model, window.start, window.end, baseline, features, ComputeParams())
    exact = profile_frame(read_captures(root, model, window.start, window.end), types, baseline.edges)
    assert prof.rows == exact.rows and prof.columns["hum"].hist.tolist() == exact.columns["hum"].hist.tolist()

    pandas = monitor.run_monitor(params, window=window).summary
    dask = monitor.run_monitor(load_params(params_file, scale), window=window).summary
    assert pandas["rows"] == 1080 and 300 < pandas["labelled_rows"] < 400 and pandas["versions_seen"] == ["1", "2"]
    for key in ("rows", "labelled_rows", "versions_seen", "decision", "drifted", "degraded", "reason",
                "feature_drift", "prediction_drift", "performance"):
        _assert_close(dask[key], pandas[key], key)


def _assert_close(got: object, want: object, where: str) -> None:
    """Equal, floats to 1e-9 (merged moments differ from one-pass moments in the last bits)."""
    if isinstance(want, dict) and isinstance(got, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list) and isinstance(got, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(want, float) and isinstance(got, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    else:
        assert got == want, where


# --------------------------------------------------------------------------- real tables, relative paths


def _real_frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """What users' tables hold: spaced and non-ASCII names, booleans, text, times with a zone."""
    return pd.DataFrame({
        "x value": rng.normal(shift, 1.0, n),
        "température": rng.normal(20.0, 5.0, n),
        "flag": rng.random(n) < 0.3 + shift / 4,
        "ville": rng.choice(["Paris", "Köln", "Zürich"], n),
        "when": pd.date_range("2024-01-01", periods=n, freq="min", tz="Europe/Paris"),
    })


@pytest.fixture(scope="module")
def real_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parquet written from filtered pandas frames (a stored ``__index_level_0__``): row groups of
    one row, an empty file, and a row group larger than ``partition_rows``."""
    root = tmp_path_factory.mktemp("real")
    lake = root / "lake"
    lake.mkdir()
    rng = np.random.default_rng(11)
    base, target = _real_frame(rng, 6000, 0.0), _real_frame(rng, 5000, 0.4)
    base[base["x value"] > -1.5].to_parquet(lake / "base-0.parquet", row_group_size=1)
    base.iloc[:0].to_parquet(lake / "base-1.parquet")
    base[base["x value"] <= -1.5].to_parquet(lake / "base-2.parquet", row_group_size=7)
    target[target["x value"] < 3].to_parquet(lake / "target-0.parquet", row_group_size=10_000)
    assert "__index_level_0__" in pq.ParquetFile(lake / "base-0.parquet").schema_arrow.names
    return root


@pytest.mark.slow
def test_real_tables_from_another_folder_on_a_cluster_equal_the_in_memory_report(
        real_lake: Path, client, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = real_lake / "lake"
    exact = compare(read_table(lake / "base-*.parquet"), read_table(lake / "target-*.parquet"), DriftParams())
    monkeypatch.chdir(real_lake)  # the workers stay in the folder the cluster started in
    assert all(Path(cwd) != real_lake for cwd in client.run(lambda: str(Path.cwd())).values())
    scaled = compare_at_scale("lake/base-*.parquet", "lake/target-*.parquet", DriftParams(), COMPUTE, client=client)
    _assert_same_report(scaled, exact)
    assert {f.feature: f.type for f in scaled.features} == {  # ordered by contribution, some near zero
        "x value": "numeric", "flag": "categorical", "ville": "categorical", "température": "numeric",
        "when": "datetime"}
    base = open_table("lake/base-*.parquet", COMPUTE)
    assert all(Path(p.path).is_absolute() for p in base.parts) and "__index_level_0__" not in base.columns
    assert sum(base.rows) == 6000 and max(base.rows) == 2000  # 1-row groups gathered up to partition_rows
    assert open_table("lake/target-0.parquet", COMPUTE).rows == [len(read_table("lake/target-0.parquet"))]


@pytest.mark.slow
def test_driftgate_drift_on_a_scheduler_address_reads_relative_paths_with_a_stored_index(
        real_lake: Path, client, tmp_path: Path) -> None:
    lake = real_lake / "lake"
    exact = compare(read_table(lake / "base-0.parquet"), read_table(lake / "target-0.parquet"), DriftParams())
    out = tmp_path / "report.json"
    done = run_cli("drift", "--baseline", "lake/base-0.parquet", "--target", "lake/target-0.parquet",
                   "-p", f"compute.scheduler={client.scheduler.address}", "-p", "compute.progress=false",
                   "--json", str(out), cwd=real_lake)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["summary"]["coefficient"] == pytest.approx(exact.coefficient, abs=1e-12)
    assert "__index_level_0__" not in done.stdout and "2 workers" in " ".join(report["notes"])
