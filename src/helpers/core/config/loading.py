"""Loading a params file: YAML, ``key=value`` overrides, path resolution, then validation.

:func:`load_params` reads the file, resolves its relative paths, applies overrides and builds
the sections of :mod:`helpers.core.config.schema`, checking every key's type and range
(:mod:`helpers.core.config.validation`). Any problem raises
:class:`~helpers.core.errors.ParamsError` with one line naming the file and the key path::

    params/default.yaml: model.hyperparameters.max_iter: expected an integer, got 'many'

Relative paths written in a params file are resolved against that file's folder; relative
paths given as overrides are resolved against the current working directory.

Example
-------
>>> params = load_params("params/default.yaml", ["split.test_size=0.3"])  # doctest: +SKIP
>>> params.split.test_size  # doctest: +SKIP
0.3
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from helpers.core.config.schema import Params
from helpers.core.config.validation import build_section, check_semantics
from helpers.core.errors import ParamsError

PATH_KEYS = (
    "data.path", "outputs.dir", "alerts.file", "serve.capture_dir", "serve.tls_cert", "serve.tls_key", "run.notebooks"
)
DEFAULT_OUTPUTS = "../outputs"  # relative to the params file, so params/x.yaml writes to outputs/
DEFAULT_NOTEBOOKS = "../notebooks"  # relative to the params file: the project's notebooks/


def load_params(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Params:
    """Load, override and validate a params file; raise :class:`ParamsError` on any problem."""
    source = Path(path)
    if not source.is_file():
        raise ParamsError(
            f"{source}: params file not found; pass an existing YAML file "
            "(for example params/default.yaml)"
        )
    raw = read_yaml(source)
    _resolve_paths(raw, base=source.resolve().parent)
    for item in overrides or []:
        apply_override(raw, item, where=str(source))
    params = build_section(Params, raw, where=str(source), key_path="")
    params.source = str(source)
    params.raw = raw
    check_semantics(params, where=str(source))
    return params


def read_yaml(source: Path) -> dict[str, Any]:
    """The YAML mapping in ``source``; ParamsError naming the line when it is not valid."""
    try:
        loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{source}:{line}: not valid YAML ({exc.__class__.__name__})") from None
    except ValueError as exc:  # a well-formed but impossible date, such as 2011-13-01
        raise ParamsError(f"{source}: not valid YAML (ValueError: {exc})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParamsError(f"{source}: the top level must be a mapping of sections")
    return loaded


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make relative path values absolute against ``base`` (the params file's folder)."""
    for dotted in PATH_KEYS:
        parent, _, leaf = dotted.rpartition(".")
        section = raw.get(parent)
        if isinstance(section, dict) and isinstance(section.get(leaf), str):
            value = Path(section[leaf]).expanduser()
            section[leaf] = str(value if value.is_absolute() else (base / value).resolve())
    for section, key, default in (("outputs", "dir", DEFAULT_OUTPUTS), ("run", "notebooks", DEFAULT_NOTEBOOKS)):
        values = raw.get(section)
        if values is None or (isinstance(values, dict) and key not in values):
            raw[section] = {**(values or {}), key: str((base / default).resolve())}


def apply_override(raw: dict[str, Any], item: str, where: str) -> None:
    """Apply one ``a.b.c=value`` override; the value is parsed as YAML."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParamsError(f"{where}: override {item!r}: write overrides as key.path=value")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, ValueError):  # ValueError: an impossible date such as 2011-13-01
        value = text
    if key in PATH_KEYS and isinstance(value, str):
        value = str(Path(value).expanduser().resolve())
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            done = ".".join(parts[: i + 1])
            raise ParamsError(f"{where}: override {item!r}: {done} is not a section")
        node = child
    node[parts[-1]] = value
