"""OAuth2 client-credentials tokens for Nexthink, shared between processes through a cache.

One token serves every worker for its whole stated lifetime (less `refresh_margin`, 0 by
default): one token request per lifetime. A call that reaches Nexthink just after the token
expired gets a 401, which means nothing ran; the client then drops the token and sends the call
once more with a new one (client.py). When the token is missing, one process
fetches a new one under a lock built with `cache.add`; the others wait for it briefly, and fetch
themselves only if the lock holder seems to have died. The secret and the token are never logged.
Docs: https://docs.nexthink.com/api/getting-started/authentication
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import requests
from pydantic import SecretStr

from .errors import InvalidResponse, RateLimited, Unauthorized, Unavailable, parse_retry_after

logger = logging.getLogger(__name__)

Timeout = float | tuple[float, float]


class TokenCache(Protocol):
    """Where tokens are shared between processes (e.g. Redis); positional arguments only."""

    def get(self, key: str, /) -> Any:
        """Return the value stored under `key`, or None."""
        ...

    def set(self, key: str, value: str, ttl_seconds: float, /) -> Any:
        """Store `value` under `key` for `ttl_seconds`."""
        ...

    def add(self, key: str, value: str, ttl_seconds: float, /) -> bool:
        """Store `value` only if `key` is absent (atomically); True if it was stored."""
        ...

    def delete(self, key: str, /) -> Any:
        """Remove `key`."""
        ...


class MemoryTokenCache:
    """In-process TokenCache (thread-safe) for tests, scripts and single-process use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, tuple[str, float]] = {}

    def _live(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        return item[0]

    def get(self, key: str, /) -> str | None:
        """Return the live value stored under `key`, or None."""
        with self._lock:
            return self._live(key)

    def set(self, key: str, value: str, ttl_seconds: float, /) -> None:
        """Store `value` under `key` for `ttl_seconds`."""
        with self._lock:
            self._items[key] = (value, self._clock() + ttl_seconds)

    def add(self, key: str, value: str, ttl_seconds: float, /) -> bool:
        """Store `value` if `key` holds nothing live; True if it was stored."""
        with self._lock:
            if self._live(key) is not None:
                return False
            self._items[key] = (value, self._clock() + ttl_seconds)
            return True

    def delete(self, key: str, /) -> None:
        """Remove `key`."""
        with self._lock:
            self._items.pop(key, None)


def token_cache_key(token_url: str, client_id: str) -> str:
    """Return the cache key of the token of one client at one tenant (the secret is not in it)."""
    digest = hashlib.sha256(f"{token_url}\n{client_id}".encode()).hexdigest()[:32]
    return f"nexthink:token:{digest}"


class TokenProvider:
    """Fetch, cache and share OAuth2 client-credentials tokens for one Nexthink client id."""

    poll_interval = 0.05  # seconds between looks at the cache while another process fetches

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        cache: TokenCache,
        session: requests.Session,
        timeout: Timeout,
        refresh_margin: int = 0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self.cache = cache
        self.session = session
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.key = token_cache_key(token_url, client_id)
        self.lock_key = f"{self.key}:lock"
        total = sum(timeout) if isinstance(timeout, tuple) else 2 * timeout
        # The lock outlives one fetch; a waiter gives up a little earlier than that.
        self.lock_ttl = max(1, int(total) + 2)
        self.lock_wait = float(total) + 1

    def __repr__(self) -> str:
        return f"TokenProvider(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def get_token(self) -> str:
        """Return a valid access token, cached or freshly fetched (one fetcher at a time)."""
        token = self._cached()
        if token:
            return token
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self.lock_wait
        while True:
            if self.cache.add(self.lock_key, owner, self.lock_ttl):
                try:
                    # Another process may have stored one between our look and the lock.
                    return self._cached() or self._fetch_and_store()
                finally:
                    self._release(owner)
            # Someone else is fetching: wait for their token, bounded.
            while time.monotonic() < deadline:
                time.sleep(self.poll_interval)
                token = self._cached()
                if token:
                    return token
                if self.cache.get(self.lock_key) is None:
                    break  # the holder finished without a token (it failed): try ourselves
            else:
                logger.warning("Nexthink token lock held too long; fetching a token anyway")
                return self._fetch_and_store()

    def invalidate(self, token: str | None = None) -> None:
        """Drop the cached token (only if it is still `token`, when given): it was refused."""
        if token is None or self._cached() == token:
            self.cache.delete(self.key)
            logger.info("Dropped the cached Nexthink token for client %s", self.client_id)

    def _cached(self) -> str | None:
        value = self.cache.get(self.key)
        return value if isinstance(value, str) and value else None

    def _release(self, owner: str) -> None:
        if self.cache.get(self.lock_key) == owner:
            self.cache.delete(self.lock_key)

    def _fetch_and_store(self) -> str:
        token, expires_in = self._fetch()
        ttl = int(expires_in - self.refresh_margin)
        if ttl < 1:
            # A margin as long as the token's life: keep it for its life (a 401 replaces it).
            ttl = int(expires_in)
        if ttl >= 1:
            self.cache.set(self.key, token, ttl)
        logger.info(
            "Fetched a Nexthink token for client %s (expires in %d s, cached %d s)",
            self.client_id,
            int(expires_in),
            max(ttl, 0),
        )
        return token

    def _fetch(self) -> tuple[str, float]:
        """Ask the token endpoint; any failure means the API call was never sent."""
        try:
            response = self.session.post(
                self.token_url,
                data={"grant_type": "client_credentials", "scope": "service:integration"},
                auth=(self.client_id, self._secret.get_secret_value()),
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise Unavailable(f"could not get a token ({type(exc).__name__})") from None
        status = response.status_code
        if status in (400, 401, 403):
            raise Unauthorized(
                f"Nexthink refused the API credentials (HTTP {status} from the token endpoint). "
                "Check the client id, the secret and the Workflows API permission."
            )
        if status == 429:
            raise RateLimited(parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise Unavailable(f"the token endpoint answered HTTP {status}", status=status)
        if status != 200:
            raise InvalidResponse(f"the token endpoint answered HTTP {status}", status=status)
        return _parse_token(response)


def _parse_token(response: requests.Response) -> tuple[str, float]:
    """Read {access_token, token_type, expires_in}; the token itself never goes in an error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidResponse("the token endpoint answered something that is not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise InvalidResponse("the token endpoint answered without an access_token")
    token_type = body.get("token_type", "Bearer")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        logger.warning("Nexthink token type is %r, not Bearer; using it anyway", token_type)
    try:
        expires_in = float(body.get("expires_in", 300))
    except (TypeError, ValueError):
        expires_in = 300.0
    return token, max(expires_in, 0.0)


__all__ = [
    "MemoryTokenCache",
    "TokenCache",
    "TokenProvider",
    "token_cache_key",
]
