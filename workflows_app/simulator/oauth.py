"""The OAuth2 client-credentials token endpoint of the simulated tenant."""

from __future__ import annotations

import base64
import binascii
import secrets
from urllib.parse import parse_qs, unquote

from .replies import Incoming, Reply, json_reply
from .state import SimState

TOKEN_PATH = "/oauth2/default/v1/token"
SCOPE = "service:integration"


def _oauth_error(status: int, error: str, description: str) -> Reply:
    reply = json_reply(status, {"error": error, "error_description": description})
    reply.headers["Cache-Control"] = "no-store"
    return reply


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, client_secret = decoded.partition(":")
    return (unquote(client_id), unquote(client_secret)) if sep else None


def token(
    request: Incoming, *, state: SimState, client_id: str, client_secret: str, token_ttl: float
) -> Reply:
    """POST /oauth2/default/v1/token: Basic client auth, grant_type=client_credentials."""
    state.count_token_request()
    credentials = _basic_credentials(request.header("Authorization"))
    if credentials is None or not (
        secrets.compare_digest(credentials[0], client_id)
        and secrets.compare_digest(credentials[1], client_secret)
    ):
        reply = _oauth_error(401, "invalid_client", "Client authentication failed.")
        reply.headers["WWW-Authenticate"] = 'Basic realm="nexthink"'
        return reply
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _oauth_error(
            400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded."
        )
    form = parse_qs(request.raw_body.decode("utf-8", "replace"), keep_blank_values=True)
    if form.get("grant_type") != ["client_credentials"]:
        return _oauth_error(
            400, "unsupported_grant_type", "Only grant_type=client_credentials is supported."
        )
    scope = form.get("scope")
    if scope is not None and scope != [SCOPE]:
        return _oauth_error(400, "invalid_scope", f"The only scope offered is {SCOPE}.")
    access_token = state.issue_token(token_ttl)
    reply = json_reply(
        200,
        {
            "token_type": "Bearer",
            "expires_in": int(token_ttl),
            "access_token": access_token,
            "scope": SCOPE,
        },
    )
    reply.headers["Cache-Control"] = "no-store"
    return reply
