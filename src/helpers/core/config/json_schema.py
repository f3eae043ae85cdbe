"""A JSON Schema of a params file, generated from the declarations in :mod:`.schema`.

Editors that read ``# yaml-language-server: $schema=schema.json`` (the first line of each
``params/*.yaml``) then complete keys and flag wrong types and out-of-range values as you type;
``params/schema.json`` holds :func:`params_json_schema_text` and a test keeps it current.

Example
-------
>>> params_json_schema()["properties"]["serve"]["properties"]["port"]["maximum"]
65535
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen

from helpers.core.config.schema import (
    KNOWN_METRICS,
    IsoDate,
    Matches,
    Params,
    TaskMetric,
    is_optional,
    section_fields,
    split_annotated,
    without_none,
)

_BOUND_KEYWORDS = {Ge: ("ge", "minimum"), Gt: ("gt", "exclusiveMinimum"), Le: ("le", "maximum"),
                   Lt: ("lt", "exclusiveMaximum"), MinLen: ("min_length", "minItems"),
                   MaxLen: ("max_length", "maxItems")}
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def params_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of a params file, for editors and ``check-jsonschema``."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Driftgate params"}
    return {**schema, **_section_schema(Params)}


def _section_schema(cls: type) -> dict[str, Any]:
    notes = _field_comments(cls)
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    properties = {}
    for name, tp in section_fields(cls).items():
        prop = _type_schema(tp)
        if name in notes:
            prop = {"description": notes[name], **prop}
        default = _default_of(defaults[name])
        if default not in (None, "") and not dataclasses.is_dataclass(without_none(tp)):
            prop["default"] = default
        properties[name] = prop
    doc = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
    return {"description": doc, "type": ["object", "null"], "properties": properties, "additionalProperties": False}


def _type_schema(tp: Any) -> dict[str, Any]:
    base, constraints = split_annotated(tp)
    if base is not tp:
        return {**_type_schema(base), **_constraint_schema(constraints)}
    if is_optional(tp):
        return {"anyOf": [_type_schema(without_none(tp)), {"type": "null"}]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _section_schema(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        keys = _type_schema(args[0])
        out: dict[str, Any] = {"type": ["object", "null"], "additionalProperties": _type_schema(args[1])}
        return {**out, "propertyNames": keys} if keys != {"type": "string"} else out
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    return {}


def _constraint_schema(constraints: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in constraints:
        if type(item) in _BOUND_KEYWORDS:
            attr, keyword = _BOUND_KEYWORDS[type(item)]
            out[keyword] = getattr(item, attr)
        elif isinstance(item, Matches | IsoDate):
            out["pattern"] = item.pattern
        elif isinstance(item, TaskMetric):
            out["enum"] = sorted({m for metrics in KNOWN_METRICS.values() for m in metrics})
    return out


def _default_of(spec: dataclasses.Field[Any]) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


def _field_comments(cls: type) -> dict[str, str]:
    """Trailing ``# comments`` of the section's keys in this source file: their descriptions."""
    found = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"^    (\w+): [^#]*#\s*(.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def params_json_schema_text() -> str:
    """:func:`params_json_schema` as the text of ``params/schema.json`` (2-space indent, final newline)."""
    return json.dumps(params_json_schema(), indent=2) + "\n"

