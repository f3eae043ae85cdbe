"""Tables for the investigate step: schema, missing values, summaries, coverage, checks.

Each function takes a frame (and params where needed) and returns a small DataFrame or dict
that a notebook cell shows as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.config import Params
from helpers.modeling.data import TIME
from helpers.modeling.train import tidy_labels


def schema(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """One row per column: dtype, role (target, feature, time, forbidden, unused), distinct."""
    roles = _roles(params)
    rows = [
        {
            "column": name,
            "dtype": str(frame[name].dtype),
            "role": roles.get(name, "unused"),
            "distinct": int(frame[name].nunique(dropna=True)),
            "example": _example(frame[name]),
        }
        for name in frame.columns
    ]
    return pd.DataFrame(rows)


def _roles(params: Params) -> dict[str, str]:
    roles = {name: "feature" for name in params.data.features}
    roles.update({name: "forbidden (leaks target)" for name in params.data.forbidden_features})
    roles[params.data.target] = "target"
    roles[TIME] = "time (derived)"
    time = params.data.time
    for key in (time.column, time.day_column, time.hour_column):
        if key and key not in roles:
            roles[key] = "time source"
    return roles


def _example(series: pd.Series) -> str:
    values = series.dropna()
    return str(values.iloc[0]) if len(values) else ""


def missing_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Count and share of missing values per column, largest first."""
    counts = frame.isna().sum()
    table = pd.DataFrame({"missing": counts, "share": counts / max(len(frame), 1)})
    return table.sort_values("missing", ascending=False).rename_axis("column").reset_index()


def numeric_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """count, mean, std, min, quartiles, max of the numeric columns."""
    numeric = frame.select_dtypes(include="number")
    return numeric.describe().T.rename_axis("column").reset_index()


def categorical_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Distinct count, most frequent value and its share for the non-numeric columns."""
    rows = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        counts = series.value_counts(dropna=True)
        rows.append(
            {
                "column": name,
                "distinct": int(counts.size),
                "top": str(counts.index[0]) if counts.size else "",
                "top_share": float(counts.iloc[0] / max(len(series), 1)) if counts.size else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=["column", "distinct", "top", "top_share"])


def time_coverage(frame: pd.DataFrame, freq: str = "MS") -> pd.DataFrame:
    """Rows per period (monthly by default) with the first and last timestamp."""
    grouped = frame.groupby(pd.Grouper(key=TIME, freq=freq))
    table = grouped.agg(rows=(TIME, "size"), first=(TIME, "min"), last=(TIME, "max"))
    return table.rename_axis("period").reset_index()


IMBALANCE_SHARE = 0.10  # a class with a smaller share of the labelled rows is rare


def target_summary(frame: pd.DataFrame, params: Params) -> dict[str, Any]:
    """Mean, std, quantiles of the target (regression); class counts and shares, the smallest
    share and an imbalance warning (classification). Both count the rows without a target."""
    target = frame[params.data.target]
    missing = int(target.isna().sum())
    if params.data.task == "classification":
        return _class_summary(frame, params, missing)
    values = pd.to_numeric(target, errors="coerce")
    quantiles = values.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(quantiles[0]),
        "q25": float(quantiles[1]),
        "median": float(quantiles[2]),
        "q75": float(quantiles[3]),
        "max": float(quantiles[4]),
        "missing": missing,
    }


def _class_summary(frame: pd.DataFrame, params: Params, missing: int) -> dict[str, Any]:
    balance = class_balance(frame, params)
    smallest = balance.loc[balance["share"].idxmin()] if len(balance) else None
    warning = None
    if smallest is not None and smallest["share"] < IMBALANCE_SHARE:
        warning = (f"imbalanced classes: {smallest['class']!s} has {smallest['share']:.1%} of the labelled "
                   f"rows (below {IMBALANCE_SHARE:.0%}); prefer balanced_accuracy, f1 or roc_auc to accuracy")
    return {
        "classes": len(balance),
        "counts": {str(c): int(n) for c, n in zip(balance["class"], balance["rows"], strict=True)},
        "shares": {str(c): float(s) for c, s in zip(balance["class"], balance["share"], strict=True)},
        "smallest_share": None if smallest is None else float(smallest["share"]),
        "imbalanced": warning is not None,
        "warning": warning,
        "missing": missing,
    }


def class_balance(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Rows and share of each class among the labelled rows, in class order."""
    labels = tidy_labels(frame[params.data.target])
    counts = labels.value_counts().sort_index()
    table = pd.DataFrame({"class": counts.index.to_list(), "rows": counts.to_numpy(dtype=int)})
    table["share"] = table["rows"] / max(int(table["rows"].sum()), 1)
    return table


