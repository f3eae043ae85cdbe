"""The drift coefficient: how well a classifier tells baseline rows from target rows.

The drift coefficient is the Matthews correlation coefficient of a gradient boosting classifier
trained to tell baseline rows from target rows, scored on a held-out stratified half (0 = the
sides cannot be told apart, 1 = perfectly). Each feature's contribution is its permutation
importance (drop in ROC AUC) normalised to sum to 1.

The classifier never sees every row of big tables: it is estimated on a seeded sample of
``drift.coefficient_sample / 2`` rows a side (10,000 by default; half of them train it, half
score it), which is standard practice for a domain classifier and keeps its cost fixed whatever
the size of the tables. ``tests/test_drift_coefficient.py`` checks that the coefficient of the
sample agrees with the one fitted on every row within 0.04 on shifted and unshifted data. The
importance is measured on up to ``IMPORTANCE_ROWS`` held-out rows with one shuffle per column:
the rows drawn, not the number of shuffles, set its precision (three shuffles of 1,500 rows
were no closer to a 30,000-row reference than one shuffle of 2,000).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from helpers.core.config import DriftParams
from helpers.stats.per_feature import Prepared
from helpers.stats.profiling import category_label, numeric_array

MAX_CLASSIFIER_CATEGORIES = 254  # HistGradientBoosting's limit; rarer categories share a code
MIN_CLASSIFIER_ROWS = 10  # per side, for the drift coefficient
CLASSIFIER_TREES = 50  # boosting iterations of the drift-coefficient classifier (learning rate 0.2)
IMPORTANCE_ROWS = 2000  # held-out rows used for permutation importance (all copies scored at once)
IMPORTANCE_REPEATS = 1  # shuffles per column: the rows drawn, not the shuffles, set the precision
SCORING_THREADS = 2  # threads scoring the held-out rows and the shuffled copies
MIN_ROWS_PER_THREAD = 20_000  # fewer rows are scored in the calling thread


@dataclass
class Coefficient:
    """The drift coefficient and how it was obtained."""

    value: float | None
    mcc: float | None = None
    contributions: dict[str, float] = field(default_factory=dict)
    train_rows: int = 0
    test_rows: int = 0
    rows_per_side: int = 0  # rows sampled from each side (train and test together)
    notes: list[str] = field(default_factory=list)


def drift_coefficient(prepared: Sequence[Prepared], params: DriftParams) -> Coefficient:
    """MCC of a classifier telling baseline rows from target rows, and feature contributions.

    The same number of rows, up to ``coefficient_sample / 2``, is drawn from each side
    (seeded), so the classes are balanced. The classifier (``HistGradientBoostingClassifier``)
    is fitted on a stratified half and scored on the other half. Negative MCC is reported as 0.
    """
    if params.coefficient_sample <= 0:
        return Coefficient(None, notes=["drift coefficient turned off (drift.coefficient_sample = 0)"])
    if not prepared:
        return Coefficient(None, notes=["drift coefficient not computed: no feature was compared"])
    n_base, n_target = len(prepared[0].base_series), len(prepared[0].target_series)
    if min(n_base, n_target) < MIN_CLASSIFIER_ROWS:
        return Coefficient(
            None,
            notes=[f"drift coefficient not computed: fewer than {MIN_CLASSIFIER_ROWS} rows on a side"],
        )
    rng = np.random.default_rng(params.seed)
    per_side = min(n_base, n_target, max(params.coefficient_sample // 2, MIN_CLASSIFIER_ROWS))
    idx_b = sample_rows(n_base, per_side, rng)
    idx_t = sample_rows(n_target, per_side, rng)
    x, categorical = _design_matrix(prepared, idx_b, idx_t)
    y = np.concatenate([np.zeros(idx_b.size, int), np.ones(idx_t.size, int)])
    coefficient = _fit_coefficient(x, y, categorical, [p.name for p in prepared], params.seed)
    coefficient.rows_per_side = per_side
    return coefficient


def sample_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``k`` of ``n`` rows drawn without replacement (all rows when ``n <= k``)."""
    if n <= k:
        return np.arange(n)
    return np.sort(rng.choice(n, size=k, replace=False))


