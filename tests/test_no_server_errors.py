"""No request anybody can make ends in a server error, and every URL refuses the wrong roles.

Part one sweeps every URL pattern of the project (found by walking the resolver, so a new view is
swept without touching this file) for anonymous people and each role, with GET and POST, using
real rows and unknown ids as path arguments. Part two fuzzes every form and every query string
with Hypothesis: arbitrary text, names, repeated and missing fields, random uploads. An answer
that refuses the input must explain itself and must not have written anything.
"""

from __future__ import annotations

import itertools
import json
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from workflows_app.models import (
    ApiToken,
    AuditAction,
    Batch,
    BatchState,
    Flow,
    FlowRun,
    FlowRunStatus,
    Outcome,
    ParameterDefinition,
    Run,
    RunStatus,
    Target,
    Webhook,
    Workflow,
    WorkflowCuration,
)
from workflows_app.nexthink.models import Dependency, TriggerMethod
from workflows_app.roles import Role
from workflows_app.selectors.catalogue import SORTS
from workflows_app.selectors.people import ROLE_FILTERS
from workflows_app.services import dispatch, lifecycle
from workflows_app.services.api_tokens import hash_token
from workflows_app.services.curation_rules import ROLE_NAMES
from workflows_app.services.flow_runs import start_flow_run
from workflows_app.services.flows import create_flow
from workflows_app.services.runs import create_run
from workflows_app.services.webhook_admin import create_webhook
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind
from workflows_app.views import core
from workflows_app.views.catalogue import INCLUDES

pytestmark = pytest.mark.django_db

UNKNOWN_ID = 999_999
PASSWORD = "pw-12345-test"  # conftest's make_user


# --- every URL of the project --------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full name, its route from the root and its path arguments."""

    name: str
    route: str
    kwargs: tuple[str, ...]


# Not swept, and why. Static files need no entry: WhiteNoise's middleware serves them, the URL
# configuration has no pattern for them.
SKIPPED_NAMESPACES = {
    "admin": "Django's own admin site: staff accounts only (no portal role), tested by Django",
}


def _walk(
    patterns: list[Any], prefix: str = "", namespaces: tuple[str, ...] = (), kwargs: tuple = ()
) -> Iterator[Route]:
    for entry in patterns:
        names = tuple(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            if entry.namespace in SKIPPED_NAMESPACES:
                continue
            inner = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner, kwargs + names)
        elif isinstance(entry, URLPattern):
            assert entry.name, f"/{prefix}{entry.pattern} has no name; give it one"
            yield Route(
                ":".join((*namespaces, entry.name)), prefix + str(entry.pattern), kwargs + names
            )


ROUTES = sorted(_walk(get_resolver().url_patterns), key=lambda r: r.name)

ANONYMOUS = "anonymous"
ROLES = (ANONYMOUS, "employee", "helpdesk", "admin")
EVERYONE = frozenset(ROLES)
SIGNED_IN = frozenset({"employee", "helpdesk", "admin"})
STAFF = frozenset({"helpdesk", "admin"})
ADMIN = frozenset({"admin"})
# The JSON API authenticates by token only: a browser session, whatever its role, gets 401 JSON
# (never a login redirect). Who may call each API URL with a token: API_TOKEN_ACCESS below.
TOKEN_ONLY: frozenset[str] = frozenset()
API_PREFIX = "api/"

# Who may use each URL (by name). Anyone else is refused: anonymous people are sent to the login
# page, signed-in people get 403 (405 for a method the URL does not take).
ACCESS: dict[str, frozenset[str]] = {
    "home": SIGNED_IN,
    "healthz": EVERYONE,
    "login": EVERYONE,
    "logout": EVERYONE,
    "catalogue:list": STAFF,
    "catalogue:detail": STAFF,
    "catalogue:refresh": STAFF,
    "console:home": ADMIN,
    "console:sync": ADMIN,
    "console:resend": ADMIN,
    "console:sync_state": ADMIN,
    "console:dashboard": ADMIN,
    "console:dashboard_recount": ADMIN,
    "console:audit": ADMIN,
    "console:audit_export": ADMIN,
    "console:webhooks": ADMIN,
    "console:webhook": ADMIN,
    "console:webhook_toggle": ADMIN,
    "console:webhook_remove": ADMIN,
    "console:webhook_test": ADMIN,
    "curation:list": ADMIN,
    "curation:export": ADMIN,
    "curation:import": ADMIN,
    "curation:edit": ADMIN,
    "curation:parameter_row": ADMIN,
    "curation:settings": ADMIN,
    "curation:register_remote_action": ADMIN,
    "runs:start": STAFF,
    "runs:confirm": STAFF,
    "runs:change": STAFF,
    "runs:list": SIGNED_IN,  # employees see their own runs only
    "runs:detail": SIGNED_IN,
    "runs:progress": SIGNED_IN,
    "runs:export": SIGNED_IN,  # employees export their own runs only
    "runs:targets_export": SIGNED_IN,
    "runs:waiting": STAFF,
    "runs:resume": STAFF,
    "self_service:home": SIGNED_IN,
    "self_service:confirm": SIGNED_IN,
    "self_service:run": SIGNED_IN,
    "self_service:recent": SIGNED_IN,
    "people:list": STAFF,
    "people:detail": STAFF,
    "people:role": ADMIN,
    "people:upn": ADMIN,
    "people:assign": STAFF,
    "people:unassign": STAFF,
    # Company sign-in: 404 while SSO is off (as here); tests/test_sso.py signs in through them.
    "sso:login": EVERYONE,
    "sso:callback": EVERYONE,
    "account:tokens": STAFF,  # employees hold no API tokens
    "account:revoke": STAFF,
    "account:notifications": SIGNED_IN,
    "api:openapi-json": EVERYONE,  # the document describes the API; it opens nothing
    "api:api-root": EVERYONE,  # django-ninja's anchor for reversing /api/v1/: a 404 for all
    "api:workflows": TOKEN_ONLY,
    "api:runs": TOKEN_ONLY,
    "api:run": TOKEN_ONLY,
    "api:resume": TOKEN_ONLY,
    "api:flows": TOKEN_ONLY,
    "api:flow": TOKEN_ONLY,
    "api:flow_version": TOKEN_ONLY,
    "api:flows_import": TOKEN_ONLY,
    "api:flow_runs": TOKEN_ONLY,
    "api:flow_run_list": TOKEN_ONLY,
    "api:flow_run": TOKEN_ONLY,
    "flows:list": STAFF,
    "flows:new": ADMIN,
    "flows:export": ADMIN,
    "flows:import": ADMIN,
    "flows:detail": STAFF,
    "flows:edit": ADMIN,
    "flows:delete": ADMIN,
    "flows:start": STAFF,
    "flows:confirm": STAFF,
    "flows:change": STAFF,
    "flows:fix": SIGNED_IN,  # only flows offered for self-service (the world's is not: 404)
    "flows:runs": SIGNED_IN,  # employees see their own flow runs only
    "flows:runs_export": SIGNED_IN,
    "flows:run": SIGNED_IN,
    "flows:run_progress": SIGNED_IN,
    "approvals:inbox": STAFF,
    "approvals:detail": STAFF,  # and only who may decide, or the requester
    "approvals:decide": STAFF,
    "api:approve": TOKEN_ONLY,
    "api:reject": TOKEN_ONLY,
    "api:approve_flow_run": TOKEN_ONLY,
    "api:reject_flow_run": TOKEN_ONLY,
    # "Get help" on one's own final self-service run (others' runs: 404; rules: 403/409).
    "help:ask": SIGNED_IN,
    "help:list": STAFF,
    "help:handled": STAFF,  # POST only
}

