"""Is a run still alive? A runner records its host, PID and a heartbeat in the run's manifest.

A manifest that says ``running`` only means the runner has not finished writing it: a runner
killed by SIGKILL, or a CI machine lost mid-run, leaves it so forever. :func:`run_state` reads
such a run as ``abandoned`` when its heartbeat is older than ``stale_after`` seconds, or at
once when its runner's process is gone on this same host.

Example
-------
>>> run_state({"status": "running", "heartbeat": "2026-01-01T00:00:00+00:00"})
'abandoned'
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

RUNNING = "running"
ABANDONED = "abandoned"
HEARTBEAT_INTERVAL_S = 10.0  # how often a live runner rewrites its heartbeat
STALE_AFTER_S = 120.0  # a heartbeat older than this: the runner is gone (twelve missed beats)


def runner_identity() -> dict[str, Any]:
    """This process as a run's ``runner``: host name and PID."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def run_state(manifest: dict[str, Any], now: dt.datetime | None = None, stale_after: float = STALE_AFTER_S) -> str:
    """The run's status, with ``running`` read as ``abandoned`` when its runner is gone.

    A manifest without a heartbeat (written before heartbeats existed) is judged by its start.
    """
    status = str(manifest.get("status", "?"))
    if status != RUNNING:
        return status
    return ABANDONED if abandoned_because(manifest, now, stale_after) else RUNNING


def abandoned_because(
    manifest: dict[str, Any], now: dt.datetime | None = None, stale_after: float = STALE_AFTER_S
) -> str | None:
    """Why a ``running`` manifest's runner is gone (None while it is alive)."""
    runner = manifest.get("runner") or {}
    if runner.get("host") == socket.gethostname() and isinstance(runner.get("pid"), int):
        if not _process_alive(runner["pid"]):
            return f"runner PID {runner['pid']} on {runner['host']} is gone"
    beat = _parse(manifest.get("heartbeat") or manifest.get("start"))
    if beat is None:
        return None
    age = ((now or dt.datetime.now(dt.UTC)) - beat).total_seconds()
    if age > stale_after:
        where = f" (runner PID {runner.get('pid')} on {runner.get('host')})" if runner else ""
        return f"no heartbeat for {age:.0f} s{where}"
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent still has a PID; Linux says it is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _parse(stamp: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(stamp))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def recent_runs(outputs_dir: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The newest ``limit`` runs under ``outputs_dir/runs`` (newest first) and every older one
    still ``running`` or ``abandoned``: run id, state (:func:`run_state`), start, and why a run
    reads as abandoned."""
    found = []
    for i, path in enumerate(sorted((Path(outputs_dir) / "runs").glob("*/manifest.json"), reverse=True)):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        state = run_state(manifest)
        if i >= limit and state not in (RUNNING, ABANDONED):
            continue
        found.append({"run_id": str(manifest.get("run_id", path.parent.name)), "status": state,
                      "start": manifest.get("start"), "heartbeat": manifest.get("heartbeat"),
                      "runner": manifest.get("runner"),
                      "abandoned": abandoned_because(manifest) if state == ABANDONED else None})
    return found
