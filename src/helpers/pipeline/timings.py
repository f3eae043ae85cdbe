"""Where a step's time goes: kernel start, imports, data load, each cell, HTML conversion.

A notebook records what only it can see (how long :func:`helpers.pipeline.context.open_step`
took to read params and data) in a hidden file of the run folder; the runner adds what papermill
recorded in the executed notebook (each cell's duration) and what it measured itself (HTML,
MLflow logging), and keeps the result in the step's manifest record under ``timings``.

Example
-------
>>> step_timings(run_dir / "03_train_evaluate.ipynb", "train")["kernel_start_s"]  # doctest: +SKIP
1.42
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from helpers.core.files import read_json, write_json


def _notes_path(run_dir: Path, step: str) -> Path:
    return Path(run_dir) / f".{step}.timings.json"


def note(run_dir: Path, step: str, **seconds: float) -> None:
    """Add ``seconds`` (name -> seconds) to the step's hidden timing notes in ``run_dir``."""
    path = _notes_path(run_dir, step)
    notes = read_json(path) if path.is_file() else {}
    notes.update({k: round(float(v), 3) for k, v in seconds.items()})
    write_json(path, notes)


def step_timings(executed: Path, step: str) -> dict[str, Any]:
    """The breakdown of one executed step notebook: ``kernel_start_s`` (papermill's start to the
    first cell), ``imports_s`` and ``load_s`` (the set-up cell, split by the notebook's own note),
    ``work_s`` (every later cell) and ``cells`` (first line and seconds of each code cell)."""
    try:
        nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    notes_file = _notes_path(Path(executed).parent, step)
    notes = read_json(notes_file) if notes_file.is_file() else {}
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    timed = [(c, c.get("metadata", {}).get("papermill", {})) for c in cells]
    timed = [(c, meta) for c, meta in timed if meta.get("start_time") and meta.get("duration") is not None]
    if not timed:
        return dict(notes)
    started = nb.get("metadata", {}).get("papermill", {}).get("start_time")
    kernel = _seconds(started, timed[0][1]["start_time"]) if started else None
    setup = next(((i, meta) for i, (c, meta) in enumerate(timed) if "open_step(" in _source(c)), None)
    out: dict[str, Any] = {"kernel_start_s": kernel,
                           "cells": [[_label(c), round(meta["duration"], 3)] for c, meta in timed]}
    if setup is not None:
        index, meta = setup
        load = float(notes.get("load_s", 0.0))
        out["imports_s"] = round(max(meta["duration"] - load, 0.0), 3)
        out["load_s"] = round(load, 3)
        out["work_s"] = round(sum(m["duration"] for _, m in timed[index + 1:]), 3)
    out.update({k: v for k, v in notes.items() if k != "load_s"})
    return out


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _label(cell: dict[str, Any]) -> str:
    lines = [line for line in _source(cell).splitlines() if line.strip() and not line.startswith("#")]
    return (lines[0] if lines else "")[:60]


def _seconds(start: str, end: str) -> float | None:
    try:
        return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 3)
    except (TypeError, ValueError):
        return None
