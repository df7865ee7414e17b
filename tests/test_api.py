"""The JSON API (/api/v1/): tokens, roles, runs, history, catalogue, resume, limits, errors.

Every answer goes through tests/api_support.ApiClient, which checks it against the served
OpenAPI document (its status documented, its body valid), error answers included.
"""

from __future__ import annotations

import hashlib
import json
import threading
from io import StringIO
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.api_support import OPENAPI_URL, ApiClient
from tests.test_resume import waiting as waiting_execution  # noqa: F401  (a fixture)
from workflows_app.models import (
    ApiToken,
    AuditAction,
    AuditEvent,
    IdempotencyKey,
    ParameterDefinition,
    Resumption,
    Run,
    Workflow,
    WorkflowCuration,
)
from workflows_app.nexthink.models import Dependency
from workflows_app.roles import Role
from workflows_app.services import api_tokens, rate_limits

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs"
DEVICE_1 = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
DEVICE_2 = "3fa85f64-5717-4562-b3fc-2c963f66afa7"


def _workflow(nql_id: str, **fields: Any) -> Workflow:
    now = timezone.now()
    values: dict[str, Any] = {
        "uuid": f"uuid-{nql_id.lstrip('#')}",
        "name": f"Fix {nql_id}",
        "status": Workflow.Status.ACTIVE,
        "dependency": Dependency.DEVICE,
        "trigger_api": True,
        "first_seen": now,
        "last_seen": now,
        **fields,
    }
    return Workflow.objects.create(nql_id=nql_id, **values)


@pytest.fixture
def workflow() -> Workflow:
    workflow = _workflow("#clear_cache")
    ParameterDefinition.objects.create(
        workflow=workflow, name="ticket", position=0, required=True, pattern=r"INC\d{7}"
    )
    ParameterDefinition.objects.create(workflow=workflow, name="pin", position=1, secret=True)
    return workflow


@pytest.fixture
def token(helpdesk: Any) -> str:
    return api_tokens.create_token(user=helpdesk, name="ServiceNow").secret


@pytest.fixture
def api(token: str) -> ApiClient:
    return ApiClient(token)


def body(**changes: Any) -> dict[str, Any]:
    return {
        "workflow": "#clear_cache",
        "targets": [DEVICE_1, "name:PC-0042"],
        "params": {"ticket": "INC0012345", "pin": "4242"},
        "reason": "INC0012345",
        **changes,
    }


def error(response: Any) -> dict[str, Any]:
    return json.loads(response.content)


# --- the document ---------------------------------------------------------------------------------


def test_openapi_document_is_3_1_and_names_every_endpoint(client: Any) -> None:
    document = json.loads(client.get(OPENAPI_URL).content)
    assert document["openapi"].startswith("3.1.")
    paths = document["paths"]
    assert set(paths["/api/v1/runs"]) == {"get", "post"}
    assert "get" in paths["/api/v1/runs/{run_id}"]
    assert "get" in paths["/api/v1/workflows"]
    assert "post" in paths["/api/v1/executions/{execution_uuid}/resume"]
    assert document["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


# --- tokens ---------------------------------------------------------------------------------------


def test_token_is_shown_once_and_stored_as_its_hash_only(client_for: Any, helpdesk: Any) -> None:
    client = client_for(helpdesk)
    page = client.post(reverse("account:tokens"), {"name": "Jira", "expires_days": "30"})
    assert page.status_code == 200
    html = page.content.decode()
    secret = html.split('data-testid="token-secret">')[1].split("<")[0]
    assert secret.startswith("nxp_") and len(secret) > 40
    stored = ApiToken.objects.get()
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert page["Cache-Control"] == "no-store"
    assert secret not in client.get(reverse("account:tokens")).content.decode()
    entry = AuditEvent.objects.get(action=AuditAction.TOKEN_CREATED)
    assert secret not in json.dumps(entry.details) + entry.summary
    assert ApiClient(secret).get("/api/v1/workflows").status_code == 200


def test_revoked_token_stops_working_and_the_revocation_is_audited(
    client_for: Any, helpdesk: Any, token: str
) -> None:
    stored = ApiToken.objects.get()
    response = client_for(helpdesk).post(reverse("account:revoke", args=[stored.pk]))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_REVOKED).count() == 1
    answer = ApiClient(token).get("/api/v1/workflows")
    assert answer.status_code == 401
    assert error(answer)["code"] == "unauthenticated"


def test_someone_elses_token_cannot_be_revoked(client_for: Any, admin_user: Any, token: str):
    stored = ApiToken.objects.get()
    response = client_for(admin_user).post(reverse("account:revoke", args=[stored.pk]))
    assert response.status_code == 404
    stored.refresh_from_db()
    assert stored.revoked_at is None


