"""``driftgate package``: a self-contained deployable folder for the scoring service.

    driftgate package --out DIR [--model models:/name@champion] [--force] [--wheel FILE] [--params FILE]

The folder holds the model from the registry, a wheel of driftgate, pinned requirements, the
service's params, an entrypoint, a Dockerfile and a compose.yaml (see
:mod:`helpers.serving.package`); its README says how to build and run the image.
"""

from __future__ import annotations

import argparse

from helpers.cli.common import add_params_args
from helpers.core.config import load_params
from helpers.serving.package import package_service


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``package`` subcommand."""
    parser = subparsers.add_parser("package", help="write a deployable folder: model, pinned requirements, Dockerfile")
    add_params_args(parser, example="mlflow.model_name=x")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write (must not exist, or be empty)")
    parser.add_argument("--model", help="model URI (default: models:/<mlflow.model_name>@champion)")
    parser.add_argument("--force", action="store_true", help="replace an earlier package in DIR")
    parser.add_argument("--wheel", metavar="FILE", help="ship this driftgate wheel instead of building one")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the folder; print one line saying what it holds."""
    params = load_params(args.params, args.overrides)
    result = package_service(params, out=args.out, model_uri=args.model, force=args.force, wheel=args.wheel)
    print(result.summary())
    for note in result.notes:
        print(f"driftgate package: note: {note}")
    return 0
