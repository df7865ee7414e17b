"""The catalogue sync against the simulator over real HTTP: what it writes, counts and refuses."""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import replace
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from tests.nexthink_fixtures import CONTROL_HEADERS
from workflows_app.models import CatalogueSync, Workflow
from workflows_app.nexthink.client import NexthinkClient
from workflows_app.permissions import Blocker, blockers
from workflows_app.services.catalogue_sync import sync_catalogue
from workflows_app.simulator import SimWorkflow

pytestmark = pytest.mark.django_db

LIST_PATH = "/api/v1/workflows"
TRIGGER_COLUMNS = {
    "API": "trigger_api",
    "MANUAL": "trigger_manual",
    "MANUAL_MULTIPLE": "trigger_manual_multiple",
    "SCHEDULER": "trigger_scheduler",
}


def list_requests(simulator: Any) -> list[Any]:
    return [r for r in simulator.state.requests if r.path == LIST_PATH]


def snapshot() -> list[dict[str, Any]]:
    """Every stored field of every workflow row, to prove a failed sync touched nothing."""
    return list(Workflow.objects.order_by("nql_id").values())


class UnreadableDate(SimWorkflow):
    """A workflow whose payload has a lastUpdateTime no parser accepts."""

    def to_payload(self, trigger_shape: Any = "flags") -> dict[str, Any]:
        payload = super().to_payload(trigger_shape)
        payload["lastUpdateTime"] = "last tuesday"
        return payload


class NotAnObject(SimWorkflow):
    """A workflow the API answers as a bare string."""

    def to_payload(self, trigger_shape: Any = "flags") -> Any:  # type: ignore[override]
        return "surprise"


def test_sync_fills_the_catalogue_with_exactly_the_simulators_workflows(
    nexthink_settings, simulator
):
    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.SUCCEEDED, sync.error
    expected = {w.id: w for w in simulator.catalogue.all()}
    assert (sync.added, sync.changed, sync.removed, sync.unchanged) == (len(expected), 0, 0, 0)
    rows = {row.nql_id: row for row in Workflow.objects.all()}
    assert set(rows) == set(expected)
    for nql_id, sim in expected.items():
        row = rows[nql_id]
        assert (row.uuid, row.name, row.description) == (sim.uuid, sim.name, sim.description)
        assert (row.status, row.dependency) == (sim.status, sim.dependency)
        assert row.last_update_time == sim.last_update_time
        assert set(row.trigger_methods) == set(sim.trigger_methods), nql_id
        assert row.raw["id"] == nql_id
        assert row.removed_at is None
        assert row.first_seen == row.last_seen


def test_sync_asks_every_combination_once_including_inactive_workflows(
    nexthink_settings, simulator
):
    sync_catalogue(trigger="test")

    seen = list_requests(simulator)
    combos = {(q["dependency"][0], q["triggerMethod"][0]) for q in map(_query, seen)}
    assert len(seen) == 16 and len(combos) == 16
    assert not any("fetchOnlyActiveWorkflows" in r.query for r in seen)
    assert Workflow.objects.filter(status=Workflow.Status.INACTIVE).exists()


def _query(record: Any) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs(record.query)


def test_trigger_methods_given_as_a_list_are_understood(nexthink_settings, simulator):
    simulator.configure(trigger_shape="list")

    sync_catalogue(trigger="test")

    for sim in simulator.catalogue.all():
        row = Workflow.objects.get(nql_id=sim.id)
        assert set(row.trigger_methods) == set(sim.trigger_methods)


def test_running_it_twice_without_upstream_change_changes_nothing(nexthink_settings, simulator):
    sync_catalogue(trigger="test")
    before = snapshot()

    second = sync_catalogue(trigger="test")

    assert second.status == CatalogueSync.Status.SUCCEEDED
    assert (second.added, second.changed, second.removed) == (0, 0, 0)
    assert second.unchanged == len(simulator.catalogue.all())
    after = snapshot()
    strip = [{k: v for k, v in row.items() if k != "last_seen"} for row in after]
    assert strip == [{k: v for k, v in row.items() if k != "last_seen"} for row in before]
    assert all(a["last_seen"] > b["last_seen"] for a, b in zip(after, before, strict=True))


def test_a_changed_workflow_is_counted_and_updated(nexthink_settings, simulator):
    sync_catalogue(trigger="test")
    teams = simulator.catalogue.get("#clear_teams_cache")
    simulator.catalogue.put(replace(teams, name="Clear Teams cache v2", status="INACTIVE"))

    sync = sync_catalogue(trigger="test")

    assert (sync.added, sync.changed, sync.removed) == (0, 1, 0)
    row = Workflow.objects.get(nql_id="#clear_teams_cache")
    assert (row.name, row.status) == ("Clear Teams cache v2", "INACTIVE")


