"""Small things new users tripped on: the favicon, thousands separators, times in the viewer's
time zone, the skip link and aria-current, the portal's own 404/500 pages in demo mode, and the
console's catalogue card following "Sync now" by itself."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from workflows_app import time_zones
from workflows_app.models import Batch, BatchState, CatalogueSync, Run, Workflow
from workflows_app.nexthink.models import Dependency
from workflows_app.services import dispatch, sync_requests
from workflows_app.views import console

ROOT = Path(__file__).resolve().parent.parent
STATE = "/console/sync/state/"
HTMX = {"HX-Request": "true"}


# --- favicon --------------------------------------------------------------------------------------


def test_favicon_ico_is_served_at_the_root_and_pages_name_the_svg(db, client_for, employee):
    response = Client().get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00" and b"PNG" in body  # an ICO holding a PNG
    assert finders.find("portal/favicon.svg")
    page = client_for(employee).get("/self-service/").content.decode()
    assert 'rel="icon" href="/static/portal/favicon.svg" type="image/svg+xml"' in page
    assert 'href="/favicon.ico"' in page


# --- thousands separators -------------------------------------------------------------------------


def a_run(user, workflow: Workflow, *, targets: int) -> Run:
    return Run.objects.create(
        created_by=user,
        role="Admin",
        source=Run.Source.HELPDESK,
        workflow=workflow,
        workflow_nql_id=workflow.nql_id,
        workflow_uuid=workflow.uuid,
        workflow_name=workflow.name,
        dependency=workflow.dependency,
        api_version="v2",
        target_count=targets,
    )


@pytest.fixture
def big_run(admin_user) -> Run:
    now = timezone.now()
    workflow = Workflow.objects.create(
        nql_id="#big",
        uuid="uuid-big",
        name="Big",
        status=Workflow.Status.ACTIVE,
        dependency=Dependency.DEVICE,
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    run = a_run(admin_user, workflow, targets=12_345)
    Batch.objects.create(
        run=run, number=1, state=BatchState.UNKNOWN, api_version="v2", target_count=10_000
    )
    return run


def test_counts_on_the_catalogue_and_the_console_have_separators(big_run, client_for, admin_user):
    client = client_for(admin_user)

    detail = client.get(f"/workflows/{big_run.workflow_id}/").content.decode()
    console_page = client.get("/console/").content.decode()

    assert "<td>12,345</td>" in detail
    assert "<td>10,000</td>" in console_page  # the batch being reconciled


def test_the_catalogue_count_has_separators(db, client_for, helpdesk):
    now = timezone.now()
    Workflow.objects.bulk_create(
        Workflow(
            nql_id=f"#w{n:04d}",
            uuid=f"u{n}",
            name=f"W {n}",
            status=Workflow.Status.ACTIVE,
            dependency=Dependency.DEVICE,
            trigger_api=True,
            first_seen=now,
            last_seen=now,
        )
        for n in range(1001)
    )

    page = client_for(helpdesk).get("/workflows/").content.decode()

    assert ">1,001 workflows, page 1 of 41</p>" in page


# --- time zones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("Europe/Zurich", True),
        ("America/Argentina/Buenos_Aires", True),
        ("UTC", True),
        ("", False),
        (None, False),
        ("Mars/Olympus_Mons", False),
        ("../../etc/passwd", False),
        ("/etc/localtime", False),
        ("Europe/Zurich\x00", False),
        ("Europe/" + "x" * 100, False),
    ],
)
def test_only_tz_database_names_are_accepted(name, known):
    zone = time_zones.zone_named(name)
    assert (zone is not None) == known
    if known:
        assert str(zone) == name


@pytest.fixture
def a_sync(db) -> CatalogueSync:
    sync = CatalogueSync.objects.create(trigger="schedule", status=CatalogueSync.Status.SUCCEEDED)
    started = dt.datetime(2026, 1, 15, 12, 0, 5, tzinfo=dt.UTC)
    CatalogueSync.objects.filter(pk=sync.pk).update(started_at=started)
    return sync


def test_times_are_shown_in_the_viewers_zone_and_labelled(a_sync, client_for, admin_user):
    client = client_for(admin_user)
    client.cookies["portal_tz"] = "Europe/Zurich"

    page = client.get("/console/").content.decode()

    assert "started 2026-01-15 13:00:05" in page  # UTC+1 in January
    assert 'data-testid="time-zone">Times in Europe/Zurich</p>' in page
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE  # nothing leaks


@pytest.mark.parametrize("cookie", ["Mars/Olympus_Mons", "../../etc/passwd", ""])
def test_an_unknown_zone_falls_back_to_the_portals(a_sync, client_for, admin_user, cookie):
    client = client_for(admin_user)
    client.cookies["portal_tz"] = cookie

    page = client.get("/console/").content.decode()

    assert "started 2026-01-15 12:00:05" in page
    assert f"Times in {settings.TIME_ZONE}</p>" in page


def test_every_page_asks_the_browser_for_its_zone(db, client):
    """Through a static script: the Content-Security-Policy allows no inline one."""
    page = client.get("/login/").content.decode()
    assert '<script src="/static/portal/time_zone.js"></script>' in page
    script = (ROOT / "static" / "portal" / "time_zone.js").read_text(encoding="utf-8")
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in script
    assert '"portal_tz=" + zone' in script and "samesite=lax" in script


def test_a_url_encoded_zone_is_read_too(a_sync, client_for, admin_user):
    client = client_for(admin_user)
    client.cookies["portal_tz"] = "Europe%2FZurich"

    assert "started 2026-01-15 13:00:05" in client.get("/console/").content.decode()


# --- skip link and aria-current -------------------------------------------------------------------


def test_the_skip_link_comes_first_and_leads_to_the_content(db, client_for, employee):
    page = client_for(employee).get("/self-service/").content.decode()
    body = page[page.index("<body") :]
    first_link = body[body.index("<a ") : body.index("</a>") + 4]
    assert first_link == '<a class="skip-link" href="#content">Skip to content</a>'
    assert '<main class="page" id="content" tabindex="-1">' in page


@pytest.mark.parametrize(
    ("url", "current"),
    [
        ("/self-service/", "Self-service"),
        ("/workflows/", "Workflows"),
        ("/runs/", "Runs"),
        ("/runs/waiting/", "Waiting"),
        ("/console/", "Admin"),
        ("/console/dashboard/", "Dashboard"),
        ("/console/curation/", "Curation"),
    ],
)
def test_the_current_navigation_entry_is_marked(db, client_for, admin_user, url, current):
    page = client_for(admin_user).get(url).content.decode()
    nav = page[page.index('<nav class="nav"') : page.index("</nav>")]
    assert nav.count('aria-current="page"') == 1
    marked = nav[: nav.index('aria-current="page"')]
    assert nav[nav.index('aria-current="page"') :].split(">", 1)[1].startswith(current), marked


# --- the portal's own 404 and 500 pages, as demo mode runs ----------------------------------------

DEMO_PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
missing = client.get("/no-such-page/")
client.cookies["sessionid"] = "x" * 32  # the demo database is empty: reading a session fails
broken = client.get("/runs/")
print(json.dumps({
    "debug": settings.DEBUG,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "static_backend": settings.STORAGES["staticfiles"]["BACKEND"],
    "finders": settings.WHITENOISE_USE_FINDERS,
    "helpdesk_email": settings.HELPDESK_EMAIL,
    "missing": [missing.status_code, missing.content.decode()],
    "broken": [broken.status_code, broken.content.decode()],
}))
"""