# Who may call each API URL with a personal token (tests below). An employee's token (held
# before a demotion) is refused with 403; no token at all is 401.
API_TOKEN_ACCESS: dict[str, frozenset[str]] = {
    "api:openapi-json": EVERYONE,
    "api:api-root": EVERYONE,
    "api:workflows": STAFF,
    "api:runs": STAFF,
    "api:run": STAFF,
    "api:resume": STAFF,
    "api:flows": STAFF,  # reading; changing them is for admins (tests/test_flow_api.py)
    "api:flow": STAFF,
    "api:flow_version": STAFF,
    "api:flows_import": STAFF,
    "api:flow_runs": STAFF,
    "api:flow_run_list": STAFF,
    "api:flow_run": STAFF,
    "api:approve": STAFF,  # who may decide: tests/test_approval_pages.py
    "api:reject": STAFF,
    "api:approve_flow_run": STAFF,
    "api:reject_flow_run": STAFF,
}

DECISIONS = frozenset({"api:approve", "api:reject", "api:approve_flow_run", "api:reject_flow_run"})

# Who gets 200 on GET, per URL and path argument (labels from `arguments` below). Every pair not
# listed gives nobody a 200: POST-only URLs, redirects (home; login once signed in), the unknown
# id (404), another person's run for an employee (404), and parameter_row without its query.
GET_200: dict[tuple[str, str], frozenset[str]] = {
    ("healthz", ""): EVERYONE,
    ("login", ""): frozenset({ANONYMOUS}),
    ("catalogue:list", ""): STAFF,
    ("catalogue:detail", "workflow"): STAFF,
    ("catalogue:detail", "removed workflow"): ADMIN,  # only admins see removed workflows
    ("console:home", ""): ADMIN,
    ("console:sync_state", ""): ADMIN,
    ("console:dashboard", ""): ADMIN,
    ("console:audit", ""): ADMIN,
    ("console:audit_export", ""): ADMIN,
    ("console:webhooks", ""): ADMIN,
    ("console:webhook", "webhook"): ADMIN,
    ("people:list", ""): STAFF,
    ("people:detail", "person"): STAFF,
    ("curation:list", ""): ADMIN,
    ("curation:export", ""): ADMIN,
    ("curation:import", ""): ADMIN,
    ("curation:register_remote_action", ""): ADMIN,
    ("curation:edit", "workflow"): ADMIN,
    ("curation:edit", "removed workflow"): ADMIN,
    ("runs:start", "workflow"): STAFF,
    ("runs:start", "removed workflow"): STAFF,  # the page that says why it cannot run
    ("runs:list", ""): SIGNED_IN,
    ("runs:detail", "own run"): SIGNED_IN,
    ("runs:detail", "other's run"): STAFF,
    ("runs:progress", "own run"): SIGNED_IN,
    ("runs:progress", "other's run"): STAFF,
    ("runs:export", ""): SIGNED_IN,
    ("runs:targets_export", "own run"): SIGNED_IN,
    ("runs:targets_export", "other's run"): STAFF,
    ("runs:waiting", ""): STAFF,
    ("self_service:home", ""): SIGNED_IN,
    ("self_service:confirm", "workflow"): SIGNED_IN,
    ("self_service:recent", ""): SIGNED_IN,
    ("account:tokens", ""): STAFF,
    ("account:notifications", ""): SIGNED_IN,
    ("api:openapi-json", ""): EVERYONE,
    ("flows:list", ""): STAFF,
    ("flows:new", ""): ADMIN,
    ("flows:export", ""): ADMIN,
    ("flows:import", ""): ADMIN,
    ("flows:detail", "flow"): STAFF,
    ("flows:edit", "flow"): ADMIN,
    ("flows:start", "flow"): STAFF,
    ("flows:runs", ""): SIGNED_IN,
    ("flows:runs_export", ""): SIGNED_IN,
    ("flows:run", "flow run"): STAFF,
    ("flows:run_progress", "flow run"): STAFF,
    ("approvals:inbox", ""): STAFF,
    ("help:list", ""): STAFF,
}


def argument_kind(route: Route, kwarg: str) -> str:
    """What a path argument names: a workflow, a run, a batch or an execution (by its UUID)."""
    if kwarg == "execution_uuid":
        return "execution"
    if kwarg == "workflow_id":
        return "workflow"
    if kwarg == "batch_id":
        return "batch"
    if kwarg == "person_id":
        return "person"
    if kwarg == "token_id":
        return "token"
    if kwarg == "run_id":
        return "run"
    if kwarg == "pk" and route.name.startswith("console:webhook"):
        return "webhook"
    if kwarg == "flow_id" or (kwarg == "pk" and route.name.startswith("flows:")):
        return "flow run" if route.name.startswith("flows:run") else "flow"
    if kwarg == "flow_run_id":
        return "flow run"
    if kwarg == "number":
        return "version"
    if kwarg == "pk" and route.name.startswith("approvals:"):
        return "approval"
    if kwarg == "pk" and route.name.startswith("help:"):
        return "help request"
    if kwarg == "pk":
        return "run" if route.name.startswith("runs:") else "workflow"
    raise AssertionError(f"{route.name}: no rule for the path argument {kwarg!r}; add one here")


# --- rows ---------------------------------------------------------------------------------------


@dataclass
class World:
    """The rows every request is made against."""

    users: dict[str, Any]
    workflow: Workflow
    removed: Workflow
    runs: dict[str, Run]  # each role's own run
    others_run: Run  # a run of somebody else
    flow: Flow | None = None
    flow_run: FlowRun | None = None  # the helpdesk agent's
    device_keys: dict[str, list[str]] = field(default_factory=dict)
    webhook: Webhook | None = None


def _workflow(nql_id: str, **fields: Any) -> Workflow:
    now = timezone.now()
    values: dict[str, Any] = {
        "uuid": f"uuid-{nql_id.lstrip('#')}",
        "name": f"Fuzz {nql_id}",
        "status": Workflow.Status.ACTIVE,
        "dependency": Dependency.DEVICE,
        "trigger_api": True,
        "first_seen": now,
        "last_seen": now,
        **fields,
    }
    return Workflow.objects.create(nql_id=nql_id, **values)


