"""Finding a person's own identity and devices: NQL over real HTTP, cache, fallback, limits."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from workflows_app.models import DeviceAssignment, PortalSettings
from workflows_app.nexthink.models import NqlResponse
from workflows_app.roles import Role
from workflows_app.services import devices as devices_mod
from workflows_app.services.devices import (
    NOTICES,
    DeviceChoice,
    device_query_problem,
    devices_for,
    user_upn,
)
from workflows_app.simulator import SAVED_QUERIES

NQL_PATH = "/api/v2/nql/execute"
COLLECTOR = "0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40"


def nql_calls(simulator) -> int:
    return sum(1 for r in list(simulator.state.requests) if r.path == NQL_PATH)


@pytest.fixture
def no_retry_wait(monkeypatch):
    """Retries of a failing NQL call happen at once (the backoff is the client's business)."""
    monkeypatch.setattr("workflows_app.nexthink.client.time.sleep", lambda seconds: None)


def test_user_upn_is_the_account_email(employee, make_user):
    assert user_upn(employee) == "employee@example.com"
    assert user_upn(make_user("blank", Role.EMPLOYEE, email=" ")) is None
    assert user_upn(make_user("odd", Role.EMPLOYEE, email="not an address")) is None


def test_anonymous_has_no_upn():
    assert user_upn(AnonymousUser()) is None


def test_devices_come_from_nql_most_recent_first(employee, nexthink_settings, simulator):
    lookup = devices_for(employee)

    assert [d.name for d in lookup.devices] == ["EMP-LT-0142", "EMP-DT-0077", "EMP-VM-0003"]
    assert lookup.preselected.name == "EMP-LT-0142"
    assert all(d.source == "nql" and d.collector_uid and d.last_seen for d in lookup.devices)
    assert lookup.notice is None
    sent = [r for r in simulator.state.requests if r.path == NQL_PATH][-1]
    assert sent.body == {
        "queryId": "#portal_user_devices",
        "parameters": {"upn": "employee@example.com"},
    }


def test_at_most_the_configured_number_of_devices_is_offered(employee, nexthink_settings):
    PortalSettings.objects.update_or_create(pk=1, defaults={"max_devices_offered": 2})

    lookup = devices_for(employee)

    assert [d.name for d in lookup.devices] == ["EMP-LT-0142", "EMP-DT-0077"]


def test_rows_are_sorted_deduplicated_and_capped_at_three(employee, monkeypatch):
    rows = [
        {
            "device.name": f"PC-{i}",
            "device.collector.uid": f"{i:08d}-0000-4000-8000-000000000000",
            "device.last_seen": f"2026-01-0{i}T10:00:00Z",
        }
        for i in range(1, 6)
    ]
    rows.append(dict(rows[0]))  # the same device twice
    rows.append({"device.name": "", "device.collector.uid": "garbage"})  # names no device

    class FakeClient:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def nql_execute(self, query_id, parameters):
            return NqlResponse(queryId=query_id, data=rows)

    monkeypatch.setattr(devices_mod, "get_client", FakeClient)

    lookup = devices_for(employee)

    assert [d.name for d in lookup.devices] == ["PC-5", "PC-4", "PC-3"]
    assert lookup.devices[0].last_seen == datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_second_lookup_is_served_from_the_cache(employee, nexthink_settings, simulator):
    first = devices_for(employee)
    calls = nql_calls(simulator)

    second = devices_for(employee)

    assert calls == 1
    assert nql_calls(simulator) == 1
    assert second == first


def test_changing_the_query_asks_nexthink_again(employee, nexthink_settings, simulator):
    devices_for(employee)
    PortalSettings.objects.update_or_create(pk=1, defaults={"device_query_parameter": "user"})

    lookup = devices_for(employee)

    # The simulator's saved query needs $upn: this lookup fails and says so.
    assert nql_calls(simulator) == 2
    assert lookup.notice is not None


def test_nql_down_falls_back_to_assigned_devices_with_a_notice(
    employee, nexthink_settings, no_retry_wait
):
    nexthink_settings.NEXTHINK_API_URL = "http://127.0.0.1:9"  # nothing listens there
    DeviceAssignment.objects.create(
        user=employee, device_name="SPARE-LT-9", collector_uid=COLLECTOR
    )

    lookup = devices_for(employee)

    assert [(d.name, d.collector_uid, d.source) for d in lookup.devices] == [
        ("SPARE-LT-9", COLLECTOR, "assigned")
    ]
    assert lookup.notice == NOTICES[("nql_failed", True)]


def test_nql_errors_fall_back_and_are_not_cached(
    employee, nexthink_settings, simulator, no_retry_wait
):
    DeviceAssignment.objects.create(user=employee, device_name="SPARE-LT-9")
    simulator.faults.configure(error_rate=1.0)

    failed = devices_for(employee)
    simulator.faults.clear()
    recovered = devices_for(employee)

    assert [d.name for d in failed.devices] == ["SPARE-LT-9"]
    assert failed.notice == NOTICES[("nql_failed", True)]
    assert recovered.notice is None
    assert recovered.preselected.name == "EMP-LT-0142"


def test_nql_down_and_nothing_assigned_says_what_to_do(employee, nexthink_settings, simulator):
    simulator.faults.configure(fail_next=[403])

    lookup = devices_for(employee)

    assert lookup.devices == []
    assert lookup.notice == NOTICES[("nql_failed", False)]
    # Something someone can do: the helpdesk assigns a device on the People page.
    assert lookup.notice.endswith(
        "ask the helpdesk to assign your device to you in the portal (People → your name)."
    )


def test_nql_finding_nothing_uses_assigned_devices_quietly(make_user, nexthink_settings):
    stranger = make_user("stranger", Role.EMPLOYEE)  # not in the simulated tenant
    DeviceAssignment.objects.create(user=stranger, device_name="LOANER-01")

    lookup = devices_for(stranger)

    assert [d.name for d in lookup.devices] == ["LOANER-01"]
    assert lookup.notice is None


def test_assigned_devices_respect_the_limit(make_user, nexthink_settings):
    stranger = make_user("stranger", Role.EMPLOYEE)
    for i in range(5):
        DeviceAssignment.objects.create(user=stranger, device_name=f"LOANER-0{i}")

    assert len(devices_for(stranger).devices) == 3


def test_a_query_id_nexthink_would_refuse_falls_back(employee, nexthink_settings, simulator):
    PortalSettings.objects.update_or_create(pk=1, defaults={"device_query_id": "no hash"})
    DeviceAssignment.objects.create(user=employee, device_name="SPARE-LT-9")

    lookup = devices_for(employee)

    assert [d.name for d in lookup.devices] == ["SPARE-LT-9"]
    assert lookup.notice == NOTICES[("nql_failed", True)]
    assert nql_calls(simulator) == 0


def test_no_query_configured_uses_assigned_devices(employee, nexthink_settings, simulator):
    PortalSettings.objects.update_or_create(pk=1, defaults={"device_query_id": ""})
    DeviceAssignment.objects.create(user=employee, device_name="SPARE-LT-9")

    lookup = devices_for(employee)

    assert [d.name for d in lookup.devices] == ["SPARE-LT-9"]
    assert lookup.notice is None
    assert nql_calls(simulator) == 0


def test_account_without_email_gets_assigned_devices_and_a_notice(make_user, nexthink_settings):
    user = make_user("noemail", Role.EMPLOYEE, email=" ")
    DeviceAssignment.objects.create(user=user, device_name="SPARE-LT-9")

    lookup = devices_for(user)

    assert [d.name for d in lookup.devices] == ["SPARE-LT-9"]
    assert lookup.notice == NOTICES[("no_upn", True)]


def test_find_accepts_only_this_persons_device_keys():
    device = DeviceChoice("PC-1", COLLECTOR, "", None, "nql")
    by_name = DeviceChoice("PC-2", "", "", None, "assigned")
    lookup = devices_mod.DeviceLookup([device, by_name])

    assert lookup.find(COLLECTOR.upper()) is device
    assert lookup.find("name:pc-2") is by_name
    assert lookup.find("name:PC-1") is None
    assert lookup.find("11111111-1111-4111-8111-111111111111") is None
    assert lookup.find("") is None
    assert lookup.find(None) is None


def test_nql_datetime_as_an_object_of_parts_is_understood():
    when = devices_mod._when({"year": 2026, "month": 2, "day": 3, "hour": 4, "minute": 5})

    assert when == datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    assert devices_mod._when("yesterday") is None
    assert devices_mod._when(None) is None


# --- the saved query answering without the columns the lookup reads ------------------------------

QUERY_ID = "#portal_user_devices"
PROBLEM_ALL = (
    "The device lookup query #portal_user_devices answers rows without the columns device.name, "
    "device.collector.uid, device.last_seen: fix the saved query (see README)."
)


@pytest.fixture
def saved_query_lists(monkeypatch, simulator) -> Callable[[dict[str, str]], None]:
    """Make the simulator's device query list other columns: {column answered: column copied}."""

    def lists(columns: dict[str, str]) -> None:
        good = SAVED_QUERIES[QUERY_ID]

        def rows(*asked: Any) -> list[dict[str, Any]]:
            return [{new: row[old] for new, old in columns.items()} for row in good.rows(*asked)]

        changed = dataclasses.replace(good, headers=tuple(columns), rows=rows)
        monkeypatch.setitem(SAVED_QUERIES, QUERY_ID, changed)

    return lists


def console_text(client_for, admin_user) -> str:
    return html.unescape(client_for(admin_user).get("/console/").content.decode())


def test_rows_without_the_columns_fall_back_and_show_admins_the_problem(
    employee, admin_user, client_for, nexthink_settings, simulator, saved_query_lists
):
    # A query written with short names: Nexthink answers rows, none with the columns read.
    saved_query_lists(
        {"name": "device.name", "collector": "device.collector.uid", "seen": "device.last_seen"}
    )
    DeviceAssignment.objects.create(user=employee, device_name="SPARE-LT-9")

    lookup = devices_for(employee)
    again = devices_for(employee)

    assert [(d.name, d.source) for d in lookup.devices] == [("SPARE-LT-9", "assigned")]
    assert lookup.notice == NOTICES[("nql_failed", True)]
    assert again == lookup and nql_calls(simulator) == 2  # a wrong answer is never cached
    problem = device_query_problem()
    assert problem is not None and problem.message == PROBLEM_ALL
    assert PROBLEM_ALL in console_text(client_for, admin_user)


def test_a_missing_last_seen_alone_is_named(employee, nexthink_settings, saved_query_lists, caplog):
    saved_query_lists(
        {"device.name": "device.name", "device.collector.uid": "device.collector.uid"}
    )

    lookup = devices_for(employee)

    assert lookup.devices == [] and lookup.notice == NOTICES[("nql_failed", False)]
    problem = device_query_problem()
    assert problem is not None and problem.missing == ("device.last_seen",)
    assert "answers rows without the columns device.last_seen" in caplog.text


def test_column_names_are_matched_exactly(employee, nexthink_settings, saved_query_lists):
    saved_query_lists(
        {
            "Device.Name": "device.name",
            "device.collector.uid": "device.collector.uid",
            "device.last_seen": "device.last_seen",
        }
    )

    devices_for(employee)

    problem = device_query_problem()
    assert problem is not None and problem.missing == ("device.name",)


def test_headers_without_the_columns_are_a_problem_even_without_rows(
    employee, nexthink_settings, simulator
):
    # Another query the simulator holds lists execution columns, and has no row for a UPN.
    PortalSettings.objects.update_or_create(
        pk=1,
        defaults={
            "device_query_id": "#portal_execution_by_id",
            "device_query_parameter": "execution_id",
        },
    )

    lookup = devices_for(employee)

    assert lookup.devices == [] and lookup.notice == NOTICES[("nql_failed", False)]
    problem = device_query_problem()
    assert problem is not None and problem.query_id == "#portal_execution_by_id"
    assert problem.missing == ("device.collector.uid", "device.last_seen")


def test_a_good_answer_clears_the_problem(
    employee, admin_user, client_for, nexthink_settings, monkeypatch, saved_query_lists
):
    saved_query_lists({"name": "device.name"})
    devices_for(employee)
    assert device_query_problem() is not None
    monkeypatch.undo()  # the admin fixes the saved query

    lookup = devices_for(employee)

    assert lookup.notice is None and lookup.preselected.name == "EMP-LT-0142"
    assert device_query_problem() is None
    text = console_text(client_for, admin_user)
    assert "device lookup query" not in text and 'id="device-lookup"' not in text


def test_a_problem_with_a_query_no_longer_configured_is_not_shown(
    employee, nexthink_settings, saved_query_lists
):
    saved_query_lists({"name": "device.name"})
    devices_for(employee)

    PortalSettings.objects.update_or_create(pk=1, defaults={"device_query_id": "#another_query"})

    assert device_query_problem() is None


def test_a_query_id_nexthink_does_not_know_falls_back_without_a_column_problem(
    employee, nexthink_settings, simulator, no_retry_wait
):
    PortalSettings.objects.update_or_create(pk=1, defaults={"device_query_id": "#no_such_query"})
    DeviceAssignment.objects.create(user=employee, device_name="SPARE-LT-9")

    lookup = devices_for(employee)

    assert nql_calls(simulator) == 1
    assert [d.name for d in lookup.devices] == ["SPARE-LT-9"]
    assert lookup.notice == NOTICES[("nql_failed", True)]
    assert device_query_problem() is None
