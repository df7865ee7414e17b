"""The JSON API's per-token rate limit: a fixed one-minute window counted in the cache (Redis)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


def take(token_id: int, *, now: float | None = None) -> int | None:
    """Count one request of this token; the seconds to wait (Retry-After) when over the limit."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = f"api-rate:{token_id}:{window}"
    # add() is atomic set-if-absent, incr() atomic in Redis: concurrent requests count once each.
    cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens the window again
        cache.add(key, 1, timeout=WINDOW_SECONDS + 5)
        count = 1
    if count > settings.API_RATE_LIMIT_PER_MINUTE:
        return max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    return None
