"""Workflow parameters: each validation rule, masking of secrets, and their encryption."""

from __future__ import annotations

from typing import Any

import pytest

from workflows_app.models import ParameterDefinition
from workflows_app.services.params import MASK, mask_params, split_secrets, validate_params
from workflows_app.services.secrets import SecretsUnreadable, decrypt_dict, encrypt_dict

pytestmark = pytest.mark.django_db
Type = ParameterDefinition.Type


@pytest.fixture
def workflow(sim_workflow: Any) -> Any:
    return sim_workflow("#free_up_disk_space")


def define(workflow: Any, name: str, **fields: Any) -> ParameterDefinition:
    return ParameterDefinition.objects.create(workflow=workflow, name=name, **fields)


def test_unknown_parameter_is_an_error(workflow: Any) -> None:
    define(workflow, "MinFreeGB")
    clean, errors = validate_params(workflow, {"MinFreeGb": "5"})
    assert clean == {}
    assert "Unknown parameter 'MinFreeGb'" in errors["MinFreeGb"]
    assert "MinFreeGB" in errors["MinFreeGb"]


def test_every_parameter_is_unknown_when_none_is_defined(workflow: Any) -> None:
    _, errors = validate_params(workflow, {"Anything": "x"})
    assert "accepts: none" in errors["Anything"]


def test_missing_required_parameter_is_an_error(workflow: Any) -> None:
    define(workflow, "Reason", required=True, label="Why")
    assert validate_params(workflow, {}) == ({}, {"Reason": "Why is required."})
    assert validate_params(workflow, {"Reason": "   "})[1] == {"Reason": "Why is required."}


def test_default_fills_a_missing_value(workflow: Any) -> None:
    define(workflow, "MinFreeGB", type=Type.NUMBER, required=True, default="10")
    assert validate_params(workflow, {}) == ({"MinFreeGB": "10"}, {})
    assert validate_params(workflow, {"MinFreeGB": ""}) == ({"MinFreeGB": "10"}, {})


def test_optional_parameter_left_empty_is_not_sent(workflow: Any) -> None:
    define(workflow, "Note")
    assert validate_params(workflow, {"Note": ""}) == ({}, {})


def test_text_is_stripped(workflow: Any) -> None:
    define(workflow, "Note")
    assert validate_params(workflow, {"Note": "  hello  "}) == ({"Note": "hello"}, {})


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("true", "true"),
        ("Yes", "true"),
        ("on", "true"),
        ("1", "true"),
        ("false", "false"),
        ("no", "false"),
        ("0", "false"),
        ("", "false"),
    ],
)
def test_boolean_becomes_true_or_false(workflow: Any, given: str, sent: str) -> None:
    define(workflow, "Force", type=Type.BOOLEAN)
    assert validate_params(workflow, {"Force": given}) == ({"Force": sent}, {})


def test_boolean_not_given_takes_its_default_or_false(workflow: Any) -> None:
    define(workflow, "Force", type=Type.BOOLEAN, default="yes")
    define(workflow, "Quiet", type=Type.BOOLEAN)
    assert validate_params(workflow, {}) == ({"Force": "true", "Quiet": "false"}, {})


def test_boolean_rejects_other_words(workflow: Any) -> None:
    define(workflow, "Force", type=Type.BOOLEAN)
    assert "true or false" in validate_params(workflow, {"Force": "maybe"})[1]["Force"]


@pytest.mark.parametrize("good", ["5", "-3", "2.5", "1e3", " 42 "])
def test_number_accepts_numbers(workflow: Any, good: str) -> None:
    define(workflow, "MinFreeGB", type=Type.NUMBER)
    assert validate_params(workflow, {"MinFreeGB": good}) == ({"MinFreeGB": good.strip()}, {})


@pytest.mark.parametrize("bad", ["five", "nan", "inf", "1,5", "0x10"])
def test_number_refuses_what_is_not_a_finite_number(workflow: Any, bad: str) -> None:
    define(workflow, "MinFreeGB", type=Type.NUMBER)
    clean, errors = validate_params(workflow, {"MinFreeGB": bad})
    assert clean == {}
    assert "must be a number" in errors["MinFreeGB"]


def test_choice_must_be_one_of_the_choices(workflow: Any) -> None:
    define(workflow, "LogLevel", type=Type.CHOICE, choices=["Basic", "Detailed"])
    assert validate_params(workflow, {"LogLevel": "Basic"}) == ({"LogLevel": "Basic"}, {})
    errors = validate_params(workflow, {"LogLevel": "basic"})[1]
    assert errors == {"LogLevel": "LogLevel must be one of: Basic, Detailed."}


def test_choice_accepts_value_objects(workflow: Any) -> None:
    define(workflow, "LogLevel", type=Type.CHOICE, choices=[{"value": "V", "label": "Verbose"}])
    assert validate_params(workflow, {"LogLevel": "V"}) == ({"LogLevel": "V"}, {})


def test_pattern_must_match_the_whole_value(workflow: Any) -> None:
    define(workflow, "Ticket", pattern=r"INC\d{4}")
    assert validate_params(workflow, {"Ticket": "INC1234"}) == ({"Ticket": "INC1234"}, {})
    assert "expected format" in validate_params(workflow, {"Ticket": "INC12345"})[1]["Ticket"]
    assert "expected format" in validate_params(workflow, {"Ticket": "xINC1234"})[1]["Ticket"]


def test_broken_pattern_is_reported_not_raised(workflow: Any) -> None:
    define(workflow, "Ticket", pattern="INC(")
    assert "Ask an admin" in validate_params(workflow, {"Ticket": "INC1"})[1]["Ticket"]


def test_overlong_value_is_refused(workflow: Any) -> None:
    define(workflow, "Note")
    assert "at most" in validate_params(workflow, {"Note": "x" * 5000})[1]["Note"]


def test_secret_value_is_kept_exactly(workflow: Any) -> None:
    define(workflow, "Password", secret=True, required=True)
    assert validate_params(workflow, {"Password": " p@ss "}) == ({"Password": " p@ss "}, {})


def test_every_error_is_reported_at_once(workflow: Any) -> None:
    define(workflow, "Reason", required=True)
    define(workflow, "MinFreeGB", type=Type.NUMBER)
    _, errors = validate_params(workflow, {"MinFreeGB": "x", "Extra": "1"})
    assert set(errors) == {"Reason", "MinFreeGB", "Extra"}


def test_secrets_are_masked_and_split(workflow: Any) -> None:
    define(workflow, "Password", secret=True)
    define(workflow, "Note")
    clean = {"Password": "hunter2", "Note": "hi"}
    assert mask_params(workflow, clean) == {"Password": MASK, "Note": "hi"}
    assert split_secrets(workflow, clean) == ({"Note": "hi"}, {"Password": "hunter2"})


def test_secrets_round_trip_through_encryption() -> None:
    token = encrypt_dict({"Password": "hunter2", "Pin": "0000"})
    assert "hunter2" not in token
    assert decrypt_dict(token) == {"Password": "hunter2", "Pin": "0000"}
    assert encrypt_dict({}) == "" and decrypt_dict("") == {}


def test_tampered_or_foreign_secrets_are_refused(settings: Any) -> None:
    token = encrypt_dict({"Password": "hunter2"})
    with pytest.raises(SecretsUnreadable):
        decrypt_dict(token[:-4] + "AAAA")
    settings.SECRET_KEY = "another-key"
    with pytest.raises(SecretsUnreadable, match="SECRET_KEY"):
        decrypt_dict(token)
