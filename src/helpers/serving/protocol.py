"""MLflow's scoring protocol: request bodies to frames, predictions and frames to JSON, feedback.

``/invocations`` takes JSON with exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (plus an optional ``params``), or ``text/csv`` with a header row,
and answers ``{"predictions": [...]}``. ``/feedback`` takes ``{"request_ids": [...],
"labels": [...]}`` (optionally ``"rows"``). Nothing here knows the transport: a malformed body
raises :class:`~helpers.serving.schema.InputError` with the status to answer with.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from helpers.serving.capture_records import FeedbackRecord
from helpers.serving.formatting import first_line
from helpers.serving.outputs import OUTPUT_MODES, answer
from helpers.serving.schema import InputError, InputSchema

FORMATS: tuple[str, ...] = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def parse_request(body: bytes, content_type: str | None, schema: InputSchema | None) -> pd.DataFrame:
    """Turn an ``/invocations`` body into a data frame, or raise :class:`InputError`.

    Parameters
    ----------
    body : bytes
        The request body.
    content_type : str or None
        The ``Content-Type`` header: ``application/json`` or ``text/csv`` (UTF-8 only).
    schema : InputSchema or None
        Used for column order of row lists and for reading string columns from CSV.

    Examples
    --------
    >>> from helpers.serving.schema import ColumnSpec
    >>> schema = InputSchema((ColumnSpec("a", "long"), ColumnSpec("b", "string")))
    >>> parse_request(b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"]]}}',
    ...               "application/json", schema).to_dict("records")
    [{'a': 1, 'b': 'x'}]
    """
    return parse_invocation(body, content_type, schema)[0]


def parse_invocation(
    body: bytes, content_type: str | None, schema: InputSchema | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`parse_request`, and the body's ``params`` (MLflow's inference parameters, such as
    ``{"output": "probabilities"}``; empty for CSV or when none are given).

    Examples
    --------
    >>> parse_invocation(b'{"inputs": {"a": [1]}, "params": {"output": "label"}}', "application/json", None)[1]
    {'output': 'label'}
    """
    media = media_type(content_type)
    request_params: dict[str, Any] = {}
    if not body:
        raise InputError("the request body is empty; send JSON or CSV rows to score")
    if media == CSV_TYPE:
        frame = _frame_from_csv(body, schema)
    else:
        document = decode_json(body)
        frame = frame_from_json(document, schema)
        request_params = _params_of(document)
    if frame.columns.duplicated().any():
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InputError(f"duplicate column(s): {', '.join(dupes)}")
    if len(frame) == 0:
        raise InputError("no rows to score")
    return frame, request_params


def _params_of(document: dict[str, Any]) -> dict[str, Any]:
    given = document.get("params")
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InputError(f"params must be an object of name: value; got {_kind(given)}")
    return given


