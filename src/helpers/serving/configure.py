"""The service the params describe: checks on ``serve:`` values, the model URI, the built service."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from helpers.core.errors import ParamsError
from helpers.core.paths import capture_dir_for
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.service import ScoringService

if TYPE_CHECKING:
    from helpers.core.config import Params


def check_serve_params(params: Params) -> None:
    """Checks on ``serve:`` values that their types alone cannot express."""
    serve = params.serve
    where = params.source or "params"
    if not 0 <= serve.port <= 65535:
        raise ParamsError(f"{where}: serve.port: must lie between 0 and 65535, got {serve.port}")
    for key in ("flush_interval",):
        if getattr(serve, key) <= 0:
            raise ParamsError(f"{where}: serve.{key}: must be positive, got {getattr(serve, key)}")
    for key in ("alias_poll_interval",):
        if getattr(serve, key) < 0:
            raise ParamsError(f"{where}: serve.{key}: must be 0 (off) or positive, got {getattr(serve, key)}")
    if not 0 <= serve.max_batch_delay <= 1:
        raise ParamsError(f"{where}: serve.max_batch_delay: seconds between 0 and 1, got {serve.max_batch_delay}")
    if serve.max_batch_rows < 0:
        raise ParamsError(f"{where}: serve.max_batch_rows: must be 0 (off) or positive, got {serve.max_batch_rows}")
    for key in ("max_body_bytes", "max_pending_rows"):
        if getattr(serve, key) < 1:
            raise ParamsError(f"{where}: serve.{key}: must be at least 1, got {getattr(serve, key)}")
    if serve.request_timeout <= 0:
        raise ParamsError(f"{where}: serve.request_timeout: must be positive, got {serve.request_timeout}")


def model_uri_for(params: Params) -> str:
    """``serve.model_uri``, else ``models:/<mlflow.model_name>@champion``."""
    return params.serve.model_uri or f"models:/{params.mlflow.model_name}@champion"



def service_from_params(
    params: Params,
    *,
    model_uri: str | None = None,
    host: str | None = None,
    port: int | None = None,
    capture: bool | None = None,
) -> ScoringService:
    """Build (not start) the service the params describe; the token comes from ``serve.token_env``."""
    check_serve_params(params)
    serve = params.serve
    token = os.environ.get(serve.token_env) if serve.token_env else None
    writer = None
    if serve.capture if capture is None else capture:
        writer = CaptureWriter(
            capture_dir_for(params),
            fmt=serve.capture_format,
            flush_interval=serve.flush_interval,
            max_pending_rows=serve.max_pending_rows,
        )
    return ScoringService(
        model_uri or model_uri_for(params),
        tracking_uri=params.tracking_uri,
        host=host or serve.host,
        port=serve.port if port is None else port,
        capture=writer,
        token=token,
        max_body_bytes=serve.max_body_bytes,
        alias_poll_interval=serve.alias_poll_interval,
        request_timeout=serve.request_timeout,
        max_batch_rows=serve.max_batch_rows,
        max_batch_delay=serve.max_batch_delay,
    )