def _run(user: Any, workflow: Workflow, source: Run.Source) -> Run:
    target = Wanted(TargetKind.DEVICE_COLLECTOR, f"00000000-0000-4000-8000-{user.pk:012d}", 1)
    return create_run(
        user=user,
        workflow=workflow,
        targets=[target],
        params={"ticket": "INC0000001"},
        reason="fuzz",
        source=source,
        allow_duplicate=True,
    )


@pytest.fixture
def world(
    make_user, employee, helpdesk, admin_user, nexthink_settings, simulator, monkeypatch, enqueued
):
    """Users of each role, a runnable curated workflow with typed parameters, a removed one, runs.

    Nothing leaves the process: batches are not queued, the catalogue sync is not enqueued, and
    the health check does not ask the broker (its 503 when the broker is down is its answer, not
    a server error). Nexthink calls (refresh, device lookups) go to the simulator.
    """
    monkeypatch.setattr(dispatch, "enqueue_catalogue_sync", lambda **kw: None)
    monkeypatch.setattr(core, "broker_ok", lambda: (True, "ok"))

    workflow = _workflow("#fuzz_fix")
    WorkflowCuration.objects.create(workflow=workflow, self_service=True, title="Fix it")
    for position, (name, fields) in enumerate(
        [
            ("mode", {"type": "choice", "choices": ["quick", "full"], "default": "quick"}),
            ("ticket", {"required": True, "pattern": r"INC\d{7}", "default": "INC0000000"}),
            ("restart", {"type": "boolean", "default": "false"}),
            ("days", {"type": "number", "default": "7"}),
            ("password", {"secret": True}),
        ]
    ):
        ParameterDefinition.objects.create(
            workflow=workflow, name=name, position=position, **fields
        )
    removed = _workflow("#fuzz_removed", removed_at=timezone.now())
    someone = make_user("someone-else", Role.EMPLOYEE)
    users = {"employee": employee, "helpdesk": helpdesk, "admin": admin_user}
    runs = {
        "employee": _run(employee, workflow, Run.Source.SELF_SERVICE),
        "helpdesk": _run(helpdesk, workflow, Run.Source.HELPDESK),
        "admin": _run(admin_user, workflow, Run.Source.HELPDESK),
    }
    keys = {
        role: [d.collector_uid.lower() for d in simulator.inventory.devices_of(user.email)]
        for role, user in users.items()
    }
    flow = create_flow(
        user=admin_user,
        data={"name": "Fuzz flow", "steps": [{"name": "fix", "referrer": workflow.nql_id}]},
    )
    flow_run = start_flow_run(
        user=helpdesk,
        flow=flow,
        targets=[Wanted(TargetKind.DEVICE_NAME, "PC-FUZZ", 1)],
        reason="fuzz",
        source=Run.Source.HELPDESK,
    )
    return World(
        users=users,
        workflow=workflow,
        removed=removed,
        runs=runs,
        others_run=_run(someone, workflow, Run.Source.SELF_SERVICE),
        device_keys=keys,
        flow=flow,
        flow_run=flow_run,
        webhook=create_webhook(url="https://tickets.example.com/hook", secret="s" * 16, actor=None),
    )


def client_as(world: World, role: str, *, csrf_checks: bool = False) -> Client:
    """A client of this role; 500s come back as responses so they can be asserted on."""
    client = Client(enforce_csrf_checks=csrf_checks, raise_request_exception=False)
    if role != ANONYMOUS:
        client.force_login(world.users[role])
    return client


def arguments(route: Route, world: World, role: str) -> list[tuple[str, dict[str, int]]]:
    """(label, path arguments) to request the route with: real rows, then an unknown id."""
    choices = []
    for kwarg in route.kwargs:
        kind = argument_kind(route, kwarg)
        if kind == "workflow":
            values = [("workflow", world.workflow.pk), ("removed workflow", world.removed.pk)]
        elif kind == "batch":
            values = [("batch", world.others_run.batches.get().pk)]
        elif kind in ("execution", "token", "approval", "help request"):
            # tests/test_waiting.py, test_api.py, test_approval_pages.py and
            # test_help_requests.py use real ones
            values = []
        elif kind == "person":
            values = [("person", world.users["employee"].pk)]
        elif kind == "flow":
            values = [("flow", world.flow.pk)] if world.flow else []
        elif kind == "flow run":
            values = [("flow run", world.flow_run.pk)] if world.flow_run else []
        elif kind == "version":
            values = [("version", 1)]
        elif kind == "webhook":
            values = [("webhook", world.webhook.pk)] if world.webhook else []
        else:
            values = [("other's run", world.others_run.pk)]
            if role != ANONYMOUS:
                values.insert(0, ("own run", world.runs[role].pk))
        choices.append([(kwarg, label, pk) for label, pk in [*values, ("unknown", UNKNOWN_ID)]])
    return [
        (" + ".join(label for _, label, _ in combo), {kwarg: pk for kwarg, _, pk in combo})
        for combo in itertools.product(*choices)
    ]


# --- what every answer must be -------------------------------------------------------------------


def snapshot() -> tuple[Any, ...]:
    """What a refused request must leave as it was: runs, batches, targets and the curation."""
    return (
        Run.objects.count(),
        Batch.objects.count(),
        Target.objects.count(),
        list(WorkflowCuration.objects.order_by("pk").values_list()),
        list(ParameterDefinition.objects.order_by("pk").values_list()),
        list(Webhook.objects.order_by("pk").values_list()),
    )


def assert_no_server_error(response: HttpResponse, what: str) -> None:
    if response.status_code >= 500:
        exc_info = getattr(response, "exc_info", None)
        detail = "".join(traceback.format_exception(*exc_info)) if exc_info else ""
        pytest.fail(f"{what} answered {response.status_code}\n{detail}")


# Markers of a message the person can read: alerts, error lists, messages and notices.
MESSAGE_MARKERS = (
    'role="alert"',
    'class="errorlist',
    'class="message error"',
    'class="message warning"',
    'data-testid="not-runnable"',
    'data-testid="refusal"',
)


def assert_explained(response: HttpResponse) -> None:
    """A refusal says why: an alert, error list or message on a page, or a sentence alone."""
    body = response.content.decode("utf-8", "replace")
    if "<html" in body:
        assert any(marker in body for marker in MESSAGE_MARKERS), body[:3000]
    else:
        assert len(body.strip()) > 10, body


