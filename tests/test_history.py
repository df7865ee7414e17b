"""The execution history (/runs/): scope per role, each filter and their combinations, keyset
pages with filters, messages for what was ignored, and the CSV exports."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workflows_app.models import Batch, Outcome, Run, RunStatus, Target, Workflow, WorkflowCuration
from workflows_app.roles import Role
from workflows_app.selectors import history
from workflows_app.selectors.history import HistoryFilters, history_page, parse_filters

LIST = "/runs/"
EXPORT = "/runs/export.csv"


def make_workflow(nql_id: str, name: str, *, title: str = "") -> Workflow:
    now = timezone.now()
    wf = Workflow.objects.create(
        nql_id=nql_id,
        uuid=str(uuid.uuid4()),
        name=name,
        status=Workflow.Status.ACTIVE,
        dependency="DEVICE",
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    if title:
        WorkflowCuration.objects.create(workflow=wf, title=title)
    return wf


def make_run(
    user: Any,
    wf: Workflow,
    *,
    role: Role = Role.HELPDESK,
    source: str = Run.Source.HELPDESK,
    status: str = RunStatus.SUCCEEDED,
    reason: str = "routine",
    days_ago: float = 0,
    targets: tuple[tuple[str, str], ...] = (("LAPTOP-1", Outcome.SUCCESS),),
) -> Run:
    """A run written directly (the history only reads), with its targets and their outcomes."""
    counts: dict[str, int] = {}
    for _, outcome in targets:
        counts[outcome] = counts.get(outcome, 0) + 1
    run = Run.objects.create(
        created_by=user,
        role=role.value,
        source=source,
        workflow=wf,
        workflow_nql_id=wf.nql_id,
        workflow_uuid=wf.uuid,
        workflow_name=wf.name,
        dependency="DEVICE",
        reason=reason,
        api_version="v2",
        target_count=len(targets),
        status=status,
        outcome_counts=counts,
    )
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    batch = Batch.objects.create(run=run, number=1, api_version="v2", target_count=len(targets))
    Target.objects.bulk_create(
        Target(run=run, batch=batch, position=i, kind="device_name", value=value, outcome=outcome)
        for i, (value, outcome) in enumerate(targets)
    )
    run.refresh_from_db()
    return run


def shown(response: Any) -> list[int]:
    """The run ids a history page lists, in order."""
    assert response.status_code == 200
    html = response.content.decode()
    ids = []
    for part in html.split('data-run="')[1:]:
        ids.append(int(part.split('"', 1)[0]))
    return ids


def csv_rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


@pytest.fixture
def flush() -> Workflow:
    return make_workflow("#flush_dns_cache", "Flush DNS cache", title="Fix internet access")


@pytest.fixture
def teams() -> Workflow:
    return make_workflow("#clear_teams_cache", "Clear Teams cache")


@pytest.fixture
def world(make_user, employee, helpdesk, admin_user, flush, teams) -> dict[str, Any]:
    """Runs by three people in several roles, sources, states, targets and dates."""
    other_desk = make_user("otherdesk", Role.HELPDESK)
    runs = {
        "emp_self": make_run(
            employee,
            teams,
            role=Role.EMPLOYEE,
            source=Run.Source.SELF_SERVICE,
            reason="",
            targets=(("EMP-PC", Outcome.SUCCESS),),
        ),
        "desk_flush": make_run(
            helpdesk,
            flush,
            reason="INC0012345 user cannot browse",
            status=RunStatus.PARTIAL,
            targets=(("LAPTOP-42", Outcome.SUCCESS), ("laptop-43", Outcome.FAILURE)),
        ),
        "other_teams": make_run(
            other_desk,
            teams,
            reason="INC0099999",
            status=RunStatus.FAILED,
            targets=(("LAPTOP-42", Outcome.FAILURE),),
        ),
        "admin_cli": make_run(
            admin_user,
            flush,
            role=Role.ADMIN,
            source=Run.Source.CLI,
            reason="=cmd|' /C calc'!A0",
            targets=(("SRV-1", Outcome.SUCCESS),),
        ),
        "old": make_run(
            helpdesk,
            flush,
            reason="INC0000001 old",
            days_ago=20,
            targets=(("LAPTOP-42", Outcome.SUCCESS),),
        ),
    }
    return {"runs": runs, "other_desk": other_desk}


def ids(world: dict[str, Any], *names: str) -> list[int]:
    """Ids of the named runs, newest first (as the history lists them)."""
    return sorted((world["runs"][n].pk for n in names), reverse=True)


# --- scope -------------------------------------------------------------------------------------


def test_employees_see_only_their_own_runs_whatever_they_ask(client_for, employee, world):
    client = client_for(employee)
    assert shown(client.get(LIST)) == ids(world, "emp_self")
    assert shown(client.get(LIST, {"mine": "0"})) == ids(world, "emp_self")
    assert shown(client.get(LIST, {"requester": "helpdesk", "mine": "0"})) == []
    export = csv_rows(client.get(EXPORT, {"mine": "0"}))
    assert [int(r["run"]) for r in export] == ids(world, "emp_self")


def test_helpdesk_see_their_own_by_default_and_everyones_with_one_click(
    client_for, helpdesk, world
):
    client = client_for(helpdesk)
    page = client.get(LIST)
    assert shown(page) == ids(world, "desk_flush")
    html = page.content.decode()
    assert "Only the runs you started." in html and "mine=0" in html
    everyone = client.get(LIST, {"mine": "0"})
    assert shown(everyone) == ids(world, "emp_self", "desk_flush", "other_teams", "admin_cli")
    # The form sends mine=0 then mine=1 when the box is ticked: the last one counts.
    assert shown(client.get(LIST + "?mine=0&mine=1")) == ids(world, "desk_flush")


def test_admins_see_everyone_by_default_and_may_narrow_to_their_own(client_for, admin_user, world):
    client = client_for(admin_user)
    assert shown(client.get(LIST)) == ids(
        world, "emp_self", "desk_flush", "other_teams", "admin_cli"
    )
    assert shown(client.get(LIST, {"mine": "1"})) == ids(world, "admin_cli")


def test_people_without_a_role_are_refused_the_history_and_its_exports(
    make_user, client_for, world
):
    client = client_for(make_user("nobody", None))
    run = world["runs"]["desk_flush"]
    for url in (LIST, EXPORT, f"/runs/{run.pk}/targets.csv"):
        assert client.get(url).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    for url in (LIST, EXPORT):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]


# --- each filter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["flush", "flush_dns_cache", "#FLUSH_DNS_CACHE", "Flush DNS", "internet"]
)
def test_the_workflow_filter_takes_any_part_of_the_name_title_or_nql_id(
    client_for, admin_user, world, text
):
    assert shown(client_for(admin_user).get(LIST, {"workflow": text})) == ids(
        world, "desk_flush", "admin_cli"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"requester": "HELPDESK"}, ("desk_flush",)),
        ({"requester": "desk"}, ("desk_flush", "other_teams")),
        ({"role": "admin"}, ("admin_cli",)),
        ({"role": "Employee"}, ("emp_self",)),
        ({"source": "self_service"}, ("emp_self",)),
        ({"source": "cli"}, ("admin_cli",)),
        ({"status": "failed"}, ("other_teams",)),
        ({"outcome": "failure"}, ("desk_flush", "other_teams")),
        ({"target": "laptop-42"}, ("desk_flush", "other_teams")),
        ({"target": "LAPTOP-43"}, ("desk_flush",)),
        ({"target": "LAPTOP-4"}, ()),
        ({"reason": "inc00"}, ("desk_flush", "other_teams")),
        ({"reason": "cannot brow"}, ("desk_flush",)),
        # Combinations narrow further.
        ({"target": "LAPTOP-42", "outcome": "failure", "requester": "otherdesk"}, ("other_teams",)),
        ({"workflow": "teams", "source": "helpdesk"}, ("other_teams",)),
        ({"workflow": "flush", "role": "helpdesk", "reason": "INC"}, ("desk_flush",)),
        ({"workflow": "nothing-like-this"}, ()),
        ({"requester": "nobody-of-that-name"}, ()),
    ],
)
def test_each_filter_and_combinations_select_the_right_runs(
    client_for, admin_user, world, query, expected
):
    assert shown(client_for(admin_user).get(LIST, query)) == ids(world, *expected)


def test_the_date_range_defaults_to_the_last_seven_days(client_for, helpdesk, world):
    client = client_for(helpdesk)
    today = timezone.localdate()
    page = client.get(LIST)
    assert world["runs"]["old"].pk not in shown(page)
    html = page.content.decode()
    assert f'value="{(today - timedelta(days=6)).isoformat()}"' in html  # the From field
    # An empty "From" asks for no lower bound.
    assert shown(client.get(LIST, {"since": ""})) == ids(world, "desk_flush", "old")
    old_day = today - timedelta(days=20)
    assert shown(
        client.get(LIST, {"since": old_day.isoformat(), "until": old_day.isoformat()})
    ) == ids(world, "old")
    # "until" alone: the week ending that day.
    assert shown(client.get(LIST, {"until": (old_day + timedelta(days=3)).isoformat()})) == ids(
        world, "old"
    )


def test_date_filters_are_whole_days_in_the_viewers_time_zone(
    client_for, admin_user, helpdesk, flush
):
    # 23:30 UTC on 1 March is already 2 March in Zurich (UTC+1 in winter).
    run = make_run(helpdesk, flush)
    Run.objects.filter(pk=run.pk).update(created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    client = client_for(admin_user)
    march_2 = {"since": "2026-03-02", "until": "2026-03-02"}
    march_1 = {"since": "2026-03-01", "until": "2026-03-01"}
    client.cookies["portal_tz"] = "Europe/Zurich"
    assert shown(client.get(LIST, march_2)) == [run.pk]
    assert shown(client.get(LIST, march_1)) == []
    assert "Europe/Zurich" in client.get(LIST, march_2).content.decode()
    client.cookies["portal_tz"] = "UTC"
    assert shown(client.get(LIST, march_1)) == [run.pk]


# --- what is ignored, and said so --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"status": "bogus"}, "Unknown status &#x27;bogus&#x27;"),
        ({"outcome": "meh"}, "Unknown outcome"),
        ({"role": "boss"}, "Unknown role"),
        ({"source": "fax"}, "Unknown source"),
        ({"since": "yesterday"}, "is not a date like"),
        ({"until": "2026-02-30"}, "is not a date like"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "is after"),
        ({"mine": "yes"}, "must be 1 or 0"),
        ({"wokflow": "flush"}, "Unknown filter &#x27;wokflow&#x27;"),
        ({"before": "abc"}, "not one this history has"),
    ],
)
def test_an_unusable_value_is_ignored_with_a_message(client_for, admin_user, world, query, message):
    response = client_for(admin_user).get(LIST, query)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="ignored"' in html and message in html
    # Nothing else is narrowed by it: the default view is shown.
    assert shown(response) == ids(world, "emp_self", "desk_flush", "other_teams", "admin_cli")


def test_hostile_values_never_break_the_page(client_for, admin_user, world):
    client = client_for(admin_user)
    for value in ("\x00", "x" * 5000, "'; DROP TABLE x; --", "%", "_", "\\"):
        for name in ("workflow", "requester", "target", "reason", "since", "status"):
            assert client.get(LIST, {name: value}).status_code == 200
            assert client.get(EXPORT, {name: value}).status_code in (200, 400)


def test_the_export_refuses_filters_it_cannot_use_rather_than_export_the_wrong_rows(
    client_for, admin_user, world
):
    response = client_for(admin_user).get(EXPORT, {"status": "bogus"})
    assert response.status_code == 400
    assert "Nothing was exported" in response.content.decode()


# --- keyset pages ------------------------------------------------------------------------------


def test_keyset_pages_go_past_the_first_page_keeping_the_filters(
    client_for, admin_user, helpdesk, flush, teams, monkeypatch
):
    monkeypatch.setattr(history, "PAGE_SIZE", 3)
    wanted = [make_run(helpdesk, flush, targets=(("PC-9", Outcome.FAILURE),)).pk for _ in range(7)]
    for _ in range(4):  # interleaved runs the filter leaves out
        make_run(helpdesk, teams, targets=(("PC-9", Outcome.FAILURE),))
        make_run(helpdesk, flush, targets=(("PC-1", Outcome.FAILURE),))
    client = client_for(admin_user)
    query = {"workflow": "flush", "target": "pc-9", "outcome": "failure"}
    seen: list[int] = []
    url = LIST + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    pages = 0
    while url:
        response = client.get(url)
        seen += shown(response)
        pages += 1
        html = response.content.decode()
        marker = 'href="/runs/?'
        older = [
            p for p in html.split(marker)[1:] if 'data-testid="runs-older"' in p.split(">", 1)[0]
        ]
        url = ("/runs/?" + older[0].split('"', 1)[0].replace("&amp;", "&")) if older else ""
        if url:
            assert "workflow=flush" in url and "target=pc-9" in url and "outcome=failure" in url
    assert seen == sorted(wanted, reverse=True)
    assert pages == 3


def test_a_page_reads_a_bounded_number_of_rows_and_never_counts_the_table(
    client_for, admin_user, helpdesk, flush
):
    for _ in range(60):
        make_run(helpdesk, flush)
    client = client_for(admin_user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST, {"workflow": "flush", "target": "laptop-1"})
    assert len(shown(response)) == 50
    assert "More than 50 runs match" in response.content.decode()
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "COUNT(" not in sql and "OFFSET" not in sql
    assert len(queries.captured_queries) <= 12
    # A list decodes no JSON it does not show: the run's parameters, the catalogue's raw answer.
    assert '"WORKFLOWS_APP_RUN"."PARAMS"' not in sql and '"WORKFLOWS_APP_WORKFLOW"."RAW"' not in sql


def test_parsed_filters_round_trip_through_the_url(admin_user, helpdesk):
    params = {
        "workflow": "#flush",
        "requester": "helpdesk",
        "role": "helpdesk",
        "source": "cli",
        "status": "failed",
        "outcome": "failure",
        "target": "LAPTOP-42",
        "reason": "INC1",
        "since": "2026-01-01",
        "until": "2026-01-31",
        "mine": "1",
    }
    filters, ignored = parse_filters(params, admin_user)
    assert ignored == []
    assert filters.role == "Helpdesk" and filters.since == date(2026, 1, 1) and filters.mine
    again, _ = parse_filters(filters.as_query(), admin_user)
    assert again == filters
    # The helpdesk's own default (only theirs) is not written into links.
    desk, _ = parse_filters({}, helpdesk, today=date(2026, 1, 10))
    assert desk.mine and "mine" not in desk.as_query()
    assert desk.as_query() == {"since": "2026-01-04"}
    assert parse_filters({"since": ""}, helpdesk)[0].as_query() == {"since": ""}
    assert history_page(helpdesk, HistoryFilters(mine=True)).runs == []


# --- exports -------------------------------------------------------------------------------------


def test_the_history_export_has_one_row_per_run_with_the_filters_applied(
    client_for, admin_user, world
):
    response = client_for(admin_user).get(EXPORT, {"workflow": "flush"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    today = timezone.localdate().isoformat()
    assert 'filename="runs-flush-from-' in response["Content-Disposition"]
    assert today in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [int(r["run"]) for r in rows] == ids(world, "desk_flush", "admin_cli")
    desk = rows[1] if int(rows[0]["run"]) == world["runs"]["admin_cli"].pk else rows[0]
    assert desk["requester"] == "helpdesk" and desk["workflow"] == "Fix internet access"
    assert desk["workflow_nql_id"] == "#flush_dns_cache" and desk["targets"] == "2"
    assert (desk["succeeded"], desk["failed"], desk["status"]) == ("1", "1", "partial")
    assert desk["reason"] == "INC0012345 user cannot browse"
    assert desk["created_utc"].endswith("Z")


def test_exports_neutralise_cells_a_spreadsheet_would_run(
    client_for, admin_user, helpdesk, flush, world
):
    make_run(helpdesk, flush, reason="+SUM(1)", targets=(("@evil", Outcome.SUCCESS), ("-1", "")))
    client = client_for(admin_user)
    reasons = {r["reason"] for r in csv_rows(client.get(EXPORT))}
    assert "'=cmd|' /C calc'!A0" in reasons and "'+SUM(1)" in reasons
    run = Run.objects.get(reason="+SUM(1)")
    values = [r["value"] for r in csv_rows(client.get(f"/runs/{run.pk}/targets.csv"))]
    assert values == ["'@evil", "'-1"]


def test_a_runs_targets_export_has_each_target_with_its_outcome_and_details(
    client_for, admin_user, employee, world
):
    run = world["runs"]["desk_flush"]
    Target.objects.filter(run=run, position=1).update(outcome_details="Script exited with 3")
    client = client_for(admin_user)
    response = client.get(f"/runs/{run.pk}/targets.csv")
    assert response.status_code == 200 and response.streaming
    assert f"run-{run.pk}-targets-" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [(r["position"], r["value"], r["outcome"], r["details"]) for r in rows] == [
        ("1", "LAPTOP-42", "success", ""),
        ("2", "laptop-43", "failure", "Script exited with 3"),
    ]
    failed = csv_rows(client.get(f"/runs/{run.pk}/targets.csv", {"outcome": "failure"}))
    assert [r["value"] for r in failed] == ["laptop-43"]
    assert client.get(f"/runs/{run.pk}/targets.csv", {"outcome": "nope"}).status_code == 400
    # An employee may not read someone else's run, not even as CSV.
    assert client_for(employee).get(f"/runs/{run.pk}/targets.csv").status_code == 404


def test_exports_stream_in_chunks_in_constant_memory(
    client_for, admin_user, helpdesk, flush, monkeypatch
):
    monkeypatch.setattr(history, "EXPORT_CHUNK", 4)
    for _ in range(15):
        make_run(helpdesk, flush)
    client = client_for(admin_user)
    with CaptureQueriesContext(connection) as before_reading:
        response = client.get(EXPORT)
    # Nothing of the history is read before the first line is asked for.
    assert not any("workflows_app_run" in q["sql"] for q in before_reading.captured_queries)
    lines = iter(response.streaming_content)
    assert next(lines) == "\ufeff".encode()
    assert next(lines).startswith(b"run,created_utc,requester")
    assert next(lines).split(b",")[0].isdigit()
    assert len(list(lines)) == 14


def test_counts_are_shown_with_thousands_separators_and_the_run_page_links_its_export(
    client_for, admin_user, helpdesk, flush
):
    many = tuple((f"PC-{i}", Outcome.SUCCESS if i % 2 else Outcome.FAILURE) for i in range(1234))
    run = make_run(helpdesk, flush, targets=many)
    client = client_for(admin_user)
    listed = client.get(LIST).content.decode()
    assert "<strong>1,234</strong>" in listed and "Succeeded 617" in listed
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "of 1,234" in page and "All 1,234" in page
    assert f'href="/runs/{run.pk}/targets.csv"' in page
    failed = client.get(f"/runs/{run.pk}/", {"outcome": "failure"}).content.decode()
    assert f'href="/runs/{run.pk}/targets.csv?outcome=failure"' in failed
