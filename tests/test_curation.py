"""Curation: the JSON document (export, import, every rule), the commands and the admin pages."""

from __future__ import annotations

import copy
import html
import io
import json
import re
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from workflows_app.models import ParameterDefinition, Workflow, WorkflowCuration
from workflows_app.services.curation import (
    CurationDocument,
    CurationImportError,
    ParameterType,
    dump_curation,
    export_curation,
    import_curation,
)
from workflows_app.services.curation_rules import MAX_PARAMETERS

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------------- helpers


def make_workflow(nql_id: str, **fields: Any) -> Workflow:
    """A catalogue row as the sync would write it (active, device-based, API-triggered)."""
    now = timezone.now()
    values: dict[str, Any] = {
        "uuid": f"uuid-{nql_id.lstrip('#')}",
        "name": nql_id.lstrip("#").replace("_", " ").title(),
        "status": "ACTIVE",
        "dependency": "DEVICE",
        "trigger_api": True,
        "first_seen": now,
        "last_seen": now,
    }
    values.update(fields)
    return Workflow.objects.create(nql_id=nql_id, **values)


def param(name: str, **fields: Any) -> dict[str, Any]:
    """A parameter entry of the document, every key given."""
    entry = {
        "name": name,
        "label": "",
        "help_text": "",
        "type": "text",
        "required": False,
        "default": "",
        "choices": [],
        "pattern": "",
        "secret": False,
    }
    entry.update(fields)
    return entry


def entry(nql_id: str, **fields: Any) -> dict[str, Any]:
    """A workflow entry of the document, every key given."""
    values = {
        "nql_id": nql_id,
        "self_service": False,
        "title": "",
        "description": "",
        "category": "",
        "confirmation_text": "",
        "allowed_roles": [],
        "parameters": [],
    }
    values.update(fields)
    return values


def document(*workflows: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "nexthink-portal-curation",
        "version": 1,
        "exported_at": "2026-01-02T03:04:05Z",
        "workflows": list(workflows),
    }


def import_errors(doc: Any, **kwargs: Any) -> list[str]:
    """The errors an import refuses the document with (it must refuse it)."""
    with pytest.raises(CurationImportError) as caught:
        import_curation(doc, user=None, **kwargs)
    return caught.value.errors


def without_timestamp(text: str) -> str:
    return re.sub(r'"exported_at": "[^"]*"', '"exported_at": ""', text)


@pytest.fixture
def curated(admin_user) -> dict[str, Workflow]:
    """Three catalogue workflows, two of them curated, one with parameters only, one untouched."""
    teams = make_workflow("#restart_teams")
    disk = make_workflow("#clean_disk", dependency="USER_AND_DEVICE")
    logs = make_workflow("#collect_logs", status="INACTIVE")
    make_workflow("#untouched")
    WorkflowCuration.objects.create(
        workflow=teams,
        self_service=True,
        title="Teams is stuck",
        description="Closes and reopens Microsoft Teams.",
        category="Collaboration",
        confirmation_text="This closes Teams for a minute. Continue?",
        allowed_roles=["Helpdesk", "Employee"],
    )
    WorkflowCuration.objects.create(workflow=disk, category="Storage", allowed_roles=["Admin"])
    ParameterDefinition.objects.create(
        workflow=disk, name="MinFreeGB", type="number", default="10", position=1, required=True
    )
    ParameterDefinition.objects.create(
        workflow=disk,
        name="Mode",
        type="choice",
        choices=["quick", "full"],
        default="quick",
        position=0,
        label="Cleaning mode",
        help_text="Full takes longer",
    )
    ParameterDefinition.objects.create(
        workflow=logs, name="Token", type="text", secret=True, pattern=r"[A-Z]{4}"
    )
    return {"teams": teams, "disk": disk, "logs": logs}


def wipe() -> None:
    WorkflowCuration.objects.all().delete()
    ParameterDefinition.objects.all().delete()


# ---------------------------------------------------------------------------- export


