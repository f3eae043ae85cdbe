"""``driftgate deploy``: release the newest gated challenger, for a deployment job.

A CI pipeline trains with ``gates.require_approval: true``, so a version that passes its gates
waits as ``challenger``; the deployment job (behind a protected environment, where a person
approves) then runs ``driftgate deploy --if-new-version``. With nothing newer than the champion
it does nothing and exits 0, so it can also run on a timer.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from helpers.cli.common import add_params_args
from helpers.core.config import Params
from helpers.core.errors import RegistryError


@dataclass
class DeployResult:
    """What ``deploy`` did: ``released``, ``blocked``, or ``nothing`` to do, and why."""

    action: str
    message: str
    version: str | None = None
    outcome: Any | None = None


def newest_challenger(client: Any, name: str) -> tuple[Any | None, Any | None]:
    """The ``challenger`` and ``champion`` versions (either may be None)."""
    from helpers.registry import store as registry

    return (registry.version_with_alias(client, name, registry.CHALLENGER),
            registry.version_with_alias(client, name, registry.CHAMPION))


def deploy(params: Params, *, if_new_version: bool, by: str = "driftgate deploy") -> DeployResult:
    """Release the challenger when it is newer than the champion and waits for approval."""
    from helpers.registry import release
    from helpers.registry import store as registry

    client = registry.connect(params)
    name = params.mlflow.model_name
    challenger, champion = newest_challenger(client, name)
    newer = challenger is not None and (champion is None or int(challenger.version) > int(champion.version))
    if not newer:
        current = "no champion yet" if champion is None else f"champion v{champion.version}"
        message = f"{name}: no challenger newer than the champion ({current}); nothing to deploy"
        if if_new_version:
            return DeployResult("nothing", message)
        raise RegistryError(message + " (use --if-new-version to make this a no-op)")
    version = str(challenger.version)
    decision = challenger.tags.get(release.DECISION)
    if decision is None:
        raise RegistryError(f"{name} v{version}: never went through the release gates; run driftgate run first")
    if decision == release.BLOCKED:
        reason = challenger.tags.get(release.REASON, "")
        return DeployResult("blocked", f"{name} v{version} was blocked by its gates: {reason}", version)
    if decision != release.WAITING:
        return DeployResult("nothing", f"{name} v{version} is already {decision}; nothing to deploy", version)
    outcome = release.approve(params, version, by=by, note="approved through the deployment job")
    action = "released" if outcome.decision == release.PROMOTED else outcome.decision
    return DeployResult(action, f"{name} v{version}: {outcome.decision}: {outcome.reason}", version, outcome)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``deploy`` subcommand."""
    parser = subparsers.add_parser("deploy", help="release the newest challenger waiting for approval")
    add_params_args(parser, example="mlflow.model_name=x")
    parser.add_argument("--if-new-version", action="store_true",
                        help="do nothing (exit 0) unless a challenger newer than the champion exists")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print what was deployed; a blocked challenger fails the command unless --if-new-version."""
    from helpers.core.config import load_params

    result = deploy(load_params(args.params, args.overrides), if_new_version=args.if_new_version)
    print(f"deploy: {result.action}: {result.message}")
    return 1 if result.action == "blocked" and not args.if_new_version else 0
