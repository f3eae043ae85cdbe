"""Alert sinks against a real local HTTP server and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core.config import AlertParams, DriftParams
from helpers.monitoring.alerts import alert_text, drift_alert, send_alert
from helpers.stats.compare import compare

ALERT = {"kind": "drift", "reason": "drift: 2 of 3 features drifted", "drifted_features": ["a", "b"], "share": 0.67}


class _Hook:
    """A local webhook receiver answering with a fixed status."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                hook.requests.append(
                    {"body": json.loads(self.rfile.read(length)), "type": self.headers["Content-Type"]}
                )
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Inbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))  # type: ignore[attr-defined]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_sink_always_appends_one_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "alerts.jsonl"
    first = send_alert(ALERT, AlertParams(), path)
    send_alert({**ALERT, "share": float("nan")}, AlertParams(), path)
    assert [(r.sink, r.ok) for r in first] == [("file", True)]
    lines = _lines(path)
    assert len(lines) == 2 and lines[0]["reason"] == ALERT["reason"] and lines[0]["sent_at"]
    assert lines[1]["share"] is None  # no NaN in the file
    custom = tmp_path / "custom.jsonl"
    send_alert(ALERT, AlertParams(file=str(custom)), path)
    assert len(_lines(custom)) == 1 and len(_lines(path)) == 2


def test_webhook_posts_slack_compatible_json(tmp_path: Path) -> None:
    with _Hook(200) as hook:
        results = send_alert(ALERT, AlertParams(webhook_url=hook.url, timeout=5), tmp_path / "a.jsonl")
    assert [(r.sink, r.ok) for r in results] == [("file", True), ("webhook", True)]
    (request,) = hook.requests
    assert request["type"] == "application/json"
    assert request["body"]["text"] == alert_text(ALERT)
    assert "drift: 2 of 3 features drifted" in request["body"]["text"]
    assert request["body"]["driftgate"]["drifted_features"] == ["a", "b"]
    assert "secret" not in results[1].target  # the URL's secret part is not echoed


def test_failing_webhook_is_reported_and_the_alert_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with _Hook(500) as hook:
        results = send_alert(ALERT, AlertParams(webhook_url=hook.url, timeout=5), path)
    assert results[1].sink == "webhook" and not results[1].ok and "HTTP 500" in results[1].detail
    unreachable = send_alert(ALERT, AlertParams(webhook_url=f"http://127.0.0.1:{_free_port()}/x", timeout=2), path)
    assert not unreachable[1].ok and "cannot reach" in unreachable[1].detail
    bad_scheme = send_alert(ALERT, AlertParams(webhook_url="ftp://example/x"), path)
    assert not bad_scheme[1].ok and "scheme" in bad_scheme[1].detail
    lines = _lines(path)
    assert len(lines) == 3
    assert lines[0]["delivery"][0]["ok"] is False and "HTTP 500" in lines[0]["delivery"][0]["detail"]


def test_email_is_delivered_over_smtp(tmp_path: Path, smtp: tuple[int, _Inbox]) -> None:
    port, inbox = smtp
    params = AlertParams(smtp_host="127.0.0.1", smtp_port=port, email_from="dg@test", email_to=["a@test", "b@test"])
    results = send_alert(ALERT, params, tmp_path / "a.jsonl")
    assert [(r.sink, r.ok) for r in results] == [("file", True), ("email", True)]
    (mail_from, rcpt, content), = inbox.messages
    assert mail_from == "dg@test" and rcpt == ["a@test", "b@test"]
    message = message_from_bytes(content)
    assert message["Subject"].startswith("[Driftgate] Driftgate alert (drift)")
    assert "drift: 2 of 3 features drifted" in message.get_payload()


def test_failing_email_is_reported_and_the_alert_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    params = AlertParams(smtp_host="127.0.0.1", smtp_port=_free_port(), email_to=["a@test"], timeout=2)
    results = send_alert(ALERT, params, path)
    assert results[0].ok and not results[1].ok and "cannot send" in results[1].detail
    half = send_alert(ALERT, AlertParams(email_to=["a@test"]), path)
    assert not half[1].ok and "smtp_host" in half[1].detail
    assert len(_lines(path)) == 2


def test_all_sinks_together_and_a_broken_file_sink(tmp_path: Path, smtp: tuple[int, _Inbox]) -> None:
    port, inbox = smtp
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with _Hook(204) as hook:
        params = AlertParams(
            file=str(blocker / "alerts.jsonl"), webhook_url=hook.url, smtp_host="127.0.0.1", smtp_port=port,
            email_to=["ops@test"],
        )
        results = send_alert(ALERT, params, tmp_path / "unused.jsonl")
    assert [(r.sink, r.ok) for r in results] == [("file", False), ("webhook", True), ("email", True)]
    assert "cannot append" in results[0].detail
    assert len(hook.requests) == 1 and len(inbox.messages) == 1


def test_drift_alert_from_a_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"x": rng.normal(size=300)})
    target = pd.DataFrame({"x": rng.normal(2.0, size=300)})
    report = compare(base, target, DriftParams(coefficient_sample=0))
    alert = drift_alert(report, source="unit test", run_id="r1")
    assert alert["drifted"] is True and alert["drifted_features"] == ["x"] and alert["run_id"] == "r1"
    assert alert["coefficient"] is None
    assert alert["text"].startswith("Driftgate: drift detected in unit test: drift: 1 of 1")
    json.dumps(alert, allow_nan=False)
