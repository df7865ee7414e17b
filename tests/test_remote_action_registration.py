"""Registering remote actions (command, page, curation JSON) and where they then appear: the
catalogue, the run form, run_workflow, the API, the run page and show_run."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tests.api_support import ApiClient
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    Batch,
    BatchState,
    Run,
    RunnableKind,
    Target,
    Workflow,
)
from workflows_app.nexthink.classic import EngineResult
from workflows_app.services import api_tokens, engine_answers, lifecycle
from workflows_app.services.curation import CurationImportError, export_curation, import_curation
from workflows_app.services.remote_actions import (
    RemoteActionSpec,
    find_remote_action,
    register,
)
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

UID = "07844969-1889-4de3-9026-020af94be855"
OTHER_UID = "3b0ddb5c-8c1e-4a5e-9a44-1f2a7c6d9e01"
EMEA, AMER = "86acc8511251ec444d3a75bac33a23c7", "a4690014774dcc32b919c27d616166f7"
DEVICES = ["da2add909a144e8235453f88dc45172f", "4423e4c059b2c72ee9382e135888bef7"]


def command(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    given = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=io.StringIO(), **given)
    return out.getvalue()


@pytest.fixture
def action(db: Any) -> Workflow:
    spec = RemoteActionSpec(uid=UID, name="Restart Outlook", params=("Force",))
    return register(spec, actor=None)[0]


def answered_run(user: Any, action: Workflow, enqueued: list[int]) -> Run:
    """A run of two devices whose batch the Engines answered: one ok, one not connected."""
    run = create_run(
        user=user,
        workflow=action,
        targets=[Wanted(TargetKind.DEVICE_CLASSIC_UID, d, i + 1) for i, d in enumerate(DEVICES)],
        params={"Force": "yes"},
        reason="INC0099",
        source=Run.Source.HELPDESK,
    )
    batch = Batch.objects.get(run=run)
    assert lifecycle.claim(batch.pk, "claim")
    results = [
        EngineResult(databaseUid=EMEA, code="ok"),
        EngineResult(databaseUid=AMER, code="not_connected", message="Engine amer is down"),
    ]
    engine_answers.record(
        batch, "claim", sent_as=engine_answers.request_uid(batch), results=results
    )
    run.refresh_from_db()
    return run


# --- the command ------------------------------------------------------------------------------


def test_register_command_adds_a_remote_action_with_its_parameters_and_audits_it(db: Any):
    out = command(
        "register_remote_action", UID.upper(), "--name", "Restart Outlook",
        "--description", "Closes and reopens Outlook", "--param", "Force", "--param", "Delay",
    )  # fmt: skip
    assert f"Registered remote action Restart Outlook ({UID}); parameters: Force, Delay" in out
    row = Workflow.objects.get(nql_id=UID)
    assert (row.kind, row.uuid, row.dependency, row.description) == (
        RunnableKind.REMOTE_ACTION,
        UID,
        "DEVICE",
        "Closes and reopens Outlook",
    )
    event = AuditEvent.objects.get(action=AuditAction.REMOTE_ACTION_REGISTERED)
    assert event.details["uid"] == UID and event.details["params"] == ["Force", "Delay"]
    again = command("register_remote_action", UID, "--name", "Restart Outlook now")
    assert (
        again.startswith("Updated") and Workflow.objects.filter(kind="remote_action").count() == 1
    )


def test_register_command_refuses_what_is_not_a_uid(db: Any):
    with pytest.raises(CommandError, match="not a remote action UID"):
        command("register_remote_action", "restart-outlook", "--name", "Restart Outlook")
    assert not Workflow.objects.exists()


def test_remote_actions_are_found_by_uid_or_name(action: Workflow):
    assert find_remote_action(UID.upper()) == action
    assert find_remote_action("restart OUTLOOK") == action
    assert find_remote_action("#clear_teams_cache") is None


def test_run_workflow_takes_a_remote_action_by_name_and_classic_device_uids(
    action: Workflow, helpdesk: Any, enqueued: list[int]
):
    out = command(
        "run_workflow", "Restart Outlook", "--targets", "-", "--user", "helpdesk",
        "--param", "Force=yes", "--reason", "INC1",
        stdin=f"{DEVICES[0]}\nuid:{DEVICES[1].upper()}\n",
    )  # fmt: skip
    run = Run.objects.get()
    assert "2 targets in 1 batch(es), classic Act API" in out
    assert (run.kind, run.workflow_id, run.params) == ("remote_action", action.pk, {"Force": "yes"})
    assert sorted(run.targets.values_list("value", flat=True)) == sorted(DEVICES)


def test_run_workflow_refuses_device_names_and_unknown_parameters(
    action: Workflow, helpdesk: Any, enqueued: list[int]
):
    with pytest.raises(CommandError, match="problem"):
        command(
            "run_workflow", UID, "--targets", "-", "--user", "helpdesk",
            stdin="LAPTOP-042\n" + DEVICES[0] + "\n",
        )  # fmt: skip
    with pytest.raises(CommandError, match="Invalid parameters"):
        command(
            "run_workflow", UID, "--targets", "-", "--user", "helpdesk", "--param", "Forse=1",
            stdin=DEVICES[0] + "\n",
        )  # fmt: skip
    assert not Run.objects.exists() and enqueued == []


# --- the page ---------------------------------------------------------------------------------

REGISTER = "curation:register_remote_action"


def test_admin_registers_a_remote_action_on_the_page(client_for: Any, admin_user: Any):
    page = client_for(admin_user).get(reverse(REGISTER))
    assert page.status_code == 200 and b"Remote action UID" in page.content
    response = client_for(admin_user).post(
        reverse(REGISTER),
        {
            "uid": UID,
            "name": "Restart Outlook",
            "params": "Force, Delay",
            "allowed_roles": ["Helpdesk"],
        },
    )
    row = Workflow.objects.get(nql_id=UID)
    assert response.status_code == 302 and response["Location"] == reverse(
        "curation:edit", args=[row.pk]
    )
    assert list(row.parameters.values_list("name", flat=True)) == ["Force", "Delay"]
    assert row.curation.allowed_roles == ["Helpdesk"] and row.curation.self_service is False
    listing = client_for(admin_user).get(reverse("curation:list"))
    assert b"Remote action (classic)" in listing.content
    editor = client_for(admin_user).get(response["Location"])
    assert editor.status_code == 200 and b"Force" in editor.content


def test_registration_page_refuses_bad_input_with_400_and_saves_nothing(
    client_for: Any, admin_user: Any
):
    response = client_for(admin_user).post(
        reverse(REGISTER), {"uid": "nope", "name": "x", "params": "ok bad!name"}
    )
    assert response.status_code == 400
    assert b"not a remote action UID" in response.content
    assert b"not a parameter name" in response.content
    assert not Workflow.objects.exists()


def test_registration_page_is_for_admins_only(client_for: Any, helpdesk: Any, admin_user: Any):
    assert client_for(helpdesk).get(reverse(REGISTER)).status_code == 403
    assert client_for(helpdesk).post(reverse(REGISTER), {"uid": UID}).status_code == 403
    assert client_for(admin_user).put(reverse(REGISTER)).status_code == 405
    assert not Workflow.objects.exists()


# --- the curation document ---------------------------------------------------------------------


def test_export_lists_remote_actions_and_import_registers_them_with_their_curation(
    action: Workflow, admin_user: Any
):
    document = export_curation()
    assert document["remote_actions"] == [
        {"uid": UID, "name": "Restart Outlook", "description": ""}
    ]
    document["remote_actions"].append({"uid": OTHER_UID, "name": "Clear browser cache"})
    document["workflows"].append(
        {"nql_id": OTHER_UID, "self_service": True, "title": "Clear my browser's cache"}
    )
    result = import_curation(json.dumps(document), user=admin_user)
    assert result.registered == (OTHER_UID,)
    added = Workflow.objects.get(nql_id=OTHER_UID)
    assert added.kind == RunnableKind.REMOTE_ACTION and added.curation.self_service
    assert AuditEvent.objects.filter(action=AuditAction.CURATION_IMPORTED).exists()


def test_an_import_with_a_bad_remote_action_applies_nothing(action: Workflow, admin_user: Any):
    document = export_curation()
    document["remote_actions"].append({"uid": "not-a-uid", "name": "Broken"})
    document["workflows"][0]["title"] = "Changed title"
    with pytest.raises(CurationImportError) as caught:
        import_curation(json.dumps(document), user=admin_user)
    assert any(e.startswith("remote_actions[1]:") for e in caught.value.errors)
    assert Workflow.objects.count() == 1
    assert getattr(Workflow.objects.get().curation_or_none, "title", "") == ""


def test_the_catalogue_sync_never_removes_a_registered_remote_action(
    action: Workflow, nexthink_settings: Any
):
    from workflows_app.services.catalogue_sync import sync_catalogue

    sync_catalogue(trigger="test")
    action.refresh_from_db()
    assert action.removed_at is None and action.kind == RunnableKind.REMOTE_ACTION


# --- where they appear -------------------------------------------------------------------------


def test_catalogue_labels_remote_actions_and_hides_them_when_classic_is_off(
    action: Workflow, client_for: Any, helpdesk: Any, settings: Any
):
    page = client_for(helpdesk).get(reverse("catalogue:list"))
    assert b"Remote action (classic)" in page.content and UID.encode() in page.content
    settings.NEXTHINK_PLATFORMS = "cloud"
    page = client_for(helpdesk).get(reverse("catalogue:list"))
    assert UID.encode() not in page.content


def test_the_run_form_takes_classic_uids_and_refuses_names_line_by_line(
    action: Workflow, client_for: Any, helpdesk: Any
):
    url = reverse("runs:start", args=[action.pk])
    form = client_for(helpdesk).get(url)
    assert b"32 hexadecimal digits" in form.content
    refused = client_for(helpdesk).post(
        url, {"targets_text": f"{DEVICES[0]}\nLAPTOP-42\n", "param_Force": ""}
    )
    assert refused.status_code == 400
    assert b"Line 2" in refused.content and b"no lookup is configured" in refused.content
    confirm = client_for(helpdesk).post(
        url, {"targets_text": "\n".join(DEVICES), "param_Force": "yes"}
    )
    assert confirm.status_code == 200 and b"classic Act API v2" in confirm.content


def test_run_page_shows_each_engine_code_and_the_partial_outcome(
    action: Workflow, client_for: Any, helpdesk: Any, enqueued: list[int]
):
    run = answered_run(helpdesk, action, enqueued)
    assert run.status == "partial"
    page = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "Remote action (classic)" in page and "Partly failed" in page
    assert f'data-engine="{AMER}" data-code="not_connected"' in page
    assert f'data-engine="{EMEA}" data-code="ok"' in page
    assert "Engine amer is down" in page and "could not reach the Engine" in page


def test_show_run_prints_the_kind_and_the_engines(
    action: Workflow, helpdesk: Any, enqueued: list[int]
):
    run = answered_run(helpdesk, action, enqueued)
    summary = command("show_run", str(run.pk))
    assert "Kind:     Remote action (classic)" in summary
    assert f"Engine {AMER} not_connected: Engine amer is down" in summary
    document = json.loads(command("show_run", str(run.pk), "--json"))
    assert document["kind"] == "remote_action" and document["status"] == "partial"
    assert document["batches"][0]["engines"][1] == {
        "databaseUid": AMER,
        "code": "not_connected",
        "message": "Engine amer is down",
    }


def test_api_run_detail_has_the_kind_and_engines_and_creates_remote_action_runs(
    action: Workflow, helpdesk: Any, enqueued: list[int]
):
    api = ApiClient(api_tokens.create_token(user=helpdesk, name="ITSM").secret)
    run = answered_run(helpdesk, action, enqueued)
    detail = api.get(f"/api/v1/runs/{run.pk}")
    assert detail.status_code == 200
    data = json.loads(detail.content)
    assert data["kind"] == "remote_action" and data["workflow"] == UID
    assert [e["code"] for e in data["batches"][0]["engines"]] == ["ok", "not_connected"]
    created = api.post(
        "/api/v1/runs",
        {"workflow": "Restart Outlook", "targets": [DEVICES[0]], "params": {"Force": "no"}},
    )
    assert created.status_code == 202
    refused = api.post(
        "/api/v1/runs", {"workflow": UID, "targets": ["LAPTOP-1"], "params": {"Bogus": "1"}}
    )
    assert refused.status_code == 422
    paths = {e["field"] for e in json.loads(refused.content)["errors"]}
    assert {"targets.0", "params.Bogus"} <= paths
    assert Batch.objects.filter(state=BatchState.QUEUED).count() == 1  # the created run's only


def test_history_shows_and_filters_remote_action_runs_and_the_audit_names_the_kind(
    action: Workflow, client_for: Any, helpdesk: Any, enqueued: list[int]
):
    run = answered_run(helpdesk, action, enqueued)
    page = client_for(helpdesk).get(reverse("runs:list"), {"kind": "remote_action"})
    assert f'data-run="{run.pk}"' in page.content.decode()
    assert b'data-testid="run-kind"' in page.content
    none = client_for(helpdesk).get(reverse("runs:list"), {"kind": "workflow"})
    assert f'data-run="{run.pk}"' not in none.content.decode()
    event = AuditEvent.objects.get(action=AuditAction.RUN_CREATED)
    assert event.details["kind"] == "remote_action" and event.details["workflow"] == UID
    api = ApiClient(api_tokens.create_token(user=helpdesk, name="ITSM").secret)
    listed = json.loads(api.get("/api/v1/runs", kind="remote_action").content)
    assert [item["id"] for item in listed["items"]] == [run.pk]
    assert listed["items"][0]["kind"] == "remote_action"


def test_the_demo_curation_registers_remote_actions_the_simulator_knows(
    db: Any, nexthink_settings: Any, simulator: Any
):
    from workflows_app.management.commands.demo import DEMO_CURATION
    from workflows_app.services.catalogue_sync import sync_catalogue

    sync_catalogue(trigger="test")
    result = import_curation(DEMO_CURATION.read_bytes(), user=None)
    known = {a.uid for a in simulator.classic.actions if a.enabled and a.manual}
    assert len(result.registered) == 2 and set(result.registered) <= known
    assert find_remote_action(UID) is not None and find_remote_action(UID).curation.self_service


def test_rerun_on_the_failed_devices_prefills_them_as_classic_uids(
    action: Workflow, client_for: Any, helpdesk: Any, enqueued: list[int]
):
    run = answered_run(helpdesk, action, enqueued)
    Target.objects.filter(run=run).update(outcome="failure")  # as if no Engine had taken it
    lifecycle.recount(Batch.objects.get(run=run).pk)
    form = (
        client_for(helpdesk)
        .get(reverse("runs:start", args=[action.pk]), {"rerun": run.pk})
        .content.decode()
    )
    for device in DEVICES:
        assert f"uid:{device}" in form
    confirm = client_for(helpdesk).post(
        reverse("runs:start", args=[action.pk]),
        {"targets_text": "\n".join(f"uid:{d}" for d in DEVICES), "param_Force": "yes"},
    )
    assert confirm.status_code == 200 and b'data-testid="target-count">2<' in confirm.content
