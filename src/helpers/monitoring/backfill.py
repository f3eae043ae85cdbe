"""Backfill: monitor every past window of captured traffic in one call, then render the dashboard.

``driftgate monitor --backfill --from 2026-11-01 --to 2026-11-08 --period day`` cuts
``[from, to)`` into consecutive windows of one period (the last one ends at ``to``), monitors
each (:func:`helpers.monitoring.monitor.run_monitor`, the champion loaded once), so the history
holds one record per window (a window with too few captured rows is recorded as such), and
renders the dashboard and the index once at the end. Past windows send no alert.

Example
-------
>>> results = run_backfill(params, "2026-11-01", "2026-11-08", "day")  # doctest: +SKIP
>>> len(results)  # doctest: +SKIP
7
"""

from __future__ import annotations

import pandas as pd

from helpers.core.config import Params
from helpers.core.errors import DataError
from helpers.monitoring.history import write_history_dashboard
from helpers.monitoring.monitor import PERIODS, MonitorResult, Window, load_champion, resolve_window, run_monitor
from helpers.reports.pages import write_index

MAX_WINDOWS = 10_000  # more windows than this is surely a mistake in --from/--to/--period


def backfill_windows(start: str, end: str, period: str) -> list[Window]:
    """Consecutive windows of one ``period`` from ``start`` to ``end`` (UTC; the last may be shorter)."""
    if period not in PERIODS:
        raise DataError(f"monitor --backfill: --period {period!r} is not one of {', '.join(PERIODS)}")
    span = resolve_window(period, start, end)
    step = PERIODS[period]
    count = -(-(span.end - span.start) // step)
    if count > MAX_WINDOWS:
        raise DataError(f"monitor --backfill: {count} windows of one {period} from {span.start} to {span.end}; "
                        f"at most {MAX_WINDOWS}: choose a longer --period or a shorter span")
    starts = [span.start + i * step for i in range(count)]
    return [Window(s, min(s + step, span.end)) for s in starts]


def run_backfill(params: Params, start: str | None, end: str | None, period: str, *,
                 progress: bool = True) -> list[MonitorResult]:
    """Monitor every window of ``[start, end)`` (:func:`backfill_windows`), with a progress bar,
    then render the dashboard and the index. Returns each window's result, oldest first."""
    from tqdm.auto import tqdm

    if not start or not end:
        raise DataError("monitor --backfill needs --from and --to (UTC dates or times), e.g. "
                        "--from 2026-11-01 --to 2026-11-08")
    windows = backfill_windows(start, end, period)
    champion = load_champion(params)
    results = []
    for window in tqdm(windows, desc="monitoring windows", unit="window", disable=not progress):
        results.append(run_monitor(params, window=window, champion=champion, backfill=True))
    write_history_dashboard(params)
    write_index(params.outputs_dir)
    return results


def backfill_counts(results: list[MonitorResult]) -> pd.Series:
    """How many windows ended in each decision (``ok``, ``drift``, ``no decision``...)."""
    return pd.Series([r.summary.get("decision") for r in results], dtype="object").value_counts()