def _design_matrix(
    prepared: Sequence[Prepared], idx_b: np.ndarray, idx_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sampled rows of both sides as one float matrix, and which columns are categorical."""
    columns = []
    for prep in prepared:
        sides = ((prep.base_series, idx_b), (prep.target_series, idx_t))
        if prep.ctype == "numeric":
            col = np.concatenate([_sampled_numbers(s, i) for s, i in sides])
            col[np.isinf(col)] = np.nan
        else:
            codes = {label: float(min(i, MAX_CLASSIFIER_CATEGORIES)) for i, label in enumerate(prep.labels)}
            col = np.concatenate([_category_codes(s, i, codes) for s, i in sides])
        columns.append(col)
    categorical = np.array([p.ctype == "categorical" for p in prepared], dtype=bool)
    return np.column_stack(columns), categorical


def _sampled_numbers(series: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Float values of the rows at positions ``rows`` (a copy; missing as NaN)."""
    if series.dtype == np.float64:
        return series.to_numpy()[rows]
    return numeric_array(series.iloc[rows])


def _category_codes(series: pd.Series, rows: np.ndarray, codes: dict[str, float]) -> np.ndarray:
    """Classifier codes of the raw category values at positions ``rows`` (missing as NaN, rare
    categories share one code): each distinct value is labelled once, then looked up by position."""
    positions, distinct = pd.factorize(series.array.take(rows), use_na_sentinel=True)
    other = float(MAX_CLASSIFIER_CATEGORIES)
    lookup = np.array([codes.get(category_label(v), other) for v in distinct] + [np.nan], dtype=float)
    return lookup[positions]  # the sentinel -1 picks the trailing NaN


def _fit_coefficient(x: np.ndarray, y: np.ndarray, categorical: np.ndarray, names: list[str], seed: int) -> Coefficient:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import matthews_corrcoef
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    model = HistGradientBoostingClassifier(
        max_iter=CLASSIFIER_TREES,
        learning_rate=0.2,
        categorical_features=categorical if categorical.any() else None,
        early_stopping=False,
        random_state=seed,
    )
    # One OpenMP thread: on a shared or busy machine, HistGradientBoosting's threads spin and
    # run many times slower on samples this small.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(x_train, y_train)
    # One scoring pass for the held-out half and every shuffled copy of the importance rows.
    # The held-out predictions are the classifier's own rule for two classes: score > 0.
    keep = sample_rows(y_test.size, IMPORTANCE_ROWS, np.random.default_rng(seed))
    copies = shuffled_copies(x_test[keep], seed, IMPORTANCE_REPEATS)
    scores = scores_in_threads(model, np.concatenate([x_test, copies[keep.size:]]))
    mcc = float(matthews_corrcoef(y_test, (scores[: y_test.size] > 0).astype(int)))
    kept_scores = np.concatenate([scores[keep], scores[y_test.size:]])
    importance = importance_from_scores(kept_scores, y_test[keep], x_test.shape[1], IMPORTANCE_REPEATS)
    notes = []
    if importance.sum() > 0:
        contributions = dict(zip(names, (importance / importance.sum()).tolist(), strict=True))
    else:
        contributions = dict.fromkeys(names, 0.0)
        notes.append("no feature helps tell the sides apart: all contributions are 0")
    return Coefficient(
        value=max(mcc, 0.0),
        mcc=mcc,
        contributions=contributions,
        train_rows=int(y_train.size),
        test_rows=int(y_test.size),
        notes=notes,
    )


def scores_in_threads(model: Any, x: np.ndarray, workers: int = SCORING_THREADS) -> np.ndarray:
    """``model.decision_function(x)`` on blocks of rows in threads, each with one OpenMP thread.

    The numbers are the same as one call's (each row is scored on its own); the tree traversal
    releases the GIL, so the blocks run on separate cores without OpenMP's spinning threads.
    """
    from threadpoolctl import threadpool_limits

    def score(block: np.ndarray) -> np.ndarray:
        with threadpool_limits(limits=1, user_api="openmp"):
            return np.asarray(model.decision_function(block))

    workers = max(1, min(workers, os.cpu_count() or 1, len(x) // MIN_ROWS_PER_THREAD))
    if workers == 1:
        return score(x)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(score, np.array_split(x, workers))))


def permutation_importance(model: Any, x: np.ndarray, y: np.ndarray, seed: int, repeats: int = 3) -> np.ndarray:
    """Mean drop in ROC AUC when each column is shuffled (negative drops as 0).

    The same as ``sklearn.inspection.permutation_importance(scoring="roc_auc")`` in spirit, but
    every shuffled copy is scored in one batched call, and AUC comes from ranks (Mann-Whitney U).
    """
    scores = model.decision_function(shuffled_copies(x, seed, repeats))
    return importance_from_scores(scores, y, x.shape[1], repeats)


def shuffled_copies(x: np.ndarray, seed: int, repeats: int = 3) -> np.ndarray:
    """``x`` followed by ``repeats`` copies per column with that column's rows shuffled (seeded):
    blocks of ``len(x)`` rows in the order original, column 0 (``repeats`` times), column 1, ..."""
    rng = np.random.default_rng(seed)
    n, k = x.shape
    stacked = np.tile(x, (k * repeats + 1, 1))
    for block in range(k * repeats):
        j = block // repeats
        rows = slice((block + 1) * n, (block + 2) * n)
        stacked[rows, j] = x[rng.permutation(n), j]
    return stacked


def importance_from_scores(scores: np.ndarray, y: np.ndarray, k: int, repeats: int = 3) -> np.ndarray:
    """Each column's mean drop in ROC AUC from the scores of :func:`shuffled_copies` (negative as 0)."""
    scores = scores.reshape(k * repeats + 1, y.size)
    reference = roc_auc(y, scores[0])
    aucs = np.array([roc_auc(y, row) for row in scores[1:]]).reshape(k, repeats)
    return np.clip(reference - aucs.mean(axis=1), 0.0, None)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of binary labels ``y`` (0/1) from ranks, ties counted half."""
    ranks = stats.rankdata(score)
    positives = y == 1
    n_pos = int(positives.sum())
    n_neg = y.size - n_pos
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
