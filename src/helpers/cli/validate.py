"""``driftgate validate``: check the params, the data against them, the model's settings and the
step notebooks, and run nothing."""

from __future__ import annotations

import argparse

from helpers.core.config import load_params
from helpers.modeling.data import check_params_against_data
from helpers.modeling.estimators import check_model_params
from helpers.pipeline.runner import notebook_dir


def validate(args: argparse.Namespace) -> int:
    """Print one line saying the params are valid (a user mistake raises its one-line error)."""
    params = load_params(args.params, args.overrides)
    frame = check_params_against_data(params)
    check_model_params(params)
    notebook_dir(params)
    print(f"{args.params}: valid ({len(frame)} rows, {len(params.data.features)} features)")
    return 0
