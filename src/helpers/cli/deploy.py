"""``driftgate deploy``: release the newest gated challenger, for a deployment job.

A CI pipeline trains with ``gates.require_approval: true``, so a version that passes its gates
waits as ``challenger``; the deployment job (behind a protected environment, where a person
approves) then runs ``driftgate deploy --if-new-version``. With nothing newer than the champion
it does nothing and exits 0, so it can also run on a timer.
"""

from __future__ import annotations

import argparse

from helpers.core.config import load_params
from helpers.registry.approval import deploy


def run(args: argparse.Namespace) -> int:
    """Print what was deployed; a blocked challenger fails the command unless --if-new-version."""
    result = deploy(load_params(args.params, args.overrides), if_new_version=args.if_new_version)
    print(f"deploy: {result.action}: {result.message}")
    return 1 if result.action == "blocked" and not args.if_new_version else 0
