"""Flow validation (every rule, every problem at once with its path, cycles named) and versions."""

from __future__ import annotations

from typing import Any

import pytest

from workflows_app.models import AuditAction, AuditEvent, Flow, FlowVersion, ParameterDefinition
from workflows_app.roles import Role
from workflows_app.services import flows
from workflows_app.services.flow_rules import FlowIn, flow_problems
from workflows_app.services.flows import FlowInvalid, check_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(sim_workflow: Any) -> dict[str, Any]:
    made = {
        nql_id: sim_workflow(nql_id)
        for nql_id in (
            "#clear_teams_cache",
            "#free_up_disk_space",
            "#collect_diagnostics_logs",
            "#unlock_ad_account",
            "#onboard_new_joiner",
        )
    }
    ParameterDefinition.objects.create(
        workflow=made["#free_up_disk_space"], name="MinFreeGB", type="number"
    )
    ParameterDefinition.objects.create(
        workflow=made["#collect_diagnostics_logs"],
        name="LogLevel",
        type="choice",
        choices=["Basic", "Verbose"],
        required=True,
    )
    ParameterDefinition.objects.create(
        workflow=made["#collect_diagnostics_logs"], name="Token", secret=True
    )
    return made


def step(name: str, referrer: str = "#clear_teams_cache", **more: Any) -> dict[str, Any]:
    return {"name": name, "referrer": referrer, **more}


def test_a_valid_flow_is_stored_with_every_default_filled_in(
    catalogue: dict[str, Any], make_user: Any
) -> None:
    admin = make_user("boss", Role.ADMIN)
    flow = flows.create_flow(
        user=admin,
        data={
            "name": "Teams then logs",
            "steps": [
                step("clear"),
                {
                    "id": "logs",
                    "referrer": "collect_diagnostics_logs",  # the '#' is optional
                    "params": {"LogLevel": "Verbose"},
                    "depends_on": ["clear"],
                    "exception_behavior": [{"type": "failure", "strategy": "continue"}],
                    "run_on": "failed",
                },
            ],
        },
    )
    assert flow.version == 1
    assert flow.current.steps == [
        {
            "id": "clear",
            "name": "clear",
            "type": "Integration",
            "referrer": "#clear_teams_cache",
            "params": {},
            "depends_on": [],
            "is_skipped": False,
            "exception_behavior": [
                {"type": "failure", "strategy": "stop"},
                {"type": "partial_success", "strategy": "continue"},
            ],
            "run_on": "all",
        },
        {
            "id": "logs",
            "name": "logs",
            "type": "Integration",
            "referrer": "#collect_diagnostics_logs",
            "params": {"LogLevel": "Verbose"},
            "depends_on": ["clear"],
            "is_skipped": False,
            "exception_behavior": [
                {"type": "failure", "strategy": "continue"},
                {"type": "partial_success", "strategy": "continue"},
            ],
            "run_on": "failed",
        },
    ]
    assert AuditEvent.objects.filter(action=AuditAction.FLOW_CHANGED, object_id=str(flow.pk))


def test_every_broken_rule_is_reported_at_once_with_its_path(catalogue: dict[str, Any]) -> None:
    _, errors = check_flow(
        {
            "name": "Broken",
            "steps": [
                step("clear", depends_on=["clear", "nowhere"]),
                step("clear", "#no_such_workflow"),
                step("disk", "#free_up_disk_space", params={"MinFreeGB": "lots", "Size": "1"}),
                step("logs", "#collect_diagnostics_logs", params={"Token": "s3cret"}),
                step("unlock", "#unlock_ad_account"),
                step("onboard", "#onboard_new_joiner"),
                step("first", run_on="succeeded"),
                {"referrer": "#clear_teams_cache"},
            ],
        }
    )
    assert errors == [
        "steps[0].depends_on[0]: a step cannot depend on itself.",
        "steps[0].depends_on[1]: no step 'nowhere' in this flow.",
        "steps[1].id: 'clear' is already the id of steps[0].",
        "steps[1].referrer: no workflow '#no_such_workflow' in the catalogue.",
        "steps[2].params.Size: Unknown parameter 'Size'. This workflow accepts: MinFreeGB.",
        "steps[2].params.MinFreeGB: MinFreeGB must be a number, not 'lots'.",
        "steps[3].params.Token: a secret value cannot be stored in a flow; give the parameter "
        "a non-secret definition or leave it out.",
        "steps[3].params.LogLevel: LogLevel is required.",
        "steps[4].referrer: '#unlock_ad_account' runs on users only, but steps[0] "
        "('#clear_teams_cache') runs on devices only: no set of targets suits both.",
        "steps[5].referrer: '#onboard_new_joiner' takes no targets, and a flow runs every step "
        "on the flow's targets.",
        "steps[6].run_on: only a step that depends on others can run on the targets that "
        "succeeded or failed before it.",
        "steps[7].name: give the step a name (its id defaults to it).",
    ]