def check(response: HttpResponse, what: str, before: tuple[Any, ...], allowed: set[int]) -> None:
    """Never a 500; an expected status; a refusal explains itself and wrote nothing."""
    assert_no_server_error(response, what)
    if currently_in_test_context():  # shown by --hypothesis-show-statistics
        event(f"status {response.status_code}")
    assert response.status_code in allowed, f"{what}: {response.status_code}"
    if response.status_code >= 400:
        assert_explained(response)
        assert snapshot() == before, f"{what}: refused with {response.status_code}, wrote rows"


def assert_stays_on_site(location: str) -> None:
    """A redirect never leaves the portal, whatever `next` said."""
    parts = urlsplit(location)
    assert parts.scheme in ("", "http") and parts.netloc in ("", "testserver"), location[:300]


@contextmanager
def rolled_back() -> Iterator[None]:
    """One Hypothesis example in a savepoint that is undone, so examples never see each other."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- part one: the sweep -------------------------------------------------------------------------


def test_every_url_has_an_access_rule_and_path_arguments_it_understands():
    names = {route.name for route in ROUTES}
    assert names == set(ACCESS), "classify each new URL in ACCESS (and GET_200) above"
    assert {name for name, _ in GET_200} <= names
    for route in ROUTES:
        for kwarg in route.kwargs:
            argument_kind(route, kwarg)


def test_access_table_keeps_the_role_rules():
    """Employees never use /workflows/ or /console/; helpdesk never /console/."""
    for route in ROUTES:
        roles = ACCESS[route.name] | set().union(
            *(who for (name, _), who in GET_200.items() if name == route.name)
        )
        if route.route.startswith(("workflows/", "console/")):
            assert "employee" not in roles, route
        if route.route.startswith("console/"):
            assert "helpdesk" not in roles, route
        public = {
            "healthz",
            "login",
            "logout",
            "api:openapi-json",
            "api:api-root",
            "sso:login",
            "sso:callback",
        }
        assert ANONYMOUS not in roles or route.name in public, route


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_every_url_answers_every_role_without_a_server_error(route, world):
    login_url = reverse("login")
    got_200: dict[str, set[str]] = {}  # argument label -> roles that got 200 on GET
    for role in ROLES:
        for label, kwargs in arguments(route, world, role):
            url = reverse(route.name, kwargs=kwargs)
            client = client_as(world, role)
            for method in ("get", "post"):
                what = f"{method.upper()} {url} as {role} ({label or 'no argument'})"
                before = snapshot()
                response = getattr(client, method)(url)
                status = response.status_code
                assert_no_server_error(response, what)
                if status == 200 and method == "get":
                    got_200.setdefault(label, set()).add(role)
                if status == 200:
                    assert role in ACCESS[route.name], f"{what}: 200 for a refused role"
                    if route.route.startswith(("workflows/", "console/")):
                        assert role != "employee", what
                    if route.route.startswith("console/"):
                        assert role != "helpdesk", what
                if role not in ACCESS[route.name]:
                    if route.route.startswith(API_PREFIX):
                        assert status in (401, 405), f"{what}: {status}"
                        if status == 401:
                            assert json.loads(response.content)["code"] == "unauthenticated"
                    elif role == ANONYMOUS:
                        sent_to_login = status == 302 and response["Location"].startswith(
                            f"{login_url}?next="
                        )
                        assert sent_to_login or status == 405, f"{what}: {status}"
                    else:
                        assert status in (403, 405), f"{what}: {status}"
                    assert snapshot() == before, f"{what}: refused, yet wrote rows"
                elif "unknown" in label.split(" + ") or (
                    label == "other's run" and role == "employee"
                ):
                    assert status in (404, 405), f"{what}: {status}"  # not even a hint it exists
                if status >= 400:
                    assert snapshot() == before, f"{what}: {status}, yet wrote rows"
    for label, _ in arguments(route, world, "admin"):
        expected = GET_200.get((route.name, label), frozenset())
        assert got_200.get(label, set()) == expected, f"GET {route.name} ({label})"


def test_post_without_csrf_token_is_refused_with_403(world):
    """Every URL, every role: no token, or a cookie but no token, is a 403 that writes nothing."""
    for role in ROLES:
        client = client_as(world, role, csrf_checks=True)
        # A page with a form sets the CSRF cookie: the second round has the cookie, not the token.
        for has_cookie in (False, True):
            if has_cookie:
                page = "/login/" if role == ANONYMOUS else reverse("self_service:home")
                assert client.get(page).status_code == 200
                assert "csrftoken" in client.cookies
            for route in ROUTES:
                label, kwargs = arguments(route, world, role)[0]
                url = reverse(route.name, kwargs=kwargs)
                before = snapshot()
                response = client.post(url, {"reason": "x", "device": "y", "token": "z"})
                what = f"POST {url} as {role} (cookie: {has_cookie})"
                assert_no_server_error(response, what)
                if ACCESS[route.name] == TOKEN_ONLY:
                    # Cookies open nothing there, so there is nothing to forge: 401 (405).
                    assert response.status_code in (401, 405), f"{what}: {response.status_code}"
                    assert snapshot() == before, what
                    continue
                assert response.status_code == 403, f"{what}: {response.status_code}"
                assert b"CSRF" in response.content, what
                assert snapshot() == before, what


API_ROUTES = [route for route in ROUTES if route.route.startswith(API_PREFIX)]


def test_every_api_url_has_a_token_rule():
    assert {route.name for route in API_ROUTES} == set(API_TOKEN_ACCESS)


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda route: route.name)
def test_every_api_url_answers_each_roles_token(route, world):
    """With a token: staff get through (200, or 404 for the unknown id; 405/422 as the body
    says), an employee's token is 403 JSON, and nothing answers 500 or writes on refusal."""
    for role in SIGNED_IN:
        user = world.users[role]
        ApiToken.objects.create(user=user, name=role, token_hash=hash_token(f"nxp_{role}"))
    allowed = API_TOKEN_ACCESS[route.name]
    for role in sorted(SIGNED_IN):
        for label, kwargs in arguments(route, world, role):
            url = reverse(route.name, kwargs=kwargs)
            client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer nxp_{role}")
            for method in ("get", "post"):
                what = f"{method.upper()} {url} with {role}'s token ({label or 'no argument'})"
                before = snapshot()
                response = getattr(client, method)(url, content_type="application/json")
                status = response.status_code
                assert_no_server_error(response, what)
                if route.name == "api:api-root":
                    assert status == 404, what
                    continue
                if status != 405:
                    assert response["Content-Type"].startswith("application/json"), what
                if role not in allowed:
                    assert status in (403, 405), f"{what}: {status}"  # 405: wrong method first
                    if status == 403:
                        assert json.loads(response.content)["code"] == "forbidden", what
                elif "unknown" in label.split(" + ") or (
                    label == "other's run" and role == "employee"
                ):
                    assert status in (404, 405, 422), f"{what}: {status}"
                else:
                    # An approval decision on a run that does not await one: 409.
                    ok = (200, 405, 409, 422) if route.name in DECISIONS else (200, 405, 422)
                    assert status in ok, f"{what}: {status}"
                if status >= 400:
                    assert snapshot() == before, f"{what}: {status}, yet wrote rows"


