"""The statistics of the drift tests, from rows (exact) and from profiles (counts).

* numeric features: Wasserstein distance (raw and divided by the baseline standard deviation),
  energy distance (raw and of the standardised values), two-sample Kolmogorov-Smirnov statistic
  and p-value, PSI and Jensen-Shannon distance (base 2) on bins fixed by the baseline
  (:func:`numeric_metrics`);
* categorical features: Pearson chi-squared test (2 x k table), Jensen-Shannon distance, PSI and
  Euclidean distance between the frequency vectors (:func:`categorical_metrics`);
* p-value corrections: Bonferroni and Benjamini-Hochberg (:func:`adjust_pvalues`).

All statistics on rows are exact. The ECDF statistics (KS, Wasserstein, energy) come from one
merge of the two sorted samples and equal scipy's ``ks_2samp``, ``wasserstein_distance`` and
``energy_distance``. PSI, Jensen-Shannon, chi-squared and Euclidean need only counts, so
:func:`numeric_distances` and :func:`categorical_distances` compute them from profiles exactly
as on raw data; from profiles alone the KS statistic and the Wasserstein distance are
approximations from the fine histograms.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from helpers.core.errors import ParamsError
from helpers.stats.profile import CategoricalProfile, NumericProfile, check_same_edges
from helpers.stats.profiling import profile_numeric

PSI_EPSILON = 1e-4  # empty-bin share used by PSI (as Evidently does), so ln(0) never occurs
ECDF_BLOCK = 32_768  # merged points per block of the ECDF walk (a few arrays of it fit in the cache)


# --------------------------------------------------------------------------- statistics of rows


def ecdf_distances(a_sorted: np.ndarray, b_sorted: np.ndarray) -> tuple[float, float, float]:
    """KS statistic, Wasserstein distance and energy distance of two sorted samples.

    One stable merge of the two sorted arrays (linear for two sorted runs) gives both ECDFs at
    every point, so all three come in O(n) after the sorts. Equal to
    ``scipy.stats.ks_2samp(...).statistic``, ``wasserstein_distance`` and ``energy_distance``.
    The merged points are walked in blocks of ``ECDF_BLOCK`` so every intermediate array stays
    in the CPU cache.

    Examples
    --------
    >>> ecdf_distances(np.array([0.0, 1.0]), np.array([0.0, 2.0]))
    (0.5, 0.5, 0.7071067811865476)
    """
    n, m = len(a_sorted), len(b_sorted)
    total = n + m
    merged = np.concatenate([a_sorted, b_sorted])
    order = np.argsort(merged, kind="stable")
    ks = wasserstein = energy2 = 0.0
    from_a_so_far = 0
    for start in range(0, total, ECDF_BLOCK):
        stop = min(start + ECDF_BLOCK, total)
        from_a = order[start:stop] < n
        # F_a - F_b at each merged point: count_a / n - (k - count_a) / m
        diff = np.cumsum(from_a, dtype=np.float64)
        diff += from_a_so_far
        from_a_so_far += int(np.count_nonzero(from_a))
        diff *= 1.0 / n + 1.0 / m
        ramp = np.arange(start + 1, stop + 1, dtype=np.float64)
        ramp /= m
        diff -= ramp
        gaps = np.diff(merged[order[start : min(stop + 1, total)]])  # to the next merged point
        absd = np.abs(diff)
        inner = absd[: gaps.size]
        wasserstein += float(np.einsum("i,i->", inner, gaps))
        energy2 += float(np.einsum("i,i,i->", inner, inner, gaps))
        # ties: only the last of equal values holds the ECDF (the very last point always does)
        ends = absd if np.count_nonzero(gaps) == gaps.size else np.append(inner[gaps != 0], absd[gaps.size:])
        if ends.size:
            ks = max(ks, float(ends.max()))
    return ks, wasserstein, float(np.sqrt(2.0 * energy2))


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Two-sided KS p-value as ``scipy.stats.ks_2samp(method="auto")`` computes it.

    Exact for samples of at most 10,000 values, Smirnov's asymptotic distribution otherwise;
    it needs only the statistic and the sample sizes.
    """
    if max(n1, n2) <= 10_000:
        exact = _exact_ks_pvalue(statistic, n1, n2)
        if exact is not None:
            return exact
    big, small = max(n1, n2), min(n1, n2)
    en = big * small / (big + small)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