def request_output(request_params: dict[str, Any], default: str) -> str:
    """What a classifier answers for one request: its ``params.output`` when given, else ``default``.

    Examples
    --------
    >>> request_output({"output": "label"}, "both"), request_output({}, "both")
    ('label', 'both')
    """
    output = request_params.get("output")
    if output is None:
        return default
    if output not in OUTPUT_MODES:
        raise InputError(f"params.output must be one of {', '.join(OUTPUT_MODES)}; got {output!r}")
    return str(output)


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, checked: JSON or CSV, in UTF-8; else 415."""
    if not content_type:
        raise InputError(f"missing Content-Type; use {JSON_TYPE} or {CSV_TYPE}", status=415)
    media, *params = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    if media not in (JSON_TYPE, CSV_TYPE):
        raise InputError(f"unsupported Content-Type {media!r}; use {JSON_TYPE} or {CSV_TYPE}", status=415)
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise InputError(f"unsupported charset {value.strip()!r}; send UTF-8", status=415)
    return media


def _frame_from_csv(body: bytes, schema: InputSchema | None) -> pd.DataFrame:
    strings = {c.name: str for c in schema.columns if c.type == "string"} if schema else {}
    try:
        return pd.read_csv(io.BytesIO(body), dtype=strings or None, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"the body is not valid CSV with a header row: {exc}") from None


def frame_from_json(document: Any, schema: InputSchema | None) -> pd.DataFrame:
    """Build a frame from a decoded JSON request in one of the four MLflow formats.

    Raises
    ------
    InputError
        When the document is not one of the formats or its shape is inconsistent.
    """
    if not isinstance(document, dict):
        raise InputError(f"the JSON body must be an object with one of {', '.join(FORMATS)}; got {_kind(document)}")
    keys = [k for k in document if k in FORMATS]
    others = sorted(str(k) for k in document if k not in FORMATS and k != "params")
    if len(keys) != 1 or others:
        found = ", ".join(repr(str(k)) for k in document) or "no keys"
        raise InputError(
            f"the JSON body must hold exactly one of {', '.join(FORMATS)} (and optionally params); found {found}"
        )
    key = keys[0]
    value = document[key]
    if key == "dataframe_split":
        return _from_split(value, schema)
    if key == "dataframe_records":
        return _from_records(value, key)
    if key == "inputs" and isinstance(value, dict):
        return _from_columns(value)
    return _from_list(value, schema, key)


def _from_split(value: Any, schema: InputSchema | None) -> pd.DataFrame:
    if not isinstance(value, dict):
        raise InputError(f"dataframe_split must be an object with 'columns' and 'data'; got {_kind(value)}")
    extra = sorted(set(value) - {"columns", "data", "index"})
    if "data" not in value or extra:
        raise InputError(f"dataframe_split needs 'data' and optionally 'columns' and 'index'; found {sorted(value)}")
    data = value["data"]
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise InputError("dataframe_split.data must be a list of rows, each a list of values")
    columns = value.get("columns")
    if columns is None:
        if schema is None:
            raise InputError("dataframe_split needs 'columns' (the model has no named signature)")
        columns = schema.names
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InputError("dataframe_split.columns must be a list of column names")
    _check_row_lengths(data, len(columns), "dataframe_split.data")
    return _build_frame(lambda: pd.DataFrame(data, columns=columns), "dataframe_split")


def _from_records(value: Any, key: str) -> pd.DataFrame:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise InputError(f"{key} must be a list of records (objects of column: value); got {_kind(value)}")
    return _build_frame(lambda: pd.DataFrame.from_records(value), key)


def _from_columns(value: dict[str, Any]) -> pd.DataFrame:
    lengths = {k: (len(v) if isinstance(v, list) else None) for k, v in value.items()}
    sized = {n for n in lengths.values() if n is not None}
    if not sized:  # all scalars: one row
        return _build_frame(lambda: pd.DataFrame({k: [v] for k, v in value.items()}), "inputs")
    if len(sized) > 1 or None in lengths.values():
        detail = ", ".join(f"{k}: {n if n is not None else 'scalar'}" for k, n in lengths.items())
        raise InputError(f"inputs columns must all be lists of the same length; got {detail}")
    return _build_frame(lambda: pd.DataFrame(value), "inputs")


def _from_list(value: Any, schema: InputSchema | None, key: str) -> pd.DataFrame:
    if not isinstance(value, list) or not value:
        raise InputError(f"{key} must be a non-empty list of records or rows; got {_kind(value)}")
    if all(isinstance(row, dict) for row in value):
        return _from_records(value, key)
    if schema is None:
        raise InputError(f"{key} as lists needs a model with a named signature; send records instead")
    if all(isinstance(row, list) for row in value):
        _check_row_lengths(value, len(schema.columns), key)
        return _build_frame(lambda: pd.DataFrame(value, columns=schema.names), key)
    if len(schema.columns) == 1 and not any(isinstance(v, list | dict) for v in value):
        return _build_frame(lambda: pd.DataFrame({schema.names[0]: value}), key)
    raise InputError(f"{key} must be a list of records or a list of rows (lists of {len(schema.columns)} values)")


def _check_row_lengths(rows: list[list[Any]], width: int, where: str) -> None:
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputError(f"{where}: row {i} has {len(row)} values, expected {width}")


def _build_frame(build: Callable[[], pd.DataFrame], where: str) -> pd.DataFrame:
    try:
        return build()
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise InputError(f"{where} is not a valid table: {first_line(exc)}") from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")



def request_id_or_new(given: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a safe token, else a fresh random id."""
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def encode_predictions(outputs: Any, output: str = "both") -> bytes:
    """The ``{"predictions": [...]}`` answer for a model's outputs; a classifier's as ``output``
    (``label``, ``probabilities`` or ``both``) says (see :func:`~helpers.serving.outputs.answer`).

    Raises
    ------
    TypeError, ValueError
        When the outputs cannot be written as JSON.

    Examples
    --------
    >>> encode_predictions(np.array([1.5, 2.0]))
    b'{"predictions": [1.5, 2.0]}'
    """
    return json.dumps({"predictions": _jsonable(answer(outputs, output))}).encode()