def test_post_with_the_csrf_token_gets_through(world):
    """The refusal above is the CSRF check, not a blanket 403: with the token the form answers."""
    client = client_as(world, "helpdesk", csrf_checks=True)
    client.get(reverse("self_service:home"))
    token = client.cookies["csrftoken"].value
    url = reverse("runs:start", args=[world.workflow.pk])
    response = client.post(url, {"targets_text": ""}, headers={"X-CSRFToken": token})
    assert response.status_code == 400
    assert b"Enter at least one target" in response.content


# --- part two: fuzzing ---------------------------------------------------------------------------

FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,  # no example database written into the working tree
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # `world` is shared; each example is rolled back
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

UNICODE = st.characters(exclude_categories=("Cs",))  # a surrogate cannot even be sent as UTF-8
METACHARACTERS = "*?[](){}\\^$|.+-%_'\";#&~<>/\x00\t\r\n "
SPECIAL_VALUES = [
    "",
    " ",
    "\x00",
    "nul\x00inside",
    "²",  # a digit to str.isdigit(), not to int()
    "١٢",  # Arabic-Indic digits: int() takes them
    "9" * 5000,  # longer than int() converts
    "-1",
    "0",
    "2147483648",
    "1e9",
    "NaN",
    "%",
    "_",
    "*",
    "?*",
    "[",
    "(",
    "\\",
    "' OR '1'='1' --",
    "\u202e",
    "\ufeff",
    "🙂",
    "İ",
    "a" * 20_000,
]
NASTY = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.text(UNICODE, max_size=30),
    st.text(st.sampled_from(METACHARACTERS), max_size=20),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.builds(lambda s, n: s * n, st.text(UNICODE, min_size=1, max_size=4), st.integers(300, 3000)),
)
FIELD_NAMES = st.text(UNICODE, min_size=1, max_size=12)


def values(*valid: str) -> st.SearchStrategy[list[str]]:
    """Zero (the field is missing), one or several values for one field."""
    one = st.one_of(st.sampled_from(valid), NASTY) if valid else NASTY
    return st.lists(one, max_size=3)


def one(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """Exactly one value for one field."""
    return strategy.map(lambda value: [value])


def form(known: dict[str, st.SearchStrategy[list[str]]]) -> st.SearchStrategy[dict[str, list]]:
    """The known fields, each maybe missing or repeated, plus fields nobody asked for."""
    return st.builds(
        lambda extra, given: {**extra, **given},
        st.dictionaries(FIELD_NAMES, values(), max_size=3),
        st.fixed_dictionaries({}, optional=known),
    )


def post(client: Client, url: str, data: dict[str, Any], *, urlencoded: bool) -> HttpResponse:
    """POST as a form would (multipart), or url-encoded when nothing is a file."""
    if urlencoded and not any(
        isinstance(v, SimpleUploadedFile) for vs in data.values() for v in vs
    ):
        body = urlencode(data, doseq=True)
        return client.post(url, body, content_type="application/x-www-form-urlencoded")
    return client.post(url, data)


FILE_NAMES = st.text(UNICODE, min_size=1, max_size=20)
UPLOADS = st.lists(
    st.tuples(
        st.one_of(FILE_NAMES, st.sampled_from(["t.csv", "t.txt"])),
        st.one_of(
            st.binary(max_size=2000),
            st.lists(NASTY, max_size=20).map(lambda lines: "\n".join(lines).encode()),
            st.lists(NASTY, max_size=5).map(lambda lines: ",".join(lines).encode("utf-16")),
            st.just(b"device_name,upn\nPC-1,a@example.com\n\xff\xfe\x00"),
        ),
        st.sampled_from(["text/plain", "text/csv", "application/octet-stream", ""]),
    ),
    max_size=2,
)


def uploads(drawn: list[tuple[str, bytes, str]]) -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile(file_name(name), content, ctype or None)
        for name, content, ctype in drawn
    ]


def file_name(drawn: str) -> str:
    """The drawn name, or a stand-in for one Django cannot even build a test upload with.

    SimpleUploadedFile keeps the last path segment and refuses "", "." and ".." (a drawn "/" or
    "a/.."): that is this test's own failure, before any request. A browser's such name never
    reaches a view either: Django's multipart parser drops the path the same way.
    """
    base = os.path.basename(drawn)
    return drawn if base not in ("", ".", "..") else f"upload{len(drawn)}.txt"


# GET endpoints that read a query string: (URL name, roles, the parameters and values they know).
@dataclass(frozen=True)
class Query:
    name: str
    roles: tuple[str, ...]
    params: dict[str, tuple[str, ...]]
    argument: str = ""  # "workflow" or "own run"


QUERIES = [
    Query(
        "catalogue:list",
        ("helpdesk", "admin"),
        {
            "dependency": tuple(Dependency),
            "trigger": tuple(TriggerMethod),
            "q": ("Fuzz", "fuzz*", "*fix", "F?zz*"),
            "sort": tuple(SORTS),
            "page": ("1", "2"),
            "include": INCLUDES,
        },
    ),
    Query(
        "runs:list",
        ("employee", "helpdesk", "admin"),
        {
            "before": ("1", "100000"),
            "status": tuple(RunStatus.values),
            "workflow": ("#fuzz_fix", "fuzz"),
            "requester": ("admin", "adm"),
            "role": ("employee", "helpdesk", "admin"),
            "source": tuple(Run.Source.values),
            "outcome": tuple(Outcome.values),
            "target": ("LAPTOP-1", "%"),
            "reason": ("INC", "_"),
            "since": ("2026-01-01", "", "1969-12-31"),
            "until": ("2026-12-31", "9999-12-31"),
            "mine": ("1", "0"),
            "help": ("1", "0"),
        },
    ),
    Query(
        "runs:export",
        ("employee", "helpdesk", "admin"),
        {
            "status": tuple(RunStatus.values),
            "workflow": ("fuzz",),
            "outcome": tuple(Outcome.values),
            "since": ("2026-01-01", ""),
            "mine": ("1", "0"),
        },
    ),
    Query(
        "runs:targets_export",
        ("employee", "helpdesk", "admin"),
        {"outcome": (*Outcome.values, "failed")},
        "own run",
    ),
    Query(
        "runs:detail",
        ("employee", "helpdesk", "admin"),
        {"after": ("0", "1"), "outcome": (*Outcome.values, "failed"), "events_after": ("1", "2")},
        "own run",
    ),
    Query("runs:progress", ("employee", "helpdesk", "admin"), {"outcome": ("failed",)}, "own run"),
    Query(
        "runs:start",
        ("helpdesk", "admin"),
        {"rerun": ("1", "2", "999999"), "again": ("1", "2", "999999")},
        "workflow",
    ),
    Query("runs:waiting", ("helpdesk", "admin"), {"before": ("1", "100000")}),
    # The export reads its filters with the same selectors.flows.flow_run_filters.
    Query(
        "flows:runs",
        ("employee", "helpdesk"),
        {"flow": ("Fuzz", "1"), "status": tuple(FlowRunStatus.values), "before": ("1", "9")},
    ),
    Query("self_service:home", ("employee", "helpdesk", "admin"), {"q": ("Fix", "fuzz")}),
    Query("curation:list", ("admin",), {"q": ("fuzz", "#fuzz")}),
    Query("console:dashboard", ("admin",), {"days": ("7", "30", "90")}),
    Query(
        "console:audit",
        ("admin",),
        {
            "who": ("admin", "adm"),
            "action": tuple(AuditAction.values),
            "since": ("2026-01-01", "1969-12-31"),
            "until": ("2026-12-31", "9999-12-31"),
            "q": ("signed", "%"),
            "before": ("1", "100000"),
        },
    ),
    Query(
        "console:audit_export",
        ("admin",),
        {"who": ("admin",), "action": tuple(AuditAction.values), "since": ("2026-01-01",)},
    ),
    Query(
        "people:list",
        ("helpdesk", "admin"),
        {"q": ("admin", "example.com"), "role": ROLE_FILTERS, "after": ("a", "zzz")},
    ),
    Query("curation:parameter_row", ("admin",), {"parameters-TOTAL_FORMS": ("0", "5")}, "workflow"),
    Query("login", (ANONYMOUS,), {"next": ("/runs/", "//evil.example", "https://evil.example/")}),
]


