"""Check HTTP requests against the bundled Nexthink Workflows OpenAPI spec, strictly.

Used by the simulator (to answer 400 like Nexthink would, and to record spec errors) and by tests
(to prove the client only sends what the spec allows). Stricter than the spec on one point: an
object schema that lists `properties` accepts no other property, so a misspelt field is an error.
The NQL execute endpoint is not in the spec file; a small hand-written description is added here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jsonschema import ValidationError, validators
from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker

SPEC_PATH = Path(__file__).resolve().parent / "spec" / "nexthink-workflows-openapi.json"

NQL_EXECUTE_PATH = "/api/v2/nql/execute"
NQL_EXECUTE_V1_PATH = "/api/v1/nql/execute"
# https://docs.nexthink.com/api/nql/execute-nql-v2 (hand-written: not in the bundled spec).
NQL_SCHEMAS: dict[str, Any] = {
    "NqlExecuteRequest": {
        "type": "object",
        "required": ["queryId"],
        "properties": {
            "queryId": {"type": "string", "pattern": "^#[a-z0-9_]{2,255}$"},
            "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": False,
    },
    "NqlExecuteResponse": {
        "type": "object",
        "required": ["queryId", "executedQuery", "rows", "executionDateTime", "data"],
        "properties": {
            "queryId": {"type": "string"},
            "executedQuery": {"type": "string"},
            "rows": {"type": "integer", "minimum": 0},
            "executionDateTime": {},
            "headers": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "object"}},
        },
    },
}
NQL_OPERATION: dict[str, Any] = {
    "operationId": "executeNqlV2",
    "parameters": [
        {"name": "Authorization", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "Source", "in": "header", "schema": {"type": "string", "nullable": True}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/NqlExecuteRequest"}}
        },
    },
}


@dataclass(frozen=True)
class Operation:
    """One operation of the spec: its method, path template and OpenAPI description."""

    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]

    @property
    def operation_id(self) -> str:
        """The spec's operationId."""
        return str(self.spec.get("operationId", ""))


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return data


def load_spec() -> dict[str, Any]:
    """Return (a copy of) the bundled Workflows OpenAPI spec, exactly as the file holds it."""
    return copy.deepcopy(_bundled())


def _make_strict(node: Any) -> Any:
    """Forbid unknown properties in every object schema that lists its properties."""
    if isinstance(node, dict):
        node = {key: _make_strict(value) for key, value in node.items()}
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_make_strict(item) for item in node]
    return node


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    """The spec plus the NQL operation, with strict component schemas."""
    document = load_spec()
    for path in (NQL_EXECUTE_PATH, NQL_EXECUTE_V1_PATH):
        document["paths"][path] = {"post": copy.deepcopy(NQL_OPERATION)}
    schemas = document["components"]["schemas"]
    schemas.update(copy.deepcopy(NQL_SCHEMAS))
    document["components"] = _make_strict(document["components"])
    return document


@lru_cache(maxsize=1)
def operations() -> tuple[Operation, ...]:
    """All operations, literal paths before templated ones so the most specific matches first."""
    found = []
    for template, item in _document()["paths"].items():
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        for method, spec in item.items():
            found.append(Operation(method.upper(), template, re.compile(f"^{regex}$"), spec))
    return tuple(sorted(found, key=lambda op: "{" in op.template))


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """Return the operation for `method path` and its path parameters, or None."""
    path = urlsplit(path).path
    for op in operations():
        match = op.pattern.match(path)
        if match and op.method == method.upper():
            return op, match.groupdict()
    return None


def _resolve(node: Any) -> Any:
    """Follow local `$ref`s (one level at a time) in the strict document."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        target: Any = _document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node, seen = target, seen + 1
    return node


@lru_cache(maxsize=64)
def _whole_value(pattern: str) -> re.Pattern[str]:
    """Compile a spec regex so that `$` means the end of the value (no trailing newline)."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _whole_value(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_StrictValidator = validators.extend(OAS30WriteValidator, {"pattern": _pattern})


@lru_cache(maxsize=64)
def _validator_for(schema_json: str) -> Any:
    root = {"allOf": [json.loads(schema_json)], "components": _document()["components"]}
    return _StrictValidator(root, format_checker=oas30_format_checker)