def test_export_lists_curated_workflows_by_nql_id_and_parameters_by_position(curated):
    doc = export_curation()
    assert doc["format"] == "nexthink-portal-curation"
    assert doc["version"] == 1
    assert [w["nql_id"] for w in doc["workflows"]] == [
        "#clean_disk",
        "#collect_logs",
        "#restart_teams",
    ]
    disk = doc["workflows"][0]
    assert [p["name"] for p in disk["parameters"]] == ["Mode", "MinFreeGB"]
    assert disk["allowed_roles"] == ["Admin"]
    logs = doc["workflows"][1]
    assert logs["self_service"] is False and logs["title"] == ""  # parameters only, no curation
    CurationDocument.model_validate(doc)


def test_export_orders_roles_the_same_whatever_order_they_were_stored_in(curated):
    teams = export_curation()["workflows"][2]
    assert teams["allowed_roles"] == ["Helpdesk", "Employee"]
    WorkflowCuration.objects.filter(workflow=curated["teams"]).update(
        allowed_roles=["Employee", "Admin", "Helpdesk"]
    )
    assert export_curation()["workflows"][2]["allowed_roles"] == ["Admin", "Helpdesk", "Employee"]


def test_export_never_contains_a_secret_default_even_if_one_was_stored(curated):
    ParameterDefinition.objects.filter(name="Token").update(default="hunter2")
    text = dump_curation(export_curation())
    assert "hunter2" not in text
    assert json.loads(text)["workflows"][1]["parameters"][0]["secret"] is True


def test_round_trip_export_wipe_import_export_is_byte_identical(curated, admin_user):
    before = dump_curation(export_curation())
    wipe()
    assert export_curation()["workflows"] == []
    result = import_curation(before, user=admin_user)
    after = dump_curation(export_curation())
    assert without_timestamp(after) == without_timestamp(before)
    assert (result.changed, result.unchanged, result.parameters_written) == (3, 0, 3)
    assert set(WorkflowCuration.objects.values_list("updated_by", flat=True)) == {admin_user.pk}


def test_reimporting_the_same_document_changes_nothing(curated, admin_user):
    text = dump_curation(export_curation())
    ids = set(ParameterDefinition.objects.values_list("pk", flat=True))
    result = import_curation(text, user=admin_user)
    assert (result.changed, result.unchanged) == (0, 3)
    assert set(ParameterDefinition.objects.values_list("pk", flat=True)) == ids


# ---------------------------------------------------------------------------- import: applying


def test_import_replaces_the_parameter_set_exactly_and_keeps_rows_of_kept_names(
    curated, admin_user
):
    mode_id = ParameterDefinition.objects.get(name="Mode").pk
    doc = document(
        entry(
            "#clean_disk",
            parameters=[
                param("Drive", default="C"),
                param("Mode", type="choice", choices=["full"]),
            ],
        )
    )
    result = import_curation(doc, user=admin_user)
    disk = curated["disk"]
    rows = list(disk.parameters.order_by("position"))
    assert [(p.name, p.position) for p in rows] == [("Drive", 0), ("Mode", 1)]
    assert rows[1].pk == mode_id and rows[1].choices == ["full"] and rows[1].label == ""
    assert result.parameters_written == 2
    curation = WorkflowCuration.objects.get(workflow=disk)
    assert curation.category == "" and curation.updated_by == admin_user


def test_workflows_not_in_the_document_keep_their_curation(curated, admin_user):
    import_curation(document(entry("#untouched", category="New")), user=admin_user)
    assert WorkflowCuration.objects.get(workflow=curated["teams"]).self_service is True
    assert ParameterDefinition.objects.filter(workflow=curated["disk"]).count() == 2


def test_replace_all_resets_workflows_not_in_the_document(curated, admin_user):
    result = import_curation(
        document(entry("#restart_teams", self_service=True)), user=admin_user, replace_all=True
    )
    assert result.reset == 2
    assert list(WorkflowCuration.objects.values_list("workflow__nql_id", flat=True)) == [
        "#restart_teams"
    ]
    assert not ParameterDefinition.objects.exists()


