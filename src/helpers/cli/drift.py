"""``driftgate drift``: the drift report for any pair of CSV or Parquet tables.

    driftgate drift --baseline A --target B [--params FILE] [-p key=value ...]
                    [--features a,b,c] [--time-column COL] [--html OUT] [--json OUT]
                    [--title TEXT] [--fail-on-drift] [--alert]

The same engine and report as notebook 02. ``A`` and ``B`` are CSV or Parquet files or globs of
them. Without ``--params`` the drift settings are the defaults and every column present on both
sides is a feature. ``--params`` takes either a full driftgate params file (its ``drift``,
``alerts`` and ``compute`` sections, its ``data.features`` and its CSV options ``data.read`` are
used) or a small file holding only ``drift:``, ``alerts:``, ``compute:`` and ``data: {read: ...}``
sections; ``-p drift.correction=bonferroni`` or ``-p data.read.sep=;`` overrides one key either
way. With ``compute.scheduler`` other than ``pandas`` (``local``, or
``tcp://host:8786``), Parquet files and globs are compared partition by partition on Dask
(:func:`helpers.stats.scale.compare_at_scale`), so they need not fit in memory.

Exit status: 0, or 1 when drift is found and ``--fail-on-drift`` is given (for CI gates). Bad
input raises :class:`~helpers.core.errors.DataError` or :class:`~helpers.core.errors.ParamsError`, which
the ``driftgate`` command prints as one line.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.cli.commands import add_drift
from helpers.cli.common import DRIFT_ONLY_SECTIONS
from helpers.core import config
from helpers.core.catalogue import ALERTS_FILE
from helpers.core.config import AlertParams, ComputeParams, DriftParams, ReadParams
from helpers.core.errors import ParamsError
from helpers.modeling.checks import check_comparable
from helpers.modeling.data import read_table
from helpers.monitoring.alerts import drift_alert, send_alert
from helpers.reports import drift_report
from helpers.stats.compare import compare
from helpers.stats.scale import compare_at_scale

READ_SECTION = "data.read"  # the one part of data: a drift-only file may hold (CSV options)
TABLE_COLUMNS = ["feature", "type", "test", "statistic", "rule", "threshold", "drifted", "contribution"]


@dataclass
class DriftSettings:
    """What ``--params`` and ``-p`` resolve to."""

    drift: DriftParams = field(default_factory=DriftParams)
    alerts: AlertParams = field(default_factory=AlertParams)
    compute: ComputeParams = field(default_factory=ComputeParams)
    read: ReadParams = field(default_factory=ReadParams)
    features: list[str] | None = None
    alerts_file: Path = Path("outputs") / ALERTS_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``drift`` subcommand; it runs :func:`run`."""
    add_drift(subparsers)


def run(args: argparse.Namespace) -> int:
    """Compare the two tables, print the decision and table, write the reports; return the exit code."""
    settings = load_settings(args.params, args.overrides)
    features = _split(args.features) if args.features else settings.features
    if settings.compute.scheduler.strip() != "pandas":
        report = _compare_at_scale(args, settings, features)
    else:
        baseline = read_table(args.baseline, settings.read)
        target = read_table(args.target, settings.read)
        check_comparable(baseline, target, args.baseline, args.target, features)
        report = compare(baseline, target, settings.drift, features=features, time_column=args.time_column)
    _print_report(report)
    if args.html:
        print(f"html: {drift_report.write_html(report, Path(args.html), title=args.title)}")
    if args.json:
        print(f"json: {drift_report.write_json(report, Path(args.json))}")
    if args.alert and report.drifted:
        _alert(report, settings, source=f"{args.target} vs {args.baseline}")
    return 1 if args.fail_on_drift and report.drifted else 0


def load_settings(path: str | None, overrides: list[str] | None = None) -> DriftSettings:
    """Drift and alert settings from a full params file, a drift-only file, or defaults."""
    overrides = list(overrides or [])
    if path is None:
        return _drift_only({}, overrides, where="-p", base=Path.cwd())
    source = Path(path)
    if not source.is_file():
        raise ParamsError(f"{source}: params file not found; pass an existing YAML file")
    raw = config.read_yaml(source)
    if _is_drift_only(raw):
        return _drift_only(raw, overrides, where=str(source), base=source.resolve().parent)
    params = config.load_params(source, overrides)
    return DriftSettings(
        drift=params.drift,
        alerts=params.alerts,
        compute=params.compute,
        read=params.data.read,
        features=list(params.data.features) or None,
        alerts_file=params.outputs_dir / ALERTS_FILE,
    )


def _is_drift_only(raw: dict[str, Any]) -> bool:
    """Whether a params file holds only drift:, alerts:, compute: and data: {read: ...}."""
    data = raw.get("data", {})
    return set(raw) - {"data"} <= set(DRIFT_ONLY_SECTIONS) and isinstance(data, dict) and set(data) <= {"read"}


def _drift_only(raw: dict[str, Any], overrides: list[str], where: str, base: Path) -> DriftSettings:
    alerts = raw.get("alerts")
    if isinstance(alerts, dict) and isinstance(alerts.get("file"), str):
        file = Path(alerts["file"]).expanduser()
        alerts["file"] = str(file if file.is_absolute() else (base / file).resolve())
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key.split(".")[0] not in DRIFT_ONLY_SECTIONS and not (key + ".").startswith(READ_SECTION + "."):
            raise ParamsError(f"{where}: override {item!r}: only drift.*, alerts.*, compute.* and data.read.* keys "
                              "apply to driftgate drift")
        config.apply_override(raw, item, where=where)
    return DriftSettings(
        drift=config.build_section(DriftParams, raw.get("drift"), where, "drift"),
        alerts=config.build_section(AlertParams, raw.get("alerts"), where, "alerts"),
        compute=config.build_section(ComputeParams, raw.get("compute"), where, "compute"),
        read=config.build_section(ReadParams, (raw.get("data") or {}).get("read"), where, READ_SECTION),
    )


def _compare_at_scale(args: argparse.Namespace, settings: DriftSettings, features: list[str] | None) -> Any:
    """The report from partition-wise profiles on Dask (``compute.scheduler`` is not pandas)."""
    if args.time_column:
        raise ParamsError("--time-column: drift over time needs the rows in memory; use compute.scheduler: pandas")
    return compare_at_scale(args.baseline, args.target, settings.drift, settings.compute, features=features)


def _split(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _print_report(report: Any) -> None:
    import pandas as pd

    print(report.reason)
    if report.coefficient is not None:
        print(f"drift coefficient {report.coefficient:.3f}; share drifted {report.share_drifted:.2f}")
    table = report.table()[TABLE_COLUMNS]
    with pd.option_context("display.width", 160, "display.max_rows", 500, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
    for note in report.notes:
        print(f"note: {note}")


def _alert(report: Any, settings: DriftSettings, source: str) -> None:
    for result in send_alert(drift_alert(report, source=source), settings.alerts, settings.alerts_file):
        status = "ok" if result.ok else "FAILED"
        print(f"alert {result.sink} {status}: {result.target} ({result.detail})")
