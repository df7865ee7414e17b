"""Employee self-service: curated cards, confirmation, runs on one's own device and identity."""

from __future__ import annotations

import threading
from datetime import timedelta
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workflows_app import permissions
from workflows_app.models import (
    Batch,
    DeviceAssignment,
    ParameterDefinition,
    PortalSettings,
    Run,
    RunStatus,
    Target,
    Workflow,
    WorkflowCuration,
)
from workflows_app.permissions import RunPermit, permit
from workflows_app.roles import Role
from workflows_app.services import runs as runs_service
from workflows_app.services.runs import RunRefused
from workflows_app.services.self_service import start_self_service_run

HOME = "/self-service/"
NQL_PATH = "/api/v2/nql/execute"
OTHER_COLLECTOR = "0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40"
_ids = count(1)


@pytest.fixture(autouse=True)
def no_enqueue(enqueued):
    """Record the batches a run would queue instead of publishing them to a broker."""
    return enqueued


@pytest.fixture
def make_workflow(db):
    """Build a catalogue row (runnable by default) with an optional curation."""

    def make(
        name: str = "Clear Teams cache",
        *,
        dependency: str = "DEVICE",
        self_service: bool | None = True,
        category: str = "",
        title: str = "",
        description: str = "",
        confirmation_text: str = "",
        **fields,
    ) -> Workflow:
        n = next(_ids)
        now = timezone.now()
        values = {
            "nql_id": f"#ss_workflow_{n}",
            "uuid": f"00000000-0000-4000-8000-{n:012d}",
            "name": name,
            "description": "",
            "status": Workflow.Status.ACTIVE,
            "dependency": dependency,
            "trigger_api": True,
            "first_seen": now,
            "last_seen": now,
            **fields,
        }
        workflow = Workflow.objects.create(**values)
        if self_service is not None:
            WorkflowCuration.objects.create(
                workflow=workflow,
                self_service=self_service,
                category=category,
                title=title,
                description=description,
                confirmation_text=confirmation_text,
            )
        return workflow

    return make


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def employee_devices(simulator):
    """The employee's devices in the simulated tenant, most recently seen first."""
    return simulator.inventory.devices_of("employee@example.com")


def nql_calls(simulator) -> int:
    return sum(1 for r in list(simulator.state.requests) if r.path == NQL_PATH)


def own_device_permit(user, workflow: Workflow) -> RunPermit:
    """What the self-service page asks the run rule before starting a fix."""
    return permit(user, workflow, Run.Source.SELF_SERVICE)


def run_url(workflow: Workflow) -> str:
    return reverse("self_service:run", args=[workflow.pk])


def confirm_url(workflow: Workflow) -> str:
    return reverse("self_service:confirm", args=[workflow.pk])


# --- the cards ---------------------------------------------------------------------------------


def test_employee_sees_only_curated_cards_grouped_by_category(employee, signed_in, make_workflow):
    make_workflow("wf-net", title="Reset the VPN", category="Network")
    make_workflow("wf-app", title="Repair Outlook", category="Apps")
    make_workflow("wf-loose", title="Free disk space")
    make_workflow("Helpdesk only", self_service=False, category="Apps")
    make_workflow("Never curated", self_service=None)
    make_workflow("Inactive", category="Apps", status=Workflow.Status.INACTIVE)
    make_workflow("No API trigger", category="Apps", trigger_api=False)
    make_workflow("Removed", category="Apps", removed_at=timezone.now())

    response = signed_in(employee).get(HOME)

    assert response.status_code == 200
    categories = response.context["categories"]
    assert [(c.name, [card.title for card in c.cards]) for c in categories] == [
        ("Apps", ["Repair Outlook"]),
        ("Network", ["Reset the VPN"]),
        ("Other", ["Free disk space"]),
    ]
    html = response.content.decode()
    for hidden in ("Helpdesk only", "Never curated", "Inactive", "No API trigger", "Removed"):
        assert hidden not in html


def test_search_filters_titles_and_descriptions(employee, signed_in, make_workflow):
    make_workflow("wf-1", title="Repair Outlook", description="Mail does not sync")
    make_workflow("wf-2", title="Reset the VPN", description="Cannot connect from home")
    client = signed_in(employee)

    by_title = client.get(HOME, {"q": "outlook"})
    by_description = client.get(HOME, {"q": "FROM HOME"})
    nothing = client.get(HOME, {"q": "printer"})

    assert [c.title for cat in by_title.context["categories"] for c in cat.cards] == [
        "Repair Outlook"
    ]
    assert [c.title for cat in by_description.context["categories"] for c in cat.cards] == [
        "Reset the VPN"
    ]
    assert "No fix matches" in nothing.content.decode()


