"""The runner's heartbeat: a thread rewrites ``heartbeat`` in the run's manifest while the run lives.

The runner writes the manifest through :meth:`Heartbeat.write`; the thread only refreshes the
timestamp of what is on disk. Both take the same lock and both rewrite atomically, so neither
loses the other's update and a reader never sees half a file. A runner that dies (SIGKILL, a lost
machine) stops beating, and :func:`helpers.core.liveness.run_state` then reads its run as
``abandoned``.

Example
-------
>>> beat = Heartbeat(run_dir / "manifest.json", manifest)  # doctest: +SKIP
>>> beat.start(); beat.write(manifest); beat.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from helpers.core.files import read_json, write_json
from helpers.core.liveness import HEARTBEAT_INTERVAL_S, runner_identity
from helpers.core.times import utc_now_iso


class Heartbeat:
    """Write ``manifest`` now with the runner's host and PID, then refresh its heartbeat every
    ``interval`` seconds until :meth:`stop`."""

    def __init__(self, path: Path, manifest: dict[str, Any], interval: float = HEARTBEAT_INTERVAL_S) -> None:
        self.path = Path(path)
        self.interval = interval
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        manifest["runner"] = runner_identity()
        self.write(manifest)
        self._thread = threading.Thread(target=self._beat, name="driftgate-heartbeat", daemon=True)

    def start(self) -> None:
        """Start the thread that refreshes the heartbeat."""
        self._thread.start()

    def write(self, manifest: dict[str, Any]) -> None:
        """Write ``manifest`` with a fresh heartbeat."""
        with self._lock:
            manifest["heartbeat"] = utc_now_iso()
            write_json(self.path, manifest)

    def stop(self) -> None:
        """Stop beating (the last :meth:`write` stays on disk)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            with self._lock:
                if self._stopped.is_set():
                    return
                try:
                    on_disk = read_json(self.path)
                except (OSError, ValueError):
                    continue
                if on_disk.get("status") != "running":
                    return
                on_disk["heartbeat"] = utc_now_iso()
                write_json(self.path, on_disk)
