"""Labels that arrive late: traffic replayed without feedback, and its feedback sent afterwards.

``driftgate replay`` names each request it sends (``X-Request-Id``) after its rows: a hash of the
rows' values and their position in the replayed window (:func:`replay_request_ids`). Replaying
the same window with the same ``--batch`` later gives the same ids, so
``driftgate replay --feedback-only`` finds the requests in the capture store by id and sends
their labels, row by row, without scoring anything again.

Example
-------
>>> ids = replay_request_ids(rows[features], batch_size=12)  # doctest: +SKIP
>>> replay(url, rows[features], None, batch_size=12, request_ids=ids)  # doctest: +SKIP
>>> send_late_feedback(url, capture_dir, "bike-demand", rows[features], rows["bikers"], batch_size=12)  # doctest: +SKIP
{'feedback_rows': 1475, 'matched_rows': 1475, 'unmatched_rows': 0, ...}
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.errors import ServeError
from helpers.modeling.captures import read_captures
from helpers.serving.client import ServeClient

ID_PREFIX = "replay-"


def replay_request_ids(features: pd.DataFrame, batch_size: int = 1) -> list[str]:
    """One request id per ``batch_size`` rows: ``replay-`` and a hash of the rows' values and
    their position (the same rows replayed in the same batches get the same ids)."""
    if batch_size < 1:
        raise ServeError(f"batch size must be at least 1, got {batch_size}")
    row_hashes = pd.util.hash_pandas_object(features.reset_index(drop=True), index=True).to_numpy()
    ids = []
    for first in range(0, len(features), batch_size):
        digest = hashlib.sha1(row_hashes[first:first + batch_size].tobytes(), usedforsecurity=False)
        ids.append(f"{ID_PREFIX}{digest.hexdigest()[:32]}")
    return ids


def feedback_rows(features: pd.DataFrame, labels: Sequence[Any] | pd.Series, batch_size: int) -> pd.DataFrame:
    """``request_id``, ``row`` (position within its request) and ``label`` of every replayed row."""
    ids = replay_request_ids(features, batch_size)
    position = np.arange(len(features))
    return pd.DataFrame({"request_id": np.repeat(ids, batch_size)[: len(features)],
                         "row": position % batch_size, "label": list(labels)})


def send_late_feedback(
    url: str, capture_dir: str | os.PathLike[str], model: str | None, features: pd.DataFrame,
    labels: Sequence[Any] | pd.Series, *, batch_size: int = 1, feedback_every: int = 2000,
    token: str | None = None, timeout: float = 30.0, ca_file: str | None = None,
) -> dict[str, Any]:
    """Send the labels of rows replayed earlier (with the same ``batch_size``) as feedback, for
    the requests the capture store holds; rows not captured are counted, not sent.

    Returns
    -------
    dict
        ``feedback_rows`` (accepted by the service), ``matched_rows``, ``unmatched_rows``,
        ``requests`` (feedback calls), ``seconds``.

    Raises
    ------
    ServeError
        When none of the rows was captured (the traffic was not sent, or with another
        ``--batch``), or the service cannot be reached.
    """
    if len(labels) != len(features):
        raise ServeError(f"replay --feedback-only: {len(labels)} labels for {len(features)} rows")
    wanted = feedback_rows(features, labels, batch_size)
    captured = read_captures(capture_dir, model)[["request_id", "row"]].drop_duplicates()
    matched = wanted.merge(captured, on=["request_id", "row"], how="inner")
    matched = matched[matched["label"].notna()]
    if matched.empty:
        raise ServeError(
            f"replay --feedback-only: none of these {len(wanted)} rows is in the capture store {capture_dir} "
            f"for model {model}; send the traffic first (driftgate replay --no-feedback with the same "
            "--from, --to and --batch), and wait for the service to write its captures")
    started = time.perf_counter()
    accepted = calls = 0
    with ServeClient(url, token=token, timeout=timeout, ca_file=ca_file) as client:
        for first in range(0, len(matched), feedback_every):
            part = matched.iloc[first:first + feedback_every]
            try:
                accepted += client.feedback(part["request_id"].tolist(), part["label"].tolist(), part["row"].tolist())
            except OSError as exc:
                raise ServeError(f"cannot reach the scoring service at {url} ({exc}); start it with driftgate serve"
                                 ) from None
            calls += 1
    return {"url": url, "feedback_rows": accepted, "matched_rows": len(matched),
            "unmatched_rows": len(wanted) - len(matched), "requests": calls,
            "seconds": round(time.perf_counter() - started, 3)}