def test_htmx_search_gets_the_cards_partial_only(employee, signed_in, make_workflow):
    make_workflow("wf-1", title="Repair Outlook")

    response = signed_in(employee).get(HOME, {"q": "outlook"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Repair Outlook" in html
    assert "<html" not in html and "Your recent fixes" not in html


def test_a_required_parameter_without_default_makes_the_card_unavailable(
    employee, signed_in, make_workflow
):
    workflow = make_workflow("wf-1", title="Map a drive")
    ParameterDefinition.objects.create(workflow=workflow, name="drive", required=True)
    client = signed_in(employee)

    home = client.get(HOME)
    posted = client.post(run_url(workflow), {"device": "anything"})

    assert "an admin must give a default value to &#x27;drive&#x27;" in home.content.decode()
    assert confirm_url(workflow) not in home.content.decode()
    assert posted.status_code == 400
    assert not Run.objects.exists()


@pytest.mark.parametrize("role", [Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN])
def test_every_role_can_open_self_service(role, make_user, signed_in):
    response = signed_in(make_user("someone", role)).get(HOME)

    assert response.status_code == 200


def test_anonymous_is_sent_to_login(client, make_workflow):
    workflow = make_workflow()

    for url in (HOME, confirm_url(workflow)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/login/")
    assert client.post(run_url(workflow)).status_code == 302
    assert not Run.objects.exists()


def test_account_without_role_is_refused(make_user, signed_in):
    response = signed_in(make_user("norole", None)).get(HOME)

    assert response.status_code == 403


def test_wrong_methods_are_refused(employee, signed_in, make_workflow):
    workflow = make_workflow()
    client = signed_in(employee)

    assert client.post(HOME).status_code == 405
    assert client.post(confirm_url(workflow)).status_code == 405
    assert client.get(run_url(workflow)).status_code == 405


def test_unknown_workflow_is_404(employee, signed_in):
    client = signed_in(employee)

    assert client.get("/self-service/999999/").status_code == 404
    assert client.post("/self-service/999999/run/").status_code == 404


@pytest.mark.parametrize("curated", [False, None])
def test_workflow_not_offered_for_self_service_is_404(curated, employee, signed_in, make_workflow):
    workflow = make_workflow(self_service=curated)
    client = signed_in(employee)

    assert client.get(confirm_url(workflow)).status_code == 404
    assert client.post(run_url(workflow), {"device": OTHER_COLLECTOR}).status_code == 404
    assert not Run.objects.exists()


# --- confirmation and devices ------------------------------------------------------------------


def test_confirm_preselects_the_most_recent_device_and_offers_three(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow(title="Clear Teams cache")

    response = signed_in(employee).get(confirm_url(workflow))

    recent, *others = employee_devices(simulator)
    lookup = response.context["lookup"]
    assert [d.name for d in lookup.devices] == [recent.name] + [d.name for d in others]
    assert response.context["selected_key"] == recent.collector_uid
    html = response.content.decode()
    assert html.count('type="radio" name="device"') == 3
    assert f'value="{recent.collector_uid}" data-testid="device" checked' in html
    assert f"This runs Clear Teams cache on {recent.name}. Continue?" in html


def test_confirm_shows_the_admins_confirmation_text(
    employee, signed_in, make_workflow, nexthink_settings
):
    workflow = make_workflow(confirmation_text="Teams will close for a minute. Go ahead?")

    response = signed_in(employee).get(confirm_url(workflow))

    assert "Teams will close for a minute. Go ahead?" in response.content.decode()


def test_htmx_confirm_gets_the_partial(employee, signed_in, make_workflow, nexthink_settings):
    workflow = make_workflow()

    response = signed_in(employee).get(confirm_url(workflow), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert 'data-testid="confirm"' in html and "<html" not in html


def test_a_second_page_view_does_not_ask_nexthink_again(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    client = signed_in(employee)

    client.get(confirm_url(workflow))
    client.get(confirm_url(workflow))
    client.post(run_url(workflow), {"device": employee_devices(simulator)[0].collector_uid})

    assert nql_calls(simulator) == 1


def test_nql_down_offers_assigned_devices_with_a_gentle_notice(
    employee, signed_in, make_workflow, nexthink_settings, monkeypatch
):
    monkeypatch.setattr("workflows_app.nexthink.client.time.sleep", lambda seconds: None)
    nexthink_settings.NEXTHINK_API_URL = "http://127.0.0.1:9"  # nothing listens there
    DeviceAssignment.objects.create(user=employee, device_name="SPARE-LT-9")
    workflow = make_workflow()
    client = signed_in(employee)

    page = client.get(confirm_url(workflow))
    posted = client.post(run_url(workflow), {"device": "name:spare-lt-9"})

    html = page.content.decode()
    assert "Nexthink could not be asked for your devices just now" in html
    assert "SPARE-LT-9" in html
    assert posted.status_code == 302
    target = Target.objects.get()
    assert (target.kind, target.value) == ("device_name", "SPARE-LT-9")
    assert Run.objects.get().api_version == "v2"


def test_no_device_found_means_no_run_button(
    make_user, signed_in, make_workflow, nexthink_settings
):
    stranger = make_user("stranger", Role.EMPLOYEE)
    workflow = make_workflow()

    response = signed_in(stranger).get(confirm_url(workflow))

    html = response.content.decode()
    assert 'data-testid="no-device"' in html
    assert (
        "Ask the helpdesk to assign your device to you in the portal (People → your name)" in html
    )
    assert "Yes, run it" not in html


# --- running -----------------------------------------------------------------------------------


def test_run_on_own_device_targets_its_collector_and_redirects_to_the_run(
    employee,
    signed_in,
    make_workflow,
    nexthink_settings,
    simulator,
    no_enqueue,
    django_capture_on_commit_callbacks,
):
    workflow = make_workflow()
    device = employee_devices(simulator)[1]

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(employee).post(run_url(workflow), {"device": device.collector_uid})

    run = Run.objects.get()
    assert response.status_code == 302
    assert response.url == f"/runs/{run.pk}/"
    assert (run.created_by, run.source, run.api_version) == (employee, "self_service", "v1")
    assert run.target_fingerprint
    assert [(t.kind, t.value) for t in run.targets.all()] == [
        ("device_collector", device.collector_uid)
    ]
    assert no_enqueue == list(Batch.objects.filter(run=run).values_list("id", flat=True))
    assert len(no_enqueue) == 1
    assert simulator.state.executions == []  # sending is the worker's job, not the view's


def test_starting_a_fix_asks_the_run_rule_once(
    employee, signed_in, make_workflow, nexthink_settings, simulator, no_enqueue, monkeypatch
):
    workflow = make_workflow()
    device = employee_devices(simulator)[0].collector_uid
    asked: list[tuple[object, ...]] = []
    ask = permissions.permit
    monkeypatch.setattr(permissions, "permit", lambda *args: asked.append(args) or ask(*args))

    response = signed_in(employee).post(run_url(workflow), {"device": device})

    assert response.status_code == 302 and Run.objects.count() == 1
    assert [source for _, _, source in asked] == [Run.Source.SELF_SERVICE]


def test_htmx_post_redirects_the_page(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    device = employee_devices(simulator)[0]

    response = signed_in(employee).post(
        run_url(workflow), {"device": device.collector_uid}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/runs/{Run.objects.get().pk}/"


@pytest.mark.parametrize(
    "posted",
    [
        "HELPDESK",  # another person's device (replaced below by its real Collector UUID)
        OTHER_COLLECTOR,  # a well-formed UUID of no device of theirs
        "name:EMP-LT-0142",  # a name key for a device the portal knows by its Collector UUID
        "'; DROP TABLE workflows_app_run; --",
        "",
    ],
)
def test_a_device_that_is_not_theirs_is_refused_and_nothing_is_sent(
    posted, employee, helpdesk, signed_in, make_workflow, nexthink_settings, simulator
):
    if posted == "HELPDESK":
        posted = simulator.inventory.devices_of("helpdesk@example.com")[0].collector_uid
    workflow = make_workflow()

    response = signed_in(employee).post(run_url(workflow), {"device": posted})

    assert response.status_code == 400
    assert "That device is not one of yours" in response.content.decode()
    assert not Run.objects.exists()
    assert simulator.state.executions == []


def test_a_user_workflow_targets_the_persons_own_upn(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow(dependency="USER", title="Reset my MFA")

    page = signed_in(employee).get(confirm_url(workflow))
    response = signed_in(employee).post(
        run_url(workflow), {"device": OTHER_COLLECTOR, "upn": "boss@example.com"}
    )

    assert "This runs Reset my MFA for your account employee@example.com" in page.content.decode()
    assert response.status_code == 302
    run = Run.objects.get()
    assert [(t.kind, t.value) for t in run.targets.all()] == [("user_upn", "employee@example.com")]
    assert run.api_version == "v2"
    assert nql_calls(simulator) == 0  # a user workflow needs no device lookup


def test_a_user_and_device_workflow_targets_both(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow(dependency="USER_AND_DEVICE")
    device = employee_devices(simulator)[0]

    signed_in(employee).post(run_url(workflow), {"device": device.collector_uid})

    targets = [(t.kind, t.value) for t in Run.objects.get().targets.all()]
    assert targets == [
        ("device_collector", device.collector_uid),
        ("user_upn", "employee@example.com"),
    ]


def test_request_parameters_are_ignored_and_defaults_used(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    ParameterDefinition.objects.create(
        workflow=workflow, name="scope", required=True, default="cache-only"
    )

    signed_in(employee).post(
        run_url(workflow),
        {"device": employee_devices(simulator)[0].collector_uid, "scope": "everything"},
    )

    assert Run.objects.get().params == {"scope": "cache-only"}


def test_a_default_that_a_stored_pattern_takes_too_long_to_check_is_refused_not_hung(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    ParameterDefinition.objects.create(
        workflow=workflow, name="code", pattern=r"(a|aa)+", default="a" * 60 + "!"
    )

    response = signed_in(employee).post(
        run_url(workflow), {"device": employee_devices(simulator)[0].collector_uid}
    )

    assert response.status_code == 400
    assert "could not be checked in time" in response.content.decode()
    assert not Run.objects.exists()


def test_helpdesk_runs_act_on_their_own_identity(
    helpdesk, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    own = simulator.inventory.devices_of("helpdesk@example.com")[0]
    employees = employee_devices(simulator)[0]
    client = signed_in(helpdesk)

    refused = client.post(run_url(workflow), {"device": employees.collector_uid})
    started = client.post(run_url(workflow), {"device": own.collector_uid})

    assert refused.status_code == 400
    assert started.status_code == 302
    assert Run.objects.get().targets.get().value == own.collector_uid


# --- the double-click guard --------------------------------------------------------------------


def test_a_second_click_within_the_window_is_refused_with_a_link(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    device = employee_devices(simulator)[0].collector_uid
    client = signed_in(employee)

    first = client.post(run_url(workflow), {"device": device})
    second = client.post(run_url(workflow), {"device": device})

    run = Run.objects.get()
    assert first.status_code == 302
    assert second.status_code == 409
    html = second.content.decode()
    assert "You already ran this less than a minute ago — it&#x27;s still in progress" in html
    assert f'href="/runs/{run.pk}/"' in html


def test_the_refusal_says_when_and_that_it_finished(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    device = employee_devices(simulator)[0].collector_uid
    client = signed_in(employee)
    client.post(run_url(workflow), {"device": device})
    Run.objects.update(created_at=timezone.now() - timedelta(minutes=3), status=RunStatus.PARTIAL)

    second = client.post(run_url(workflow), {"device": device})

    assert "You already ran this 3 minutes ago — it has finished" in second.content.decode()


def test_another_device_is_not_a_double_click(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    first, other, _ = employee_devices(simulator)
    client = signed_in(employee)

    client.post(run_url(workflow), {"device": first.collector_uid})
    response = client.post(run_url(workflow), {"device": other.collector_uid})

    assert response.status_code == 302
    assert Run.objects.count() == 2


def test_after_the_window_the_same_fix_may_run_again(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    PortalSettings.objects.update_or_create(pk=1, defaults={"duplicate_window_minutes": 5})
    workflow = make_workflow()
    device = employee_devices(simulator)[0].collector_uid
    client = signed_in(employee)
    client.post(run_url(workflow), {"device": device})
    Run.objects.update(created_at=timezone.now() - timedelta(minutes=6))

    response = client.post(run_url(workflow), {"device": device})

    assert response.status_code == 302
    assert Run.objects.count() == 2


def test_a_failed_run_does_not_block_trying_again(
    employee, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow()
    device = employee_devices(simulator)[0].collector_uid
    client = signed_in(employee)
    client.post(run_url(workflow), {"device": device})
    Run.objects.update(status=RunStatus.FAILED)

    response = client.post(run_url(workflow), {"device": device})

    assert response.status_code == 302
    assert Run.objects.count() == 2


def test_the_guard_locks_the_persons_row(employee, make_workflow, nexthink_settings, simulator):
    workflow = make_workflow()
    device = employee_devices(simulator)[0].collector_uid

    with CaptureQueriesContext(connection) as queries:
        start_self_service_run(permit=own_device_permit(employee, workflow), device_key=device)

    locks = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"] and "auth_user" in q["sql"]]
    assert locks


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_clicks_create_one_run(
    make_user, make_workflow, nexthink_settings, simulator, monkeypatch
):
    from django.contrib.auth.models import Group

    for role in Role:
        Group.objects.get_or_create(name=role.value)
    user = make_user("employee", Role.EMPLOYEE)
    workflow = make_workflow()
    device = employee_devices(simulator)[0].collector_uid
    original = runs_service.insert_targets
    barrier = threading.Barrier(2)

    def slow_write(*args, **kwargs):
        # Hold the transaction open so the other click arrives while this one is unfinished.
        threading.Event().wait(0.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(runs_service, "insert_targets", slow_write)
    from workflows_app.services.devices import devices_for

    devices_for(user)  # warm the cache: both clicks then see the same devices
    outcomes: list[object] = []

    def click() -> None:
        try:
            barrier.wait(timeout=5)
            granted = own_device_permit(user, workflow)
            outcomes.append(start_self_service_run(permit=granted, device_key=device))
        except RunRefused as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert Run.objects.count() == 1
    refused = [o for o in outcomes if isinstance(o, RunRefused)]
    assert len(outcomes) == 2 and len(refused) == 1
    assert refused[0].existing_run.pk == Run.objects.get().pk


# --- your recent fixes -------------------------------------------------------------------------


def test_home_lists_the_persons_last_five_fixes_in_plain_words(
    employee, helpdesk, signed_in, make_workflow, nexthink_settings, simulator
):
    workflow = make_workflow(title="Clear Teams cache")
    devices = employee_devices(simulator)
    client = signed_in(employee)
    PortalSettings.objects.update_or_create(pk=1, defaults={"duplicate_window_minutes": 0})
    for i in range(6):
        client.post(run_url(workflow), {"device": devices[i % 3].collector_uid})
    Run.objects.filter(pk=Run.objects.order_by("-id").first().pk).update(status=RunStatus.FAILED)
    signed_in(helpdesk).post(
        run_url(workflow),
        {"device": simulator.inventory.devices_of("helpdesk@example.com")[0].collector_uid},
    )

    response = signed_in(employee).get(HOME)

    recent = response.context["recent_fixes"]
    mine = Run.objects.filter(created_by=employee).order_by("-id")
    assert [fix.run.pk for fix in recent] == [r.pk for r in mine[:5]]
    html = response.content.decode()
    assert html.count('data-testid="recent-run"') == 5
    assert f'href="/runs/{mine[0].pk}/"' in html
    assert '<span class="badge failed">Did not work</span>' in html
    assert html.count('<span class="badge queued" data-testid="fix-status">Running</span>') == 4


# --- Django admin ------------------------------------------------------------------------------


def test_admin_pages_load_for_a_superuser(client, django_user_model, make_workflow, employee):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-12345-x")
    admin_client = client
    admin_client.force_login(root)
    make_workflow()
    DeviceAssignment.objects.create(user=employee, device_name="SPARE-LT-9")

    for url in (
        "/django-admin/workflows_app/portalsettings/",
        "/django-admin/workflows_app/deviceassignment/",
        "/django-admin/workflows_app/workflow/",
        "/django-admin/workflows_app/run/",
        "/django-admin/workflows_app/batch/",
    ):
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/django-admin/workflows_app/workflow/add/").status_code == 403


def test_portal_admins_on_staff_accounts_edit_settings_but_not_runs(client, make_user, employee):
    portal_admin = make_user("portaladmin", Role.ADMIN)
    portal_admin.is_staff = True
    portal_admin.save()
    client.force_login(portal_admin)

    assert client.get("/django-admin/workflows_app/portalsettings/").status_code == 200
    assert client.get("/django-admin/workflows_app/deviceassignment/add/").status_code == 200
    assert client.get("/django-admin/workflows_app/run/").status_code == 403


def test_portal_settings_form_refuses_a_query_id_nexthink_would_refuse():
    from workflows_app.admin import PortalSettingsForm

    form = PortalSettingsForm(
        data={
            "device_query_id": "portal devices",
            "device_query_parameter": "upn",
            "device_cache_seconds": 300,
            "max_devices_offered": 0,
            "duplicate_window_minutes": 5,
        }
    )

    assert not form.is_valid()
    assert set(form.errors) == {"device_query_id", "max_devices_offered"}