def query_url(query: Query, world: World, role: str) -> str:
    if query.argument == "workflow":
        return reverse(query.name, args=[world.workflow.pk])
    if query.argument == "own run":
        return reverse(query.name, args=[world.runs[role].pk])
    return reverse(query.name)


def test_every_fuzzed_query_names_a_real_url():
    assert {q.name for q in QUERIES} <= {route.name for route in ROUTES}


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.name)
def test_known_nasty_values_in_each_query_parameter(query, world):
    """Every special value in every parameter, deterministically (the bugs the fuzzing found)."""
    clients = {role: client_as(world, role) for role in query.roles}
    for role, client in clients.items():
        url = query_url(query, world, role)
        for param in query.params:
            for value in SPECIAL_VALUES:
                before = snapshot()
                response = client.get(url, {param: value})
                check(response, f"GET {url}?{param}={value[:30]!r} as {role}", before, {200, 400})


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.name)
@FUZZ
@given(data=st.data())
def test_fuzzed_query_strings_never_fail(query, world, data):
    role = data.draw(st.sampled_from(query.roles), label="role")
    params = data.draw(form({name: values(*valid) for name, valid in query.params.items()}))
    htmx = data.draw(st.booleans(), label="htmx")
    url = query_url(query, world, role)
    with rolled_back():
        client = client_as(world, role)
        before = snapshot()
        headers = {"HX-Request": "true"} if htmx else {}
        response = client.get(url, params, headers=headers)
        check(response, f"GET {url} {params!r} as {role}", before, {200, 302, 400})


# --- the forms ---

PLAUSIBLE_TARGETS = [
    "0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40",
    "S-1-5-21-1004336348-1177238915-682003330-1001",
    "someone@example.com",
    "PC-0042",
    "name:3fa85f64",
    "upn:x@y.zz",
    "collector:0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a41",
    "# comment",
    "",
]
TARGET_LISTS = st.lists(st.one_of(st.sampled_from(PLAUSIBLE_TARGETS), NASTY), max_size=8).map(
    "\n".join
)
RUN_FIELDS = {
    "targets_text": st.lists(st.one_of(TARGET_LISTS, NASTY), max_size=2),
    "reason": values("INC0012345"),
    "param_mode": values("quick", "full"),
    "param_ticket": values("INC0012345"),
    "param_restart": values("true", "false"),
    "param_days": values("3", "1e2", "-0"),
    "param_password": values("s3cret"),
    "again": values("1", "2", "999999"),
}
# Devices only and valid parameters, so most examples reach the confirmation page.
SHAPED_RUN = st.fixed_dictionaries(
    {
        "targets_text": one(
            st.lists(st.sampled_from(PLAUSIBLE_TARGETS[-4:] + ["PC-1", "PC-2"]), min_size=1).map(
                "\n".join
            )
        ),
        "param_ticket": st.just(["INC0012345"]),
    },
    optional={
        "reason": one(NASTY),
        "param_mode": one(st.sampled_from(["quick", "full"])),
        "param_restart": one(st.sampled_from(["true", "false"])),
        "param_days": one(st.one_of(st.sampled_from(["3", "0.5", "-2", "1e3"]), NASTY)),
        "param_password": one(NASTY),
    },
)


@FUZZ
@given(
    role=st.sampled_from(["helpdesk", "admin"]),
    data_and_files=st.one_of(
        st.tuples(SHAPED_RUN, st.just([])), st.tuples(form(RUN_FIELDS), UPLOADS)
    ),
    removed=st.sampled_from([False, False, False, True]),  # mostly the runnable workflow
    urlencoded=st.booleans(),
)
# Found by this test, in the test itself: an upload named "/" (see `file_name`).
@example(
    role="helpdesk",
    data_and_files=({}, [("/", b"device_name,upn\nPC-1,a@example.com\n", "text/plain")]),
    removed=False,
    urlencoded=False,
)
def test_fuzzed_run_form_never_fails_and_writes_nothing(
    world, role, data_and_files, removed, urlencoded
):
    data, files = data_and_files
    workflow = world.removed if removed else world.workflow
    url = reverse("runs:start", args=[workflow.pk])
    if files:
        data = {**data, "targets_file": uploads(files)}
    with rolled_back():
        before = snapshot()
        response = post(client_as(world, role), url, data, urlencoded=urlencoded)
        check(response, f"POST {url} {data!r} as {role}", before, {200, 400})
        assert snapshot() == before  # the form only checks; the confirmation starts the run


@FUZZ
@given(
    role=st.sampled_from(["helpdesk", "admin"]),
    token=st.one_of(NASTY, st.just("REAL")),
    extra=form({}),
    removed=st.booleans(),
    urlencoded=st.booleans(),
)
@pytest.mark.parametrize("step", ["runs:confirm", "runs:change"])
def test_fuzzed_run_confirmation_never_fails(world, step, role, token, extra, removed, urlencoded):
    client = client_as(world, role)
    workflow = world.removed if removed else world.workflow
    with rolled_back():
        if token == "REAL":  # a real pending run in this person's session
            page = client.post(
                reverse("runs:start", args=[world.workflow.pk]),
                {"targets_text": "PC-0001", "param_ticket": "INC0012345"},
            )
            assert page.status_code == 200, page.content.decode()[:2000]
            token = page.content.decode().split('name="token" value="')[1].split('"')[0]
        url = reverse(step, args=[workflow.pk])
        before = snapshot()
        response = post(client, url, {**extra, "token": [token]}, urlencoded=urlencoded)
        allowed = {302, 400} if step == "runs:confirm" else {200, 400}
        check(response, f"POST {url} token={token[:40]!r} as {role}", before, allowed)


