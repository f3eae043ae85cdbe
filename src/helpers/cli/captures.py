"""The ``driftgate captures`` commands: maintenance of the capture store.

    driftgate captures compact [--before DATE] [--period hour|day] [--params FILE] [-p ...]
    driftgate captures recover [--params FILE] [-p ...]

``compact`` merges the per-flush files of past periods into one Parquet file per period
(atomically; the current period is never touched). ``recover`` converts a write-ahead log left
by a killed ``sync``-mode service into the store (a service starting on the folder does the same).
The store is ``serve.capture_dir`` (default ``<outputs>/captures``) unless ``--dir`` names one.
Their arguments are in :mod:`helpers.cli.commands`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.core.config import load_params
from helpers.core.paths import capture_dir_for
from helpers.serving.capture_compaction import compact
from helpers.serving.capture_wal import recover


def _capture_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else capture_dir_for(load_params(args.params, args.overrides))


def cmd_compact(args: argparse.Namespace) -> int:
    """Merge the past periods' files; print what was merged."""
    folder = _capture_dir(args)
    report = compact(folder, before=args.before, period=args.period)
    print(f"driftgate captures: {folder}: {report.summary()}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    """Convert a write-ahead log left behind into the store; print what was recovered."""
    folder = _capture_dir(args)
    fmt = "parquet" if args.dir else load_params(args.params, args.overrides).serve.capture_format
    done = recover(folder, fmt)
    print(
        f"driftgate captures: {folder}: recovered {done.segments} log segments ({done.requests} requests, "
        f"{done.feedback_rows} feedback rows; {done.torn_bytes} bytes of torn tail dropped)"
    )
    return 0
