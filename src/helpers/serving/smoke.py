"""The smoke test: serve a candidate locally, score held-out rows over HTTP, compare with offline.

A regressor's predictions must equal the offline ones within ``atol``; a classifier's labels must
equal them exactly and its class probabilities within ``atol``.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.core.errors import DriftgateError, ServeError
from helpers.modeling.captures import count_rows
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.client import ServeClient
from helpers.serving.protocol import JSON_TYPE, encode_frame
from helpers.serving.service import ScoringService


def smoke_test(
    model_uri: str,
    rows: pd.DataFrame,
    expected: np.ndarray,
    *,
    tracking_uri: str,
    atol: float = 1e-6,
    batch_size: int = 500,
    expected_proba: pd.DataFrame | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Serve ``model_uri`` on a free local port, score ``rows`` over HTTP, compare, stop.

    The service runs in this process with a random bearer token and capture into a temporary
    folder, exactly as ``driftgate serve`` would run it. Besides the predictions, the test
    checks ``/ping``, ``/version``, that a request without the token is refused, that a request
    missing a column gets a 400, and that every scored row was captured.

    Parameters
    ----------
    model_uri : str
        The candidate, for example ``models:/bike-demand/7``.
    rows : pandas.DataFrame
        Held-out input rows.
    expected : numpy.ndarray
        The offline predictions (a classifier's labels) for ``rows``.
    expected_proba : pandas.DataFrame, optional
        A classifier's offline ``proba_<class>`` columns for ``rows``; the served ones must
        equal them within ``atol`` (labels are then compared exactly).
    tracking_uri : str
        MLflow tracking store (also the registry).
    atol : float
        Largest absolute difference allowed between served and offline predictions.
    tls_cert, tls_key : str, optional
        Serve HTTPS with this PEM certificate and key (as ``serve.tls_cert``/``serve.tls_key``).
    ca_file : str, optional
        PEM authorities the client verifies the service with (default: ``tls_cert`` itself,
        right for a self-signed certificate).

    Returns
    -------
    dict
        JSON-ready: ``passed``, ``reason``, ``n_rows``, ``max_abs_diff`` (of probabilities, for a
        classifier), ``url``,
        ``model_name``, ``model_version``, ``checks`` (each check's outcome),
        ``captured_rows``, ``seconds``.

    Examples
    --------
    >>> result = smoke_test("models:/bike-demand/3", test_x, model.predict(test_x),
    ...                     tracking_uri=params.tracking_uri)  # doctest: +SKIP
    >>> result["passed"]  # doctest: +SKIP
    True
    """
    started = time.perf_counter()
    expected = np.asarray(expected)
    result: dict[str, Any] = {
        "passed": False,
        "reason": "",
        "n_rows": int(len(rows)),
        "max_abs_diff": None,
        "atol": atol,
        "url": None,
        "model_uri": model_uri,
        "model_name": None,
        "model_version": None,
        "checks": {},
        "captured_rows": None,
        "seconds": None,
    }
    if len(rows) == 0 or len(expected) != len(rows):
        result["reason"] = f"need rows and as many expected values: got {len(rows)} rows, {len(expected)} expected"
        return result
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="driftgate-smoke-") as tmp:
        writer = CaptureWriter(Path(tmp) / "captures", flush_interval=0.2)
        service = ScoringService(
            model_uri, tracking_uri=tracking_uri, port=0, capture=writer, token=token, alias_poll_interval=0,
            tls_cert=tls_cert, tls_key=tls_key,
        )
        try:
            service.start()
        except (DriftgateError, OSError) as exc:
            result["reason"] = f"service did not start: {exc}"
            result["seconds"] = round(time.perf_counter() - started, 3)
            return result
        try:
            result.update(url=service.url, model_name=service.model.name, model_version=service.model.version)
            served, served_proba = _smoke_requests(
                service, token, rows, batch_size, result["checks"], ca_file or tls_cert
            )
        except (ServeError, OSError, ValueError, KeyError) as exc:
            served = served_proba = None
            result["reason"] = f"request failed: {exc}"
        finally:
            service.stop()
        if served is not None:
            result["captured_rows"] = count_rows(writer.capture_dir, service.model.capture_name)
            result["checks"]["captured_all_rows"] = result["captured_rows"] == len(rows)
            if expected_proba is None:
                _compare(served, expected, atol, result)
            else:
                _compare_classifier(served, served_proba, expected, expected_proba, atol, result)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _smoke_requests(
    service: ScoringService,
    token: str,
    rows: pd.DataFrame,
    batch_size: int,
    checks: dict[str, Any],
    ca_file: str | None = None,
) -> tuple[np.ndarray, pd.DataFrame | None]:
    with (
        ServeClient(service.url, token=token, ca_file=ca_file) as client,
        ServeClient(service.url, ca_file=ca_file) as anonymous,
    ):
        checks["ping"] = client.request("GET", "/ping").status == 200
        version = client.get_json("/version")
        checks["version_matches"] = version["model_version"] == service.model.version
        refused = anonymous.request("GET", "/health").status
        checks["token_required"] = refused == 401
        schema = service.model.schema
        if schema is not None and len(schema.columns) > 0:
            partial = rows.head(1).drop(columns=[schema.names[0]], errors="ignore")
            status = client.request("POST", "/invocations", encode_frame(partial), {"Content-Type": JSON_TYPE}).status
            checks["missing_column_is_400"] = status == 400
        parts = [client.predict(rows.iloc[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    probabilities = [p.probabilities for p in parts if p.probabilities is not None]
    proba = pd.concat(probabilities, ignore_index=True) if len(probabilities) == len(parts) else None
    return np.concatenate([p.values for p in parts]), proba


def _compare(served: np.ndarray, expected: np.ndarray, atol: float, result: dict[str, Any]) -> None:
    failed = [name for name, ok in result["checks"].items() if ok is not True]
    if served.shape != expected.shape:
        result["reason"] = f"served predictions have shape {served.shape}, offline {expected.shape}"
        return
    if np.issubdtype(expected.dtype, np.number) and np.issubdtype(served.dtype, np.number):
        diff = np.abs(served.astype(float) - expected.astype(float))
        same_nan = np.isnan(served.astype(float)) & np.isnan(expected.astype(float))
        diff = np.where(same_nan, 0.0, diff)
        worst = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0
        mismatched = int((diff > atol).sum() + np.isnan(diff).sum())
    else:
        worst = 0.0 if np.array_equal(served.astype(str), expected.astype(str)) else math.inf
        mismatched = int((served.astype(str) != expected.astype(str)).sum())
    result["max_abs_diff"] = worst if math.isfinite(worst) else None
    result["mismatched_rows"] = mismatched
    if mismatched:
        result["reason"] = (
            f"{mismatched} of {len(expected)} predictions differ from offline by more than {result['atol']}"
        )
    elif failed:
        result["reason"] = f"failed checks: {', '.join(failed)}"
    else:
        result["passed"] = True
        result["reason"] = f"{len(expected)} served predictions equal the offline ones within {result['atol']}"


def _compare_classifier(
    labels: np.ndarray, proba: pd.DataFrame | None, expected: np.ndarray, expected_proba: pd.DataFrame,
    atol: float, result: dict[str, Any],
) -> None:
    """Labels exactly, probabilities within ``atol`` (same ``proba_<class>`` columns)."""
    failed = [name for name, ok in result["checks"].items() if ok is not True]
    expected_proba = pd.DataFrame(expected_proba).reset_index(drop=True)
    if proba is None or list(proba.columns) != list(expected_proba.columns):
        got = None if proba is None else list(proba.columns)
        result["reason"] = f"served probability columns {got}, offline {list(expected_proba.columns)}"
        return
    if len(labels) != len(expected):
        result["reason"] = f"served {len(labels)} labels, offline {len(expected)}"
        return
    wrong_label = np.asarray([a != b for a, b in zip(labels.tolist(), np.asarray(expected).tolist(), strict=True)])
    diff = np.abs(proba.to_numpy(dtype=float) - expected_proba.to_numpy(dtype=float))
    worst = float(diff.max()) if diff.size else 0.0
    result["max_abs_diff"] = worst
    result["mismatched_labels"] = int(wrong_label.sum())
    result["mismatched_rows"] = int((wrong_label | (diff > atol).any(axis=1)).sum())
    if result["mismatched_rows"]:
        result["reason"] = (f"{result['mismatched_labels']} of {len(expected)} labels differ from offline; "
                            f"probabilities differ by up to {worst:.3g} (tolerance {atol})")
    elif failed:
        result["reason"] = f"failed checks: {', '.join(failed)}"
    else:
        result["passed"] = True
        result["reason"] = (f"{len(expected)} served labels equal the offline ones and their class probabilities "
                            f"are within {atol}")