def class_shares_over_time(frame: pd.DataFrame, params: Params, freq: str = "MS") -> pd.DataFrame:
    """Share of each class among the labelled rows of each period (monthly by default);
    one row per period, one column per class."""
    rows = frame.loc[frame[params.data.target].notna(), [TIME]].copy()
    rows["label"] = tidy_labels(frame[params.data.target]).to_numpy()
    counts = rows.groupby([pd.Grouper(key=TIME, freq=freq), "label"]).size().unstack("label", fill_value=0)
    shares = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    shares.columns = [str(c) for c in shares.columns]
    return shares.rename_axis("period").rename_axis(None, axis=1).reset_index()


def correlations(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Pearson correlation of the numeric features and the target."""
    columns = [c for c in [*params.data.features, params.data.target] if c in frame]
    numeric = frame[columns].select_dtypes(include="number")
    return numeric.corr()


# --------------------------------------------------------------------------- data checks


@dataclass
class Check:
    """One data-validation check and its outcome."""

    check: str
    column: str
    passed: bool
    detail: str


def validation_checks(frame: pd.DataFrame, params: Params) -> list[Check]:
    """Run the data checks from ``params.validation`` on ``frame``."""
    rules = params.validation
    columns = [*params.data.features, params.data.target]
    checks = [
        Check("enough rows", "*", len(frame) >= rules.min_rows,
              f"{len(frame)} rows, at least {rules.min_rows} required"),
    ]
    for name in columns:
        share = float(frame[name].isna().mean()) if len(frame) else 0.0
        checks.append(Check("missing values", name, share <= rules.max_missing_share,
                            f"{share:.2%} missing, at most {rules.max_missing_share:.2%} allowed"))
    duplicates = float(frame.duplicated().mean()) if len(frame) else 0.0
    checks.append(Check("duplicate rows", "*", duplicates <= rules.max_duplicate_share,
                        f"{duplicates:.2%} duplicated, at most {rules.max_duplicate_share:.2%} allowed"))
    for name, bounds in rules.ranges.items():
        checks.append(_range_check(frame, name, bounds))
    if rules.target_min is not None and params.data.task == "regression":
        low = float(pd.to_numeric(frame[params.data.target], errors="coerce").min())
        checks.append(Check("target minimum", params.data.target, low >= rules.target_min,
                            f"smallest value {low:g}, at least {rules.target_min:g} required"))
    leaks = [c for c in params.data.forbidden_features if c in params.data.features]
    checks.append(Check("no leaking features", ",".join(params.data.forbidden_features) or "-",
                        not leaks, "none used as features" if not leaks else f"used: {leaks}"))
    return checks


def _range_check(frame: pd.DataFrame, name: str, bounds: list[float]) -> Check:
    if name not in frame:
        return Check("value range", name, False, "column not in the data")
    low, high = bounds
    values = pd.to_numeric(frame[name], errors="coerce")
    outside = int(((values < low) | (values > high)).sum())
    return Check("value range", name, outside == 0,
                 f"{outside} values outside [{low:g}, {high:g}]; seen [{values.min():g}, {values.max():g}]")


def checks_table(checks: list[Check]) -> pd.DataFrame:
    """The checks as a table with a PASS/FAIL column."""
    table = pd.DataFrame([asdict(c) for c in checks])
    table.insert(2, "result", np.where(table["passed"], "PASS", "FAIL"))
    return table.drop(columns="passed")


def summary(frame: pd.DataFrame, params: Params, checks: list[Check]) -> dict[str, Any]:
    """The JSON summary of the investigate step (``investigate.json``)."""
    failed = [asdict(c) for c in checks if not c.passed]
    target = target_summary(frame, params)
    return {
        "rows": int(len(frame)),
        "columns": list(map(str, frame.columns)),
        "time_start": str(frame[TIME].min()),
        "time_end": str(frame[TIME].max()),
        "target": target,
        "missing_per_feature": {name: int(frame[name].isna().sum()) for name in params.data.features},
        "warnings": target_warnings(target, params),
        "checks": [asdict(c) for c in checks],
        "validation_passed": not failed,
        "failed_checks": failed,
    }


def target_warnings(target: dict[str, Any], params: Params) -> list[str]:
    """What a reader should know about the target (a :func:`target_summary`): rows without one,
    rare classes."""
    out = []
    if target["missing"]:
        out.append(f"{target['missing']} rows have no {params.data.target} value: "
                   "they are left out of training and evaluation")
    if target.get("warning"):
        out.append(target["warning"])
    return out
