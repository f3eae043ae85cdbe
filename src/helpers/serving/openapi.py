"""The OpenAPI 3 document of the scoring service's endpoints (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from helpers import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}
_ARRAY = {"type": "array"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "malformed body, wrong shape or wrong type",
        401: "missing or wrong bearer token",
        408: "the body did not arrive within serve.request_timeout",
        409: "feedback without capture",
        413: "body above serve.max_body_bytes",
        415: "Content-Type other than JSON or CSV in UTF-8",
        503: "shutting down, above serve.max_connections, or capture not durable",
    }
    return {str(s): _json(_ERROR, texts[s]) for s in statuses}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document: paths, request bodies, answers and the bearer scheme.

    >>> sorted(openapi_document()["paths"])
    ['/feedback', '/health', '/invocations', '/ping', '/version']
    """
    rows = {
        "type": "object",
        "description": "exactly one of dataframe_split, dataframe_records, instances or inputs; optionally params",
        "properties": {
            "dataframe_split": {"type": "object", "properties": {"columns": _ARRAY, "data": _ARRAY}},
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {"type": "array"},
            "inputs": {},
            "params": {"type": "object", "properties": {"output": {"enum": ["label", "probabilities", "both"]}}},
        },
    }
    feedback = {
        "type": "object",
        "required": ["request_ids", "labels"],
        "properties": {
            "request_ids": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "array"},
            "rows": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        },
    }
    secured = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "driftgate scoring service", "version": __version__},
        "paths": {
            "/invocations": {
                "post": {
                    "summary": "score rows (MLflow's scoring protocol)",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": rows}, "text/csv": {"schema": {"type": "string"}}},
                    },
                    "responses": {
                        "200": _json({"type": "object", "properties": {"predictions": _ARRAY}}, "predictions"),
                        **_errors(400, 401, 408, 413, 415, 503),
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "ground truth for earlier requests",
                    "security": secured,
                    "requestBody": {"required": True, "content": {"application/json": {"schema": feedback}}},
                    "responses": {
                        "200": _json({"type": "object", "properties": {"accepted": {"type": "integer"}}}, "accepted"),
                        **_errors(400, 401, 409, 413, 415, 503),
                    },
                }
            },
            "/ping": {"get": {"summary": "liveness", "security": [], "responses": {"200": {"description": "alive"}}}},
            "/health": {
                "get": {"summary": "counters", "security": secured,
                        "responses": {"200": _json({"type": "object"}, "health"), **_errors(401)}}
            },
            "/version": {
                "get": {"summary": "model and versions", "security": secured,
                        "responses": {"200": _json({"type": "object"}, "versions"), **_errors(401)}}
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error_code", "message"],
                    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
    }