@FUZZ
@given(
    role=st.sampled_from(["employee", "helpdesk", "admin"]),
    device=st.one_of(NASTY, st.sampled_from(["OWN", "OWN upper", "OWN spaced"])),
    extra=form({}),
    urlencoded=st.booleans(),
)
def test_fuzzed_self_service_run_never_fails(world, role, device, extra, urlencoded):
    keys = world.device_keys[role]
    if device.startswith("OWN") and keys:
        device = {"OWN": keys[0], "OWN upper": keys[0].upper(), "OWN spaced": f" {keys[0]} "}[
            device
        ]
    url = reverse("self_service:run", args=[world.workflow.pk])
    with rolled_back():
        before = snapshot()
        response = post(
            client_as(world, role), url, {**extra, "device": [device]}, urlencoded=urlencoded
        )
        check(response, f"POST {url} device={device[:40]!r} as {role}", before, {302, 400, 409})


PATTERNS = st.one_of(
    st.sampled_from(
        [
            r"INC\d{7}",
            "a{99999999999}",
            "(",
            "[",
            "a**",
            "(?P<x>a)(?P<x>b)",
            "\\",
            "x{2,1}",
            "(?<=a+)b",
        ]
    ),
    NASTY,
)
TYPES = ("text", "choice", "boolean", "number")


def _row(index: int) -> dict[str, st.SearchStrategy[list[str]]]:
    prefix = f"parameters-{index}-"
    return {
        prefix + "name": values("mode", "ticket", "new_param", "with space"),
        prefix + "label": values("A label"),
        prefix + "help_text": values("Some help"),
        prefix + "type": values(*TYPES),
        prefix + "required": values("on"),
        prefix + "default": values("quick", "true", "7", "INC0000000"),
        prefix + "choices": values("quick\nfull", "a\n\nb"),
        prefix + "pattern": st.lists(PATTERNS, max_size=2),
        prefix + "secret": values("on"),
        prefix + "position": values("1", "2", "99999999999999999999", "-3"),
        prefix + "DELETE": values("on"),
    }


CURATION_FIELDS = {
    "parameters-TOTAL_FORMS": values("0", "1", "2", "3", "1000000"),
    "parameters-INITIAL_FORMS": values("0", "1", "5"),
    "parameters-MIN_NUM_FORMS": values("0"),
    "parameters-MAX_NUM_FORMS": values("1000"),
    "self_service": values("on"),
    "title": values("Fix Teams"),
    "description": values("It helps."),
    "category": values("Collaboration"),
    "confirmation_text": values("Continue?"),
    "allowed_roles": st.lists(st.one_of(st.sampled_from(ROLE_NAMES), NASTY), max_size=4),
    **_row(0),
    **_row(1),
}


# A well-formed page with one new parameter row, so the curation rules themselves get the text.
SHAPED_CURATION = st.fixed_dictionaries(
    {
        "parameters-TOTAL_FORMS": st.just(["1"]),
        "parameters-INITIAL_FORMS": st.just(["0"]),
        "title": one(NASTY),
        "description": one(NASTY),
        "category": one(NASTY),
        "confirmation_text": one(NASTY),
        "parameters-0-name": one(st.sampled_from(["p", "mode", "new_param"])),
        "parameters-0-type": one(st.sampled_from(TYPES)),
        "parameters-0-default": one(st.one_of(st.just(""), NASTY)),
        "parameters-0-choices": one(NASTY),
        "parameters-0-pattern": one(PATTERNS),
    },
    optional={
        "self_service": st.just(["on"]),
        "allowed_roles": st.lists(st.sampled_from(ROLE_NAMES), max_size=3),
        "parameters-0-secret": st.just(["on"]),
        "parameters-0-required": st.just(["on"]),
        "parameters-0-position": one(NASTY),
    },
)
PATTERN_TOO_LARGE = {  # found by this test: OverflowError from re.compile, a 500
    "parameters-TOTAL_FORMS": ["1"],
    "parameters-INITIAL_FORMS": ["0"],
    "parameters-0-name": ["p"],
    "parameters-0-type": ["text"],
    "parameters-0-pattern": ["a{99999999999}"],
}


@FUZZ
@given(
    data=st.one_of(SHAPED_CURATION, form(CURATION_FIELDS)),
    removed=st.booleans(),
    urlencoded=st.booleans(),
)
@example(data=PATTERN_TOO_LARGE, removed=False, urlencoded=False)
def test_fuzzed_curation_editor_never_fails_and_refusals_keep_everything(
    world, data, removed, urlencoded
):
    workflow = world.removed if removed else world.workflow
    url = reverse("curation:edit", args=[workflow.pk])
    with rolled_back():
        before = snapshot()
        response = post(client_as(world, "admin"), url, data, urlencoded=urlencoded)
        check(response, f"POST {url} {data!r}", before, {302, 400})


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), NASTY)
ANY_JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY, inner, max_size=3),
    max_leaves=12,
)
PARAMETER_ENTRY = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["mode", "ticket", "new_one"]), NASTY)},
    optional={
        "label": NASTY,
        "help_text": NASTY,
        "type": st.one_of(st.sampled_from(TYPES), NASTY),
        "required": st.one_of(st.booleans(), JSON_LEAF),
        "default": NASTY,
        "choices": st.lists(NASTY, max_size=3),
        "pattern": PATTERNS,
        "secret": st.booleans(),
    },
)
WORKFLOW_ENTRY = st.fixed_dictionaries(
    {"nql_id": st.one_of(st.sampled_from(["#fuzz_fix", "#fuzz_removed", "#unknown"]), NASTY)},
    optional={
        "self_service": st.one_of(st.booleans(), JSON_LEAF),
        "title": NASTY,
        "description": NASTY,
        "category": NASTY,
        "confirmation_text": NASTY,
        "allowed_roles": st.lists(st.one_of(st.sampled_from(ROLE_NAMES), NASTY), max_size=3),
        "parameters": st.lists(PARAMETER_ENTRY, max_size=3),
    },
)
DOCUMENTS = st.fixed_dictionaries(
    {
        "format": st.one_of(st.just("nexthink-portal-curation"), NASTY),
        "version": st.one_of(st.just(1), JSON_LEAF),
        "workflows": st.one_of(st.lists(WORKFLOW_ENTRY, max_size=3), ANY_JSON),
    },
    optional={"exported_at": st.one_of(st.just("2026-01-02T03:04:05Z"), NASTY)},
)
# A document of the right shape for a real workflow, so arbitrary text reaches the database.
SHAPED_DOCUMENTS = st.fixed_dictionaries(
    {
        "format": st.just("nexthink-portal-curation"),
        "version": st.just(1),
        "workflows": st.lists(
            st.fixed_dictionaries(
                {"nql_id": st.just("#fuzz_fix")},
                optional={
                    key: NASTY for key in ("title", "description", "category", "confirmation_text")
                }
                | {
                    "parameters": st.lists(
                        st.fixed_dictionaries(
                            {"name": st.sampled_from(["mode", "p"])},
                            optional={
                                "type": st.sampled_from(TYPES),
                                "label": NASTY,
                                "default": NASTY,
                                "choices": st.lists(NASTY, max_size=2),
                                "pattern": PATTERNS,
                            },
                        ),
                        max_size=1,
                    )
                },
            ),
            min_size=1,
            max_size=1,
        ),
    }
)
DOCUMENT_TEXT = st.one_of(
    SHAPED_DOCUMENTS.map(json.dumps),
    DOCUMENTS.map(json.dumps),
    DOCUMENTS.map(lambda doc: json.dumps(doc, ensure_ascii=False)),
    ANY_JSON.map(json.dumps),
    NASTY,
)