def test_demo_mode_serves_the_portals_own_404_and_500_pages(tmp_path):
    """Settings as `scripts/demo` makes them (PORTAL_DEMO=true, nothing else): no debug pages."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_DEMO": "true",
        "PORTAL_DEMO_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", DEMO_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["debug"] is False
    assert seen["helpdesk_email"] == "helpdesk@example.com"  # so "Get help" is offered
    assert seen["session_cookie_secure"] is False  # demo mode is plain HTTP on 127.0.0.1
    assert seen["static_backend"].endswith("StaticFilesStorage") and seen["finders"] is True
    status, page = seen["missing"]
    assert status == 404 and 'data-testid="not-found"' in page
    assert "URLconf" not in page and "Using the URLconf" not in page
    status, page = seen["broken"]
    assert status == 500 and 'data-testid="server-error"' in page
    assert "Traceback" not in page and "OperationalError" not in page


def test_a_server_error_shows_the_portals_own_page(db, admin_user, monkeypatch):
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(console, "device_query_problem", broken)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)

    response = client.get("/console/")

    assert response.status_code == 500
    page = response.content.decode()
    assert 'data-testid="server-error"' in page and "boom" not in page


# --- the console's catalogue card after "Sync now" ------------------------------------------------


@pytest.fixture
def queued_syncs(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(dispatch, "enqueue_catalogue_sync", lambda **kw: calls.append(kw))
    return calls


def test_after_sync_now_the_card_polls_until_a_worker_starts_it(
    db, client_for, admin_user, queued_syncs
):
    client = client_for(admin_user)

    page = client.post("/console/sync/", follow=True).content.decode()

    assert queued_syncs == [{"trigger": "admin", "requested_by_id": admin_user.pk}]
    assert f'hx-get="{STATE}" hx-trigger="every 2s" hx-swap="outerHTML"' in page
    assert 'data-testid="sync-awaited"' in page and "Sync starting…" in page
    polled = client.get(STATE, headers=HTMX)
    assert polled.status_code == 200 and 'hx-trigger="every 2s"' in polled.content.decode()


def test_the_card_follows_the_sync_and_stops_polling_when_it_ends(
    db, client_for, admin_user, queued_syncs
):
    client = client_for(admin_user)
    older = CatalogueSync.objects.create(trigger="schedule", status=CatalogueSync.Status.FAILED)
    client.post("/console/sync/")

    started = CatalogueSync.objects.create(trigger="admin", requested_by=admin_user)
    running = client.get(STATE, headers=HTMX)
    assert running.status_code == 200
    assert "Sync running…" in running.content.decode() and "every 2s" in running.content.decode()

    started.status = CatalogueSync.Status.SUCCEEDED
    started.finished_at = timezone.now()
    started.added = 4
    started.save()
    done = client.get(STATE, headers=HTMX)

    assert done.status_code == 286  # htmx stops polling, and swaps this last answer in
    text = done.content.decode()
    assert "hx-trigger" not in text and "Succeeded" in text and "4 added" in text
    assert sync_requests.SESSION_KEY not in client.session
    assert older.pk < started.pk
    # Without htmx (no JavaScript, or a person opening the URL), the card alone, as a page.
    assert client.get(STATE).status_code == 200


def test_a_sync_no_worker_starts_is_reported_and_polling_stops(
    db, client_for, admin_user, queued_syncs
):
    client = client_for(admin_user)
    client.post("/console/sync/")
    session = client.session
    session[sync_requests.SESSION_KEY]["at"] = time.time() - sync_requests.START_WAIT_SECONDS - 1
    session.save()

    response = client.get(STATE, headers=HTMX)

    assert response.status_code == 286
    text = response.content.decode()
    assert 'data-testid="sync-not-started"' in text and "hx-trigger" not in text
    assert "Sync now" in text and "disabled" not in text


def test_a_broken_session_value_is_no_sync_request(db, client_for, admin_user):
    client = client_for(admin_user)
    session = client.session
    session[sync_requests.SESSION_KEY] = {"after_id": "x", "at": None}
    session.save()

    response = client.get(STATE, headers=HTMX)

    assert response.status_code == 286 and "hx-trigger" not in response.content.decode()


def test_only_admins_read_the_sync_card(db, client, client_for, employee, helpdesk, admin_user):
    assert client.get(STATE).status_code == 302
    assert client_for(employee).get(STATE).status_code == 403
    assert client_for(helpdesk).get(STATE, headers=HTMX).status_code == 403
    assert client_for(admin_user).post(STATE).status_code == 405
