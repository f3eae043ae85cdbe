"""Capture durability of ``driftgate serve``: async mode across SIGTERM, sync mode across SIGKILL.

The same registered model as ``serve_load.py`` is served by ``driftgate serve`` (subprocesses on
127.0.0.1). Two durability runs, each ``--requests`` single-row requests (default 10,000) from
``--clients`` keep-alive clients (default 4), every request with its own ``X-Request-Id``;
clients retry a request until it is acknowledged (HTTP 200):

* ``async`` capture, restarted half-way with SIGTERM (graceful: in-flight requests finish and
  the writer flushes);
* ``sync`` capture (write-ahead log, fsync before the answer), restarted half-way with SIGKILL
  (the new process replays the dead one's log on start).

Afterwards the capture store is read back: acknowledged ids against captured ones, lost
(acknowledged, not captured) and duplicated. A duplicate is split into *stored twice* (the same
capture, same timestamp, written twice: a bug) and *retried* (a request captured, then killed
before its answer left, and sent again by the client: at-least-once delivery, not a loss).

Then the single-row throughput of the two modes side by side (both servers up, phases
interleaved): requests per second and p50/p99 latency.

    .venv/bin/python benchmarks/capture_durability.py [--requests 10000] [--clients 4] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_common import bench_overrides  # noqa: E402
from serve_load import (  # noqa: E402
    MODEL_NAME,
    LoadResult,
    free_port,
    register_champion,
    run_durability,
    run_load,
    start_driftgate,
    stop,
    wait_ready,
)

from helpers.core.config import load_params  # noqa: E402
from helpers.modeling.captures import read_captures  # noqa: E402
from helpers.serving.protocol import encode_frame  # noqa: E402


@dataclass
class Outcome:
    """One durability run, checked against the capture store."""

    label: str
    acknowledged: int
    captured_ids: int
    lost: int
    stored_twice: int
    retried: int
    retries: int
    restart_seconds: float
    seconds: float


def durability_run(
    mode: str, sig: signal.Signals, args: argparse.Namespace, overrides: list[str], root: Path, bodies: list[bytes]
) -> Outcome:
    """``args.requests`` identified requests; restart the service with ``sig`` half-way."""
    capture_dir = root / f"captures-{mode}"
    port = free_port()
    params = Path(args.params)
    served = [*overrides, f"serve.capture_dir={capture_dir}", f"serve.capture_mode={mode}"]
    log = root / f"{mode}.log"
    holder = {"proc": start_driftgate(port, params, served, log)}
    wait_ready(port, holder["proc"])

    def restart() -> float:
        began = time.perf_counter()
        if sig == signal.SIGKILL:
            os.killpg(holder["proc"].pid, signal.SIGKILL)
            holder["proc"].wait()
        else:
            stop(holder["proc"])
        holder["proc"] = start_driftgate(port, params, served, log)
        wait_ready(port, holder["proc"])
        return time.perf_counter() - began

    print(f"durability: {mode} capture, {args.requests} requests, {sig.name} restart half-way ...", flush=True)
    try:
        run = run_durability(port, bodies, args.requests, args.clients, restart)
    finally:
        stop(holder["proc"])
    captured = read_captures(capture_dir, MODEL_NAME)
    ids = set(captured["request_id"])
    twice = captured.duplicated(["request_id", "row", "timestamp"])
    retried = captured.duplicated(["request_id", "row"]) & ~twice
    return Outcome(
        label=f"{mode} capture, {sig.name} restart",
        acknowledged=len(run.acknowledged),
        captured_ids=len(ids & run.acknowledged),
        lost=len(run.acknowledged - ids),
        stored_twice=int(twice.sum()),
        retried=int(retried.sum()),
        retries=run.retries,
        restart_seconds=run.restart_seconds,
        seconds=run.seconds,
    )


def throughput(
    args: argparse.Namespace, overrides: list[str], root: Path, bodies: list[bytes]
) -> dict[str, LoadResult]:
    """Single-row throughput of async and sync capture, both servers up, phases interleaved."""
    procs, ports = {}, {}
    for mode in ("async", "sync"):
        ports[mode] = free_port()
        served = [*overrides, f"serve.capture_dir={root / f'load-{mode}'}", f"serve.capture_mode={mode}"]
        procs[mode] = start_driftgate(ports[mode], Path(args.params), served, root / f"load-{mode}.log")
    results: dict[str, LoadResult] = {}
    try:
        for mode in procs:
            wait_ready(ports[mode], procs[mode])
        for round_ in range(args.rounds):
            for mode in ("async", "sync"):
                label = f"driftgate, {mode} capture, 1 row"
                result = run_load(label, procs[mode], ports[mode], bodies, 1, args.clients, args.seconds)
                print(f"  round {round_ + 1}: {label:34} {result.rps:7.1f} req/s", flush=True)
                if label in results:
                    results[label].merge(result)
                else:
                    results[label] = result
    finally:
        for proc in procs.values():
            stop(proc)
    return results


def table(outcomes: list[Outcome], load: dict[str, LoadResult]) -> str:
    """The durability table and the throughput table, as text."""
    head = (f"{'run':32} {'acknowledged':>12} {'captured':>9} {'lost':>5} {'stored twice':>12} "
            f"{'retried dup':>11} {'restart s':>9}")
    lines = [head, "-" * len(head)]
    for o in outcomes:
        lines.append(f"{o.label:32} {o.acknowledged:12d} {o.captured_ids:9d} {o.lost:5d} {o.stored_twice:12d} "
                     f"{o.retried:11d} {o.restart_seconds:9.1f}")
    head = f"{'server':34} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
    lines += ["", head, "-" * len(head)]
    for r in load.values():
        lines.append(f"{r.label:34} {r.rps:7.1f} {r.percentile(50):7.1f} {r.percentile(99):7.1f} {r.errors:6d}")
    rates = [r.rps for r in load.values()]
    if len(rates) == 2 and rates[0]:
        lines.append(f"sync / async single-row throughput: {rates[1] / rates[0]:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "params" / "default.yaml"))
    parser.add_argument("--requests", type=int, default=10_000, help="requests per durability run")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per throughput phase and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="driftgate-durability-") as tmp:
        root = Path(tmp)
        overrides = bench_overrides(root)
        params = load_params(args.params, overrides)
        print(f"training and registering {params.model.type} ...", flush=True)
        traffic = register_champion(params)
        bodies = [encode_frame(traffic.iloc[i : i + 1]) for i in range(len(traffic))]
        outcomes = [
            durability_run("async", signal.SIGTERM, args, overrides, root, bodies),
            durability_run("sync", signal.SIGKILL, args, overrides, root, bodies),
        ]
        load = throughput(args, overrides, root, bodies)
    print(table(outcomes, load))
    return 0 if all(o.lost == 0 and o.stored_twice == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
