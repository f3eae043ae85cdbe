"""The service the params describe: the model URI and the built service (``serve:`` values are
checked once, by the params schema)."""

from __future__ import annotations

import os

from helpers.core.config import Params
from helpers.core.errors import ParamsError
from helpers.core.paths import capture_dir_for
from helpers.serving.capture_store import CaptureWriter
from helpers.serving.server import is_loopback
from helpers.serving.service import ScoringService


def model_uri_for(params: Params) -> str:
    """``serve.model_uri``, else ``models:/<mlflow.model_name>@champion``."""
    return params.serve.model_uri or f"models:/{params.mlflow.model_name}@champion"


def check_public_binding(params: Params, host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token unless the params allow it, in one line.

    Raises
    ------
    ParamsError
        Naming ``serve.host``, ``serve.token_env`` and ``serve.allow_public_without_token``.
    """
    serve = params.serve
    if serve.tls_key and not serve.tls_cert:
        raise ParamsError(f"{params.source or 'params'}: serve.tls_key is set without serve.tls_cert; set both")
    if token or serve.allow_public_without_token or is_loopback(host):
        return
    raise ParamsError(
        f"{params.source or 'params'}: serve.host {host!r} listens beyond loopback without a bearer token; "
        f"set the variable named by serve.token_env ({serve.token_env}) or serve.allow_public_without_token: true"
    )


def service_from_params(
    params: Params,
    *,
    model_uri: str | None = None,
    host: str | None = None,
    port: int | None = None,
    capture: bool | None = None,
) -> ScoringService:
    """Build (not start) the service the params describe; the token comes from ``serve.token_env``."""
    serve = params.serve
    token = os.environ.get(serve.token_env) if serve.token_env else None
    host = host or serve.host
    check_public_binding(params, host, token)
    writer = None
    if serve.capture if capture is None else capture:
        writer = CaptureWriter(
            capture_dir_for(params),
            fmt=serve.capture_format,
            flush_interval=serve.flush_interval,
            max_pending_rows=serve.max_pending_rows,
            mode=serve.capture_mode,
        )
    return ScoringService(
        model_uri or model_uri_for(params),
        tracking_uri=params.tracking_uri,
        host=host,
        port=serve.port if port is None else port,
        capture=writer,
        token=token,
        max_body_bytes=serve.max_body_bytes,
        alias_poll_interval=serve.alias_poll_interval,
        request_timeout=serve.request_timeout,
        keep_alive_timeout=serve.keep_alive_timeout,
        shutdown_timeout=serve.shutdown_timeout,
        max_connections=serve.max_connections,
        tls_cert=serve.tls_cert,
        tls_key=serve.tls_key,
        allow_public_without_token=serve.allow_public_without_token,
        max_batch_rows=serve.max_batch_rows,
        max_batch_delay=serve.max_batch_delay,
        output=serve.output,
        shadow=serve.shadow,
        shadow_queue=serve.shadow_queue,
        canary=serve.canary.alias if serve.canary else None,
        canary_share=serve.canary.share if serve.canary else 0.1,
        sticky_header=serve.canary.sticky_header if serve.canary else "X-Session-Id",
    )
