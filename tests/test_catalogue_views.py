"""The catalogue pages and the admin console: filters, roles, htmx partials, refresh, sync."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from workflows_app.models import (
    Batch,
    BatchState,
    CatalogueSync,
    ParameterDefinition,
    Run,
    Workflow,
    WorkflowCuration,
)
from workflows_app.nexthink.models import Dependency, TriggerMethod
from workflows_app.permissions import NotAllowed, NotRunnable, permit
from workflows_app.selectors.catalogue import glob_to_like, name_matches, visible_workflows
from workflows_app.services import dispatch
from workflows_app.services.catalogue_sync import sync_catalogue

pytestmark = pytest.mark.django_db

ROW = re.compile(r'data-nql-id="([^"]+)"')


@pytest.fixture
def synced(nexthink_settings, simulator) -> CatalogueSync:
    sync = sync_catalogue(trigger="test")
    assert sync.status == CatalogueSync.Status.SUCCEEDED, sync.error
    return sync


def listed(client: Any, query: str = "", **headers: Any) -> tuple[list[str], str]:
    response = client.get(f"/workflows/?{query}", **headers)
    assert response.status_code == 200, response.status_code
    text = html.unescape(response.content.decode())
    return ROW.findall(text), text


def active_ids(workflows: list[Any]) -> set[str]:
    return {w.id for w in workflows if w.is_active}


def make_row(nql_id: str, name: str, **fields: Any) -> Workflow:
    now = timezone.now()
    values = {
        "uuid": "00000000-0000-0000-0000-000000000000",
        "status": Workflow.Status.ACTIVE,
        "dependency": "DEVICE",
        "trigger_api": True,
        "first_seen": now,
        "last_seen": now,
        "last_update_time": now,
    }
    values.update(fields)
    return Workflow.objects.create(nql_id=nql_id, name=name, **values)


# --- filters ----------------------------------------------------------------------------------


def test_every_filter_combination_lists_what_nexthink_lists(
    synced, nexthink_client, client_for, helpdesk
):
    client = client_for(helpdesk)
    by_combo = {
        (dep, trig): active_ids(nexthink_client.list_workflows(dep, trig))
        for dep in Dependency
        for trig in TriggerMethod
    }
    for (dep, trig), expected in by_combo.items():
        ids, _ = listed(client, f"dependency={dep}&trigger={trig}")
        assert sorted(ids) == sorted(expected), (dep, trig)
    for dep in Dependency:
        ids, _ = listed(client, f"dependency={dep}")
        expected = set().union(*(by_combo[dep, trig] for trig in TriggerMethod))
        assert sorted(ids) == sorted(expected), dep
    for trig in TriggerMethod:
        ids, _ = listed(client, f"trigger={trig}")
        expected = set().union(*(by_combo[dep, trig] for dep in Dependency))
        assert sorted(ids) == sorted(expected), trig
    everything = set().union(*by_combo.values())
    assert sorted(listed(client)[0]) == sorted(everything)


def test_admin_including_inactive_sees_what_nexthink_lists_unfiltered(
    synced, nexthink_client, client_for, admin_user
):
    client = client_for(admin_user)
    for dep in Dependency:
        for trig in TriggerMethod:
            expected = {w.id for w in nexthink_client.list_workflows(dep, trig)}
            ids, _ = listed(client, f"dependency={dep}&trigger={trig}&include=inactive")
            assert sorted(ids) == sorted(expected), (dep, trig)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("teams", {"#clear_teams_cache"}),
        ("TEAMS", {"#clear_teams_cache"}),
        ("clear*cache", {"#clear_teams_cache", "#clear_browser_cache"}),
        ("clear*", {"#clear_teams_cache", "#clear_browser_cache"}),
        ("?eset*", {"#reset_network_adapter", "#reset_mfa"}),
        ("*cache", {"#clear_teams_cache", "#clear_browser_cache", "#flush_dns_cache"}),
        ("cache*", set()),
        ("reset mf?", {"#reset_mfa"}),
        ("nothing like this", set()),
    ],
)
def test_name_search_takes_substrings_and_globs(synced, client_for, helpdesk, q, expected):
    ids, _ = listed(client_for(helpdesk), f"q={q}")
    assert set(ids) == expected


def test_search_treats_regex_characters_literally(db, client_for, helpdesk):
    make_row("#odd", "Fix (legacy) [v2] 1+1 $HOME ^x|y\\z")
    make_row("#plain", "Fix legacy v2")
    client = client_for(helpdesk)
    for q in ["(legacy) [v2] 1+1", "*[v2] 1+? $HOME ^x|y\\z", "fix (*", "*\\z", "*|*"]:
        assert listed(client, f"q={q.replace('+', '%2B')}")[0] == ["#odd"], q
    for q in ["(", "[", "*.*[", "\\", "+", "^*$"]:
        listed(client, f"q={q.replace('+', '%2B')}")  # no 500 whatever the input
    assert glob_to_like("a.b*") == "a.b%"
    # LIKE's own wildcards are literal too.
    make_row("#percent", "Fix 100% of_it")
    make_row("#other", "Fix 1000 offit")
    for q in ["fix 100%*", "*0% of_*", "*0?% of_it", "100%", "of_"]:
        assert listed(client, f"q={q.replace('%', '%25')}")[0] == ["#percent"], q
    assert glob_to_like("a%b_c\\*") == "a\\%b\\_c\\\\%"


def test_hostile_glob_collapses_to_a_pattern_without_wildcard_runs(db, client_for, helpdesk):
    """`*?*?…!` held a server for seconds as a backtracking regex; it is now one short LIKE."""
    hostile = "*?" * 12 + "!"
    assert glob_to_like(hostile) == "_" * 12 + "%!"
    assert glob_to_like("**a***?**b?*?") == "%a_%b__%"
    for pattern in [hostile, "*?" * 100, "?*" * 100 + "x", "a" + "*" * 199]:
        like = glob_to_like(pattern)
        assert "%%" not in like and "%_" not in like, like  # one `%` per run, `_`s before it
    sql = str(Workflow.objects.filter(name_matches(hostile)).query)
    assert " LIKE " in sql and "REGEXP" not in sql and "~" not in sql, sql
    make_row("#long", "x" * 12 + "!")
    make_row("#short", "x" * 11 + "!")
    make_row("#no_bang", "x" * 40)
    assert listed(client_for(helpdesk), f"q={hostile}")[0] == ["#long"]


def test_sorts_by_name_and_by_update_time_with_unknown_times_last(db, client_for, helpdesk):
    make_row("#b", "Bravo", last_update_time=datetime(2025, 1, 1, tzinfo=UTC))
    make_row("#a", "Alpha", last_update_time=datetime(2025, 3, 1, tzinfo=UTC))
    make_row("#c", "Charlie", last_update_time=None)
    client = client_for(helpdesk)

    assert listed(client)[0] == ["#a", "#b", "#c"]
    assert listed(client, "sort=-name")[0] == ["#c", "#b", "#a"]
    assert listed(client, "sort=updated")[0] == ["#b", "#a", "#c"]
    assert listed(client, "sort=-updated")[0] == ["#a", "#b", "#c"]


def test_pages_hold_25_workflows_and_keep_the_filters(db, client_for, helpdesk):
    for n in range(60):
        make_row(f"#wf_{n:02}", f"Workflow {n:02}", dependency="USER" if n % 2 else "DEVICE")
    make_row("#other", "Other", dependency="NONE")
    client = client_for(helpdesk)

    first, text = listed(client, "dependency=DEVICE")
    assert len(first) == 25 and "page 1 of 2" in text
    assert "?dependency=DEVICE&page=2" in text
    second, _ = listed(client, "dependency=DEVICE&page=2")
    assert len(second) == 5 and not set(first) & set(second)


@pytest.mark.parametrize(
    ("query", "notice"),
    [
        ("dependency=FOO", "Unknown dependency 'FOO' ignored"),
        ("trigger=EMAIL", "Unknown trigger method 'EMAIL' ignored"),
        ("sort=bogus", "Unknown sort 'bogus' ignored"),
        ("page=abc", "Unknown page 'abc' ignored"),
        ("page=999", "There is no page 999"),
        ("page=0", "Unknown page '0' ignored"),
        ("include=everything", "Unknown include 'everything' ignored"),
        ("include=inactive", "Only admins can include inactive workflows"),
    ],
)
def test_unknown_filter_values_are_ignored_with_a_notice(
    synced, client_for, helpdesk, query, notice
):
    ids, text = listed(client_for(helpdesk), query)
    assert notice in text
    assert len(ids) == Workflow.objects.filter(status="ACTIVE").count()


def test_an_htmx_request_gets_only_the_list_partial(synced, client_for, helpdesk):
    client = client_for(helpdesk)
    response = client.get("/workflows/?trigger=SCHEDULER", HTTP_HX_REQUEST="true")

    text = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in text and "<form" not in text
    assert 'data-nql-id="#free_up_disk_space"' in text
    assert "HX-Request" in response["Vary"]
    full = client.get("/workflows/?trigger=SCHEDULER").content.decode()
    assert "<html" in full and 'hx-push-url="true"' in full and 'id="catalogue-list"' in full


def test_history_restore_gets_the_whole_page(synced, client_for, helpdesk):
    response = client_for(helpdesk).get(
        "/workflows/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_page_views_never_call_nexthink(synced, simulator, client_for, admin_user):
    client = client_for(admin_user)
    workflow = Workflow.objects.get(nql_id="#clear_teams_cache")
    before = (len(simulator.state.requests), simulator.state.token_requests)

    assert client.get("/workflows/?include=inactive&include=removed").status_code == 200
    assert (
        client.get("/workflows/?q=clear*&sort=-updated", HTTP_HX_REQUEST="true").status_code == 200
    )
    assert client.get(f"/workflows/{workflow.pk}/").status_code == 200
    assert client.get("/console/").status_code == 200

    assert (len(simulator.state.requests), simulator.state.token_requests) == before


def test_rows_show_badges_run_links_and_the_last_sync(synced, client_for, helpdesk):
    _, text = listed(client_for(helpdesk))
    scheduler_only = Workflow.objects.get(nql_id="#install_pending_windows_updates")
    teams = Workflow.objects.get(nql_id="#clear_teams_cache")

    row = _row(text, scheduler_only.nql_id)
    assert "Not runnable from the portal" in row and "/run/" not in row
    # API-enabled but without dependency: the execute API needs a target, so no Run either.
    row = _row(text, "#onboard_new_joiner")
    assert "Not runnable from the portal" in row and "/run/" not in row
    row = _row(text, teams.nql_id)
    assert "Not runnable" not in row and f'href="/workflows/{teams.pk}/run/"' in row
    assert ">API<" in row and ">MANUAL<" in row and "Active" in row
    assert "Catalogue last synced from Nexthink" in text


def _row(text: str, nql_id: str) -> str:
    start = text.index(f'data-nql-id="{nql_id}"')
    return text[start : text.index("</tr>", start)]


# --- roles ------------------------------------------------------------------------------------


def test_anonymous_goes_to_login_and_employees_are_refused(db, client, client_for, employee):
    response = client.get("/workflows/?trigger=API")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/workflows/1/").status_code == 302
    assert client_for(employee).get("/workflows/").status_code == 403


def test_helpdesk_sees_active_workflows_only(synced, simulator, client_for, helpdesk):
    simulator.catalogue.remove("#reset_mfa")
    sync_catalogue(trigger="test")

    ids, _ = listed(client_for(helpdesk), "include=inactive&include=removed")

    assert "#disable_usb_storage" not in ids and "#reset_mfa" not in ids
    assert set(ids) == set(
        Workflow.objects.filter(status="ACTIVE", removed_at=None).values_list("nql_id", flat=True)
    )


def test_admin_may_include_inactive_and_removed(synced, simulator, client_for, admin_user):
    simulator.catalogue.remove("#reset_mfa")
    sync_catalogue(trigger="test")
    client = client_for(admin_user)

    default, _ = listed(client)
    inactive, text = listed(client, "include=inactive")
    removed, _ = listed(client, "include=removed")
    both, _ = listed(client, "include=inactive&include=removed")

    assert "#disable_usb_storage" not in default and "#reset_mfa" not in default
    assert "#disable_usb_storage" in inactive and "#reset_mfa" not in inactive
    assert "Inactive" in _row(text, "#disable_usb_storage")
    assert "#reset_mfa" in removed and "#disable_usb_storage" not in removed
    assert set(both) == set(Workflow.objects.values_list("nql_id", flat=True))


def test_the_run_rule_follows_the_role_rules(db, make_user):
    from workflows_app.roles import Role

    helpdesk, admin, employee = (
        make_user(n, r) for n, r in [("h", Role.HELPDESK), ("a", Role.ADMIN), ("e", Role.EMPLOYEE)]
    )
    open_one = make_row("#open", "Open")
    admins_only = make_row("#admins", "Admins only")
    WorkflowCuration.objects.create(workflow=admins_only, allowed_roles=["Admin"])
    self_service = make_row("#ss", "Self-service")
    WorkflowCuration.objects.create(workflow=self_service, self_service=True)
    no_api = make_row("#no_api", "No API", trigger_api=False)
    inactive = make_row("#inactive", "Inactive", status="INACTIVE")
    form, own_device = Run.Source.HELPDESK, Run.Source.SELF_SERVICE

    assert list(visible_workflows(employee)) == [self_service]
    assert set(visible_workflows(helpdesk)) == {open_one, admins_only, self_service, no_api}
    assert permit(helpdesk, open_one, form).workflow == open_one
    assert permit(admin, admins_only, form).role is Role.ADMIN
    assert permit(employee, self_service, own_device).workflow == self_service
    with pytest.raises(NotAllowed, match="role may not"):
        permit(helpdesk, admins_only, form)
    with pytest.raises(NotRunnable, match="API trigger"):
        permit(helpdesk, no_api, form)
    with pytest.raises(NotRunnable, match="inactive"):
        permit(admin, inactive, form)
    with pytest.raises(NotRunnable, match="inactive"):
        permit(helpdesk, inactive, form)
    with pytest.raises(NotAllowed, match="not offered for self-service"):
        permit(employee, open_one, own_device)
    with pytest.raises(NotAllowed, match="self-service page"):
        permit(employee, self_service, form)


# --- detail and refresh -----------------------------------------------------------------------


def test_detail_shows_what_the_workflow_needs_its_parameters_and_runs(synced, client_for, helpdesk):
    workflow = Workflow.objects.get(nql_id="#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", label="Why")
    ParameterDefinition.objects.create(
        workflow=workflow, name="Token", secret=True, default="never-shown-9f1c"
    )
    run = Run.objects.create(
        created_by=helpdesk,
        role="Helpdesk",
        source=Run.Source.HELPDESK,
        workflow=workflow,
        workflow_nql_id=workflow.nql_id,
        workflow_uuid=workflow.uuid,
        workflow_name=workflow.name,
        dependency=workflow.dependency,
        api_version="v2",
        target_count=3,
    )

    response = client_for(helpdesk).get(f"/workflows/{workflow.pk}/")

    text = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "Needs users" in text and workflow.uuid in text and workflow.description in text
    assert "Reason" in text and "Secret" in text and "never-shown-9f1c" not in text
    assert f'href="/runs/{run.pk}/"' in text and "helpdesk" in text
    assert "<details>" in text and '"lastUpdateTime"' in text


@pytest.mark.parametrize(
    ("nql_id", "needs"),
    [
        ("#clear_teams_cache", "Needs devices"),
        ("#repair_outlook_profile", "Needs a user and a device"),
        ("#onboard_new_joiner", "Needs no target"),
    ],
)
def test_detail_says_which_targets_are_needed(synced, client_for, helpdesk, nql_id, needs):
    workflow = Workflow.objects.get(nql_id=nql_id)
    assert needs in client_for(helpdesk).get(f"/workflows/{workflow.pk}/").content.decode()


def test_detail_refuses_what_the_role_may_not_see(
    synced, client, client_for, employee, helpdesk, admin_user
):
    inactive = Workflow.objects.get(nql_id="#disable_usb_storage")
    assert client_for(helpdesk).get(f"/workflows/{inactive.pk}/").status_code == 404
    assert client_for(helpdesk).get("/workflows/999999/").status_code == 404
    assert client_for(employee).get(f"/workflows/{inactive.pk}/").status_code == 403
    assert client_for(admin_user).get(f"/workflows/{inactive.pk}/").status_code == 200


def test_refresh_updates_the_row_from_the_details_endpoint(synced, simulator, client_for, helpdesk):
    workflow = Workflow.objects.get(nql_id="#clear_teams_cache")
    teams = simulator.catalogue.get("#clear_teams_cache")
    simulator.catalogue.put(replace(teams, name="Clear Teams cache (new)", description="New."))

    response = client_for(helpdesk).post(f"/workflows/{workflow.pk}/refresh/", follow=True)

    assert response.redirect_chain[-1][0] == f"/workflows/{workflow.pk}/"
    assert "refreshed from Nexthink" in html.unescape(response.content.decode())
    workflow.refresh_from_db()
    assert (workflow.name, workflow.description) == ("Clear Teams cache (new)", "New.")
    assert workflow.raw["name"] == "Clear Teams cache (new)"
    details = [r for r in simulator.state.requests if r.path == "/api/v1/workflows/details"]
    assert len(details) == 1
    assert parse_qs(details[0].query, keep_blank_values=True) == {"nqlId": ["#clear_teams_cache"]}


def test_refresh_failure_is_a_message_not_a_500(synced, simulator, client_for, helpdesk):
    workflow = Workflow.objects.get(nql_id="#clear_teams_cache")
    simulator.faults.configure(fail_next=[403])

    response = client_for(helpdesk).post(f"/workflows/{workflow.pk}/refresh/", follow=True)

    assert response.status_code == 200
    assert "Could not refresh" in html.unescape(response.content.decode())
    assert Workflow.objects.get(pk=workflow.pk).name == "Clear Teams cache"


def test_refresh_of_a_workflow_gone_upstream_says_so(synced, simulator, client_for, helpdesk):
    workflow = Workflow.objects.get(nql_id="#reset_mfa")
    simulator.catalogue.remove("#reset_mfa")

    response = client_for(helpdesk).post(f"/workflows/{workflow.pk}/refresh/", follow=True)

    assert "no longer knows #reset_mfa" in html.unescape(response.content.decode())


def test_refresh_refusals(synced, client, client_for, employee, helpdesk):
    workflow = Workflow.objects.get(nql_id="#clear_teams_cache")
    url = f"/workflows/{workflow.pk}/refresh/"
    assert client.post(url).status_code == 302
    assert client_for(employee).post(url).status_code == 403
    assert client_for(helpdesk).get(url).status_code == 405
    assert client_for(helpdesk).post("/workflows/999999/refresh/").status_code == 404


# --- console ----------------------------------------------------------------------------------


class FakeQueue:
    """Stands in for the broker: records the catalogue syncs asked for."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def enqueue_catalogue_sync(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.fixture