def test_employees_have_no_token_page_and_cannot_be_given_a_token(
    client_for: Any, employee: Any
) -> None:
    assert client_for(employee).get(reverse("account:tokens")).status_code == 403
    with pytest.raises(api_tokens.TokenRefused):
        api_tokens.create_token(user=employee, name="x")


def test_token_of_someone_demoted_to_employee_is_refused_with_403(
    helpdesk: Any, api: ApiClient
) -> None:
    helpdesk.groups.set([Group.objects.get_or_create(name=Role.EMPLOYEE.value)[0]])
    answer = api.get("/api/v1/workflows")
    assert answer.status_code == 403
    assert error(answer)["code"] == "forbidden"


def test_token_of_an_inactive_account_is_refused(helpdesk: Any, api: ApiClient) -> None:
    helpdesk.is_active = False
    helpdesk.save()
    assert api.get(RUNS).status_code == 403


def test_expired_token_is_unauthenticated(helpdesk: Any) -> None:
    new = api_tokens.create_token(user=helpdesk, name="short", expires_days=1)
    ApiToken.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert ApiClient(new.secret).get(RUNS).status_code == 401


def test_signed_in_browser_without_token_gets_401_json(client_for: Any, helpdesk: Any) -> None:
    api = ApiClient(client=client_for(helpdesk))
    for answer in (api.get(RUNS), api.post(RUNS, body())):
        assert answer.status_code == 401
        assert answer["WWW-Authenticate"] == "Bearer"
        assert error(answer)["code"] == "unauthenticated"
    assert Run.objects.count() == 0


def test_garbage_tokens_are_unauthenticated() -> None:
    for secret in ("nope", "nxp_" + "a" * 43, "nxp_\x00", "x" * 5000):
        answer = ApiClient(secret).get(RUNS)
        assert answer.status_code == 401, secret


def test_last_use_is_noted(api: ApiClient) -> None:
    assert ApiToken.objects.get().last_used_at is None
    api.get(RUNS)
    assert ApiToken.objects.get().last_used_at is not None


def test_create_api_token_command_prints_a_working_token(helpdesk: Any, employee: Any) -> None:
    out = StringIO()
    call_command("create_api_token", "helpdesk", "--expires-days", "7", "--name", "CI", stdout=out)
    secret = out.getvalue().strip()
    stored = ApiToken.objects.get()
    assert stored.name == "CI" and stored.expires_at is not None
    assert ApiClient(secret).get(RUNS).status_code == 200
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Only helpdesk agents and admins"):
        call_command("create_api_token", "employee", stdout=StringIO())


# --- creating runs --------------------------------------------------------------------------------


def test_create_run_answers_202_with_its_id_and_url_and_queues_it(
    api: ApiClient, workflow: Workflow, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(RUNS, body())
    assert answer.status_code == 202, answer.content
    data = error(answer)
    run = Run.objects.get()
    assert data["id"] == run.pk and data["url"].endswith(f"/api/v1/runs/{run.pk}")
    assert run.source == Run.Source.API and run.target_count == 2
    assert enqueued == [run.batches.get().pk]
    assert run.params["pin"] != "4242"
    assert AuditEvent.objects.filter(action=AuditAction.RUN_CREATED).count() == 1
    used = AuditEvent.objects.get(action=AuditAction.API_USED)
    assert used.details["status"] == 202
    everything = json.dumps(list(AuditEvent.objects.values("summary", "details")))
    assert "4242" not in everything


def test_create_run_reports_every_problem_with_its_index(
    api: ApiClient, workflow: Workflow, enqueued: list[int]
) -> None:
    answer = api.post(
        RUNS,
        body(targets=[DEVICE_1, "", "S-1-x", "bad name"], params={"ticket": "nope", "x": "1"}),
    )
    assert answer.status_code == 422
    data = error(answer)
    assert data["code"] == "validation_error"
    indexed = {e["index"] for e in data["errors"] if e["field"].startswith("targets")}
    assert indexed == {1, 2, 3}
    fields = {e["field"] for e in data["errors"]}
    assert {"params.ticket", "params.x"} <= fields
    assert Run.objects.count() == 0 and enqueued == []


@pytest.mark.parametrize(
    "payload",
    [
        {"workflow": "#clear_cache", "targets": "PC-1"},
        {"workflow": 3, "targets": [DEVICE_1]},
        {"workflow": "#clear_cache", "targets": [1, 2]},
        {"workflow": "#clear_cache", "targets": [DEVICE_1], "params": {"ticket": [1]}},
        {"workflow": "#clear_cache", "targets": [DEVICE_1], "surprise": 1},
        [],
    ],
)
def test_wrong_types_are_422_with_the_field(api: ApiClient, workflow: Workflow, payload: Any):
    answer = api.post(RUNS, payload)
    assert answer.status_code == 422
    assert error(answer)["errors"], answer.content
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    "raw", [b"{not json", b"\xff\xfe", b'{"workflow": "#a"', b"x" * (21 * 1024 * 1024)]
)
def test_unreadable_bodies_are_400_json(api: ApiClient, workflow: Workflow, raw: bytes) -> None:
    answer = api.post(RUNS, raw=raw)
    assert answer.status_code == 400
    assert error(answer)["code"] == "bad_request"


