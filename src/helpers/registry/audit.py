"""Who did a release action, and where its page goes."""

from __future__ import annotations

import getpass
from pathlib import Path

from helpers.core.catalogue import RELEASES_DIR
from helpers.core.config import Params


def current_user() -> str:
    """The login name of whoever runs the command, or ``unknown``."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def releases_dir(params: Params) -> Path:
    """Where approval and rollback pages go (run folders are never rewritten)."""
    return params.outputs_dir / RELEASES_DIR