def test_self_service_is_accepted_for_every_dependency_with_a_warning_when_not_runnable():
    for dependency in ("DEVICE", "USER", "USER_AND_DEVICE", "NONE"):
        make_workflow(f"#dep_{dependency.lower()}", dependency=dependency)
    make_workflow("#off", status="INACTIVE")
    ids = ["#dep_device", "#dep_user", "#dep_user_and_device", "#dep_none", "#off"]
    result = import_curation(
        document(*(entry(nql_id, self_service=True) for nql_id in ids)), user=None
    )
    assert result.changed == 5
    assert len(result.warnings) == 2
    assert "'#dep_none'" in result.warnings[0] and "takes no targets" in result.warnings[0]
    assert "'#off'" in result.warnings[1] and "inactive" in result.warnings[1]


def test_minimal_entries_take_the_defaults():
    make_workflow("#minimal")
    doc = {
        "format": "nexthink-portal-curation",
        "version": 1,
        "workflows": [{"nql_id": "#minimal", "parameters": [{"name": "Reason"}]}],
    }
    import_curation(doc, user=None)
    parameter = ParameterDefinition.objects.get()
    assert (parameter.type, parameter.required, parameter.choices) == ("text", False, [])


# ---------------------------------------------------------------------------- import: refusing


def test_invalid_import_changes_nothing_and_lists_every_error_with_its_path(curated, admin_user):
    before = without_timestamp(dump_curation(export_curation()))
    doc = document(
        entry("#restart_teams", title="Changed", parameters=[param("A", pattern="(")]),
        entry(
            "#clean_disk",
            parameters=[param("B", type="date"), param("C", default="x", secret=True)],
        ),
        entry("#foo"),
        entry("#collect_logs", allowed_roles=["Manager"], self_service="yes"),
    )
    errors = import_errors(doc, replace_all=True)
    assert errors == [
        "workflows[0].parameters[0].pattern: Not a valid regular expression: "
        "missing ), unterminated subpattern at position 0.",
        "workflows[1].parameters[0].type: Input should be 'text', 'choice', 'boolean' or 'number'",
        "workflows[1].parameters[1].default: A secret parameter cannot have a default: secret "
        "values are never stored in the curation (nor in its exports).",
        "workflows[2].nql_id: no workflow '#foo' in the catalogue",
        "workflows[3].self_service: Input should be a valid boolean",
    ]
    assert without_timestamp(dump_curation(export_curation())) == before


RULES: list[tuple[str, dict[str, Any], str]] = [
    (
        "pattern too slow for its default",
        param("P", pattern=r"(a|aa)+", default="a" * 60 + "!"),
        "parameters[0].pattern: This pattern takes too long to check against the default",
    ),
    (
        "nested repetition",
        param("P", pattern=r"(a+)+$"),
        "parameters[0].pattern: This pattern repeats a part that itself repeats",
    ),
    (
        "choice without choices",
        param("P", type="choice"),
        "parameters[0].choices: A choice parameter needs at least one choice.",
    ),
    (
        "default not among choices",
        param("P", type="choice", choices=["a", "b"], default="c"),
        "parameters[0].default: Default 'c' is not one of the choices (a, b).",
    ),
    (
        "invalid regex",
        param("P", pattern="[a-"),
        "parameters[0].pattern: Not a valid regular expression: unterminated character set",
    ),
    (
        "default failing its pattern",
        param("P", pattern=r"\d+", default="12a"),
        r"parameters[0].default: Default '12a' does not match the pattern \d+.",
    ),
    (
        "number default not a number",
        param("P", type="number", default="ten"),
        "parameters[0].default: Default 'ten' is not a number.",
    ),
    (
        "number default infinite",
        param("P", type="number", default="inf"),
        "parameters[0].default: Default 'inf' is not a number.",
    ),
    (
        "boolean default",
        param("P", type="boolean", default="yes"),
        "parameters[0].default: A yes / no default is 'true' or 'false', not 'yes'.",
    ),
    (
        "secret with a default",
        param("P", secret=True, default="s3cret"),
        "parameters[0].default: A secret parameter cannot have a default",
    ),
    (
        "choices on a text parameter",
        param("P", choices=["a"]),
        "parameters[0].choices: Only choice parameters take choices",
    ),
    (
        "pattern on a boolean",
        param("P", type="boolean", pattern="true"),
        "parameters[0].pattern: Yes / no parameters take no pattern.",
    ),
    (
        "empty choice",
        param("P", type="choice", choices=["a", " "]),
        "parameters[0].choices[1]: A choice cannot be empty.",
    ),
    (
        "repeated choice",
        param("P", type="choice", choices=["a", "a"]),
        "parameters[0].choices[1]: 'a' is listed twice.",
    ),
    (
        "choice failing the pattern",
        param("P", type="choice", choices=["1", "x"], pattern=r"\d"),
        "parameters[0].choices[1]: Choice 'x' does not match the pattern",
    ),
    ("name with a blank", param("Free GB"), "parameters[0].name: 'Free GB' contains blanks"),
    ("empty name", param(""), "parameters[0].name: A parameter needs the name Nexthink expects."),
    (
        "unknown key",
        {**param("P"), "lable": "x"},
        "parameters[0].lable: Extra inputs are not permitted",
    ),
    (
        "string for a boolean",
        param("P", required="true"),
        "parameters[0].required: Input should be a valid boolean",
    ),
    (
        "too long",
        param("P", label="x" * 201),
        "parameters[0].label: String should have at most 200 characters",
    ),
]


