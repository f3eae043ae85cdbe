"""The ``driftgate serve`` and ``driftgate replay`` commands.

    driftgate serve  [--params FILE] [-p key=value] [--model URI] [--host H] [--port N] [--no-capture]
    driftgate replay --data FILE --from DATE --to DATE [--rate N] [--url URL] [--ca-file PEM] [--params FILE]
                     [--no-feedback | --feedback-only]

``serve`` runs the scoring service until SIGTERM or Ctrl-C, then stops gracefully: requests in
flight finish and every captured row is written. ``replay`` sends the rows of a time window as
traffic and their labels as feedback, for demos and tests; ``--no-feedback`` sends the traffic
alone and ``--feedback-only`` its labels later, as ground truth arrives in production.

:func:`register` adds both to a parser (arguments in :mod:`helpers.cli.commands`); ``python -m helpers.cli.serve`` runs
them without the rest of the CLI.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from helpers.cli.commands import add_serving
from helpers.cli.common import dispatch
from helpers.core.config import load_params
from helpers.core.errors import ParamsError
from helpers.core.paths import capture_dir_for
from helpers.modeling.data import window_rows
from helpers.serving.configure import service_from_params
from helpers.serving.late_feedback import replay_request_ids, send_late_feedback
from helpers.serving.replay import replay


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` and ``replay`` subcommands; each sets ``func`` to ``(args) -> int``."""
    add_serving(subparsers)


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM/SIGINT, then stop gracefully; exit code 0."""
    params = load_params(args.params, args.overrides)
    _quiet_mlflow()
    service = service_from_params(
        params,
        model_uri=args.model,
        host=args.host,
        port=args.port,
        capture=False if args.no_capture else None,
    )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.start()
        model = service.model
        capture = f"capturing to {service.capture.capture_dir}" if service.capture else "capture off"
        auth = "bearer token required" if service.token else f"no token (set {params.serve.token_env} to require one)"
        print(f"driftgate serve: {model.uri} (version {model.version}) at {service.url}; {capture}; {auth}", flush=True)
        while not stop.wait(0.5):
            pass
        print("driftgate serve: stopping (finishing requests in flight, writing captures)", flush=True)
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    health = service.health()
    cap = health["capture"]
    if cap.get("enabled"):
        print(
            f"driftgate serve: stopped; {cap['captured_rows']} rows captured, {cap['dropped_rows']} dropped", flush=True
        )
    return 0


def _quiet_mlflow() -> None:
    import logging
    import warnings

    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


# --------------------------------------------------------------------------- replay


def cmd_replay(args: argparse.Namespace) -> int:
    """Send a window's rows as traffic and their labels as feedback; print a summary."""
    params = load_params(args.params, args.overrides)
    rows = window_rows(params, args.data or params.data.path, args.start, args.end)
    scheme = "https" if params.serve.tls_cert else "http"
    url = args.url or f"{scheme}://{params.serve.host}:{params.serve.port}"
    token = os.environ.get(params.serve.token_env) if params.serve.token_env else None
    if args.feedback_only:
        return _late_feedback(args, params, rows, url, token)
    labels = None if args.no_feedback else rows[params.data.target]
    ids = replay_request_ids(rows[params.data.features], args.batch)  # --feedback-only finds them later
    summary = replay(url, rows[params.data.features], labels, rate=args.rate, batch_size=args.batch, token=token,
                     request_ids=ids, ca_file=args.ca_file)
    print(
        f"driftgate replay: {summary['requests']} requests ({summary['rows']} rows) from {args.start} to {args.end} "
        f"-> {url} in {summary['seconds']} s; {summary['feedback_rows']} labels sent; {summary['errors']} errors",
        flush=True,
    )
    if summary["errors"]:
        print(f"driftgate replay: first error: {summary['first_error']}", file=sys.stderr)
        return 1
    return 0


def _late_feedback(args: argparse.Namespace, params: Any, rows: Any, url: str, token: str | None) -> int:
    """``replay --feedback-only``: the labels of the window's captured requests, no traffic."""
    if args.no_feedback:
        raise ParamsError("driftgate replay: --no-feedback and --feedback-only exclude each other")
    summary = send_late_feedback(url, capture_dir_for(params), params.mlflow.model_name, rows[params.data.features],
                                 rows[params.data.target], batch_size=args.batch, token=token,
                                 ca_file=args.ca_file)
    print(f"driftgate replay: {summary['feedback_rows']} labels sent late for {summary['matched_rows']} captured rows "
          f"from {args.start} to {args.end} -> {url} in {summary['seconds']} s; "
          f"{summary['unmatched_rows']} rows not found in the capture store", flush=True)
    return 0


# --------------------------------------------------------------------------- standalone


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.cli.serve serve|replay ...`` without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="driftgate")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
