"""Workflow parameters: each validation rule, masking of secrets, and their encryption."""

from __future__ import annotations

from typing import Any

import pytest

from workflows_app.models import ParameterDefinition
from workflows_app.services.param_patterns import (
    NESTED_MESSAGE,
    PatternTimeout,
    fullmatch,
    pattern_problem,
)
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


# A pattern that backtracks for ever on a value that almost matches (stored before the save rule
# refused such patterns): the match is cut off by the time limit, whatever the machine's speed.
EXPONENTIAL = r"(a|aa)+"
ALMOST = "a" * 60 + "!"


def test_a_stored_pattern_too_slow_to_match_is_a_clear_error_not_a_hang(workflow: Any) -> None:
    define(workflow, "Code", label="Code", pattern=EXPONENTIAL)
    clean, errors = validate_params(workflow, {"Code": ALMOST})
    assert clean == {}
    assert errors == {
        "Code": f"Code could not be checked in time: its pattern ({EXPONENTIAL}) is too complex. "
        "Ask an admin to simplify the parameter definition."
    }
    assert validate_params(workflow, {"Code": "aaaa"}) == ({"Code": "aaaa"}, {})


def test_the_matcher_gives_up_after_its_time_limit() -> None:
    with pytest.raises(PatternTimeout):
        fullmatch(EXPONENTIAL, ALMOST)
    assert fullmatch(r"(a+)+$", "a" * 31 + "!") is False  # the review's pattern, answered
    assert fullmatch(r"INC\d{7}", "INC0012345") is True


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+$", r"(a*)*", r"(\w+\s?)+", r"(?:x(?:y+))*", r"(a{1,3}){1,50}", r"(?=(a+)+)b"],
)
def test_patterns_with_nested_repetition_are_refused(pattern: str) -> None:
    assert pattern_problem(pattern) == NESTED_MESSAGE


@pytest.mark.parametrize(
    "pattern", [r"INC\d{7}", r"(\d{1,3}\.){3}\d{1,3}", r"(ab)+", r"[A-Z]{2}-\d+", r"(a|b)*c"]
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("fields", "bad", "message"),
    [
        ({"type": Type.NUMBER}, "12ab-secret-34", "Pin must be a number."),
        ({"type": Type.BOOLEAN}, "maybe-secret", "Pin must be true or false."),
        (
            {"pattern": r"\d{4}"},
            "12ab-secret-34",
            r"Pin does not have the expected format (\d{4}).",
        ),
    ],
    ids=["number", "boolean", "pattern"],
)
def test_a_secret_value_never_appears_in_an_error(
    workflow: Any, fields: dict[str, Any], bad: str, message: str
) -> None:
    define(workflow, "Pin", label="Pin", secret=True, **fields)
    _, errors = validate_params(workflow, {"Pin": bad})
    assert errors == {"Pin": message}
    define(workflow, "Open", label="Open", **fields)
    _, errors = validate_params(workflow, {"Open": bad, "Pin": bad})
    if "pattern" not in fields:  # a value that is not secret is still quoted back
        assert f"'{bad}'" in errors["Open"]
    assert bad not in errors["Pin"]
