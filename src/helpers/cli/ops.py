"""Release operations for the ``driftgate`` command (arguments in :mod:`helpers.cli.commands`).

    driftgate approve VERSION [--by NAME] [--note TEXT]   release a version waiting for approval
    driftgate rollback [--reason TEXT] [--by NAME]       champion back to previous, recording why
    driftgate status [--json]                            champion, challenger and previous

Each takes ``--params FILE`` (default params/default.yaml) and ``-p KEY=VALUE`` overrides,
which select the tracking store and the model name.
"""

from __future__ import annotations

import argparse
import json

from helpers.core.config import Params, load_params
from helpers.registry.approval import approve
from helpers.registry.gates import PROMOTED
from helpers.registry.rollback import rollback
from helpers.registry.status import status, status_text


def _params(args: argparse.Namespace) -> Params:
    return load_params(args.params, args.overrides)


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve and release a waiting version; exit 1 unless it was promoted."""
    outcome = approve(_params(args), args.version, by=args.by, note=args.note)
    print(f"v{outcome.version} {outcome.decision}: {outcome.reason}")
    print(f"champion: v{outcome.champion_after or '-'}; release page: {outcome.page}")
    return 0 if outcome.decision == PROMOTED else 1


def cmd_rollback(args: argparse.Namespace) -> int:
    """Move champion back to the previous version; print what moved."""
    done = rollback(_params(args), reason=args.reason, by=args.by)
    previous = f"v{done.previous}" if done.previous else "none"
    print(f"rolled back {done.model}: champion v{done.from_version} -> v{done.to_version} "
          f"(previous now {previous}); reason: {done.reason}")
    print(f"page: {done.page}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print champion, challenger and previous (``--json``: as JSON)."""
    info = status(_params(args))
    print(json.dumps(info, indent=2) if args.json else status_text(info))
    return 0
