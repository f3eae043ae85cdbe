"""Alert sinks: a JSONL file (always), an HTTP webhook and email over SMTP.

:func:`send_alert` delivers one alert (a JSON-ready dict) to every sink configured in
:class:`~helpers.core.config.AlertParams`. A sink that fails does not stop the others: its failure
is returned as a :class:`SinkResult` and recorded next to the alert in the file sink, which is
written in every case (one JSON object per line, with the delivery results).

The webhook receives a JSON POST with a Slack-compatible ``text`` field (Slack, Mattermost and
Teams incoming webhooks show it) and the full alert under ``driftgate``. Email is plain text:
the same text, then the alert as JSON.

Example
-------
>>> alert = drift_alert(report, source="driftgate drift")  # doctest: +SKIP
>>> send_alert(alert, params.alerts, Path("outputs/alerts.jsonl"))  # doctest: +SKIP
[SinkResult(sink='file', ok=True, target='outputs/alerts.jsonl', detail='appended')]
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from helpers.core.config import AlertParams
from helpers.stats.results import DriftReport

SUBJECT_PREFIX = "[Driftgate]"


@dataclass
class SinkResult:
    """What happened at one sink: ``ok`` and a one-line ``detail`` (the error when it failed)."""

    sink: str  # file | webhook | email
    ok: bool
    target: str  # the path, URL or recipients
    detail: str


def send_alert(alert: dict[str, Any], params: AlertParams, default_file: Path) -> list[SinkResult]:
    """Send ``alert`` to every configured sink; return one result per sink, the file first.

    Parameters
    ----------
    alert : dict
        JSON-ready fields; ``text`` (optional) is the human message, else one is built.
    params : AlertParams
        ``file`` (default ``default_file``), ``webhook_url``, ``smtp_host``/``smtp_port``,
        ``email_from``/``email_to`` and ``timeout`` in seconds.
    default_file : pathlib.Path
        The JSONL file used when ``params.file`` is not set.

    Returns
    -------
    list of SinkResult
        Never raises for a failing sink: the failure is in its result and in the file.
    """
    record = {"sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **_json_ready(alert)}
    text = alert_text(record)
    results: list[SinkResult] = []
    if params.webhook_url:
        results.append(_send_webhook(params.webhook_url, text, record, params.timeout))
    if params.email_to or params.smtp_host:
        results.append(_send_email(params, text, record))
    path = Path(params.file) if params.file else Path(default_file)
    file_result = _append_jsonl(path, {**record, "delivery": [asdict(r) for r in results]})
    return [file_result, *results]


def alert_text(alert: dict[str, Any]) -> str:
    """The human message of an alert: its ``text``, else one built from its fields."""
    if alert.get("text"):
        return str(alert["text"])
    parts = [f"Driftgate alert ({alert.get('kind', 'drift')})"]
    if alert.get("reason"):
        parts.append(str(alert["reason"]))
    features = alert.get("drifted_features")
    if isinstance(features, list) and features:
        parts.append("drifted: " + ", ".join(map(str, features)))
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


def drift_alert(report: DriftReport, source: str = "", **extra: Any) -> dict[str, Any]:
    """A JSON-ready alert describing a drift report's decision (add context with ``extra``)."""
    summary = report.summary()
    where = f" in {source}" if source else ""
    verdict = "drift detected" if report.drifted else "no drift"
    alert = {
        "kind": "drift",
        "source": source,
        "drifted": report.drifted,
        "reason": report.reason,
        "coefficient": summary["coefficient"],
        "share_drifted": summary["share_drifted"],
        "drifted_features": summary["drifted_features"],
        "text": f"Driftgate: {verdict}{where}: {report.reason}",
        **extra,
    }
    return _json_ready(alert)


# --------------------------------------------------------------------------- sinks


def _append_jsonl(path: Path, record: dict[str, Any]) -> SinkResult:
    line = json.dumps(record, allow_nan=False, default=str) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line in append mode: concurrent writers never interleave a line.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        return SinkResult("file", False, str(path), f"cannot append: {exc.strerror or exc}")
    return SinkResult("file", True, str(path), "appended")


def _send_webhook(url: str, text: str, record: dict[str, Any], timeout: float) -> SinkResult:
    scheme = urllib.parse.urlparse(url).scheme
    shown = _redact(url)
    if scheme not in ("http", "https"):
        return SinkResult("webhook", False, shown, f"unsupported URL scheme {scheme!r}; use http or https")
    body = json.dumps({"text": text, "driftgate": record}, allow_nan=False, default=str).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "driftgate"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            status = response.status
    except urllib.error.HTTPError as exc:
        return SinkResult("webhook", False, shown, f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return SinkResult("webhook", False, shown, f"cannot reach the webhook: {reason}")
    return SinkResult("webhook", True, shown, f"HTTP {status}")


def _send_email(params: AlertParams, text: str, record: dict[str, Any]) -> SinkResult:
    recipients = ", ".join(params.email_to)
    if not params.smtp_host:
        return SinkResult("email", False, recipients, "alerts.email_to is set but alerts.smtp_host is not")
    if not params.email_to:
        return SinkResult("email", False, params.smtp_host, "alerts.smtp_host is set but alerts.email_to is empty")
    message = EmailMessage()
    message["Subject"] = f"{SUBJECT_PREFIX} {text.splitlines()[0]}"[:200]
    message["From"] = params.email_from
    message["To"] = recipients
    message.set_content(f"{text}\n\n{json.dumps(record, indent=2, default=str)}\n")
    try:
        with smtplib.SMTP(params.smtp_host, params.smtp_port, timeout=params.timeout) as smtp:
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        return SinkResult("email", False, recipients, f"cannot send via {params.smtp_host}:{params.smtp_port}: {exc}")
    if refused:
        return SinkResult("email", False, recipients, f"refused recipients: {', '.join(sorted(refused))}")
    return SinkResult("email", True, recipients, f"sent via {params.smtp_host}:{params.smtp_port}")


# --------------------------------------------------------------------------- helpers


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _redact(url: str) -> str:
    """The URL without its query and user info (webhook URLs often carry secrets)."""
    parts = urllib.parse.urlparse(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}" + ("/..." if len(segments) > 1 else "") if segments else ""
    return f"{parts.scheme}://{host}{port}{path}"