@pytest.mark.parametrize(
    ("parameter", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_each_parameter_rule_is_enforced(parameter, expected):
    make_workflow("#wf")
    errors = import_errors(document(entry("#wf", parameters=[parameter])))
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"workflows[0].{expected}")


WORKFLOW_RULES: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown role",
        {"allowed_roles": ["Helpdesk", "Manager"]},
        "workflows[0].allowed_roles[1]: Unknown role 'Manager'; use Admin, Helpdesk or Employee.",
    ),
    (
        "role twice",
        {"allowed_roles": ["Admin", "Admin"]},
        "workflows[0].allowed_roles[1]: 'Admin' is listed twice.",
    ),
    (
        "self-service without employees",
        {"self_service": True, "allowed_roles": ["Helpdesk"]},
        "workflows[0].allowed_roles: The workflow is offered for self-service but its roles",
    ),
    (
        "employees without self-service",
        {"allowed_roles": ["Employee"]},
        "workflows[0].allowed_roles: Employees only ever see self-service workflows",
    ),
    (
        "duplicate parameter names",
        {"parameters": [param("A"), param("B"), param("A")]},
        "workflows[0].parameters[2].name: 'A' is already parameter 1; names must be unique.",
    ),
    ("typo in a key", {"titel": "x"}, "workflows[0].titel: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [r[1:] for r in WORKFLOW_RULES], ids=[r[0] for r in WORKFLOW_RULES]
)
def test_each_workflow_rule_is_enforced(fields, expected):
    make_workflow("#wf")
    errors = import_errors(document(entry("#wf", **fields)))
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected)


def test_unknown_and_duplicate_nql_ids_are_refused():
    make_workflow("#wf")
    errors = import_errors(document(entry("#wf"), entry("#nope"), entry("#wf")))
    assert errors == [
        "workflows[1].nql_id: no workflow '#nope' in the catalogue",
        "workflows[2].nql_id: '#wf' is already listed at workflows[0]",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b'{"format": "nexthink-portal-curation",\n "version": 1,,}',
            "document: not valid JSON: Expecting property name enclosed in double quotes at line 2 "
            "column 15.",
        ),
        (b"\xff\xfe{}", "document: not UTF-8 text (byte 0xff at offset 0)"),
        (b"  \n", "document: empty"),
        ("[]", "document: Input should be a valid dictionary"),
        (
            '{"format": "other", "version": 2, "workflows": []}',
            "format: Input should be 'nexthink-portal-curation'",
        ),
        (
            '{"format": "nexthink-portal-curation", "version": true, "workflows": []}',
            "version: Value error, Input should be 1",
        ),
        ('{"format": "nexthink-portal-curation", "version": 1}', "workflows: Field required"),
        (
            '{"format": "nexthink-portal-curation", "version": 1, "version": 1, "workflows": []}',
            "document: the key 'version' appears twice in one object.",
        ),
    ],
    ids=[
        "syntax",
        "not-utf8",
        "empty",
        "not-an-object",
        "format",
        "version-bool",
        "no-workflows",
        "duplicate-key",
    ],
)
def test_unreadable_documents_are_refused_with_a_clear_message(raw, expected):
    errors = import_errors(raw)
    assert errors[0].startswith(expected), errors


