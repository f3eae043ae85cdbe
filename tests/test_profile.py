"""Mergeable profiles: exact merge, JSON round trip, and distances from profiles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from helpers.stats.profile import CategoricalProfile, FrameProfile
from helpers.stats.profiling import baseline_edges, category_counts, histogram_with_overflow, profile_frame
from helpers.stats.statistics import (
    categorical_distances,
    chi2_homogeneity,
    euclidean,
    jensenshannon,
    numeric_distances,
    psi,
)

TYPES = {"x": "numeric", "k": "numeric", "c": "categorical", "flag": "categorical"}


def _frame(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.01] = np.inf
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 50, n).astype(float),
            "c": pd.Series(rng.choice(["a", "b", "c", None], n), dtype="str"),
            "flag": rng.random(n) < 0.3,
        }
    )


@pytest.mark.parametrize("seed", range(5))
def test_merge_of_parts_equals_profile_of_whole(seed: int) -> None:
    base = profile_frame(_frame(100 + seed, 500), TYPES, bins=10, fine_bins=64)
    left, right = _frame(seed, 700, shift=0.5), _frame(seed + 50, 300, shift=3.0)
    whole = pd.concat([left, right], ignore_index=True)
    merged = profile_frame(left, TYPES, base.edges, fine_bins=64).merge(
        profile_frame(right, TYPES, base.edges, fine_bins=64)
    )
    direct = profile_frame(whole, TYPES, base.edges, fine_bins=64)
    assert merged.rows == direct.rows == 1000
    for name in ("x", "k"):
        m, d = merged.columns[name], direct.columns[name]
        assert (m.count, m.missing, m.infinite) == (d.count, d.missing, d.infinite)
        np.testing.assert_array_equal(m.hist, d.hist)
        np.testing.assert_array_equal(m.fine_hist, d.fine_hist)
        assert m.mean == pytest.approx(d.mean, rel=1e-12, abs=1e-12)
        assert m.m2 == pytest.approx(d.m2, rel=1e-12)
        assert (m.min, m.max) == (d.min, d.max)
        assert m.under_sum == pytest.approx(d.under_sum, rel=1e-12, abs=1e-12)
        assert m.over_sum == pytest.approx(d.over_sum, rel=1e-12, abs=1e-12)
    for name in ("c", "flag"):
        assert merged.columns[name].counts == direct.columns[name].counts
        assert merged.columns[name].missing == direct.columns[name].missing


def test_moments_match_numpy() -> None:
    df = _frame(3, 2000)
    prof = profile_frame(df, TYPES).columns["x"]
    finite = df["x"][np.isfinite(df["x"])].to_numpy()
    assert prof.count == finite.size
    assert prof.missing == int(df["x"].isna().sum())
    assert prof.infinite == int(np.isinf(df["x"]).sum())
    assert prof.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert prof.std == pytest.approx(finite.std(), rel=1e-12)


def test_json_round_trip_is_exact_and_strict() -> None:
    prof = profile_frame(_frame(1, 300), TYPES, fine_bins=32)
    text = prof.to_json()
    json.loads(text)  # strict JSON
    back = FrameProfile.from_json(text)
    assert back.to_dict() == prof.to_dict()


def test_json_of_all_missing_column_has_no_nan() -> None:
    df = pd.DataFrame({"x": [np.nan, np.nan]})
    prof = profile_frame(df, {"x": "numeric"})
    data = json.loads(prof.to_json())
    assert data["columns"]["x"]["mean"] is None
    assert FrameProfile.from_json(prof.to_json()).columns["x"].count == 0


def test_histogram_matches_numpy_inside_and_counts_overflow() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=1000)
    edges = baseline_edges(base, 15)
    hist = histogram_with_overflow(base, edges)
    np.testing.assert_array_equal(hist[1:-1], np.histogram(base, edges)[0])
    assert hist[0] == hist[-1] == 0
    other = np.array([-100.0, edges[0], edges[-1], 100.0, 101.0])
    h = histogram_with_overflow(other, edges)
    assert (h[0], h[1], h[-2], h[-1]) == (1, 1, 1, 2)


def test_constant_column_gets_usable_edges() -> None:
    edges = baseline_edges(np.full(10, 7.0), 4)
    assert edges[0] < 7.0 < edges[-1]
    assert histogram_with_overflow(np.full(10, 7.0), edges).sum() == 10


@pytest.mark.parametrize("seed", range(5))
def test_distances_equal_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 60, 12).astype(float)
    t = rng.integers(0, 60, 12).astype(float)
    t[rng.integers(0, 12)] = 0
    assert jensenshannon(b, t) == pytest.approx(scipy_js(b, t, base=2), abs=1e-9)
    pb, pt = b / b.sum(), t / t.sum()
    assert euclidean(b, t) == pytest.approx(np.linalg.norm(pb - pt), abs=1e-12)
    pb_e, pt_e = np.where(pb == 0, 1e-4, pb), np.where(pt == 0, 1e-4, pt)
    assert psi(b, t) == pytest.approx(np.sum((pt_e - pb_e) * np.log(pt_e / pb_e)), abs=1e-12)
    statistic, p_value, dof = chi2_homogeneity(b, t)
    ref = stats.chi2_contingency(np.vstack([b, t])[:, (b + t) > 0], correction=False)
    assert statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert dof == ref.dof


def test_chi2_two_categories_equals_uncorrected_scipy() -> None:
    b, t = np.array([30.0, 70.0]), np.array([45.0, 55.0])
    _, p_value, _ = chi2_homogeneity(b, t)
    assert p_value == pytest.approx(stats.chi2_contingency(np.vstack([b, t]), correction=False).pvalue, abs=1e-12)


def test_chi2_single_category_has_no_degrees_of_freedom() -> None:
    assert chi2_homogeneity(np.array([5.0]), np.array([9.0])) == (0.0, 1.0, 0)


def test_categorical_distances_from_profiles_equal_raw() -> None:
    rng = np.random.default_rng(4)
    base = pd.Series(rng.choice(list("abcd"), 400, p=[0.4, 0.3, 0.2, 0.1]))
    target = pd.Series(rng.choice(list("abce"), 300, p=[0.25, 0.25, 0.25, 0.25]))
    pb = CategoricalProfile(*category_counts(base))
    pt = CategoricalProfile(*category_counts(target))
    out = categorical_distances(pb, pt)
    labels = sorted(set(base) | set(target))
    b = np.array([(base == c).sum() for c in labels], float)
    t = np.array([(target == c).sum() for c in labels], float)
    assert out["jensenshannon"] == pytest.approx(scipy_js(b, t, base=2), abs=1e-9)
    reference = stats.chi2_contingency(np.vstack([b, t]), correction=False)
    assert out["chi2_pvalue"] == pytest.approx(reference.pvalue, abs=1e-9)


def test_category_labels_unify_int_and_float_codes() -> None:
    ints, _ = category_counts(pd.Series([1, 2, 2]))
    floats, missing = category_counts(pd.Series([1.0, 2.0, np.nan]))
    assert set(ints) == set(floats) == {"1", "2"}
    assert missing == 1


def test_numeric_distances_and_sketch_are_close_to_exact() -> None:
    rng = np.random.default_rng(7)
    base_df = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    target_df = pd.DataFrame({"x": rng.normal(0.5, 1.3, 20_000)})
    base = profile_frame(base_df, {"x": "numeric"}).columns["x"]
    target = profile_frame(target_df, {"x": "numeric"}, {"x": base.edges}).columns["x"]
    out = numeric_distances(base, target)
    assert out["jensenshannon"] == pytest.approx(scipy_js(base.hist, target.hist, base=2), abs=1e-9)
    exact_w = stats.wasserstein_distance(base_df["x"], target_df["x"])
    exact_ks = stats.ks_2samp(base_df["x"], target_df["x"]).statistic
    assert out["wasserstein_approx"] == pytest.approx(exact_w, rel=0.02)
    assert out["ks_approx"] == pytest.approx(exact_ks, abs=0.01)
    q = base.quantiles([0.1, 0.5, 0.9])
    np.testing.assert_allclose(q, np.quantile(base_df["x"], [0.1, 0.5, 0.9]), atol=0.02)


def test_merge_with_other_edges_is_refused() -> None:
    a = profile_frame(pd.DataFrame({"x": [0.0, 1.0]}), {"x": "numeric"})
    b = profile_frame(pd.DataFrame({"x": [0.0, 2.0]}), {"x": "numeric"})
    with pytest.raises(ValueError, match="different bin edges"):
        a.merge(b)


@pytest.mark.parametrize("seed", range(4))
def test_sorted_fast_path_equals_general_profile(seed: int) -> None:
    from helpers.stats.profiling import profile_numeric, sorted_histogram

    rng = np.random.default_rng(seed)
    base = rng.normal(size=500)
    edges = baseline_edges(base, 12)
    values = np.sort(np.concatenate([rng.normal(0.5, 2, 700), edges[[0, 3, -1]], np.round(rng.normal(size=50))]))
    np.testing.assert_array_equal(sorted_histogram(values, edges), histogram_with_overflow(values, edges))
    fast = profile_numeric(values, 2, 1, edges, fine_bins=64, is_sorted=True)
    slow = profile_numeric(rng.permutation(values), 2, 1, edges, fine_bins=64)
    np.testing.assert_array_equal(fast.hist, slow.hist)
    np.testing.assert_array_equal(fast.fine_hist, slow.fine_hist)
    assert (fast.min, fast.max, fast.count) == (slow.min, slow.max, slow.count)
    assert fast.under_sum == pytest.approx(slow.under_sum) and fast.over_sum == pytest.approx(slow.over_sum)


def test_dask_profile_equals_pandas_profile() -> None:
    dd = pytest.importorskip("dask.dataframe")
    from helpers.stats.profiling import profile_dask

    df = pd.concat([_frame(1, 900), _frame(2, 700, shift=2.0)], ignore_index=True)
    ddf = dd.from_pandas(df, npartitions=4)
    direct = profile_frame(df, TYPES, fine_bins=64)
    merged = profile_dask(ddf, TYPES, fine_bins=64, scheduler="synchronous")
    assert merged.rows == direct.rows
    for name in ("x", "k"):
        m, d = merged.columns[name], direct.columns[name]
        np.testing.assert_array_equal(m.edges, d.edges)
        np.testing.assert_array_equal(m.hist, d.hist)
        np.testing.assert_array_equal(m.fine_hist, d.fine_hist)
        assert (m.count, m.missing, m.infinite) == (d.count, d.missing, d.infinite)
        assert m.mean == pytest.approx(d.mean, rel=1e-12) and m.m2 == pytest.approx(d.m2, rel=1e-12)
    for name in ("c", "flag"):
        assert merged.columns[name].counts == direct.columns[name].counts
    with_edges = profile_dask(ddf, TYPES, direct.edges, fine_bins=64, scheduler="synchronous")
    np.testing.assert_array_equal(with_edges.columns["x"].hist, direct.columns["x"].hist)
