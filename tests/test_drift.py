"""The drift engine: exact statistics, selection, decisions, coefficient and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

from helpers.core.config import DriftParams, DriftThresholds
from helpers.core.errors import DataError, ParamsError
from helpers.stats.column_types import infer_column_types
from helpers.stats.compare import compare
from helpers.stats.selection import select_test
from helpers.stats.statistics import adjust_pvalues, ecdf_distances, ks_pvalue

NO_COEF = DriftParams(coefficient_sample=0)


def _mixed(seed: int, n: int, mean: float = 0.0, scale: float = 1.0, mix: list[float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(mean, scale, n),
            "b": rng.exponential(1.0, n),
            "k": rng.integers(0, 100, n),
            "c": rng.choice(list("pqrst"), n, p=mix or [0.3, 0.25, 0.2, 0.15, 0.1]),
            "d": rng.choice(["x", "y"], n),
        }
    )


# --------------------------------------------------------------------------- exact statistics


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_ecdf_statistics_equal_scipy(seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(5, 3000, 2)
    a = rng.normal(0, 1, n1)
    b = rng.normal(0.2, 1.5, n2)
    if ties:
        a, b = np.round(a * 3), np.round(b * 3)
    ks, w, e = ecdf_distances(np.sort(a), np.sort(b))
    ref = stats.ks_2samp(a, b)
    assert ks == pytest.approx(ref.statistic, abs=1e-9)
    assert w == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-9)
    assert e == pytest.approx(stats.energy_distance(a, b), abs=1e-9)
    assert ks_pvalue(ks, n1, n2) == pytest.approx(ref.pvalue, abs=1e-9)


@pytest.mark.parametrize(("n1", "n2"), [(12_000, 15_000), (40, 20_000), (10_000, 10_000), (1, 3)])
def test_ks_pvalue_equals_scipy_exact_and_asymptotic(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1)
    a, b = rng.normal(size=n1), rng.normal(0.03, size=n2)
    ks, _, _ = ecdf_distances(np.sort(a), np.sort(b))
    assert ks_pvalue(ks, n1, n2) == pytest.approx(stats.ks_2samp(a, b).pvalue, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_report_statistics_equal_scipy(seed: int) -> None:
    base, target = _mixed(seed, 800), _mixed(seed + 100, 600, mean=0.3, mix=[0.2] * 5)
    report = compare(base, target, NO_COEF, features=["a", "c"])
    a = report.feature("a")
    x, y = base["a"].to_numpy(), target["a"].to_numpy()
    ks = stats.ks_2samp(x, y)
    assert a.metrics["ks_statistic"] == pytest.approx(ks.statistic, abs=1e-9)
    assert a.metrics["ks_pvalue"] == pytest.approx(ks.pvalue, abs=1e-9)
    assert a.metrics["wasserstein"] == pytest.approx(stats.wasserstein_distance(x, y), abs=1e-9)
    assert a.metrics["wasserstein_norm"] == pytest.approx(stats.wasserstein_distance(x, y) / x.std(), abs=1e-9)
    assert a.metrics["energy"] == pytest.approx(stats.energy_distance(x, y), abs=1e-9)
    assert a.metrics["energy_norm"] == pytest.approx(stats.energy_distance(x / x.std(), y / x.std()), abs=1e-9)
    edges = np.linspace(x.min(), x.max(), NO_COEF.bins + 1)
    hb = np.histogram(x, edges)[0]
    ht = np.concatenate([[np.sum(y < edges[0])], np.histogram(y, edges)[0], [np.sum(y > edges[-1])]])
    assert a.metrics["jensenshannon"] == pytest.approx(scipy_js(np.concatenate([[0], hb, [0]]), ht, base=2), abs=1e-9)
    c = report.feature("c")
    labels = sorted(set(base["c"]) | set(target["c"]))
    table = np.array([[(df["c"] == v).sum() for v in labels] for df in (base, target)])
    assert c.metrics["chi2_pvalue"] == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, abs=1e-9)
    assert c.metrics["jensenshannon"] == pytest.approx(scipy_js(table[0], table[1], base=2), abs=1e-9)
    shares = table / table.sum(axis=1, keepdims=True)
    assert c.metrics["euclidean"] == pytest.approx(np.linalg.norm(shares[0] - shares[1]), abs=1e-12)


def test_side_summaries_match_pandas() -> None:
    base, target = _mixed(1, 500), _mixed(2, 400)
    target.loc[:9, "a"] = np.nan
    a = compare(base, target, NO_COEF, features=["a"]).feature("a")
    assert a.target["missing"] == 10
    assert a.target["missing_rate"] == pytest.approx(10 / 400)
    assert a.target["mean"] == pytest.approx(target["a"].mean(), rel=1e-12)
    assert a.target["std"] == pytest.approx(target["a"].std(ddof=0), rel=1e-12)
    assert (a.baseline["min"], a.baseline["max"]) == (base["a"].min(), base["a"].max())


def test_adjusted_pvalues_match_scipy_and_bonferroni() -> None:
    p = np.array([0.001, 0.04, 0.03, 0.2, 0.01])
    np.testing.assert_allclose(adjust_pvalues(p, "benjamini-hochberg"), stats.false_discovery_control(p), atol=1e-12)
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), np.minimum(p * 5, 1))
    assert adjust_pvalues(p, "none") == p.tolist()


# --------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(("n", "expected"), [(300, {"ks", "chi2"}), (3000, {"wasserstein", "jensenshannon"})])
def test_false_alarms_stay_at_the_nominal_share(n: int, expected: set[str]) -> None:
    flagged = tested = 0
    dataset_alarms = 0
    seeds = 200 if n == 300 else 10
    for seed in range(seeds):
        report = compare(_mixed(seed, n), _mixed(10_000 + seed, n), NO_COEF)
        assert {f.test for f in report.features} == expected
        flagged += report.n_drifted
        tested += report.n_compared
        dataset_alarms += report.drifted
    # 5% nominal; the binomial standard error at 1,000 tests is 0.7%
    assert flagged / tested <= 0.05 + 0.021
    assert dataset_alarms <= 1


@pytest.mark.parametrize("n", [400, 4000])
@pytest.mark.parametrize(
    ("kwargs", "feature"),
    [({"mean": 0.5}, "a"), ({"scale": 2.0}, "a"), ({"mix": [0.05, 0.05, 0.2, 0.3, 0.4]}, "c")],
)
def test_known_shifts_are_flagged(n: int, kwargs: dict, feature: str) -> None:
    report = compare(_mixed(1, n), _mixed(2, n, **kwargs), NO_COEF)
    assert report.feature(feature).drifted
    assert report.drifted_features == [feature]
    assert report.features[0].feature == feature  # drifted first


def test_scale_shift_keeps_the_mean_but_is_flagged_by_every_distance() -> None:
    rng = np.random.default_rng(3)
    base = pd.DataFrame({"a": rng.normal(0, 1, 5000)})
    target = pd.DataFrame({"a": rng.normal(0, 2, 5000)})
    for test in ("ks", "wasserstein", "energy", "psi", "jensenshannon"):
        assert compare(base, target, DriftParams(coefficient_sample=0, numeric_test=test)).feature("a").drifted


def test_decision_by_share_and_reason() -> None:
    params = DriftParams(coefficient_sample=0, drift_share=0.4)
    report = compare(_mixed(1, 500), _mixed(2, 500, mean=1.0, mix=[0.6, 0.1, 0.1, 0.1, 0.1]), params)
    assert report.n_drifted == 2 and report.share_drifted == pytest.approx(0.4)
    assert report.drifted
    assert report.reason.startswith("drift: 2 of 5 features drifted (share 0.40 >= 0.40)")
    assert "not computed" in report.reason


def test_correction_changes_the_decision_value() -> None:
    base, target = _mixed(5, 300), _mixed(6, 300, mean=0.2)
    raw = compare(base, target, NO_COEF).feature("a")
    bonf = compare(base, target, DriftParams(coefficient_sample=0, correction="bonferroni")).feature("a")
    assert bonf.p_value == raw.p_value
    assert bonf.statistic == pytest.approx(min(raw.p_value * 5, 1.0))
    assert bonf.metrics["ks_pvalue_adjusted"] == bonf.statistic


# --------------------------------------------------------------------------- test selection


def test_selection_precedence() -> None:
    params = DriftParams(test="psi", numeric_test="energy", per_feature={"a": "ks"})
    assert select_test("a", "numeric", 10**6, params) == "ks"
    assert select_test("b", "numeric", 10**6, params) == "energy"
    assert select_test("c", "categorical", 10, params) == "psi"
    assert select_test("c", "categorical", 10, DriftParams(test="energy")) == "chi2"  # n/a: auto
    assert select_test("c", "categorical", 5000, DriftParams()) == "jensenshannon"
    assert select_test("a", "numeric", 1000, DriftParams()) == "ks"


def test_small_sample_rule_baseline_follows_evidently() -> None:
    base, target = _mixed(1, 3000), _mixed(2, 200)
    assert compare(base, target, NO_COEF).feature("a").test == "ks"
    evidently = DriftParams(coefficient_sample=0, small_sample_rule="baseline")
    assert compare(base, target, evidently).feature("a").test == "wasserstein"


def test_per_feature_test_of_the_wrong_type_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match=r"drift.per_feature.c: 'ks' does not apply to a categorical"):
        compare(_mixed(1, 100), _mixed(2, 100), DriftParams(coefficient_sample=0, per_feature={"c": "ks"}))
    with pytest.raises(ParamsError, match="drift.per_feature.a: unknown test"):
        compare(_mixed(1, 100), _mixed(2, 100), DriftParams(per_feature={"a": "t-test"}))


# --------------------------------------------------------------------------- drift coefficient


def test_coefficient_near_zero_for_identical_distributions() -> None:
    report = compare(_mixed(1, 3000), _mixed(2, 3000), DriftParams(coefficient_sample=6000))
    assert report.coefficient is not None and report.coefficient < 0.1
    assert not report.drifted


def test_coefficient_near_one_for_disjoint_sides_and_contributions() -> None:
    base = _mixed(1, 2000)
    target = _mixed(2, 2000)
    target["a"] = target["a"] + 100.0
    report = compare(base, target, DriftParams(coefficient_sample=4000))
    assert report.coefficient is not None and report.coefficient > 0.95
    assert sum(report.contributions.values()) == pytest.approx(1.0)
    assert max(report.contributions, key=report.contributions.get) == "a"
    assert report.feature("a").contribution == report.contributions["a"]
    assert report.coefficient_detail["test_rows"] == 2000


def test_coefficient_is_seeded_and_sees_categories() -> None:
    base = _mixed(1, 1500)
    target = _mixed(2, 1500)
    target["d"] = "z"
    params = DriftParams(coefficient_sample=3000, seed=7)
    one, two = compare(base, target, params), compare(base, target, params)
    assert one.coefficient == two.coefficient and one.contributions == two.contributions
    assert one.coefficient > 0.95
    assert max(one.contributions, key=one.contributions.get) == "d"


# --------------------------------------------------------------------------- column typing


def test_infer_column_types_rules_and_overrides() -> None:
    n = 200
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "code": rng.integers(0, 5, n),
            "many": rng.integers(0, 500, n),
            "codes_with_gaps": pd.Series(rng.integers(0, 3, n), dtype="Int64").mask(rng.random(n) < 0.1),
            "flag": rng.random(n) < 0.5,
            "name": rng.choice(["a", "b"], n),
            "row_id": np.arange(n),
            "uuid": [f"id-{i:05d}-{rng.integers(1e9)}" for i in range(n)],
            "when": pd.date_range("2020-01-01", periods=n, freq="h"),
            "when_text": pd.date_range("2020-01-01", periods=n, freq="h").astype(str),
            "num_text": rng.normal(size=n).round(3).astype(str),
        }
    )
    types, notes = infer_column_types(df, DriftParams(column_types={"code": "numeric"}))
    assert types == {
        "x": "numeric",
        "code": "numeric",
        "many": "numeric",
        "codes_with_gaps": "categorical",
        "flag": "categorical",
        "name": "categorical",
        "row_id": "id",
        "uuid": "id",
        "when": "datetime",
        "when_text": "datetime",
        "num_text": "numeric",
    }
    assert "drift.column_types" in notes["code"][0]
    assert "excluded" in notes["row_id"][0]
    with pytest.raises(ParamsError, match="drift.column_types.x: unknown type 'float'"):
        infer_column_types(df, DriftParams(column_types={"x": "float"}))


def test_excluded_columns_are_reported_not_compared() -> None:
    base, target = _mixed(1, 100), _mixed(2, 100)
    for df in (base, target):
        df["row_id"] = np.arange(len(df))
        df["when"] = pd.date_range("2020-01-01", periods=len(df), freq="D")
    report = compare(base, target, NO_COEF)
    for name, kind in (("row_id", "id"), ("when", "datetime")):
        f = report.feature(name)
        assert (f.type, f.compared, f.drifted) == (kind, False, False)
        assert any("excluded" in n for n in f.notes)
    assert report.n_compared == 5
    assert "2 feature(s) not compared" in report.reason


# --------------------------------------------------------------------------- bad input


def _json(report) -> dict:
    return json.loads(json.dumps(report.to_dict(), allow_nan=False))


def test_empty_side_is_one_clear_error() -> None:
    with pytest.raises(DataError, match="the target is empty"):
        compare(_mixed(1, 10), _mixed(1, 10).iloc[:0], NO_COEF)


def test_feature_on_neither_side_is_an_error_naming_it() -> None:
    with pytest.raises(DataError, match="'nope' is in neither"):
        compare(_mixed(1, 10), _mixed(2, 10), NO_COEF, features=["a", "nope"])


def test_missing_and_extra_columns_get_notes() -> None:
    base, target = _mixed(1, 200), _mixed(2, 200).drop(columns=["b"])
    target["extra"] = 1.0
    report = compare(base, target, NO_COEF)
    assert "columns only in the baseline, not compared: b" in report.notes
    assert "columns only in the target, not compared: extra" in report.notes
    named = compare(base, target, NO_COEF, features=["a", "b"])
    b = named.feature("b")
    assert (b.type, b.compared) == ("missing", False)
    assert b.notes == ["column missing in the target; not compared"]


def test_type_mismatch_is_a_feature_note() -> None:
    base, target = _mixed(1, 200), _mixed(2, 200)
    target["a"] = target["a"].astype(str)
    target.loc[3, "a"] = "broken"
    target["b"] = target["b"].astype(str)  # numbers as text: converted
    report = compare(base, target, NO_COEF)
    a, b = report.feature("a"), report.feature("b")
    assert (a.type, a.compared) == ("mismatch", False)
    assert "'broken'" in a.notes[0]
    assert b.compared and "converted" in b.notes[0]
    assert b.metrics["ks_statistic"] == pytest.approx(stats.ks_2samp(base["b"], target["b"].astype(float)).statistic)
    _json(report)


def test_all_missing_and_constant_columns() -> None:
    base, target = _mixed(1, 200), _mixed(2, 200)
    target["b"] = np.nan
    base["k"] = 5
    target["k"] = 5
    base["d"] = None
    report = compare(base, target, NO_COEF)
    assert not report.feature("b").compared and "all missing" in report.feature("b").notes[0]
    assert not report.feature("d").compared
    k = report.feature("k")
    assert k.compared and not k.drifted
    assert k.type == "categorical"  # one distinct whole number
    data = _json(report)
    assert data["summary"]["n_compared"] == 3


def test_constant_numeric_baseline_uses_pooled_scale() -> None:
    base = pd.DataFrame({"x": np.full(100, 2.5)})
    params = DriftParams(coefficient_sample=0, numeric_test="wasserstein")
    same = compare(base, pd.DataFrame({"x": np.full(50, 2.5)}), params)
    assert same.feature("x").statistic == 0.0 and not same.drifted
    moved = compare(base, pd.DataFrame({"x": np.full(50, 3.5)}), params)
    assert moved.feature("x").drifted
    assert any("baseline is constant" in n for n in moved.feature("x").notes)
    _json(moved)


def test_category_only_in_target() -> None:
    base, target = _mixed(1, 500), _mixed(2, 500)
    target.loc[:49, "c"] = "new!"
    c = compare(base, target, NO_COEF).feature("c")
    assert c.new_categories == ["new!"] and c.gone_categories == []
    assert c.drifted
    assert any("only in the target: new!" in n for n in c.notes)
    assert "new!" in c.histogram["labels"]


def test_infinite_values_are_excluded_and_noted() -> None:
    base, target = _mixed(1, 300), _mixed(2, 300)
    target.loc[:4, "a"] = np.inf
    base.loc[:1, "a"] = -np.inf
    report = compare(base, target, DriftParams(coefficient_sample=600))
    a = report.feature("a")
    assert a.target["infinite"] == 5 and a.baseline["infinite"] == 2
    assert any("5 infinite values in the target" in n for n in a.notes)
    finite_t = target["a"][np.isfinite(target["a"])]
    finite_b = base["a"][np.isfinite(base["a"])]
    assert a.metrics["ks_statistic"] == pytest.approx(stats.ks_2samp(finite_b, finite_t).statistic)
    assert report.coefficient is not None
    _json(report)


def test_tiny_samples_are_noted_and_do_not_crash() -> None:
    base, target = _mixed(1, 3), _mixed(2, 2)
    report = compare(base, target, DriftParams())
    assert report.coefficient is None
    assert any("fewer than 10 rows" in n for n in report.notes)
    assert any("only 2 values in the target" in n for n in report.feature("a").notes)
    _json(report)


def test_nothing_comparable_is_one_error() -> None:
    base = pd.DataFrame({"x": [np.nan, np.nan]})
    with pytest.raises(DataError, match="no feature could be compared"):
        compare(base, pd.DataFrame({"x": [1.0, 2.0]}), NO_COEF)


def test_report_dict_table_and_json_are_complete() -> None:
    report = compare(_mixed(1, 800), _mixed(2, 800, mean=0.4), DriftParams(coefficient_sample=1600))
    data = _json(report)
    assert data["summary"]["drifted_features"] == ["a"]
    assert {f["feature"] for f in data["features"]} == {"a", "b", "k", "c", "d"}
    for f in data["features"]:
        assert f["test"] and f["statistic"] is not None and f["threshold"] is not None
    table = report.table()
    assert list(table["feature"])[0] == "a"
    assert table["drifted"].tolist() == sorted(table["drifted"].tolist(), reverse=True)
    assert {"feature", "type", "test", "statistic", "threshold", "drifted", "note"} <= set(table.columns)


def test_nullable_and_boolean_dtypes() -> None:
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"f": pd.array(rng.normal(size=200), dtype="Float64"), "ok": rng.random(200) < 0.5})
    target = pd.DataFrame({"f": pd.array(rng.normal(size=200), dtype="Float64"), "ok": rng.random(200) < 0.9})
    target.loc[0, "f"] = pd.NA
    report = compare(base, target, DriftParams(coefficient_sample=400))
    assert report.feature("ok").drifted and report.feature("ok").type == "categorical"
    assert report.feature("f").target["missing"] == 1
    _json(report)


# --------------------------------------------------------------------------- over time


def test_drift_over_time_per_week() -> None:
    base = _mixed(1, 700)
    target = _mixed(2, 21 * 24, mean=0.0)
    target["when"] = pd.date_range("2021-03-01", periods=len(target), freq="h")  # Monday
    target.loc[target["when"] >= "2021-03-15", "a"] += 3.0  # third week shifts
    report = compare(base, target, DriftParams(coefficient_sample=0, period="W"), time_column="when")
    ot = report.over_time
    assert ot is not None and len(ot.periods) == 3 and ot.rows == [168, 168, 168]
    assert ot.features["a"]["drifted"] == [False, False, True]
    assert ot.share_drifted[2] >= 0.2
    assert "when" not in [f.feature for f in report.features]
    json.dumps(report.to_dict(), allow_nan=False)


def test_bad_time_column_and_period() -> None:
    base, target = _mixed(1, 50), _mixed(2, 50)
    with pytest.raises(DataError, match="time column 'when' is not in the target"):
        compare(base, target, NO_COEF, time_column="when")
    target["when"] = "not a date"
    with pytest.raises(DataError, match="'when': values are not dates"):
        compare(base, target, NO_COEF, time_column="when")
    target["when"] = pd.date_range("2021-01-01", periods=50, freq="D")
    with pytest.raises(ParamsError, match="drift.period"):
        compare(base, target, DriftParams(coefficient_sample=0, period="fortnight"), time_column="when")


def test_thresholds_come_from_params() -> None:
    params = DriftParams(coefficient_sample=0, thresholds=DriftThresholds(wasserstein=10.0))
    report = compare(_mixed(1, 2000), _mixed(2, 2000, mean=1.0), params)
    a = report.feature("a")
    assert a.threshold == 10.0 and not a.drifted


def test_roc_auc_and_permutation_importance_match_sklearn() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from helpers.stats.coefficient import permutation_importance, roc_auc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.normal(y * 0.8, 1.0), 1)  # with ties
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    x = np.column_stack([y + rng.normal(0, 0.5, 500), rng.normal(size=500)])
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    importance = permutation_importance(model, x, y, seed=0)
    assert importance[0] > 0.2 and importance[1] < 0.05


# --------------------------------------------------------------------------- drift from profiles


def _profiles(base: pd.DataFrame, target: pd.DataFrame, parts: int = 1):
    from helpers.stats.profiling import profile_frame

    types, _ = infer_column_types(base, DriftParams())
    base_prof = profile_frame(base, types)
    chunks = np.array_split(np.arange(len(target)), parts)
    target_prof = profile_frame(target.iloc[chunks[0]], types, base_prof.edges)
    for chunk in chunks[1:]:
        target_prof = target_prof.merge(profile_frame(target.iloc[chunk], types, base_prof.edges))
    return base_prof, target_prof


def test_compare_profiles_matches_compare_on_rows() -> None:
    from helpers.stats.compare import compare_profiles

    base, target = _mixed(1, 5000), _mixed(2, 4000, mean=0.5, mix=[0.05, 0.05, 0.2, 0.3, 0.4])
    rows = compare(base, target, NO_COEF)
    counts = compare_profiles(*_profiles(base, target, parts=3), NO_COEF)
    assert set(counts.drifted_features) == set(rows.drifted_features) == {"a", "c"}
    for name in ("c", "d", "k"):
        for key in ("chi2_pvalue", "jensenshannon", "psi", "euclidean"):
            if key in rows.feature(name).metrics:
                assert counts.feature(name).metrics[key] == pytest.approx(rows.feature(name).metrics[key], abs=1e-12)
    a_rows, a_counts = rows.feature("a"), counts.feature("a")
    assert a_counts.metrics["psi"] == pytest.approx(a_rows.metrics["psi"], abs=1e-12)
    assert a_counts.metrics["jensenshannon"] == pytest.approx(a_rows.metrics["jensenshannon"], abs=1e-12)
    assert a_counts.metrics["wasserstein"] == pytest.approx(a_rows.metrics["wasserstein"], rel=0.03)
    assert a_counts.metrics["ks_statistic"] == pytest.approx(a_rows.metrics["ks_statistic"], abs=0.01)
    assert counts.coefficient is None and any("profiles hold no rows" in n for n in counts.notes)
    assert any("approximate" in n for n in a_counts.notes)
    json.dumps(counts.to_dict(), allow_nan=False)


def test_compare_profiles_handles_bad_pairs() -> None:
    from helpers.stats.compare import compare_profiles
    from helpers.stats.profiling import profile_frame

    base, target = _mixed(1, 500), _mixed(2, 500)
    base_prof, _ = _profiles(base, target)
    own_edges = profile_frame(target, {"a": "numeric", "c": "categorical", "b": "categorical"})
    report = compare_profiles(base_prof, own_edges, DriftParams(numeric_test="energy"))
    a, b = report.feature("a"), report.feature("b")
    assert not a.compared and "different bin edges" in a.notes[0]
    assert b.type == "mismatch" and not b.compared
    assert report.feature("c").compared
    assert "columns only in the baseline profile, not compared: k, d" in report.notes
    _, target_prof = _profiles(base, target)
    energy = compare_profiles(base_prof, target_prof, DriftParams(numeric_test="energy"))
    assert energy.feature("a").test == "wasserstein"
    assert any("energy needs rows" in n for n in energy.feature("a").notes)


def test_odd_frames_integer_names_duplicates_and_pandas_categoricals() -> None:
    rng = np.random.default_rng(0)
    def side() -> pd.DataFrame:
        codes = pd.Categorical(rng.choice(["u", "v"], 200), categories=list("uvw"))
        return pd.DataFrame({0: rng.normal(size=200), 1: codes})

    base, target = side(), side()
    report = compare(base, target, NO_COEF)
    assert {f.feature for f in report.features} == {"0", "1"}
    cat = report.feature("1")
    assert cat.compared and cat.new_categories == [] and cat.gone_categories == []
    assert cat.metrics["distinct_baseline"] == 2
    twice = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    with pytest.raises(DataError, match="duplicate column names: a"):
        compare(twice, twice, NO_COEF)


def test_threaded_comparison_of_big_tables_gives_the_same_report(monkeypatch: pytest.MonkeyPatch) -> None:
    import helpers.stats.compare as compare_module

    base, target = _mixed(1, 3000), _mixed(2, 3000, mean=0.3)
    serial = compare(base, target, NO_COEF).to_dict()
    monkeypatch.setattr(compare_module, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(compare_module, "MAX_THREADS", 3)
    monkeypatch.setattr(compare_module.os, "cpu_count", lambda: 3)
    assert compare(base, target, NO_COEF).to_dict() == serial