def test_a_number_past_pythons_digit_limit_is_refused_not_a_crash(client_for, admin_user):
    raw = '{"format": "nexthink-portal-curation", "version": 1%s, "workflows": []}' % ("0" * 5000)
    expected = "document: a number has more than 4,300 digits; no curation field takes a number"
    assert import_errors(raw)[0].startswith(expected)
    response = client_for(admin_user).post(reverse("curation:import"), {"text": raw})
    assert response.status_code == 400
    assert response.context["errors"][0].startswith(expected)


def test_more_parameters_than_the_editor_takes_are_refused_by_import_and_editor(
    client_for, admin_user
):
    workflow = make_workflow("#wf")
    many = [param(f"P{n}") for n in range(MAX_PARAMETERS + 1)]
    message = "A workflow takes at most 100 parameters; this one has 101: remove 1."
    assert import_errors(document(entry("#wf", parameters=many))) == [
        f"workflows[0].parameters: {message}"
    ]
    import_curation(document(entry("#wf", parameters=many[:MAX_PARAMETERS])), user=None)
    assert workflow.parameters.count() == MAX_PARAMETERS  # the most the editor shows and saves

    rows = [{"name": f"P{n}", "type": "text"} for n in range(MAX_PARAMETERS + 1)]
    url = reverse("curation:edit", args=[workflow.pk])
    response = client_for(admin_user).post(url, _edit_data(rows[:MAX_PARAMETERS], initial=100))
    assert response.status_code == 302, response.content.decode()[:2000]
    response = client_for(admin_user).post(url, _edit_data(rows, initial=100))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert workflow.parameters.count() == MAX_PARAMETERS


def test_a_byte_order_mark_is_accepted():
    make_workflow("#wf")
    text = json.dumps(document(entry("#wf", title="Été")), ensure_ascii=False)
    import_curation(("\ufeff" + text).encode("utf-8"), user=None)
    assert WorkflowCuration.objects.get().title == "Été"


def test_parameter_type_literal_matches_the_model():
    assert set(get_args(ParameterType)) == set(ParameterDefinition.Type.values)


# ---------------------------------------------------------------------------- commands


def test_export_command_writes_stdout_or_a_file(curated, tmp_path):
    out = io.StringIO()
    call_command("export_curation", stdout=out)
    assert json.loads(out.getvalue())["workflows"][0]["nql_id"] == "#clean_disk"
    target = tmp_path / "curation.json"
    call_command("export_curation", output=str(target), stderr=io.StringIO())
    assert without_timestamp(target.read_text(encoding="utf-8")) == without_timestamp(
        out.getvalue()
    )


def test_import_command_applies_a_valid_file(curated, admin_user, tmp_path):
    target = tmp_path / "curation.json"
    doc = document(entry("#untouched", category="Misc"))
    target.write_text(json.dumps(doc), encoding="utf-8")
    out = io.StringIO()
    call_command("import_curation", str(target), "--replace-all", "--user", "admin", stdout=out)
    assert (
        "1 workflow(s) updated" in out.getvalue()
        and "3 workflow(s) not in the document reset" in out.getvalue()
    )
    assert WorkflowCuration.objects.get().updated_by == admin_user


def test_import_command_prints_every_error_and_applies_nothing(curated, tmp_path):
    before = without_timestamp(dump_curation(export_curation()))
    target = tmp_path / "curation.json"
    doc = document(
        entry("#restart_teams", title="x"),
        entry("#gone"),
        entry("#clean_disk", parameters=[param("N", type="number", default="x")]),
    )
    target.write_text(json.dumps(doc), encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="2 problem"):
        call_command("import_curation", str(target), "--replace-all", stderr=err)
    assert err.getvalue().splitlines() == [
        "workflows[1].nql_id: no workflow '#gone' in the catalogue",
        "workflows[2].parameters[0].default: Default 'x' is not a number.",
    ]
    assert without_timestamp(dump_curation(export_curation())) == before


