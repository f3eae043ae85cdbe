"""The shadow phase of ``serve_load.py``: the champion served with and without a shadow, side by side.

Two ``driftgate serve`` processes serve the same champion with capture on; the second also has
``serve.shadow=challenger`` (another version of the same model, as costly to score). Rounds
alternate between them, so other load on the machine falls on both alike. Reported: the
champion's p50/p99 latency and throughput with and without the shadow, the CPU each server
spent per request, and the share of captured champion requests that have their shadow
prediction (read back from the capture store after a graceful stop, which scores every shadow
request still queued). The machine's load average before and after is noted.

On two cores the shadow's model calls share the CPU with the champion's: it is off the response
path (scored after the answer is released, in a process of its own at a lower CPU priority,
which parses and captures too), not free: the load generator, the service and the shadow's
process share the two cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_common import (  # noqa: E402
    MODEL_NAME,
    LoadResult,
    free_port,
    log_version,
    run_load,
    start_driftgate,
    stop,
    wait_ready,
)

from helpers.core.config import Params  # noqa: E402
from helpers.modeling import estimators  # noqa: E402
from helpers.modeling.captures import read_captures  # noqa: E402
from helpers.modeling.data import load_frame, window  # noqa: E402

PLAIN, SHADOWED = "driftgate, 1 row", "driftgate + shadow, 1 row"


def register_challenger(params: Params) -> str:
    """Fit the params' model on the second half of the baseline window (other predictions, same
    cost) and register it as ``challenger``; returns its version."""

    from mlflow import MlflowClient


    baseline = window(load_frame(params), params.windows.baseline)
    rows = baseline.iloc[len(baseline) // 2 :]
    features, target = params.data.features, params.data.target
    model = estimators.build_model(params, rows).fit(rows[features], rows[target])
    version = log_version(model, rows[features], _experiment(params))
    client = MlflowClient(tracking_uri=params.tracking_uri, registry_uri=params.tracking_uri)
    client.set_registered_model_alias(MODEL_NAME, "challenger", version)
    return version


def _experiment(params: Params) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=params.tracking_uri)
    return str(client.get_experiment_by_name("serve-bench").experiment_id)


@dataclass
class ShadowPhase:
    """The champion with and without a shadow, and how much of the traffic the shadow scored."""

    results: dict[str, LoadResult]
    champion_requests: int  # captured by the shadowed server
    shadowed_requests: int  # of those, requests with a shadow prediction
    shadow_health: dict
    exit_codes: tuple[int, int]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))

    @property
    def shadowed_share(self) -> float:
        return self.shadowed_requests / self.champion_requests if self.champion_requests else 0.0

    def ratio(self, measure: str) -> float:
        """Shadowed over plain: ``rps``, ``p50`` or ``p99``."""
        plain, shadowed = self.results[PLAIN], self.results[SHADOWED]
        if measure == "rps":
            return shadowed.rps / plain.rps if plain.rps else float("nan")
        q = float(measure[1:])
        return shadowed.percentile(q) / plain.percentile(q)


def run_shadow_phase(
    args: argparse.Namespace, params: Params, overrides: list[str], root: Path, single: list[bytes], log: Path
) -> ShadowPhase:
    """Both servers up; single-row load on one, then the other, for ``args.rounds`` rounds."""
    print("shadow: registering the challenger ...", flush=True)
    register_challenger(params)
    plain_dir, shadow_dir = root / "captures-plain", root / "captures-shadow"
    plain_port, shadow_port = free_port(), free_port()
    plain = start_driftgate(plain_port, Path(args.params), [*overrides, f"serve.capture_dir={plain_dir}"], log)
    shadowed = start_driftgate(
        shadow_port, Path(args.params), [*overrides, f"serve.capture_dir={shadow_dir}", "serve.shadow=challenger"], log
    )
    results: dict[str, LoadResult] = {}
    load_before = os.getloadavg()
    try:
        wait_ready(plain_port, plain)
        wait_ready(shadow_port, shadowed)
        for round_ in range(args.rounds):
            for label, proc, port in ((PLAIN, plain, plain_port), (SHADOWED, shadowed, shadow_port)):
                result = run_load(label, proc, port, single, 1, args.clients, args.seconds)
                print(f"  round {round_ + 1}: {label:34} {result.rps:7.1f} req/s", flush=True)
                if label in results:
                    results[label].merge(result)
                else:
                    results[label] = result
        health = _health(shadow_port)
    finally:
        codes = (stop(plain), stop(shadowed))
    captured = read_captures(shadow_dir, MODEL_NAME, roles=None)
    champion = set(captured.loc[captured["role"] == "champion", "request_id"])
    shadow = set(captured.loc[captured["role"] == "shadow", "request_id"])
    return ShadowPhase(
        results, len(champion), len(champion & shadow), health.get("shadow") or {}, codes, load_before,
        os.getloadavg(),
    )


def _health(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health")
    document = json.loads(conn.getresponse().read())
    conn.close()
    return document


def shadow_report(phase: ShadowPhase) -> tuple[list[str], dict, bool]:
    """Lines for the table, the JSON part and whether the goals were met."""
    lines = ["", f"{'shadow phase':35} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/req':>10} {'errors':>6}"]
    for r in phase.results.values():
        lines.append(
            f"{r.label:35} {r.rps:7.1f} {r.percentile(50):7.1f} {r.percentile(99):7.1f} "
            f"{r.cpu_ms_per_request:10.2f} {r.errors:6d}"
        )
    ratios = {m: phase.ratio(m) for m in ("rps", "p50", "p99")}
    health = phase.shadow_health
    lines += [
        f"with a shadow: throughput x{ratios['rps']:.2f}, p50 x{ratios['p50']:.2f}, p99 x{ratios['p99']:.2f} "
        "of the run without (goal: within 15%)",
        f"shadowed: {phase.shadowed_requests} of {phase.champion_requests} captured champion requests "
        f"({phase.shadowed_share:.1%}; goal 100%); shadow scored {health.get('scored')} in "
        f"{health.get('model_calls')} model calls, {health.get('errors')} errors, {health.get('dropped')} dropped",
        f"load average (1, 5, 15 min) before {_load(phase.load_before)}, after {_load(phase.load_after)} "
        f"on {os.cpu_count()} cores",
    ]
    ok = (
        phase.shadowed_share == 1.0
        and ratios["rps"] >= 0.85
        and ratios["p99"] <= 1.15
        and phase.exit_codes == (0, 0)
    )
    document = {
        "phases": [{"label": r.label, "rps": r.rps, "p50_ms": r.percentile(50), "p99_ms": r.percentile(99),
                    "cpu_ms_per_request": r.cpu_ms_per_request, "requests": r.requests, "errors": r.errors}
                   for r in phase.results.values()],
        "ratios": ratios,
        "champion_requests": phase.champion_requests,
        "shadowed_requests": phase.shadowed_requests,
        "shadow_health": health,
        "load_before": phase.load_before,
        "load_after": phase.load_after,
    }
    return lines, document, ok


def _load(values: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)