def test_nul_characters_are_refused_not_stored(
    api: ApiClient, workflow: Workflow, enqueued: list[int]
) -> None:
    answer = api.post(
        RUNS, body(reason="a\x00b", targets=["PC\x00-1"], params={"ticket": "INC\x000012345"})
    )
    assert answer.status_code == 422
    fields = {e["field"] for e in error(answer)["errors"]}
    assert {"reason", "targets.0", "params.ticket"} <= fields
    assert Run.objects.count() == 0


def test_unknown_workflow_and_not_runnable_workflow_are_422(
    api: ApiClient, workflow: Workflow
) -> None:
    assert error(api.post(RUNS, body(workflow="#nope")))["errors"][0]["field"] == "workflow"
    _workflow("#off", trigger_api=False)
    answer = api.post(RUNS, body(workflow="off", params={}))
    assert answer.status_code == 422
    assert error(answer)["code"] == "not_runnable"


def test_helpdesk_left_out_by_the_curation_gets_403(api: ApiClient, workflow: Workflow) -> None:
    WorkflowCuration.objects.create(workflow=workflow, allowed_roles=[Role.ADMIN.value])
    answer = api.post(RUNS, body())
    assert answer.status_code == 403
    assert error(answer)["code"] == "forbidden"
    assert Run.objects.count() == 0