def test_import_command_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_curation", str(tmp_path / "missing.json"))


# ---------------------------------------------------------------------------- pages: access


def _urls(workflow: Workflow) -> dict[str, str]:
    return {
        "list": reverse("curation:list"),
        "edit": reverse("curation:edit", args=[workflow.pk]),
        "row": reverse("curation:parameter_row", args=[workflow.pk]) + "?parameters-TOTAL_FORMS=2",
        "export": reverse("curation:export"),
        "import": reverse("curation:import"),
    }


@pytest.mark.parametrize("page", ["list", "edit", "row", "export", "import"])
def test_anonymous_people_are_sent_to_login(client, page):
    url = _urls(make_workflow("#wf"))[page]
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("page", ["list", "edit", "row", "export", "import"])
@pytest.mark.parametrize("who", ["employee", "helpdesk"])
def test_only_admins_may_open_curation_pages(request, client_for, page, who):
    url = _urls(make_workflow("#wf"))[page]
    client = client_for(request.getfixturevalue(who))
    assert client.get(url).status_code == 403
    if page in ("edit", "import"):
        assert client.post(url, {}).status_code == 403


@pytest.mark.parametrize("page", ["list", "edit", "row", "export", "import"])
def test_admins_may_open_curation_pages(client_for, admin_user, page):
    url = _urls(make_workflow("#wf"))[page]
    assert client_for(admin_user).get(url).status_code == 200


@pytest.mark.parametrize(
    ("page", "method"),
    [
        ("list", "post"),
        ("row", "post"),
        ("export", "post"),
        ("edit", "put"),
        ("edit", "delete"),
        ("import", "put"),
        ("import", "delete"),
    ],
)
def test_wrong_methods_are_refused(client_for, admin_user, page, method):
    url = _urls(make_workflow("#wf"))[page]
    assert getattr(client_for(admin_user), method)(url).status_code == 405


def test_an_unknown_workflow_is_404(client_for, admin_user):
    client = client_for(admin_user)
    assert client.get(reverse("curation:edit", args=[999999])).status_code == 404
    assert client.post(reverse("curation:edit", args=[999999]), {}).status_code == 404
    assert client.get(reverse("curation:parameter_row", args=[999999])).status_code == 404


# ---------------------------------------------------------------------------- pages: behaviour


def test_list_shows_every_workflow_with_its_curation_state(client_for, admin_user, curated):
    Workflow.objects.filter(pk=curated["logs"].pk).update(removed_at=timezone.now())
    WorkflowCuration.objects.filter(workflow__nql_id="#clean_disk").update(
        requires_approval=True, approver_role="Helpdesk"
    )
    response = client_for(admin_user).get(reverse("curation:list"))
    html = response.content.decode()
    assert html.count('data-testid="needs-approval"') == 1 and "the helpdesk or an admin" in html
    for nql_id in ("#restart_teams", "#clean_disk", "#collect_logs", "#untouched"):
        assert f'data-nql-id="{nql_id}"' in html
    assert "Removed" in html and "Collaboration" in html
    rows = {
        workflow.nql_id: (workflow, curation) for workflow, curation in response.context["rows"]
    }
    assert rows["#clean_disk"][0].parameter_count == 2
    assert rows["#untouched"][1] is None
    searched = client_for(admin_user).get(reverse("curation:list"), {"q": "teams"})
    assert [w.nql_id for w, _ in searched.context["rows"]] == ["#restart_teams"]


def _edit_data(rows: list[dict[str, Any]], initial: int = 0, **curation: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "",
        "description": "",
        "category": "",
        "confirmation_text": "",
        "parameters-TOTAL_FORMS": str(len(rows)),
        "parameters-INITIAL_FORMS": str(initial),
        "parameters-MIN_NUM_FORMS": "0",
        "parameters-MAX_NUM_FORMS": "1000",
    }
    for key, value in curation.items():
        if value is not False:
            data[key] = value
    for index, row in enumerate(rows):
        for key, value in row.items():
            if value is not False:
                data[f"parameters-{index}-{key}"] = value
    return data


