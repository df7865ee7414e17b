"""Times in the viewer's time zone: the browser names its zone in a cookie, the server shows
every time in it.

`templates/base.html` sets the `portal_tz` cookie from `Intl.DateTimeFormat()` on every page;
the middleware activates that zone for the request when it is a real IANA zone name, else the
portal's TIME_ZONE. Templates then show local times through Django's own conversion (`|date`,
`{{ value }}`), and `viewer_time_zone` (context processor) names the zone beside them.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE_NAME = "portal_tz"
# The longest IANA name is about 30 characters; anything much longer is not one.
MAX_NAME_LENGTH = 64


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    """Every zone name the system's tz database knows (read once)."""
    return frozenset(zoneinfo.available_timezones())


def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone of an IANA name such as "Europe/Zurich", or None for anything else.

    Only names of the tz database are accepted, so a cookie can never make zoneinfo read a file
    of its choosing.
    """
    if not name or len(name) > MAX_NAME_LENGTH or name not in known_zones():
        return None
    return zoneinfo.ZoneInfo(name)


class ViewerTimeZoneMiddleware:
    """Activate the viewer's time zone (from the `portal_tz` cookie) for one request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # base.html writes the name as it is; unquote one written URL-encoded all the same.
        zone = zone_named(unquote(request.COOKIES.get(COOKIE_NAME, "")))
        if zone is None:
            timezone.deactivate()  # the portal's TIME_ZONE
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            # The thread serves other requests next: never let one viewer's zone leak.
            timezone.deactivate()


def viewer_time_zone_name() -> str:
    """The name of the zone times are shown in for this request (e.g. "Europe/Zurich")."""
    return timezone.get_current_timezone_name()


def local_time_text(at: datetime) -> str:
    """A time in the zone active for the request (the viewer's), its zone named: for sentences."""
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M %Z")