def test_same_idempotency_key_and_body_return_the_first_run(
    api: ApiClient, workflow: Workflow, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    key = {"Idempotency-Key": "ticket-INC0012345"}
    with django_capture_on_commit_callbacks(execute=True):
        first = error(api.post(RUNS, body(), headers=key))
        again = api.post(RUNS, body(), headers=key)
    assert again.status_code == 202
    assert error(again)["id"] == first["id"] and error(again)["created"] is False
    assert Run.objects.count() == 1 and len(enqueued) == 1
    other = api.post(RUNS, body(reason="another"), headers=key)
    assert other.status_code == 409
    assert error(other)["code"] == "idempotency_conflict"
    assert Run.objects.count() == 1


def test_idempotency_keys_expire_after_24_hours(
    api: ApiClient, workflow: Workflow, enqueued: list[int], settings: Any
) -> None:
    key = {"Idempotency-Key": "k1"}
    api.post(RUNS, body(), headers=key)
    IdempotencyKey.objects.update(created_at=timezone.now() - timezone.timedelta(hours=25))
    settings_duplicate_off()
    answer = api.post(RUNS, body(), headers=key)
    assert answer.status_code == 202 and error(answer)["created"] is True
    assert IdempotencyKey.objects.count() == 1


def settings_duplicate_off() -> None:
    from workflows_app.models import PortalSettings

    PortalSettings.objects.update_or_create(pk=1, defaults={"duplicate_window_minutes": 0})


def test_a_retry_without_key_is_the_double_click_guards_409(
    api: ApiClient, workflow: Workflow, enqueued: list[int]
) -> None:
    api.post(RUNS, body())
    answer = api.post(RUNS, body())
    assert answer.status_code == 409
    assert error(answer)["code"] == "duplicate_run"


# --- reading runs ---------------------------------------------------------------------------------


def test_run_detail_shows_batches_and_pages_of_targets(
    api: ApiClient, workflow: Workflow, enqueued: list[int]
) -> None:
    created = error(api.post(RUNS, body(targets=[DEVICE_1, DEVICE_2, "PC-1"])))
    run_url = f"{RUNS}/{created['id']}"
    page = error(api.get(run_url, size=2))
    assert page["status"] == "queued" and page["source"] == "api"
    assert [b["number"] for b in page["batches"]] == [1]
    assert [t["value"] for t in page["targets"]] == [DEVICE_1, DEVICE_2]
    assert page["params"]["pin"] != "4242"
    rest = error(api.get(run_url, size=2, after=page["next_after"]))
    assert [t["value"] for t in rest["targets"]] == ["PC-1"] and rest["next_after"] is None
    assert api.get(f"{RUNS}/999999").status_code == 404
    assert api.get(run_url, size=0).status_code == 422


def test_run_list_uses_the_history_filters_and_warns_about_unknown_ones(
    api: ApiClient, workflow: Workflow, enqueued: list[int], admin_user: Any
) -> None:
    created = error(api.post(RUNS, body()))
    listed = error(api.get(RUNS, source="api", workflow="clear_cache"))
    assert [r["id"] for r in listed["items"]] == [created["id"]]
    assert listed["warnings"] == []
    assert error(api.get(RUNS, source="self_service"))["items"] == []
    odd = error(api.get(RUNS, colour="blue", status="sideways", before="x"))
    assert len(odd["warnings"]) == 3


def test_another_helpdesk_agents_run_is_listed_only_with_mine_0(
    api: ApiClient, workflow: Workflow, enqueued: list[int], make_user: Any
) -> None:
    other = make_user("other", Role.HELPDESK)
    other_api = ApiClient(api_tokens.create_token(user=other, name="o").secret)
    created = error(other_api.post(RUNS, body()))
    assert error(api.get(RUNS))["items"] == []
    assert [r["id"] for r in error(api.get(RUNS, mine="0"))["items"]] == [created["id"]]


# --- the catalogue --------------------------------------------------------------------------------


def test_workflows_are_filtered_sorted_and_paged_by_cursor(api: ApiClient) -> None:
    for n in range(5):
        _workflow(f"#wf_{n}", name=f"Clear cache {n}")
    _workflow("#user_one", name="Reset user", dependency=Dependency.USER)
    first = error(api.get("/api/v1/workflows", q="clear*", size=2, sort="-name"))
    assert [w["name"] for w in first["items"]] == ["Clear cache 4", "Clear cache 3"]
    second = error(
        api.get("/api/v1/workflows", q="clear*", size=2, sort="-name", cursor=first["next_cursor"])
    )
    assert [w["name"] for w in second["items"]] == ["Clear cache 2", "Clear cache 1"]
    users = error(api.get("/api/v1/workflows", dependency="USER"))
    assert [w["nql_id"] for w in users["items"]] == ["#user_one"]
    for bad in ({"cursor": "garbage"}, {"dependency": "FISH"}, {"sort": "x"}, {"q": "a\x00"}):
        assert api.get("/api/v1/workflows", **bad).status_code == 422, bad


# --- limits ---------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(
    api: ApiClient, settings: Any, monkeypatch: Any
) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    # One fixed moment, 10 s into a window: the three calls cannot straddle two windows.
    monkeypatch.setattr(rate_limits, "time", SimpleNamespace(time=lambda: 60 * 29_000_000 + 10.0))
    assert api.get(RUNS).status_code == 200
    assert api.get(RUNS).status_code == 200
    answer = api.get(RUNS)
    assert answer.status_code == 429
    assert answer["Retry-After"] == "50"
    assert error(answer)["code"] == "rate_limited"


# --- resuming -------------------------------------------------------------------------------------


def test_resume_through_the_api_uses_the_inboxs_rules(
    api: ApiClient,
    waiting_execution: Any,  # noqa: F811  (the fixture imported above)
    simulator: Any,
) -> None:
    url = f"/api/v1/executions/{waiting_execution.execution_uuid}/resume"
    answer = api.post(url, {"parameters": {"Approved": "yes"}})
    assert answer.status_code == 200, answer.content
    resumption = Resumption.objects.get()
    assert error(answer)["request_uuid"] == resumption.request_uuid
    assert resumption.source == Run.Source.API
    upstream = simulator.state.find_execution(waiting_execution.execution_uuid)
    assert upstream.trigger_params == {"Approved": "yes"}
    again = api.post(url, {"parameters": {}})
    assert again.status_code == 409 and error(again)["code"] == "not_waiting"
    used = AuditEvent.objects.filter(action=AuditAction.API_USED).order_by("id")
    assert [e.details["status"] for e in used] == [200, 409]


def test_resume_refusals(
    api: ApiClient,
    waiting_execution: Any,  # noqa: F811  (the fixture imported above)
) -> None:
    unknown = api.post(f"/api/v1/executions/{DEVICE_1}/resume", {"parameters": {}})
    assert unknown.status_code == 404 and error(unknown)["code"] == "not_found"
    url = f"/api/v1/executions/{waiting_execution.execution_uuid}/resume"
    for payload in ({"parameters": {"": "x"}}, {"parameters": {"a": 1}}, {"other": 1}):
        assert api.post(url, payload).status_code == 422, payload
    WorkflowCuration.objects.update_or_create(
        workflow=waiting_execution.run.workflow, defaults={"resume_roles": [Role.ADMIN.value]}
    )
    refused = api.post(url, {"parameters": {}})
    assert refused.status_code == 403 and error(refused)["code"] == "forbidden"
    assert Resumption.objects.count() == 0