def test_the_edit_page_shows_the_stored_curation(client_for, admin_user, curated):
    response = client_for(admin_user).get(reverse("curation:edit", args=[curated["disk"].pk]))
    formset = response.context["formset"]
    assert [f.initial.get("name") for f in formset.forms] == ["Mode", "MinFreeGB", None, None]
    assert "quick\nfull</textarea>" in response.content.decode()


def test_the_edit_form_saves_curation_and_parameters(client_for, admin_user, curated):
    disk = curated["disk"]
    rows = [
        {
            "name": "Mode",
            "type": "choice",
            "choices": "quick\r\nfull\r\ndeep\r\n",
            "default": "deep",
            "position": "3",
            "label": "Cleaning mode",
        },
        {"name": "MinFreeGB", "type": "number", "default": "10", "position": "1", "DELETE": "on"},
        {
            "name": "Drive",
            "type": "text",
            "pattern": "[A-Z]",
            "default": "C",
            "position": "2",
            "required": "on",
        },
        {"name": "", "type": "text", "position": ""},
    ]
    data = _edit_data(
        rows,
        initial=2,
        self_service="on",
        title="Free up space",
        confirmation_text="Continue?",
        allowed_roles=["Employee", "Helpdesk"],
    )
    response = client_for(admin_user).post(reverse("curation:edit", args=[disk.pk]), data)
    assert response.status_code == 302, response.content.decode()
    curation = WorkflowCuration.objects.get(workflow=disk)
    assert (curation.self_service, curation.title, curation.updated_by) == (
        True,
        "Free up space",
        admin_user,
    )
    assert curation.allowed_roles == ["Helpdesk", "Employee"]
    stored = list(disk.parameters.order_by("position"))
    assert [(p.name, p.position) for p in stored] == [("Drive", 0), ("Mode", 1)]
    assert stored[1].choices == ["quick", "full", "deep"] and stored[0].required is True


