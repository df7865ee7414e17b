"""A small OpenID Connect provider on loopback, for signing in through the real library.

Discovery, JWKS, an authorization endpoint issuing one-time codes, a token endpoint that checks
client authentication (Basic or form), the redirect URI and the PKCE verifier (S256), userinfo,
and ID tokens signed RS256 with a key made for each provider. `claims` is who signs in next;
`id_token_changes` alters the next ID tokens (expired, another audience, a forged signature...).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "portal-sso-test"
CLIENT_SECRET = "sso-test-client-secret-do-not-log"
KEY_ID = "test-key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Grant:
    """One authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    method: str | None
    claims: dict[str, Any]
    used: bool = False


@dataclass
class ProviderState:
    """What the provider knows and what it saw."""

    claims: dict[str, Any] = field(default_factory=dict)
    id_token_changes: dict[str, Any] = field(default_factory=dict)
    forge_signature: bool = False
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    userinfo: bool = True


class Provider:
    """The provider's logic, without HTTP."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.key = new_key()
        self.state = ProviderState()

    def discovery(self) -> dict[str, Any]:
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
        if self.state.userinfo:
            document["userinfo_endpoint"] = f"{self.issuer}/userinfo"
        return document

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": KEY_ID, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """(status, Location or error text) for an authorization request."""
        self.state.authorize_requests.append(dict(query))
        if query.get("client_id") != CLIENT_ID:
            return 400, "unknown client_id"
        redirect_uri = query.get("redirect_uri", "")
        state = query.get("state", "")
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return 302, f"{redirect_uri}?{urlencode({'error': 'invalid_request', 'state': state})}"
        code = secrets.token_urlsafe(24)
        self.state.grants[code] = Grant(
            client_id=CLIENT_ID,
            redirect_uri=redirect_uri,
            nonce=query.get("nonce"),
            challenge=query.get("code_challenge"),
            method=query.get("code_challenge_method"),
            claims=dict(self.state.claims),
        )
        return 302, f"{redirect_uri}?{urlencode({'code': code, 'state': state})}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a token request (RFC 6749 4.1.3, RFC 7636 4.6)."""
        seen: dict[str, Any] = {"form_keys": sorted(form), "basic_auth": bool(authorization)}
        self.state.token_requests.append(seen)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        grant = self.state.grants.get(form.get("code", ""))
        if form.get("grant_type") != "authorization_code" or grant is None or grant.used:
            return 400, {"error": "invalid_grant"}
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        verifier = form.get("code_verifier", "")
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if grant.method != "S256" or expected.rstrip(b"=").decode() != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        seen["pkce_verified"] = True
        access_token = secrets.token_urlsafe(24)
        self.state.access_tokens[access_token] = grant.claims
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(grant),
        }

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **grant.claims,
            **self.state.id_token_changes,
        }
        key = new_key() if self.state.forge_signature else self.key
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": KEY_ID})

    def userinfo(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        token = (authorization or "").removeprefix("Bearer ")
        claims = self.state.access_tokens.get(token)
        if claims is None:
            return 401, {"error": "invalid_token"}
        return 200, {"sub": claims.get("sub")}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return

    def _answer(self, status: int, body: dict[str, Any] | str, location: str = "") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        provider = self.server.provider
        url = urlsplit(self.path)
        if url.path == "/.well-known/openid-configuration":
            self._answer(200, provider.discovery())
        elif url.path == "/jwks":
            self._answer(200, provider.jwks())
        elif url.path == "/authorize":
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            status, where = provider.authorize(query)
            self._answer(status, where, location=where if status == 302 else "")
        elif url.path == "/userinfo":
            self._answer(*provider.userinfo(self.headers.get("Authorization")))
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlsplit(self.path).path == "/token":
            self._answer(*self.server.provider.token(form, self.headers.get("Authorization")))
        else:
            self._answer(404, {"error": "not_found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: Provider


class OidcProvider:
    """The provider served on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.provider = Provider(self.issuer)
        self._server.provider = self.provider
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def state(self) -> ProviderState:
        return self.provider.state

    def start(self) -> OidcProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self.provider.state = ProviderState()
