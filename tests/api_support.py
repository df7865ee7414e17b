"""Calling the JSON API in tests: every answer is checked against the served OpenAPI document."""

from __future__ import annotations

import json
import re
from typing import Any

from django.test import Client
from openapi_schema_validator import OAS31Validator

OPENAPI_URL = "/api/v1/openapi.json"


class ApiClient:
    """A test client sending a bearer token; `call` validates each answer against the document."""

    def __init__(self, token: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client(raise_request_exception=False)
        self.token = token
        self.document = json.loads(self.client.get(OPENAPI_URL).content)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if method == "get":
            response = self.client.get(path, query or {}, headers=sent)
        else:
            response = getattr(self.client, method)(
                path, data, content_type="application/json", headers=sent
            )
        assert response.status_code < 500, response.content[:2000]
        validate(self.document, method, path, response)
        return response

    def get(self, path: str, **query: Any) -> Any:
        return self.call("get", path, query=query)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("post", path, body, **kwargs)


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The document's operation serving this concrete path."""
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method in item:
            return item[method]
    raise AssertionError(f"{method.upper()} {path} is not in the OpenAPI document")


def validate(document: dict[str, Any], method: str, path: str, response: Any) -> None:
    """The answer's status is documented for the operation, and its JSON fits the schema."""
    op = operation(document, method, path.split("?")[0])
    documented = op["responses"].get(str(response.status_code))
    assert documented, f"{method} {path}: {response.status_code} is not documented"
    if response.status_code == 204:  # No Content: documented without a body, sent without one
        assert "content" not in documented and response.content == b""
        return
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    schema = documented["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": document.get("components", {})}).validate(
        json.loads(response.content)
    )