def test_the_edit_form_rejects_bad_input_with_400_and_saves_nothing(
    client_for, admin_user, curated
):
    disk = curated["disk"]
    before = without_timestamp(dump_curation(export_curation()))
    rows = [
        {"name": "Mode", "type": "choice", "choices": "quick", "default": "slow"},
        {"name": "Mode", "type": "text", "pattern": "(", "DELETE": False},
        {"name": "Num", "type": "number", "default": "many"},
    ]
    data = _edit_data(rows, initial=2, allowed_roles=["Employee"], title="Changed")
    response = client_for(admin_user).post(reverse("curation:edit", args=[disk.pk]), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was saved" in html
    assert "Default &#x27;slow&#x27; is not one of the choices (quick)." in html
    assert "Not a valid regular expression" in html
    assert "&#x27;Mode&#x27; is already parameter 1; names must be unique." in html
    assert "Default &#x27;many&#x27; is not a number." in html
    assert "Employees only ever see self-service workflows" in html
    assert without_timestamp(dump_curation(export_curation())) == before


def test_the_edit_form_survives_a_tampered_formset(client_for, admin_user, curated):
    response = client_for(admin_user).post(
        reverse("curation:edit", args=[curated["disk"].pk]), {"title": "x"}
    )
    assert response.status_code == 400
    assert "ManagementForm data is missing" in response.content.decode()


FORM_RULES = [
    r
    for r in RULES
    if r[0] not in ("empty choice", "unknown key", "string for a boolean", "too long", "empty name")
]


@pytest.mark.parametrize(
    ("parameter", "expected"), [r[1:] for r in FORM_RULES], ids=[r[0] for r in FORM_RULES]
)
def test_the_edit_form_applies_the_same_rules_as_the_import(
    client_for, admin_user, parameter, expected
):
    workflow = make_workflow("#wf")
    row = {key: value for key, value in parameter.items() if key != "choices"}
    row["choices"] = "\n".join(parameter["choices"])
    for flag in ("required", "secret"):
        row[flag] = "on" if parameter[flag] else False
    url = reverse("curation:edit", args=[workflow.pk])
    response = client_for(admin_user).post(url, _edit_data([row]))
    assert response.status_code == 400
    message = expected.split(": ", 1)[1]
    assert html.escape(message) in response.content.decode()
    assert not ParameterDefinition.objects.exists()


def test_the_row_endpoint_adds_a_numbered_blank_row(client_for, admin_user):
    workflow = make_workflow("#wf")
    url = reverse("curation:parameter_row", args=[workflow.pk])
    response = client_for(admin_user).get(url, {"parameters-TOTAL_FORMS": "4"})
    html = response.content.decode()
    assert 'name="parameters-4-name"' in html and 'name="parameters-4-DELETE"' in html
    assert 'value="5"' in html and 'hx-swap-oob="true"' in html
    assert client_for(admin_user).get(url, {"parameters-TOTAL_FORMS": "x"}).status_code == 400


def test_export_downloads_a_dated_json_attachment(client_for, admin_user, curated):
    response = client_for(admin_user).get(reverse("curation:export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert response["Content-Disposition"] == (
        f'attachment; filename="nexthink-portal-curation-{today}.json"'
    )
    assert json.loads(response.content)["workflows"][0]["nql_id"] == "#clean_disk"


def test_import_page_applies_a_pasted_document(client_for, admin_user, curated):
    doc = copy.deepcopy(export_curation())
    doc["workflows"][0]["category"] = "Disk"
    response = client_for(admin_user).post(
        reverse("curation:import"), {"text": json.dumps(doc)}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("curation:list")
    assert "1 workflow(s) updated, 2 unchanged" in response.content.decode()
    assert WorkflowCuration.objects.get(workflow=curated["disk"]).updated_by == admin_user


def test_import_page_applies_an_uploaded_file_with_replace_all(client_for, admin_user, curated):
    upload = SimpleUploadedFile(
        "c.json", json.dumps(document(entry("#untouched"))).encode(), "application/json"
    )
    response = client_for(admin_user).post(
        reverse("curation:import"), {"file": upload, "replace_all": "on"}
    )
    assert response.status_code == 302
    assert list(WorkflowCuration.objects.values_list("workflow__nql_id", flat=True)) == [
        "#untouched"
    ]


def test_import_page_lists_every_error_and_applies_nothing(client_for, admin_user, curated):
    before = without_timestamp(dump_curation(export_curation()))
    doc = document(
        entry("#restart_teams", title="x"),
        entry("#gone"),
        entry("#clean_disk", parameters=[param("N", type="choice")]),
    )
    response = client_for(admin_user).post(
        reverse("curation:import"), {"text": json.dumps(doc), "replace_all": "on"}
    )
    assert response.status_code == 400
    assert response.context["errors"] == [
        "workflows[1].nql_id: no workflow '#gone' in the catalogue",
        "workflows[2].parameters[0].choices: A choice parameter needs at least one choice.",
    ]
    assert "the document has 2 problem(s)" in response.content.decode()
    assert without_timestamp(dump_curation(export_curation())) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name,title\nfoo,bar\n", "document: not valid JSON: Expecting value at line 1 column 1."),
        ("Été".encode("latin-1"), "document: not UTF-8 text (byte 0xc9 at offset 0)"),
    ],
    ids=["not-json", "not-utf8"],
)
def test_import_page_explains_an_unreadable_upload(client_for, admin_user, content, expected):
    upload = SimpleUploadedFile("curation.csv", content, "text/csv")
    response = client_for(admin_user).post(reverse("curation:import"), {"file": upload})
    assert response.status_code == 400
    assert response.context["errors"][0].startswith(expected)
    assert "Nothing was imported" in response.content.decode()


def test_import_page_needs_a_file_or_text(client_for, admin_user):
    response = client_for(admin_user).post(reverse("curation:import"), {"text": "  "})
    assert response.status_code == 400
    assert "Choose a curation file or paste its JSON." in response.content.decode()
