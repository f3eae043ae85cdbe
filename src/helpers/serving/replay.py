"""Replay: send rows to a running scoring service as traffic, and their labels as feedback."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from helpers.core.errors import ServeError
from helpers.serving.client import ServeClient


def replay(
    url: str,
    features: pd.DataFrame,
    labels: Sequence[Any] | pd.Series | None = None,
    *,
    rate: float | None = None,
    batch_size: int = 1,
    feedback_every: int = 200,
    token: str | None = None,
    timeout: float = 30.0,
    request_ids: Sequence[str] | None = None,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Send ``features`` to the service as traffic and ``labels`` as feedback.

    Parameters
    ----------
    url : str
        The service, for example ``http://127.0.0.1:5000`` or ``https://scoring.example:5000``.
    features : pandas.DataFrame
        Rows to score, in the model's input columns.
    labels : sequence, optional
        Ground truth, one per row; sent to ``/feedback`` in batches.
    rate : float, optional
        Requests per second; ``None`` sends as fast as the service answers.
    batch_size : int
        Rows per request.
    feedback_every : int
        Labelled requests per ``/feedback`` call.
    request_ids : sequence of str, optional
        One ``X-Request-Id`` per request (default: the service draws them); see
        :func:`helpers.serving.late_feedback.replay_request_ids`.
    ca_file : str, optional
        PEM certificate authorities to verify an ``https://`` service with (default: the system's).

    Returns
    -------
    dict
        ``requests``, ``rows``, ``errors``, ``first_error``, ``feedback_rows``, ``seconds``,
        ``requests_per_second``.

    Raises
    ------
    ServeError
        When the service cannot be reached.
    """
    if batch_size < 1:
        raise ServeError(f"batch size must be at least 1, got {batch_size}")
    if rate is not None and rate <= 0:
        raise ServeError(f"rate must be positive requests per second, got {rate}")
    if labels is not None and len(labels) != len(features):
        raise ServeError(f"replay: {len(labels)} labels for {len(features)} rows")
    label_values = list(labels) if labels is not None else None
    summary: dict[str, Any] = {
        "url": url,
        "requests": 0,
        "rows": 0,
        "errors": 0,
        "first_error": None,
        "feedback_rows": 0,
    }
    pending_ids: list[str] = []
    pending_labels: list[Any] = []
    started = time.perf_counter()
    with ServeClient(url, token=token, timeout=timeout, ca_file=ca_file) as client:
        for n, first in enumerate(range(0, len(features), batch_size)):
            if rate is not None:
                _sleep_until(started + n / rate)
            chunk = features.iloc[first : first + batch_size]
            try:
                prediction = client.predict(chunk, request_id=request_ids[n] if request_ids else None)
            except ServeError as exc:
                summary["errors"] += 1
                summary["first_error"] = summary["first_error"] or str(exc)
                continue
            except OSError as exc:
                raise ServeError(
                    f"cannot reach the scoring service at {url} ({exc}); start it with driftgate serve"
                ) from None
            summary["requests"] += 1
            summary["rows"] += len(chunk)
            if label_values is not None:
                pending_ids.append(prediction.request_id)
                batch = label_values[first : first + batch_size]
                pending_labels.append(batch if batch_size > 1 else batch[0])
                if len(pending_ids) >= feedback_every:
                    summary["feedback_rows"] += client.feedback(pending_ids, pending_labels)
                    pending_ids, pending_labels = [], []
        if pending_ids:
            summary["feedback_rows"] += client.feedback(pending_ids, pending_labels)
    seconds = time.perf_counter() - started
    summary["seconds"] = round(seconds, 3)
    summary["requests_per_second"] = round(summary["requests"] / seconds, 1) if seconds > 0 else None
    return summary


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