NO_EXTRAS: dict[str, Any] = {"file": [], "replace_all": [], "extra": {}, "urlencoded": False}


def _document(**entry: Any) -> list[str]:
    doc = {"format": "nexthink-portal-curation", "version": 1, "workflows": [entry]}
    return [json.dumps(doc)]


@FUZZ
@given(
    text=st.lists(DOCUMENT_TEXT, max_size=2),
    file=st.lists(
        st.tuples(
            st.one_of(FILE_NAMES, st.just("c.json")),
            st.one_of(
                st.binary(max_size=2000),
                DOCUMENT_TEXT.map(lambda text: text.encode()),
                DOCUMENTS.map(lambda doc: json.dumps(doc).encode("utf-16")),
            ),
            st.just("application/json"),
        ),
        max_size=2,
    ),
    replace_all=values("on"),
    extra=form({}),
    urlencoded=st.booleans(),
)
# Found by this test, each a 500: NUL in text PostgreSQL was asked to store (or to look up, or
# to put in jsonb), and a pattern re.compile cannot size.
@example(text=_document(nql_id="#fuzz_fix", title="a\x00b"), **NO_EXTRAS)
@example(text=_document(nql_id="#fuzz\x00fix"), **NO_EXTRAS)
@example(
    text=_document(nql_id="#fuzz_fix", parameters=[{"name": "c", "choices": ["a\x00"]}]),
    **NO_EXTRAS,
)
@example(
    text=_document(nql_id="#fuzz_fix", parameters=[{"name": "p", "pattern": "a{99999999999}"}]),
    **NO_EXTRAS,
)
def test_fuzzed_curation_import_never_fails_and_refusals_keep_everything(
    world, text, file, replace_all, extra, urlencoded
):
    data: dict[str, list[Any]] = {**extra, "text": text, "replace_all": replace_all}
    if file:
        data["file"] = uploads(file)
    url = reverse("curation:import")
    with rolled_back():
        before = snapshot()
        response = post(client_as(world, "admin"), url, data, urlencoded=urlencoded)
        check(response, f"POST {url} {data!r}", before, {302, 400})


@FUZZ
@given(
    data=form(
        {
            "username": values("employee", "helpdesk"),
            "password": values(PASSWORD),
            "next": values("/runs/", "//evil.example/", "javascript:alert(1)"),
        }
    ),
    urlencoded=st.booleans(),
)
def test_fuzzed_login_never_fails(world, data, urlencoded):
    with rolled_back():
        before = snapshot()
        response = post(client_as(world, ANONYMOUS), reverse("login"), data, urlencoded=urlencoded)
        check(response, f"POST /login/ {data!r}", before, {200, 302})
        if response.status_code == 302:
            assert_stays_on_site(response["Location"])
        elif response.status_code == 200:
            assert_explained(response)


@FUZZ
@given(
    role=st.sampled_from(ROLES),
    data=form({"next": values("/runs/", "//evil.example/", "https://evil.example/")}),
    urlencoded=st.booleans(),
)
def test_fuzzed_logout_never_fails(world, role, data, urlencoded):
    with rolled_back():
        before = snapshot()
        response = post(client_as(world, role), reverse("logout"), data, urlencoded=urlencoded)
        check(response, f"POST /logout/ {data!r} as {role}", before, {302})
        assert_stays_on_site(response["Location"])


def test_known_nasty_notes_on_a_resend_decision(world):
    """Every special value as the admin's note on sending not-sent targets again."""
    run = world.others_run
    batch = run.batches.get()
    url = reverse("console:resend", args=[batch.pk])
    client = client_as(world, "admin")
    for value in SPECIAL_VALUES:
        with rolled_back():
            Batch.objects.filter(pk=batch.pk).update(state=BatchState.RECONCILED)
            Target.objects.filter(run=run).update(outcome=Outcome.NOT_SENT)
            lifecycle.recount(batch.pk)
            before = snapshot()
            response = client.post(url, {"note": value})
            check(response, f"POST {url} note={value[:30]!r}", before, {302, 400})


def test_inputs_that_were_500s_now_get_a_clear_answer(world):
    """What the person reads for each input this module found answering 500."""
    helpdesk, admin = client_as(world, "helpdesk"), client_as(world, "admin")
    before = snapshot()

    page = helpdesk.get(reverse("catalogue:list"), {"q": "Fuzz\x00", "page": "²"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Search had NUL characters; they were removed." in html
    assert "Unknown page" in html and "Fuzz #fuzz_fix" in html
    for url, params in [
        (reverse("runs:list"), {"before": "9" * 5000, "workflow": "#fuzz_fix\x00"}),
        (reverse("runs:detail", args=[world.runs["helpdesk"].pk]), {"after": "²"}),
        (reverse("self_service:home"), {"q": "\x00"}),
    ]:
        assert helpdesk.get(url, params).status_code == 200, url
    assert admin.get(reverse("curation:list"), {"q": "\x00"}).status_code == 200

    edit = admin.post(reverse("curation:edit", args=[world.workflow.pk]), PATTERN_TOO_LARGE)
    assert edit.status_code == 400
    assert "Not a usable regular expression: too large." in edit.content.decode()

    imported = admin.post(
        reverse("curation:import"), {"text": _document(nql_id="#fuzz_fix", title="a\x00b")}
    )
    assert imported.status_code == 400
    assert "workflows[0].title: contains a NUL character" in imported.content.decode()
    assert snapshot() == before