# --- two creates at once with one key -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_with_one_key_make_one_run(
    helpdesk: Any, workflow: Workflow, enqueued: list[int]
) -> None:
    """Both requests' transactions run at once: the second waits on the key, then finds the run."""
    from workflows_app.services import idempotency

    entered, release = threading.Event(), threading.Event()
    made: list[int] = []

    def slow_create() -> Run:
        entered.set()
        assert release.wait(10)
        run = Run.objects.create(
            created_by=helpdesk,
            role="Helpdesk",
            source=Run.Source.API,
            workflow=workflow,
            workflow_nql_id=workflow.nql_id,
            workflow_uuid=workflow.uuid,
            workflow_name=workflow.name,
            dependency=workflow.dependency,
            api_version="v1",
        )
        made.append(run.pk)
        return run

    results: list[tuple[int, bool]] = []

    def first_request() -> None:
        run, created = idempotency.create_once(
            user=helpdesk, key="k", body={"a": 1}, create=slow_create
        )
        results.append((run.pk, created))
        connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    assert entered.wait(10)
    # The first transaction holds the key row, uncommitted; the second blocks on it until then.
    second: list[tuple[int, bool]] = []

    def second_request() -> None:
        run, created = idempotency.create_once(
            user=helpdesk, key="k", body={"a": 1}, create=slow_create
        )
        second.append((run.pk, created))
        connection.close()

    other = threading.Thread(target=second_request)
    other.start()
    release.set()
    thread.join(20)
    other.join(20)
    assert results == [(made[0], True)]
    assert second == [(made[0], False)]
    assert Run.objects.count() == 1 and IdempotencyKey.objects.count() == 1


def test_token_page_is_in_the_navigation_of_staff_only(
    client_for: Any, helpdesk: Any, employee: Any
) -> None:
    assert 'data-testid="nav-tokens"' in client_for(helpdesk).get("/runs/").content.decode()
    other = Client()
    other.force_login(employee)
    assert 'data-testid="nav-tokens"' not in other.get("/runs/").content.decode()


# --- fuzzing: never a 500, refusals write nothing -------------------------------------------------

LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(
        ["\x00", "#clear_cache", DEVICE_1, "name:PC-1", "S-1-5-21-1-2-3-500", "9" * 5000]
    ),
)
ANY_JSON = st.recursive(
    LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
SHAPED = st.fixed_dictionaries(
    {"workflow": st.one_of(st.just("#clear_cache"), LEAF), "targets": st.lists(LEAF, max_size=4)},
    optional={
        "params": st.dictionaries(st.sampled_from(["ticket", "pin", "x", "\x00"]), LEAF),
        "reason": LEAF,
    },
)
FUZZ = hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(payload=st.one_of(SHAPED, ANY_JSON), key=st.one_of(st.none(), st.text(max_size=300)))
def test_fuzzed_run_creation_never_fails(
    api: ApiClient,
    workflow: Workflow,
    enqueued: list[int],
    settings: Any,
    payload: Any,
    key: str | None,
) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 10_000  # many examples, one token
    headers = {"Idempotency-Key": key} if key is not None and key.isprintable() else {}
    with transaction.atomic():
        before = Run.objects.count()
        answer = api.post(RUNS, payload, headers=headers)  # validated against the document
        assert answer.status_code in (202, 400, 409, 422), answer.content
        if answer.status_code != 202:
            assert Run.objects.count() == before
        transaction.set_rollback(True)


@FUZZ
@given(payload=ANY_JSON, uuid=st.one_of(st.just(DEVICE_1), st.text(max_size=40)))
@example(payload={}, uuid="\x00")  # once a 500: the audit entry's path held a NUL
@example(payload={"parameters": {}}, uuid="a\x00b")
def test_fuzzed_resume_never_fails(api: ApiClient, settings: Any, payload: Any, uuid: str) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 10_000  # many examples, one token
    path = f"/api/v1/executions/{quote(uuid, safe='')}/resume"
    with transaction.atomic():
        answer = api.client.post(
            path,
            json.dumps(payload),
            content_type="application/json",
            headers={"Authorization": f"Bearer {api.token}"},
        )
        assert answer.status_code in (404, 405, 422), answer.content
        assert Resumption.objects.count() == 0
        transaction.set_rollback(True)