def _jsonable(outputs: Any) -> Any:
    if isinstance(outputs, pd.DataFrame):
        return outputs.to_dict(orient="records")
    if isinstance(outputs, pd.Series | np.ndarray):
        return outputs.tolist()
    return outputs


def feedback_from_body(body: bytes, content_type: str | None, model_name: str) -> FeedbackRecord:
    """Check a ``/feedback`` body (JSON only) and turn it into a :class:`FeedbackRecord`.

    Raises
    ------
    InputError
        415 for a media type other than JSON or CSV, 400 for a body that is not valid feedback.
    """
    media_type(content_type)
    return parse_feedback(decode_json(body), model_name)


def decode_json(body: bytes) -> Any:
    """The JSON document in ``body``; :class:`InputError` (400) for anything that is not JSON.

    Bad UTF-8, a syntax error and nesting too deep for the parser (a hostile body of 100,000
    opening brackets) are all the client's mistake. ``NaN`` and ``Infinity`` are read as floats,
    as :func:`encode_frame` (and pandas) write a missing value as ``NaN``.

    >>> decode_json(b'[' * 100_000)
    Traceback (most recent call last):
    ...
    helpers.serving.schema.InputError: the body is not valid JSON: nested too deeply
    """
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError("the body is not valid JSON: nested too deeply") from None


def parse_feedback(document: Any, model_name: str) -> FeedbackRecord:
    """Check a ``/feedback`` body and turn it into a :class:`FeedbackRecord`.

    The body is ``{"request_ids": [...], "labels": [...]}`` with an optional ``"rows"`` list
    (row within each request, default 0). A label that is a list gives one value per row of a
    multi-row request.

    Examples
    --------
    >>> parse_feedback({"request_ids": ["a", "b"], "labels": [3, [1, 2]]}, "m").rows
    [0, 0, 1]
    """
    if not isinstance(document, dict) or "request_ids" not in document or "labels" not in document:
        raise InputError('feedback must be a JSON object {"request_ids": [...], "labels": [...]} (optionally "rows")')
    extra = sorted(set(document) - {"request_ids", "labels", "rows"})
    if extra:
        raise InputError(f"feedback: unknown key(s) {', '.join(extra)}; use request_ids, labels, rows")
    ids, labels, rows = document["request_ids"], document["labels"], document.get("rows")
    if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels) or not ids:
        raise InputError("feedback: request_ids and labels must be non-empty lists of the same length")
    if rows is not None and (not isinstance(rows, list) or len(rows) != len(ids)):
        raise InputError("feedback: rows must be a list as long as request_ids")
    out_ids: list[str] = []
    out_rows: list[int] = []
    out_labels: list[Any] = []
    for i, (rid, label) in enumerate(zip(ids, labels, strict=True)):
        if not isinstance(rid, str) or not _REQUEST_ID.match(rid):
            raise InputError(f"feedback: request_ids[{i}] is not a request id: {rid!r}")
        values = label if isinstance(label, list) else [label]
        first = 0 if rows is None else rows[i]
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first < 2**63:
            raise InputError(f"feedback: rows[{i}] must be a row number >= 0, got {first!r}")
        for j, value in enumerate(values):
            if not (value is None or isinstance(value, int | float | str | bool)):
                raise InputError(f"feedback: labels[{i}] must be a number, string, boolean or null")
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise InputError(f"feedback: labels[{i}] is an integer beyond 64 bits: {value}")
            out_ids.append(rid)
            out_rows.append(first + j)
            out_labels.append(value)
    return FeedbackRecord(model_name=model_name, request_ids=out_ids, rows=out_rows, labels=out_labels)


def encode_frame(frame: pd.DataFrame) -> bytes:
    """``{"dataframe_split": ...}`` JSON for ``frame``, with exact float round-trips.

    Examples
    --------
    >>> encode_frame(pd.DataFrame({"a": [1], "b": ["x"]}))
    b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"]]}}'
    """
    split = frame.to_dict(orient="split", index=False)
    return json.dumps(
        {"dataframe_split": {"columns": [str(c) for c in split["columns"]], "data": split["data"]}}
    ).encode()