def test_a_workflow_removed_upstream_is_marked_removed_and_kept(nexthink_settings, simulator):
    sync_catalogue(trigger="test")
    control = f"{simulator.base_url}/_simulator/workflows/%23reset_mfa/remove"
    request = urllib.request.Request(control, method="POST", headers=CONTROL_HEADERS)
    with urllib.request.urlopen(request, timeout=5) as r:
        assert json.load(r) == {"removed": "#reset_mfa"}

    sync = sync_catalogue(trigger="test")

    assert (sync.added, sync.changed, sync.removed) == (0, 0, 1)
    row = Workflow.objects.get(nql_id="#reset_mfa")
    assert row.removed_at is not None and Blocker.REMOVED in blockers(row)
    again = sync_catalogue(trigger="test")
    assert (again.removed, again.changed) == (0, 0), "a removed workflow is removed only once"


def test_a_workflow_that_comes_back_is_un_removed_and_counted_changed(nexthink_settings, simulator):
    sync_catalogue(trigger="test")
    simulator.catalogue.remove("#reset_mfa")
    sync_catalogue(trigger="test")
    simulator.catalogue.restore("#reset_mfa")

    sync = sync_catalogue(trigger="test")

    assert (sync.added, sync.changed, sync.removed) == (0, 1, 0)
    assert Workflow.objects.get(nql_id="#reset_mfa").removed_at is None


def test_a_5xx_storm_fails_the_sync_and_leaves_the_catalogue_untouched(
    nexthink_settings, simulator
):
    sync_catalogue(trigger="test")
    before = snapshot()
    simulator.catalogue.remove("#reset_mfa")
    simulator.faults.configure(error_rate=1.0)

    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.FAILED
    assert "unavailable" in sync.error and "left unchanged" in sync.error
    assert sync.finished_at is not None
    assert (sync.added, sync.changed, sync.removed, sync.unchanged) == (0, 0, 0, 0)
    assert snapshot() == before


def test_a_failure_on_a_late_call_still_changes_nothing(nexthink_settings, simulator, monkeypatch):
    """Eight answers arrive, then Nexthink starts failing: nothing from the eight is written."""
    simulator.catalogue.remove("#reset_mfa")
    calls = []
    real_list = NexthinkClient.list_workflow_items

    def list_then_storm(self: NexthinkClient, *filters: Any) -> Any:
        calls.append(filters)
        if len(calls) == 9:
            simulator.faults.configure(error_rate=1.0)
        return real_list(self, *filters)

    monkeypatch.setattr(NexthinkClient, "list_workflow_items", list_then_storm)

    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.FAILED
    assert "Listing USER_AND_DEVICE/API workflows failed" in sync.error
    assert not Workflow.objects.exists()


def test_bad_credentials_fail_the_sync_with_what_to_do(nexthink_settings, simulator):
    nexthink_settings.NEXTHINK_CLIENT_SECRET = "not-the-secret"

    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.FAILED
    assert "refused the credentials (401)" in sync.error
    assert "NEXTHINK_CLIENT_ID" in sync.error and "NEXTHINK_CLIENT_SECRET" in sync.error
    assert not Workflow.objects.exists()


def test_forbidden_fails_the_sync_naming_the_permission(nexthink_settings, simulator):
    simulator.faults.configure(fail_next=[403])

    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.FAILED
    assert "403" in sync.error and "Workflows API permission" in sync.error


def test_rate_limiting_fails_the_sync_saying_when_to_try_again(nexthink_settings, simulator):
    simulator.faults.configure(rate_limit_count=5, rate_limit_retry_after=120)

    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.FAILED
    assert "rate limiting" in sync.error and "120 s" in sync.error


def test_an_unreadable_item_is_recorded_and_the_others_are_synced(nexthink_settings, simulator):
    simulator.catalogue.put(
        UnreadableDate("#odd_one", "Odd one", "", "USER", frozenset({"SCHEDULER"}))
    )
    simulator.catalogue.put(NotAnObject("#weird", "Weird", "", "NONE", frozenset({"MANUAL"})))

    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.PARTIAL
    assert sync.added == len(simulator.catalogue.all()) - 2
    assert not Workflow.objects.filter(nql_id__in=["#odd_one", "#weird"]).exists()
    problems = {(p["dependency"], p["trigger"]): p for p in sync.problems}
    assert set(problems) == {("USER", "SCHEDULER"), ("NONE", "MANUAL")}
    assert "lastUpdateTime" in problems["USER", "SCHEDULER"]["error"]
    assert "#odd_one" in problems["USER", "SCHEDULER"]["item"]
    assert problems["NONE", "MANUAL"]["item"] == '"surprise"'
    assert "could not be read" in sync.error