def _validator(schema: dict[str, Any]) -> Any:
    return _validator_for(json.dumps(schema, sort_keys=True))


def _schema_errors(where: str, value: Any, schema: dict[str, Any]) -> list[str]:
    errors = []
    for error in sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.path)):
        location = where + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        errors.append(f"{location}: {error.message}")
    return errors


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """Read a query or path string as the scalar type its schema expects."""
    kind = _resolve(schema).get("type")
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    if kind in ("integer", "number"):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return value
    return value


def _single(name: str, value: Any, errors: list[str]) -> str | None:
    if isinstance(value, list | tuple):
        if len(value) != 1:
            errors.append(f"query.{name}: expected one value, got {len(value)}")
            return None
        value = value[0]
    return str(value)


def _check_parameters(
    op: Operation,
    path_params: Mapping[str, str],
    query: Mapping[str, Any],
    headers: Mapping[str, str] | None,
) -> list[str]:
    errors: list[str] = []
    header_names = {name.lower(): value for name, value in (headers or {}).items()}
    known_query = set()
    for parameter in (_resolve(p) for p in op.spec.get("parameters", [])):
        name, where, schema = parameter["name"], parameter["in"], parameter.get("schema", {})
        required = bool(parameter.get("required"))
        value: Any
        if where == "header":
            if headers is None or (name.lower() == "authorization" and _secured(op)):
                continue  # the Authorization header is checked by _check_auth
            value = header_names.get(name.lower())
        elif where == "query":
            known_query.add(name)
            value = _single(name, query[name], errors) if name in query else None
        elif where == "path":
            value = path_params.get(name)
        else:
            continue
        if value is None:
            if required:
                errors.append(f"{where}.{name}: required parameter is missing")
            continue
        errors.extend(_schema_errors(f"{where}.{name}", _coerce(value, schema), schema))
    for name in sorted(set(query) - known_query):
        errors.append(f"query.{name}: unknown query parameter")
    return errors


def _secured(op: Operation) -> bool:
    return bool(op.spec.get("security", _document().get("security")))


def _check_auth(op: Operation, headers: Mapping[str, str] | None) -> list[str]:
    if headers is None or not _secured(op):
        return []
    value = {name.lower(): value for name, value in headers.items()}.get("authorization", "")
    if not value.startswith("Bearer ") or not value.removeprefix("Bearer ").strip():
        return ["header.Authorization: a Bearer token is required"]
    return []


def _check_body(op: Operation, body: Any, headers: Mapping[str, str] | None) -> list[str]:
    request_body = _resolve(op.spec.get("requestBody"))
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        if not body.strip():
            body = None
        else:
            try:
                body = json.loads(body)
            except ValueError:
                return ["body: not valid JSON"]
    if not request_body:
        return [] if body is None else [f"body: {op.method} {op.template} takes no body"]
    if body is None:
        return ["body: a JSON body is required"] if request_body.get("required") else []
    errors = []
    if headers is not None:
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            errors.append(f"header.Content-Type: expected application/json, got {content_type!r}")
    schema = request_body["content"]["application/json"]["schema"]
    return errors + _schema_errors("body", body, schema)


def validate_request(
    method: str,
    path: str,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    query: Mapping[str, Any] | None = None,
) -> list[str]:
    """Return what is wrong with a request according to the spec (empty list: it conforms).

    `path` may carry a query string; `query` adds parameters (values: str or list of str).
    `body` is the parsed JSON, or its raw text/bytes. Headers are only checked when given.
    """
    found = find_operation(method, path)
    if found is None:
        templates = [op.template for op in operations() if op.pattern.match(urlsplit(path).path)]
        if templates:
            return [f"{method.upper()} is not allowed on {templates[0]}"]
        return [f"unknown path: {urlsplit(path).path}"]
    op, path_params = found
    all_query: dict[str, Any] = dict(parse_qs(urlsplit(path).query, keep_blank_values=True))
    all_query.update(query or {})
    return (
        _check_auth(op, headers)
        + _check_parameters(op, path_params, all_query, headers)
        + _check_body(op, body, headers)
    )


__all__ = [
    "NQL_EXECUTE_PATH",
    "NQL_EXECUTE_V1_PATH",
    "NQL_SCHEMAS",
    "Operation",
    "find_operation",
    "load_spec",
    "operations",
    "validate_request",
]
