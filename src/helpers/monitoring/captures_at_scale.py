"""The scoring service's captured traffic, profiled and joined with feedback partition by partition.

:func:`profile_captures` profiles the captured rows of a time window on a baseline profile's
types and edges, file by file where the files are read; :func:`labelled_captures` joins the
captured rows with their feedback the same way. Used by monitoring when ``compute.scheduler``
is not ``pandas``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from helpers.core.config import ComputeParams
from helpers.core.times import as_utc
from helpers.modeling.captures import capture_files, join_feedback, keep_roles, read_feedback
from helpers.stats.dask_cluster import runner
from helpers.stats.partition_profiles import RowFilter, profile_like
from helpers.stats.partitions import open_table, read_part
from helpers.stats.profile import FrameProfile

if TYPE_CHECKING:
    from distributed import Client

CHAMPION_ROLES = ("champion",)  # the rows monitoring judges: not those a shadow or a canary scored


def captured_files(capture_dir: str | Path, model: str | None, start: Any, end: Any) -> list[str]:
    """Capture files of ``model`` whose day folders can hold rows of ``[start, end)``, as absolute paths
    (the workers that read them may run in another folder)."""
    files = capture_files(capture_dir, model, "captures", as_utc(start, "start"), as_utc(end, "end"))
    return [str(Path(p).absolute()) for p in files]


def profile_captures(capture_dir: str | Path, model: str | None, start: Any, end: Any, baseline: FrameProfile,
                     columns: Sequence[str], compute: ComputeParams, *, client: Client | None = None) -> FrameProfile:
    """Profile of the champion's captured rows of ``[start, end)`` on the baseline's types and
    edges (rows a shadow or a canary scored are left out, as :func:`read_captures` does).

    ``columns`` that the baseline profiles are profiled, and ``model_version`` is counted (the
    versions seen). No rows travel: each capture file is read, cut to the window and profiled
    where its task runs. No capture file gives a profile of 0 rows and no columns.
    """

    files = captured_files(capture_dir, model, start, end)
    if not files:
        return FrameProfile(rows=0, columns={})
    window = RowFilter("timestamp", as_utc(start, "start"), as_utc(end, "end"),  # the champion's rows only
                       keep_column="role", keep_values=CHAMPION_ROLES)
    return profile_like(files, baseline, columns, compute, extra_categorical=("model_version",), row_filter=window,
                        client=client)


def labelled_captures(capture_dir: str | Path, model: str | None, start: Any, end: Any, compute: ComputeParams,
                      *, client: Client | None = None) -> pd.DataFrame:
    """:func:`helpers.modeling.captures.read_labeled_captures`, joined file by file where the files are read.

    Only captured rows that have feedback travel back; the feedback table is sent to each
    worker once.
    """
    feedback = read_feedback(capture_dir, model, start, None)
    files = captured_files(capture_dir, model, start, end)
    if feedback.empty or not files:
        return pd.DataFrame(columns=["request_id", "row", "timestamp", "label", "feedback_timestamp"])
    window = RowFilter("timestamp", as_utc(start, "start"), as_utc(end, "end"))
    with runner(compute, client) as run:
        table = open_table(files, compute, side="captures")
        shared = run.client.scatter(feedback, broadcast=True) if run.client is not None else feedback
        tasks = [(part, window, shared) for part in table.parts]
        pieces = list(run.map(_labelled_part, tasks, table.labels, "joining feedback"))
    frame = pd.concat(pieces, ignore_index=True)
    return frame.sort_values(["timestamp", "request_id", "row"], kind="stable").reset_index(drop=True)


def _labelled_part(part: Any, window: RowFilter, feedback: pd.DataFrame) -> pd.DataFrame:
    frame = read_part(part, None).copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return join_feedback(keep_roles(frame.loc[window.mask(frame)]), feedback, how="inner")
