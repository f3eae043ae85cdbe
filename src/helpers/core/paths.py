"""Where things live on disk, derived from the params: shared by serving, monitoring and registry."""

from __future__ import annotations

from pathlib import Path

from helpers.core.catalogue import CAPTURES_DIR
from helpers.core.config import Params


def capture_dir_for(params: Params) -> Path:
    """The capture store of the served model.

    ``serve.capture_dir`` (relative to the params file's folder), else ``<outputs>/captures``.
    """
    if not params.serve.capture_dir:
        return params.outputs_dir / CAPTURES_DIR
    path = Path(params.serve.capture_dir).expanduser()
    if path.is_absolute():
        return path
    base = Path(params.source).resolve().parent if params.source else Path.cwd()
    return (base / path).resolve()