def test_no_workflow_is_marked_removed_from_an_incomplete_answer(nexthink_settings, simulator):
    sync_catalogue(trigger="test")
    simulator.catalogue.remove("#reset_mfa")
    simulator.catalogue.put(
        UnreadableDate("#odd_one", "Odd one", "", "USER", frozenset({"SCHEDULER"}))
    )

    sync = sync_catalogue(trigger="test")

    assert sync.status == CatalogueSync.Status.PARTIAL
    assert sync.removed == 0
    assert Workflow.objects.get(nql_id="#reset_mfa").removed_at is None


def test_a_running_sync_is_not_joined_by_another(nexthink_settings, simulator):
    running = CatalogueSync.objects.create(trigger="schedule")

    result = sync_catalogue(trigger="test")

    assert result.pk == running.pk and result.status == CatalogueSync.Status.RUNNING
    assert list_requests(simulator) == []
    assert CatalogueSync.objects.count() == 1


def test_a_sync_running_for_too_long_is_abandoned(nexthink_settings, simulator):
    stale = CatalogueSync.objects.create(trigger="schedule")
    CatalogueSync.objects.filter(pk=stale.pk).update(
        started_at=timezone.now() - timedelta(minutes=11)
    )

    sync = sync_catalogue(trigger="test")

    assert sync.pk != stale.pk and sync.status == CatalogueSync.Status.SUCCEEDED
    stale.refresh_from_db()
    assert stale.status == CatalogueSync.Status.FAILED and "Abandoned" in stale.error


@pytest.mark.django_db(transaction=True)
def test_two_syncs_started_together_do_not_interleave(nexthink_settings, simulator):
    simulator.faults.configure(latency=0.05)
    start = threading.Barrier(2)
    results: list[CatalogueSync] = []

    def run() -> None:
        try:
            start.wait(timeout=5)
            results.append(sync_catalogue(trigger="test"))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(r.status for r in results)
    assert statuses == [CatalogueSync.Status.RUNNING, CatalogueSync.Status.SUCCEEDED]
    assert results[0].pk == results[1].pk, "the refused caller gets the running sync's row"
    assert len(list_requests(simulator)) == 16
    assert CatalogueSync.objects.count() == 1


def test_the_command_prints_the_counts(nexthink_settings, simulator):
    out = StringIO()
    call_command("sync_workflows", stdout=out)
    total = len(simulator.catalogue.all())
    assert f"Catalogue synced: {total} added, 0 changed, 0 removed, 0 unchanged" in out.getvalue()

    simulator.catalogue.remove("#reset_mfa")
    out = StringIO()
    call_command("sync_workflows", stdout=out)
    expected = f"Catalogue synced: 0 added, 0 changed, 1 removed, {total - 1} unchanged"
    assert expected in out.getvalue()
    assert CatalogueSync.objects.filter(trigger="command").count() == 2


def test_the_command_lists_problems(nexthink_settings, simulator):
    simulator.catalogue.put(
        UnreadableDate("#odd_one", "Odd one", "", "USER", frozenset({"SCHEDULER"}))
    )
    out, err = StringIO(), StringIO()

    call_command("sync_workflows", stdout=out, stderr=err)

    assert "Catalogue synced:" in out.getvalue()
    assert "USER/SCHEDULER" in err.getvalue() and "#odd_one" in err.getvalue()


def test_the_command_fails_loudly_when_the_sync_fails(nexthink_settings, simulator):
    simulator.faults.configure(fail_next=[403])

    with pytest.raises(CommandError, match="Catalogue sync failed: .*403"):
        call_command("sync_workflows", stdout=StringIO())


def test_the_admin_buttons_task_records_who_asked(nexthink_settings, simulator, admin_user):
    from workflows_app.tasks import sync_catalogue_task

    sync_id = sync_catalogue_task(trigger="admin", requested_by_id=admin_user.pk)
    sync = CatalogueSync.objects.get(pk=sync_id)
    assert (sync.trigger, sync.requested_by, sync.status) == ("admin", admin_user, "succeeded")
