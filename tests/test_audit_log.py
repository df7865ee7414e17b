"""The audit log page and its CSV export: filters, keyset pages, refusals, streaming, safety."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workflows_app.models import AuditAction, AuditEvent
from workflows_app.selectors import audit as audit_selectors
from workflows_app.selectors.audit import AuditFilters, audit_page, parse_filters
from workflows_app.services import audit
from workflows_app.views.audit import CSV_HEADER, audit_rows
from workflows_app.views.csv_files import csv_lines, safe_cell

pytestmark = pytest.mark.django_db

PAGE = reverse("console:audit")
EXPORT = reverse("console:audit_export")


def entry(
    action: AuditAction = AuditAction.SIGNED_IN,
    *,
    who: str = "alice",
    summary: str = "something",
    days_ago: float = 0,
    **fields: Any,
) -> AuditEvent:
    """An entry written `days_ago` (auto_now_add set aside for this one insert)."""
    with mock.patch.object(AuditEvent._meta.get_field("at"), "auto_now_add", False):
        return AuditEvent.objects.create(
            at=timezone.now() - timedelta(days=days_ago),
            action=action,
            actor_name=who,
            summary=summary,
            **fields,
        )


def shown(response: Any) -> list[int]:
    return [event.pk for event in response.context["events"]]


def exported(response: StreamingHttpResponse) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


@pytest.fixture
def admin(client_for: Any, admin_user: Any) -> Any:
    return client_for(admin_user)


# --- who may see it -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, EXPORT])
def test_only_admins_see_the_audit_log(url, client, client_for, employee, helpdesk, admin_user):
    login = reverse("login")
    assert client.get(url)["Location"].startswith(f"{login}?next=")
    assert client_for(employee).get(url).status_code == 403
    assert client_for(helpdesk).get(url).status_code == 403
    assert client_for(admin_user).get(url).status_code == 200
    assert client_for(admin_user).post(url).status_code == 405


# --- filters ------------------------------------------------------------------------------------


def test_filters_by_who_what_when_and_text_and_combined(admin):
    alice = entry(AuditAction.ROLE_CHANGED, who="alice", summary="Role of bob changed")
    old = entry(AuditAction.ROLE_CHANGED, who="alice", summary="Role of carl", days_ago=10)
    bob = entry(AuditAction.SIGNED_IN, who="Bob.Smith", summary="Bob.Smith signed in")
    failed = entry(AuditAction.SIGN_IN_FAILED, who="mallory", summary="Sign-in refused")
    today = timezone.localdate()

    assert shown(admin.get(PAGE, {"who": "SMITH"})) == [bob.pk]
    assert shown(admin.get(PAGE, {"action": "role.changed"})) == [alice.pk, old.pk]
    assert shown(admin.get(PAGE, {"q": "role of"})) == [alice.pk, old.pk]
    since = (today - timedelta(days=1)).isoformat()
    assert set(shown(admin.get(PAGE, {"since": since}))) >= {alice.pk, bob.pk, failed.pk}
    assert old.pk not in shown(admin.get(PAGE, {"since": since}))
    until = (today - timedelta(days=5)).isoformat()
    assert shown(admin.get(PAGE, {"until": until})) == [old.pk]
    day = timezone.localtime(old.at).date().isoformat()
    assert shown(admin.get(PAGE, {"since": day, "until": day})) == [old.pk]  # both inclusive
    combined = {"who": "ali", "action": "role.changed", "since": since, "q": "bob"}
    assert shown(admin.get(PAGE, combined)) == [alice.pk]
    page = admin.get(PAGE, combined).content.decode()
    assert f'href="{EXPORT}?who=ali&amp;action=role.changed&amp;since={since}&amp;q=bob"' in page


def test_values_that_cannot_be_used_are_ignored_and_said_so(admin):
    entry(who="alice")
    response = admin.get(
        PAGE, {"action": "role.shredded", "since": "yesterday", "until": "2026-02-30"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Unknown action &#x27;role.shredded&#x27;: ignored." in html
    assert "&#x27;since&#x27; &#x27;yesterday&#x27; is not a date like 2026-01-31: ignored." in html
    assert "&#x27;until&#x27; &#x27;2026-02-30&#x27; is not a date" in html
    assert response.context["filters"] == AuditFilters()

    filters, ignored = parse_filters({"since": "2026-03-01", "until": "2026-02-01"})
    assert filters == AuditFilters() and "is after" in ignored[0]
    filters, ignored = parse_filters({"since": "0001-01-01", "who": " x\x00y "})
    assert filters == AuditFilters(who="xy") and len(ignored) == 1


def test_newest_first_in_keyset_pages_with_filters_and_no_count(admin, monkeypatch):
    monkeypatch.setattr(audit_selectors, "PAGE_SIZE", 3)
    mine = [entry(who="pat", summary=f"n{i}", days_ago=(10 - i) / 24) for i in range(8)]
    entry(who="other", summary="not pat's")
    newest_first = [e.pk for e in reversed(mine)]

    seen: list[int] = []
    params: dict[str, str] = {"who": "pat"}
    with CaptureQueriesContext(connection) as queries:
        while True:
            response = admin.get(PAGE, params)
            seen += shown(response)
            next_query = response.context["next_query"]
            if not next_query:
                break
            assert "who=pat" in next_query
            params = dict(pair.split("=") for pair in next_query.split("&"))
    assert seen == newest_first
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_entries_with_the_same_time_are_paged_by_id_without_loss(admin_user):
    moment = timezone.now()
    same = []
    with mock.patch.object(AuditEvent._meta.get_field("at"), "auto_now_add", False):
        for i in range(5):
            same.append(
                AuditEvent.objects.create(
                    at=moment, action=AuditAction.SIGNED_IN, actor_name="tie", summary=str(i)
                )
            )
    filters = AuditFilters(who="tie")
    first = audit_page(filters, size=2)
    second = audit_page(filters, before=first.next_before, size=2)
    third = audit_page(filters, before=second.next_before, size=2)
    got = [e.pk for page in (first, second, third) for e in page.events]
    assert got == [e.pk for e in reversed(same)] and third.next_before is None


def test_a_page_after_an_entry_that_is_gone_still_goes_on_from_there(admin):
    older = entry(who="zed", days_ago=2)
    newer = entry(who="zed", days_ago=1)
    assert shown(admin.get(PAGE, {"who": "zed", "before": newer.pk + 1000})) == [
        newer.pk,
        older.pk,
    ]
    response = admin.get(PAGE, {"before": "12x"})
    assert "The page asked for is not one this log has" in response.content.decode()


# --- export -------------------------------------------------------------------------------------


def test_the_export_has_the_filtered_entries_newest_first_with_every_column(admin):
    event = audit.record(
        AuditAction.ROLE_CHANGED,
        actor=None,
        actor_name="alice",
        summary="Role of bob changed from Employee to Helpdesk",
        details={"before": "Employee", "after": "Helpdesk"},
        ip="192.0.2.3",
    )
    older = entry(AuditAction.ROLE_CHANGED, who="alice", summary="earlier", days_ago=1)
    entry(AuditAction.SIGNED_IN, who="alice")

    response = admin.get(EXPORT, {"action": "role.changed", "who": "alice"})

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.now().strftime("%Y-%m-%d")
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-log-role-changed-alice-{today}.csv"'
    )
    rows = exported(response)
    assert [row["summary"] for row in rows] == [event.summary, "earlier"]
    first = rows[0]
    assert first["who"] == "alice" and first["action"] == "role.changed"
    assert first["what"] == "Role changed" and first["address"] == "192.0.2.3"
    assert json.loads(first["details"]) == {"after": "Helpdesk", "before": "Employee"}
    assert first["when_utc"] == event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows[1]["when_utc"] == older.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_export_neutralises_cells_a_spreadsheet_would_run(admin):
    for text in ('=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)", "plain"):
        entry(who=text, summary=text)
    rows = exported(admin.get(EXPORT))
    summaries = {row["summary"] for row in rows}
    assert {'\'=HYPERLINK("http://evil")', "'+1", "'-2", "'@SUM(A1)", "plain"} <= summaries
    assert {row["who"] for row in rows} >= {"'+1", "'-2", "plain"}
    assert safe_cell("\tx") == "'\tx" and safe_cell("a=b") == "a=b"


def test_the_export_streams_in_chunks_whatever_the_size(admin, monkeypatch):
    monkeypatch.setattr(audit_selectors, "EXPORT_CHUNK", 7)
    for i in range(30):
        entry(who="bulk", summary=f"entry {i}")
    with CaptureQueriesContext(connection) as queries:
        lines = csv_lines(
            CSV_HEADER, audit_rows(audit_selectors.export_rows(AuditFilters(who="bulk")))
        )
        assert next(lines) == "\ufeff" and next(lines).startswith("when_utc,who,action")
    assert queries.captured_queries == []  # nothing read before the first row is asked for
    entry(who="bulk", summary="written after the export began")
    rest = list(lines)
    assert len(rest) == 31 and "written after the export began" in rest[0]

    response = admin.get(EXPORT, {"who": "bulk"})
    assert response.streaming and len(exported(response)) == 31


def test_an_export_with_a_filter_it_cannot_use_is_refused_not_silently_widened(admin):
    response = admin.get(EXPORT, {"action": "everything", "since": "soon"})
    assert response.status_code == 400
    text = response.content.decode()
    assert text.startswith("Nothing was exported: Unknown action 'everything': ignored.")
    assert "Correct the filters and try again." in text