def test_cycles_are_named_by_their_steps(catalogue: dict[str, Any]) -> None:
    _, errors = check_flow(
        {
            "name": "Loops",
            "steps": [
                step("a", depends_on=["c"]),
                step("b", depends_on=["a"]),
                step("c", depends_on=["b"]),
                step("d", depends_on=["e"]),
                step("e", depends_on=["d"]),
                step("f", depends_on=["a"]),
            ],
        }
    )
    assert errors == [
        "steps[0].depends_on: a cycle: a → c → b → a (each waits for the next to end, so none "
        "could ever start).",
        "steps[3].depends_on: a cycle: d → e → d (each waits for the next to end, so none could "
        "ever start).",
    ]


def test_schema_errors_name_their_path_and_nothing_is_saved(
    catalogue: dict[str, Any], make_user: Any
) -> None:
    admin = make_user("boss", Role.ADMIN)
    with pytest.raises(FlowInvalid) as refused:
        flows.create_flow(
            user=admin,
            data={
                "name": "Typos",
                "steps": [
                    step("a", exception_behavior=[{"type": "failure", "strategy": "retry"}]),
                    step("b", depnds_on=["a"]),
                ],
            },
        )
    assert refused.value.errors == [
        "steps[0].exception_behavior[0].strategy: Input should be 'stop' or 'continue'",
        "steps[1].depnds_on: Extra inputs are not permitted",
    ]
    assert not Flow.objects.exists()


def test_a_behaviour_given_twice_and_an_empty_flow_are_refused(catalogue: dict[str, Any]) -> None:
    twice = [{"type": "failure", "strategy": "stop"}, {"type": "failure", "strategy": "continue"}]
    flow = FlowIn.model_validate({"name": "x", "steps": [step("a", exception_behavior=twice)]})
    assert flow_problems(flow, {}) == [
        "steps[0].exception_behavior[1]: 'failure' is given twice; give each exception type "
        "one strategy.",
        "steps[0].referrer: no workflow '#clear_teams_cache' in the catalogue.",
    ]
    assert check_flow({"name": "x", "steps": []})[1] == [
        "steps: List should have at least 1 item after validation, not 0"
    ]
    assert check_flow({"name": "nul\x00", "steps": [step("a")]})[1] == [
        "name: must not contain NUL characters."
    ]


def test_every_edit_makes_a_new_version_and_old_versions_stay_readable(
    catalogue: dict[str, Any], make_user: Any
) -> None:
    admin = make_user("boss", Role.ADMIN)
    flow = flows.create_flow(user=admin, data={"name": "Fix", "steps": [step("clear")]})
    flows.update_flow(
        flow=flow,
        user=admin,
        data={"name": "Fix Teams", "steps": [step("clear"), step("disk", "#free_up_disk_space")]},
    )
    with pytest.raises(FlowInvalid):
        flows.update_flow(flow=flow, user=admin, data={"name": "Fix", "steps": [step("x", "#")]})
    flows.update_flow(
        flow=flow,
        user=admin,
        data={"name": "Fix Teams", "steps": [step("disk", "#free_up_disk_space")]},
    )
    flow.refresh_from_db()
    assert (flow.name, flow.version) == ("Fix Teams", 3)
    versions = FlowVersion.objects.filter(flow=flow).order_by("number")
    assert [(v.number, v.name, [s["id"] for s in v.steps]) for v in versions] == [
        (1, "Fix", ["clear"]),
        (2, "Fix Teams", ["clear", "disk"]),
        (3, "Fix Teams", ["disk"]),
    ]


def test_a_second_flow_may_not_take_a_name_in_use(
    catalogue: dict[str, Any], make_user: Any
) -> None:
    admin = make_user("boss", Role.ADMIN)
    flows.create_flow(user=admin, data={"name": "Fix", "steps": [step("clear")]})
    with pytest.raises(FlowInvalid) as refused:
        flows.create_flow(user=admin, data={"name": "fix", "steps": [step("clear")]})
    assert refused.value.errors == ["name: a flow named 'fix' already exists."]


def test_a_step_may_name_a_registered_remote_action_by_its_uid_in_any_case(
    catalogue: dict[str, Any],
) -> None:
    from workflows_app.services import flow_referrers, remote_actions

    uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    remote_actions.register(
        remote_actions.RemoteActionSpec(uid=uid, name="Restart spooler", params=("Force",)),
        actor=None,
        audited=False,
    )
    found = flow_referrers.resolve([uid.upper(), "clear_teams_cache", "1234"])
    assert {key: ref.kind for key, ref in found.items()} == {
        uid: "remote_action",
        "#clear_teams_cache": "workflow",
    }
    assert [p.name for p in found[uid].parameters] == ["Force"]
    flow = FlowIn.model_validate(
        {"name": "classic", "steps": [step("a", uid.upper(), params={"Nope": "1"})]}
    )
    problems = flow_problems(flow, flow_referrers.resolve([uid]))
    assert len(problems) == 1 and "Nope" in problems[0]
