"""Release operations for the ``driftgate`` command (plugged in by :mod:`helpers.cli`).

    driftgate approve VERSION [--by NAME] [--note TEXT]   release a version waiting for approval
    driftgate rollback [--reason TEXT] [--by NAME]       champion back to previous, recording why
    driftgate status [--json]                            champion, challenger and previous

Each takes ``--params FILE`` (default params/default.yaml) and ``-p KEY=VALUE`` overrides,
which select the tracking store and the model name.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from helpers.cli.common import add_params_args
from helpers.core.config import Params, load_params
from helpers.registry.approval import approve
from helpers.registry.gates import PROMOTED
from helpers.registry.rollback import rollback
from helpers.registry.status import status, status_text


def register(subparsers: Any) -> None:
    """Add ``approve``, ``rollback`` and ``status`` to the ``driftgate`` subcommands."""
    approve = subparsers.add_parser("approve", help="approve a version waiting for approval and release it")
    approve.add_argument("version", help="the model version number, e.g. 7 or v7")
    approve.add_argument("--by", help="who approves (default: the current user)")
    approve.add_argument("--note", default="", help="why, recorded with the approval")
    _add_params_args(approve)
    approve.set_defaults(func=_cmd_approve)

    rollback = subparsers.add_parser("rollback", help="move champion back to the previous version")
    rollback.add_argument("--reason", default="", help="why, recorded as a tag on both versions")
    rollback.add_argument("--by", help="who rolls back (default: the current user)")
    _add_params_args(rollback)
    rollback.set_defaults(func=_cmd_rollback)

    status = subparsers.add_parser("status", help="show champion, challenger and previous with lineage")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_params_args(status)
    status.set_defaults(func=_cmd_status)


def _add_params_args(parser: argparse.ArgumentParser) -> None:
    add_params_args(parser, example="mlflow.model_name=x")


def _params(args: argparse.Namespace) -> Params:
    return load_params(args.params, args.overrides)


def _cmd_approve(args: argparse.Namespace) -> int:
    outcome = approve(_params(args), args.version, by=args.by, note=args.note)
    print(f"v{outcome.version} {outcome.decision}: {outcome.reason}")
    print(f"champion: v{outcome.champion_after or '-'}; release page: {outcome.page}")
    return 0 if outcome.decision == PROMOTED else 1


def _cmd_rollback(args: argparse.Namespace) -> int:
    done = rollback(_params(args), reason=args.reason, by=args.by)
    previous = f"v{done.previous}" if done.previous else "none"
    print(f"rolled back {done.model}: champion v{done.from_version} -> v{done.to_version} "
          f"(previous now {previous}); reason: {done.reason}")
    print(f"page: {done.page}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    info = status(_params(args))
    print(json.dumps(info, indent=2) if args.json else status_text(info))
    return 0
