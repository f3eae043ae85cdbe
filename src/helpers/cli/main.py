"""The ``driftgate`` command.

    driftgate run [--params FILE] [-p key=value ...]   run the four notebooks into a new run folder (cli.run)
    driftgate validate [--params FILE] [-p ...]         check params, data and notebooks, run nothing (cli.validate)
    driftgate index                                     rewrite outputs/index.html (cli.run)
    driftgate drift --baseline A --target B ...         drift report for any pair of tables (cli.drift)
    driftgate serve / replay                            scoring service and traffic replay (cli.serve)
    driftgate monitor                                   captured traffic against the baseline (cli.monitor)
    driftgate status / approve / rollback               the release state, by hand (cli.ops)
    driftgate deploy --if-new-version                   release a waiting challenger (cli.deploy)
    driftgate captures compact / recover                maintain the capture store (cli.captures)
    driftgate package --out DIR                         a deployable folder: model, image recipe (cli.package)

The parser (:mod:`helpers.cli.commands`) is light: a subcommand's module, and what it imports
(pandas, scikit-learn, MLflow...), is loaded only when that subcommand runs.

User mistakes print one line and exit 2 (bad params or data) or 1; no traceback. An internal
error prints one line naming the file that holds its traceback; ``driftgate --debug COMMAND``
(or ``--debug`` after the command) prints the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from helpers.cli.commands import add_commands
from helpers.cli.common import add_debug_arg, dispatch


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="driftgate", description="Notebook-first CI/CD for ML models.")
    add_debug_arg(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    for command in sub.choices.values():  # --debug also after the command; absent, the global value stays
        add_debug_arg(command, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse and dispatch (see :func:`dispatch`)."""
    return dispatch(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
