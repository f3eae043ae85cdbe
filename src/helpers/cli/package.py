"""``driftgate package``: a self-contained deployable folder for the scoring service.

    driftgate package --out DIR [--model models:/name@champion] [--force] [--wheel FILE] [--params FILE]

The folder holds the model from the registry, a wheel of driftgate, pinned requirements, the
service's params, an entrypoint, a Dockerfile and a compose.yaml (see
:mod:`helpers.serving.package`); its README says how to build and run the image.
"""

from __future__ import annotations

import argparse

from helpers.core.config import load_params
from helpers.serving.package import package_service


def run(args: argparse.Namespace) -> int:
    """Write the folder; print one line saying what it holds."""
    params = load_params(args.params, args.overrides)
    result = package_service(params, out=args.out, model_uri=args.model, force=args.force, wheel=args.wheel)
    print(result.summary())
    for note in result.notes:
        print(f"driftgate package: note: {note}")
    return 0
