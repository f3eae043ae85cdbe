"""What every subcommand shares: the params options and the error dispatcher."""

from __future__ import annotations

import argparse
import os
import sys

from helpers.core.errors import DriftgateError

DEFAULT_PARAMS = "params/default.yaml"


def add_params_args(parser: argparse.ArgumentParser, example: str = "split.test_size=0.3") -> None:
    """The ``--params FILE`` and ``-p KEY=VALUE`` options every subcommand shares."""
    parser.add_argument("--params", default=DEFAULT_PARAMS, help=f"params YAML file (default {DEFAULT_PARAMS})")
    parser.add_argument("-p", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one parameter, e.g. -p {example} (repeatable)")


def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed subcommand, turning user errors into one line and an exit code."""
    try:
        return int(args.func(args) or 0)
    except DriftgateError as exc:
        print(f"driftgate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("driftgate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