def fake_sync_task(monkeypatch) -> FakeQueue:
    fake = FakeQueue()
    monkeypatch.setattr(dispatch, "enqueue_catalogue_sync", fake.enqueue_catalogue_sync)
    return fake


def test_console_is_for_admins_only(db, client_for, helpdesk, employee):
    assert client_for(helpdesk).get("/console/").status_code == 403
    assert client_for(employee).post("/console/sync/").status_code == 403


def test_console_shows_the_last_sync_counts_and_unknown_batches(
    synced, simulator, client_for, admin_user
):
    simulator.faults.configure(fail_next=[503, 503, 503, 503])
    failed = sync_catalogue(trigger="test")
    workflow = Workflow.objects.get(nql_id="#clear_teams_cache")
    run = Run.objects.create(
        created_by=admin_user,
        role="Admin",
        source=Run.Source.HELPDESK,
        workflow=workflow,
        workflow_nql_id=workflow.nql_id,
        workflow_uuid=workflow.uuid,
        workflow_name=workflow.name,
        dependency=workflow.dependency,
        api_version="v2",
    )
    Batch.objects.create(
        run=run,
        number=2,
        state=BatchState.UNKNOWN,
        api_version="v2",
        target_count=7,
        request_uuid="",
        error_code="OUTCOME_UNKNOWN",
        error_details="no answer within 30 s",
    )

    text = html.unescape(client_for(admin_user).get("/console/").content.decode())

    assert failed.error in text and "Failed" in text
    active = Workflow.objects.filter(status="ACTIVE").count()
    inactive = Workflow.objects.filter(status="INACTIVE").count()
    assert f"<strong>{active}</strong> active" in text
    assert f"<strong>{inactive}</strong> inactive" in text
    assert "Needs reconciliation" in text and f'href="/runs/{run.pk}/"' in text
    assert "no answer within 30 s" in text and "OUTCOME_UNKNOWN" in text
    assert f"<td>{synced.added}</td>" in text  # the earlier sync, in the history table
    assert 'href="/console/curation/"' in text


def test_sync_button_posts_only_and_enqueues_the_task(db, client_for, admin_user, fake_sync_task):
    client = client_for(admin_user)
    assert client.get("/console/sync/").status_code == 405

    response = client.post("/console/sync/", follow=True)

    assert response.redirect_chain[-1][0] == "/console/"
    assert "Catalogue sync started" in response.content.decode()
    assert fake_sync_task.calls == [{"trigger": "admin", "requested_by_id": admin_user.pk}]


def test_sync_button_does_not_start_a_second_sync(db, client_for, admin_user, fake_sync_task):
    CatalogueSync.objects.create(trigger="schedule")

    response = client_for(admin_user).post("/console/sync/", follow=True)

    assert "already running" in response.content.decode()
    assert fake_sync_task.calls == []
