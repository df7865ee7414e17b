"""Strict request validation against the Workflows OpenAPI spec (plus the NQL execute body).

Stricter than the spec on purpose, so that whatever the simulator accepts the real API accepts
too: unknown body fields are rejected, regexes must match the whole value (a trailing newline
does not slip through), device/user entries need at least one identifier, and an execute
request needs at least one non-empty target list.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "nexthink-workflows-openapi.json"
MAX_ERRORS = 20

NQL_EXECUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["queryId"],
    "properties": {
        "queryId": {"type": "string", "pattern": "^#[a-z0-9_]{2,255}$"},
        "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}
NQL_PATHS = ("/api/v1/nql/execute", "/api/v2/nql/execute")
_TARGET_SCHEMAS = {"ExecutionRequest", "ExternalIdsExecutionRequest"}
_AUTH_HEADER: dict[str, Any] = {"name": "Authorization", "in": "header", "required": True,
                                "schema": {"type": "string"}}


def _whole_match(pattern: str) -> re.Pattern[str]:
    """Compile an ECMA-style pattern so that an unescaped ``$`` means end of string only."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append(r"\Z" if ch == "$" and not in_class else ch)
        i += 1
    return re.compile("".join(out))


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return _whole_match(pattern)


def _strict_pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


_StrictValidator = validators.extend(Draft202012Validator, {"pattern": _strict_pattern})


@functools.lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    """The Workflows OpenAPI document, parsed once."""
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _tighten(node: Any) -> None:
    if isinstance(node, dict):
        if "properties" in node and node.get("type", "object") == "object":
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _tighten(value)
    elif isinstance(node, list):
        for value in node:
            _tighten(value)


@functools.lru_cache(maxsize=1)
def strict_components() -> dict[str, Any]:
    """The spec's component schemas with the simulator's extra strictness applied."""
    schemas = copy.deepcopy(load_spec()["components"]["schemas"])
    _tighten(schemas)
    for name in ("DeviceData", "UserData"):
        schemas[name]["minProperties"] = 1
    return schemas


@functools.lru_cache(maxsize=16)
def _validator(schema_name: str) -> Any:
    if schema_name == "NqlExecuteRequest":
        return _StrictValidator(NQL_EXECUTE_SCHEMA)
    root = {"$ref": f"#/components/schemas/{schema_name}",
            "components": {"schemas": strict_components()}}
    return _StrictValidator(root)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(error: ValidationError) -> str:
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "body"


def _message(error: ValidationError) -> str:
    if error.validator == "maxItems":
        return f"{len(error.instance)} items, at most {error.validator_value} allowed"
    if error.validator == "minProperties":
        return "give at least one identifier"
    return error.message if len(error.message) <= 300 else error.message[:297] + "..."


def validate_body(schema_name: str, body: Any) -> list[str]:
    """Errors of a JSON body against a component schema (or "NqlExecuteRequest"); [] if valid."""
    errors = [f"{_where(e)}: {_message(e)}" for e in _validator(schema_name).iter_errors(body)]
    if schema_name in _TARGET_SCHEMAS and isinstance(body, dict):
        devices, users = body.get("devices"), body.get("users")
        if isinstance(devices, list) and isinstance(users, list) and not devices and not users:
            errors.append("body: at least one of 'devices' or 'users' must be non-empty")
    if len(errors) > MAX_ERRORS:
        errors = [*errors[:MAX_ERRORS], f"... and {len(errors) - MAX_ERRORS} more errors"]
    return errors


@dataclass(frozen=True)
class Operation:
    """One API operation: how to recognise its path and what it accepts."""

    method: str
    template: str
    regex: re.Pattern[str]
    parameters: tuple[dict[str, Any], ...]
    body_schema: str | None
    body_required: bool


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return strict_components()[ref.rsplit("/", 1)[1]] if ref else schema


@functools.lru_cache(maxsize=1)
def operations() -> tuple[Operation, ...]:
    """Every operation of the spec, plus the NQL execute endpoints."""
    ops: list[Operation] = []
    for template, methods in load_spec()["paths"].items():
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
        for method, op in methods.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref")
            parameters = list(op.get("parameters", []))
            if not any(p["name"] == "Authorization" for p in parameters):
                # The spec's global security needs a bearer token even where the operation
                # does not list the header.
                parameters.append(_AUTH_HEADER)
            ops.append(Operation(
                method.upper(), template, regex, tuple(parameters),
                ref.rsplit("/", 1)[1] if ref else None,
                bool(op.get("requestBody", {}).get("required")),
            ))
    for path in NQL_PATHS:
        ops.append(Operation("POST", path, re.compile(f"^{path}$"), (_AUTH_HEADER,),
                             "NqlExecuteRequest", True))
    return tuple(ops)


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """The operation this request targets and its path parameters, or None."""
    for op in operations():
        match = op.regex.match(path)
        if match and op.method == method.upper():
            return op, match.groupdict()
    return None


def _check_value(where: str, raw: str, schema: dict[str, Any]) -> list[str]:
    schema = _resolve(schema)
    if schema.get("type") == "boolean":
        return [] if raw in ("true", "false") else [f"{where}: {raw!r} is not 'true' or 'false'"]
    if "enum" in schema and raw not in schema["enum"]:
        return [f"{where}: {raw!r} is not one of {schema['enum']}"]
    if "pattern" in schema and not _compiled(schema["pattern"]).search(raw):
        return [f"{where}: {_short(raw)} does not match {schema['pattern']!r}"]
    return []


def _first(values: Mapping[str, Any], name: str, case_insensitive: bool) -> tuple[str | None, int]:
    for key, value in values.items():
        if key == name or (case_insensitive and key.lower() == name.lower()):
            items = value if isinstance(value, list | tuple) else [value]
            return (str(items[0]) if items else None), len(items)
    return None, 0


def validate_request(
    method: str, path: str, body: Any, headers: Mapping[str, str] | None = None,
    query: Mapping[str, Any] | None = None,
) -> list[str]:
    """Errors of one request against the spec; [] if valid.

    ``body`` is the parsed JSON body (None when there is none); ``headers`` and ``query`` are
    checked only when given (query values may be strings or lists of strings).
    """
    found = find_operation(method, path)
    if found is None:
        return [f"{method.upper()} {path} is not an operation of the Workflows or NQL API"]
    op, path_values = found
    errors: list[str] = []
    for param in op.parameters:
        name, where_in = param["name"], param["in"]
        if where_in == "path":
            errors += _check_value(f"path parameter {name}", path_values[name], param["schema"])
            continue
        source = query if where_in == "query" else headers
        if source is None:
            continue
        value, count = _first(source, name, case_insensitive=where_in == "header")
        label = f"{where_in} parameter {name}"
        if value is None:
            if param.get("required"):
                errors.append(f"{label} is required")
            continue
        if count > 1:
            errors.append(f"{label} is given {count} times")
        errors += _check_value(label, value, param.get("schema", {}))
    if op.body_schema is None:
        if body is not None:
            errors.append(f"body: {op.method} {op.template} takes no body")
    elif body is None:
        if op.body_required:
            errors.append("body: a JSON body is required")
    else:
        errors += validate_body(op.body_schema, body)
    return errors
