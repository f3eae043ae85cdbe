"""Drift of tables too big for one machine: partition by partition, merged exactly.

Each partition is read and profiled where it lives, on a dask.distributed worker
(``compute.scheduler``: ``local`` or ``tcp://host:8786``) or in this process (``pandas``)
(:mod:`helpers.stats.dask_cluster`, :mod:`helpers.stats.partitions`), and only the small results
travel back. The client merges them in partition order, so the result does not depend on which
worker finished first.

:func:`compare_at_scale` gives the report of :func:`helpers.stats.compare.compare` from three
passes:

1. a scan of the baseline (:mod:`helpers.stats.column_scans`): per-column typing facts and the
   range of numeric columns, all mergeable, so the column types and bin edges equal those of
   the in-memory path;
2. profiles of the baseline and the target on the baseline's edges
   (:mod:`helpers.stats.partition_profiles`), with the rows drawn for the drift coefficient;
3. the report, from :func:`helpers.stats.compare.compare_profiles`' building blocks and
   :func:`helpers.stats.coefficient.drift_coefficient` on the sample.

Counts, moments, histograms, chi-squared, PSI and Jensen-Shannon equal the in-memory values.
The KS statistic and the Wasserstein distance come from the fine histograms; each numeric
feature states its bound (:func:`approximation_bounds`) in ``metrics`` and ``notes``. The drift
coefficient's classifier trains on ``drift.coefficient_sample / 2`` rows per side drawn by
position with the in-memory path's seeded generator, so its cost does not grow with the data
and its value equals the in-memory one when both read the rows in the same order.

Example
-------
>>> from helpers.core.config import ComputeParams, DriftParams
>>> report = compare_at_scale("lake/2024-01/*.parquet", "lake/2024-02/*.parquet",
...                           DriftParams(), ComputeParams(scheduler="local"))  # doctest: +SKIP
>>> report.summary()["drifted"]  # doctest: +SKIP
False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from helpers.core.config import ComputeParams, DriftParams
from helpers.core.errors import DataError
from helpers.stats.coefficient import MIN_CLASSIFIER_ROWS, drift_coefficient
from helpers.stats.column_scans import edges_from_scans, infer_types, scan_table
from helpers.stats.compare import assemble, resolve_features
from helpers.stats.dask_cluster import runner
from helpers.stats.partition_profiles import ProfileTask, count_rows, profile_table, sample_positions
from helpers.stats.partitions import check_schema, open_table
from helpers.stats.per_feature import Prepared, compare_profile_feature
from helpers.stats.profile import CategoricalProfile, FrameProfile, NumericProfile
from helpers.stats.results import DriftReport, FeatureDrift
from helpers.stats.selection import decide
from helpers.stats.statistics import aligned_counts

if TYPE_CHECKING:
    from distributed import Client


# --------------------------------------------------------------------------- approximation bounds


def approximation_bounds(base: NumericProfile, target: NumericProfile) -> dict[str, float]:
    """Bounds on the error of the KS statistic and Wasserstein distance taken from fine histograms.

    * KS: the ECDFs are exact at every fine-bin edge; inside a bin each moves by at most that
      bin's share, so ``|KS_approx - KS| <= max share of one fine bin`` (under- and overflow
      bins included) on either side.
    * Wasserstein: moving each value to its fine-bin centre moves it at most half a bin width
      ``h / 2``; values beyond the baseline range sit at their mean, which moves them on average
      at most half the width of where they lie. So ``|W_approx - W| <=`` the sum over both sides
      of ``h / 2 * share inside + share below * (edge_0 - min) / 2 + share above * (max - edge_k) / 2``.

    Returns
    -------
    dict
        ``ks_error_bound``, ``wasserstein_error_bound`` and the fine-bin width ``fine_bin_width``.
    """
    lo, hi = float(base.edges[0]), float(base.edges[-1])
    width = (hi - lo) / max(len(base.fine_hist) - 2, 1)
    ks = 0.0
    w = 0.0
    for prof in (base, target):
        shares = prof.fine_hist / max(prof.count, 1)
        ks = max(ks, float(shares.max()) if shares.size else 0.0)
        below = (lo - prof.min) / 2.0 if shares[0] else 0.0
        above = (prof.max - hi) / 2.0 if shares[-1] else 0.0
        w += width / 2.0 * float(shares[1:-1].sum()) + float(shares[0]) * below + float(shares[-1]) * above
    return {"ks_error_bound": ks, "wasserstein_error_bound": w, "fine_bin_width": width}


def _bound_feature(result: FeatureDrift, base: NumericProfile, target: NumericProfile) -> None:
    bounds = approximation_bounds(base, target)
    scale = base.std if base.std > 0 else base.merge(target).std
    result.metrics["ks_error_bound"] = bounds["ks_error_bound"]
    result.metrics["wasserstein_error_bound"] = bounds["wasserstein_error_bound"]
    result.metrics["wasserstein_norm_error_bound"] = bounds["wasserstein_error_bound"] / scale if scale > 0 else 0.0
    result.notes.append(
        f"KS within {bounds['ks_error_bound']:.2g} and Wasserstein within {bounds['wasserstein_error_bound']:.3g} of "
        f"the exact values ({len(base.fine_hist) - 2} fine bins of width {bounds['fine_bin_width']:.3g})"
    )


# --------------------------------------------------------------------------- the report


def compare_at_scale(
    baseline: Any,
    target: Any,
    params: DriftParams,
    compute: ComputeParams,
    *,
    features: list[str] | None = None,
    client: Client | None = None,
) -> DriftReport:
    """Compare two tables partition by partition: :func:`helpers.stats.compare.compare`'s report at any size.

    Parameters
    ----------
    baseline, target : str, list of paths, dask.dataframe.DataFrame or pandas.DataFrame
        A Parquet file or glob (files in name order), a list of Parquet files, or a dataframe.
    params : DriftParams
        Tests, thresholds, bins, the coefficient's sample size and seed.
    compute : ComputeParams
        Where partitions are profiled (``scheduler``), partition size, fine bins, progress.
    features : list of str, optional
        Columns to compare (default: every column present on both sides).
    client : distributed.Client, optional
        Use this client instead of starting one from ``compute.scheduler``.

    Returns
    -------
    DriftReport
        Exact counts, moments, histograms, chi-squared, PSI and Jensen-Shannon; KS and
        Wasserstein from fine histograms, within the bounds stated per feature; the drift
        coefficient from a sample of at most ``coefficient_sample`` rows.

    Raises
    ------
    DataError
        A file cannot be read or its schema differs (the message names it), or nothing can be
        compared.
    """
    with runner(compute, client) as run:
        base = open_table(baseline, compute, side="baseline")
        tgt = open_table(target, compute, side="target")
        names, notes = resolve_features(pd.DataFrame(columns=base.columns), pd.DataFrame(columns=tgt.columns),
                                               features, None)
        common = [n for n in names if n in base.columns and n in tgt.columns]
        check_schema(base, common)
        check_schema(tgt, common)
        base_rows, scans = scan_table(base, common, params.categorical_max_unique, run, "scanning baseline")
        types, type_notes = infer_types(scans, params)
        compared = {n: t for n, t in types.items() if t in ("numeric", "categorical")}
        task = ProfileTask(compared, edges_from_scans(scans, compared, params.bins), compute.fine_bins)
        target_rows = count_rows(tgt, run)
        takes = _coefficient_sample(base_rows, target_rows, params)
        sampled = replace(task, sample_columns=tuple(compared)) if takes else task
        base_prof, base_sample = profile_table(base, sampled, run, sample=takes[0] if takes else None,
                                               desc="profiling baseline")
        tgt_prof, tgt_sample = profile_table(tgt, sampled, run, sample=takes[1] if takes else None,
                                             desc="profiling target")
        where = run.where
    if sum(base_rows) == 0 or sum(target_rows) == 0:
        side = "baseline" if sum(base_rows) == 0 else "target"
        raise DataError(f"the {side} is empty (0 rows): nothing to compare")
    results = [_feature(n, types, type_notes, base_prof, tgt_prof, base.columns, tgt.columns, params) for n in names]
    report = _report(results, (base_prof, tgt_prof), (base_sample, tgt_sample), notes, params)
    report.notes.append(
        f"computed partition by partition, {where}: {len(base.parts)} baseline and {len(tgt.parts)} target "
        f"partitions; KS and Wasserstein from {compute.fine_bins} fine bins (error bounds in each feature's metrics)"
    )
    return report


def _coefficient_sample(base_rows: list[int], target_rows: list[int],
                        params: DriftParams) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Per-partition positions of the coefficient's rows: the draws drift_coefficient makes."""
    n_base, n_target = sum(base_rows), sum(target_rows)
    if params.coefficient_sample <= 0 or min(n_base, n_target) == 0:
        return None
    per_side = min(n_base, n_target, max(params.coefficient_sample // 2, MIN_CLASSIFIER_ROWS))
    rng = np.random.default_rng(params.seed)
    base = sample_positions(base_rows, per_side, rng)
    return base, sample_positions(target_rows, per_side, rng)


def _feature(name: str, types: Mapping[str, str], type_notes: Mapping[str, list[str]], base: FrameProfile,
             target: FrameProfile, base_columns: Sequence[str], target_columns: Sequence[str],
             params: DriftParams) -> FeatureDrift:
    for side, columns in (("baseline", base_columns), ("target", target_columns)):
        if name not in columns:
            note = f"column missing in the {side}; not compared"
            return FeatureDrift(feature=name, type="missing", notes=[note])
    ctype, notes = types[name], list(type_notes.get(name, []))
    if ctype not in ("numeric", "categorical"):
        if not any("excluded" in n for n in notes):
            notes.append(f"{ctype} column: excluded")
        return FeatureDrift(feature=name, type=ctype, notes=notes)
    result = compare_profile_feature(name, base.columns[name], target.columns[name], params)
    result.notes = notes + result.notes
    b, t = base.columns[name], target.columns[name]
    if result.compared and isinstance(b, NumericProfile) and isinstance(t, NumericProfile):
        _bound_feature(result, b, t)
    return result


def _report(results: list[FeatureDrift], profiles: tuple[FrameProfile, FrameProfile],
            samples: tuple[pd.DataFrame | None, pd.DataFrame | None], notes: list[str],
            params: DriftParams) -> DriftReport:
    if not any(r.compared for r in results):
        detail = "; ".join(f"{r.feature}: {', '.join(r.notes) or r.type}" for r in results)
        raise DataError(f"no feature could be compared ({detail})")
    decide(results, params.correction)
    prepared = [_prepared(r, profiles, samples) for r in results if r.compared]
    coefficient = drift_coefficient(prepared, params)
    return assemble(results, coefficient, None, notes, (profiles[0].rows, profiles[1].rows), params)


def _prepared(result: FeatureDrift, profiles: tuple[FrameProfile, FrameProfile],
              samples: tuple[pd.DataFrame | None, pd.DataFrame | None]) -> Any:
    """What drift_coefficient needs of a feature: its sampled rows, and category order."""
    name = result.feature
    base_rows, target_rows = (s[name] if s is not None else pd.Series(dtype=float) for s in samples)
    prep = Prepared(name, result.type, base_rows, target_rows)
    b, t = profiles[0].columns[name], profiles[1].columns[name]
    if isinstance(b, CategoricalProfile) and isinstance(t, CategoricalProfile):
        prep.labels = aligned_counts(b, t)[0]
    return prep