def _exact_ks_pvalue(statistic: float, n1: int, n2: int) -> float | None:
    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # scipy moved its helper: fall back to the asymptotic distribution
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        success, _, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), statistic, "two-sided")
    return float(np.clip(prob, 0.0, 1.0)) if success else None


def adjust_pvalues(pvalues: Sequence[float], method: str) -> list[float]:
    """Bonferroni or Benjamini-Hochberg adjusted p-values (``"none"`` returns them unchanged)."""
    p = np.asarray(pvalues, dtype=float)
    if method == "none" or p.size == 0:
        return p.tolist()
    if method == "bonferroni":
        return np.minimum(p * p.size, 1.0).tolist()
    if method == "benjamini-hochberg":
        order = np.argsort(p)
        ranked = p[order] * p.size / np.arange(1, p.size + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty_like(p)
        out[order] = np.minimum(ranked, 1.0)
        return out.tolist()
    raise ParamsError(f"drift.correction: unknown correction {method!r}; use none, bonferroni or benjamini-hochberg")


# --------------------------------------------------------------------------- distances of counts


def psi(base_counts: np.ndarray, target_counts: np.ndarray, eps: float = PSI_EPSILON) -> float:
    """Population stability index ``sum((t - b) * ln(t / b))`` over bin shares.

    Shares of zero are replaced by ``eps`` (as Evidently does) so that empty bins on one side
    contribute a large but finite amount.
    """
    b = _shares(base_counts)
    t = _shares(target_counts)
    b = np.where(b == 0, eps, b)
    t = np.where(t == 0, eps, t)
    return float(np.sum((t - b) * np.log(t / b)))


def jensenshannon(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 (so in 0..1), as ``scipy.spatial.distance.jensenshannon``."""
    p = _shares(base_counts)
    q = _shares(target_counts)
    m = (p + q) / 2.0
    left = np.sum(special.rel_entr(p, m))
    right = np.sum(special.rel_entr(q, m))
    js = (left + right) / 2.0
    return float(np.sqrt(max(js, 0.0) / np.log(2.0)))


def euclidean(base_counts: np.ndarray, target_counts: np.ndarray) -> float:
    """Euclidean distance between the two frequency (share) vectors."""
    return float(np.sqrt(np.sum((_shares(base_counts) - _shares(target_counts)) ** 2)))


def chi2_homogeneity(base_counts: np.ndarray, target_counts: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-squared test that both samples come from one categorical distribution.

    The 2 x k contingency table (no continuity correction), as
    ``scipy.stats.chi2_contingency(table, correction=False)``. Categories empty on both sides
    are dropped; with one category left the test has no degrees of freedom and returns
    ``(0.0, 1.0, 0)``.

    Returns
    -------
    statistic, p_value, dof
    """
    table = np.vstack([np.asarray(base_counts, float), np.asarray(target_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, dof)), dof


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else counts


# --------------------------------------------------------------------------- distances of profiles


def aligned_counts(base: CategoricalProfile, target: CategoricalProfile) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Category labels (baseline's by count, then new ones) with both count vectors aligned."""
    labels = sorted(base.counts, key=lambda c: (-base.counts[c], c))
    labels += sorted((c for c in target.counts if c not in base.counts), key=lambda c: (-target.counts[c], c))
    b = np.array([base.counts.get(c, 0) for c in labels], dtype=np.int64)
    t = np.array([target.counts.get(c, 0) for c in labels], dtype=np.int64)
    return labels, b, t


def numeric_distances(base: NumericProfile, target: NumericProfile) -> dict[str, float]:
    """PSI and Jensen-Shannon on the coarse bins (exact), plus approximations from the fine sketch.

    ``wasserstein_approx`` and ``ks_approx`` are computed from the fine histograms (mass at
    bin centres, overflow mass at its mean): close to the exact values when the fine bins are
    narrow; the drift engine computes the exact ones from raw values.
    """
    check_same_edges(base, target)
    out = {"psi": psi(base.hist, target.hist), "jensenshannon": jensenshannon(base.hist, target.hist)}
    if len(base.fine_hist) and base.count and target.count:
        out.update(_approx_cdf_distances(base, target))
    return out


def categorical_distances(base: CategoricalProfile, target: CategoricalProfile) -> dict[str, float]:
    """Chi-squared statistic and p-value, Jensen-Shannon, PSI and Euclidean (all exact)."""
    _, b, t = aligned_counts(base, target)
    statistic, p_value, dof = chi2_homogeneity(b, t)
    return {
        "chi2_statistic": statistic,
        "chi2_pvalue": p_value,
        "chi2_dof": float(dof),
        "jensenshannon": jensenshannon(b, t),
        "psi": psi(b, t),
        "euclidean": euclidean(b, t),
    }


def _approx_cdf_distances(base: NumericProfile, target: NumericProfile) -> dict[str, float]:
    centres_b, mass_b = _fine_masses(base)
    centres_t, mass_t = _fine_masses(target)
    points = np.union1d(centres_b, centres_t)
    cdf_b = np.cumsum(np.bincount(np.searchsorted(points, centres_b), mass_b, len(points)))
    cdf_t = np.cumsum(np.bincount(np.searchsorted(points, centres_t), mass_t, len(points)))
    gaps = np.diff(points)
    diff = np.abs(cdf_b - cdf_t)
    return {"wasserstein_approx": float(np.sum(diff[:-1] * gaps)), "ks_approx": float(diff.max())}


def _fine_masses(prof: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    fine = prof.fine_hist.astype(float)
    fe = prof.fine_edges
    centres = np.concatenate([[0.0], (fe[:-1] + fe[1:]) / 2.0, [0.0]])
    centres[0] = prof.under_sum / fine[0] if fine[0] else fe[0]
    centres[-1] = prof.over_sum / fine[-1] if fine[-1] else fe[-1]
    return centres, fine / fine.sum()


# --------------------------------------------------------------------------- every statistic of a feature


@dataclass
class NumericBase:
    """What the baseline side of a numeric feature contributes to every comparison."""

    sorted_values: np.ndarray
    profile: NumericProfile


def numeric_metrics(base: NumericBase, target_sorted: np.ndarray, missing: int, infinite: int) -> dict[str, Any]:
    """Every numeric statistic of a target sample against a prepared baseline."""
    a, b = base.sorted_values, target_sorted
    ks, wasserstein, energy = ecdf_distances(a, b)
    target_prof = profile_numeric(b, missing, infinite, base.profile.edges, fine_bins=0, is_sorted=True)
    scale = base.profile.std
    if scale == 0.0:
        scale = float(np.concatenate([a, b]).std())
    norm_w = wasserstein / scale if scale > 0 else 0.0
    norm_e = energy / math.sqrt(scale) if scale > 0 else 0.0
    hist = numeric_distances(base.profile, target_prof)
    return {
        "metrics": {
            "ks_statistic": ks,
            "ks_pvalue": ks_pvalue(ks, a.size, b.size),
            "wasserstein": wasserstein,
            "wasserstein_norm": norm_w,
            "energy": energy,
            "energy_norm": norm_e,
            "psi": hist["psi"],
            "jensenshannon": hist["jensenshannon"],
        },
        "profile": target_prof,
    }


def categorical_metrics(base: CategoricalProfile, target: CategoricalProfile) -> dict[str, float]:
    """Every categorical statistic of a target profile against the baseline profile."""
    return categorical_distances(base, target)
