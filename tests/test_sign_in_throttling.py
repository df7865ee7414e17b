"""Sign-in throttling (django-axes): lock-out per account and per address, one answer for all."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from workflows_app.models import AuditAction, AuditEvent
from workflows_app.roles import Role

PASSWORD = "pw-12345-test"  # tests/conftest.py make_user
WRONG = "Wr0ng-S3cret!"
LIMIT = 5  # SIGN_IN_FAILURE_LIMIT's default
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"|"X-CSRFToken": "[^"]*"')


@pytest.fixture
def person(make_user):
    return make_user("person", Role.EMPLOYEE)


def attempt(address: str, username: str, password: str):
    return Client(REMOTE_ADDR=address).post(
        reverse("login"), {"username": username, "password": password}
    )


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == reverse("home")


def test_a_hundred_wrong_passwords_are_not_all_tried(person):
    statuses = [attempt("192.0.2.10", "person", WRONG).status_code for _ in range(100)]
    # The failure that reaches the limit already answers "too many attempts".
    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)
    assert statuses[LIMIT - 1 :] == [429] * (100 - LIMIT + 1)
    # The right password is refused too while locked out: it is never checked.
    assert attempt("192.0.2.10", "person", PASSWORD).status_code == 429
    # One audit entry per attempt, the refused-unchecked ones marked.
    failures = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_FAILED)
    assert failures.count() == 101
    assert failures.filter(details__throttled=True).count() == 101 - (LIMIT - 1)
    assert not AuditEvent.objects.filter(action=AuditAction.SIGNED_IN).exists()


def test_the_account_is_locked_whatever_the_address(person):
    for n in range(LIMIT):
        attempt(f"192.0.2.{20 + n}", "person", WRONG)
    assert attempt("192.0.2.99", "person", PASSWORD).status_code == 429


def test_the_address_is_locked_whatever_the_username(person, make_user):
    make_user("other", Role.EMPLOYEE)
    for n in range(LIMIT):
        attempt("198.51.100.7", f"guess-{n}", WRONG)
    assert attempt("198.51.100.7", "other", PASSWORD).status_code == 429
    # Another address is not held back by it.
    assert signed_in(attempt("198.51.100.8", "other", PASSWORD))


def test_a_success_resets_the_count(person):
    for _ in range(3):
        for _ in range(LIMIT - 1):
            assert attempt("203.0.113.5", "person", WRONG).status_code == 200
        assert signed_in(attempt("203.0.113.5", "person", PASSWORD))


def test_the_limit_is_a_setting(person, settings):
    settings.AXES_FAILURE_LIMIT = 2
    assert [attempt("203.0.113.6", "person", WRONG).status_code for _ in range(3)] == [
        200,
        429,
        429,
    ]


def test_known_and_unknown_usernames_get_identical_answers(person):
    def answers(address: str, username: str) -> list[tuple[int, str]]:
        seen = []
        for _ in range(LIMIT + 2):
            response = attempt(address, username, WRONG)
            body = CSRF.sub("", response.content.decode()).replace(username, "<name>")
            seen.append((response.status_code, body))
        return seen

    known, unknown = answers("192.0.2.50", "person"), answers("192.0.2.51", "nobody-at-all")
    assert known == unknown
    locked = known[-1][1]
    assert "Too many sign-in attempts" in locked and "<name>" not in locked


def test_the_locked_out_page_is_the_sign_in_page_with_one_message(person):
    for _ in range(LIMIT):
        attempt("192.0.2.60", "person", WRONG)
    response = attempt("192.0.2.60", "person", WRONG)
    text = response.content.decode()
    assert response.status_code == 429
    assert "Too many sign-in attempts. Wait 15 minutes" in text
    assert 'name="password"' in text  # still the sign-in page
    assert "didn't match" not in text
