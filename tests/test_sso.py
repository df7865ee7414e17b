"""Company sign-in through a real OpenID Connect exchange with the loopback provider.

The portal's views and mozilla-django-oidc run unmodified: the test client follows the portal's
redirect to the provider (fetched with requests), takes the code it answers, and calls the
portal's callback with it, as a browser would.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider
from workflows_app.models import AuditAction, AuditEvent, PersonProfile
from workflows_app.roles import Role, user_role
from workflows_app.services.devices import user_upn
from workflows_app.sso.claims import parse_role_groups

GROUPS = "Admin=grp-portal-admins,Helpdesk=grp-servicedesk,Employee=grp-staff"


@pytest.fixture(scope="module")
def provider_server() -> Iterator[OidcProvider]:
    server = OidcProvider().start()
    yield server
    server.stop()


@pytest.fixture
def provider(provider_server: OidcProvider, settings, db) -> OidcProvider:
    provider_server.reset()
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_ISSUER = provider_server.issuer
    settings.OIDC_ROLE_GROUPS = parse_role_groups(GROUPS)
    settings.OIDC_COMPANY_NAME = "Acme"
    settings.PORTAL_ACCESS_CONTACT = "the Acme service desk (ext. 4242)"
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "workflows_app.sso.backend.PortalOIDCBackend",
    ]
    return provider_server


def to_provider(client: Client) -> str:
    """Start a sign-in; the provider's answer (the callback URL with code and state)."""
    start = client.get(reverse("sso:login"))
    assert start.status_code == 302
    answer = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def back_to_portal(client: Client, callback_url: str):
    url = urlsplit(callback_url)
    assert url.path == reverse("sso:callback")
    return client.get(f"{url.path}?{url.query}")


def sign_in(client: Client, provider: OidcProvider, **claims):
    provider.state.claims = {"sub": "subject-1", **claims}
    return back_to_portal(client, to_provider(client))


def signed_in_user(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def test_first_sign_in_creates_the_person_with_the_upn_claim_and_the_role_of_their_groups(
    provider, client
):
    response = sign_in(
        client,
        provider,
        upn="alice.smith@corp.example",
        preferred_username="alice",
        email="alice@example.com",
        given_name="Alice",
        groups=["grp-other", "grp-servicedesk"],
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    person = signed_in_user(client)
    assert person is not None and person.username == "alice.smith@corp.example"
    assert (person.email, person.first_name) == ("alice@example.com", "Alice")
    assert user_role(person) is Role.HELPDESK
    # Self-service and user targets use the claim, not the e-mail address.
    assert user_upn(person) == "alice.smith@corp.example"
    assert not person.has_usable_password()
    # PKCE: an S256 challenge out, the verifier checked by the provider's token endpoint.
    assert provider.state.authorize_requests[-1]["code_challenge_method"] == "S256"
    assert provider.state.token_requests[-1]["pkce_verified"] is True
    assert provider.state.token_requests[-1]["basic_auth"] is True
    assert "client_secret" not in provider.state.token_requests[-1]["form_keys"]
    change = AuditEvent.objects.get(action=AuditAction.ROLE_CHANGED)
    assert change.details == {"person": person.username, "before": None, "after": "Helpdesk"}
    assert change.actor_id is None and "identity provider" in change.actor_name
    assert AuditEvent.objects.filter(action=AuditAction.SIGNED_IN, actor=person).count() == 1


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (
            {"preferred_username": "bob@corp.example", "email": "bob@example.com"},
            "bob@corp.example",
        ),
        ({"email": "carol@example.com"}, "carol@example.com"),
        ({"upn": "  ", "preferred_username": "dan@corp.example"}, "dan@corp.example"),
    ],
)
def test_the_upn_is_the_first_claim_of_the_configured_order(provider, client, claims, expected):
    sign_in(client, provider, groups=["grp-staff"], **claims)
    person = signed_in_user(client)
    assert person is not None and user_upn(person) == expected


def test_the_claim_order_is_configurable(provider, client, settings):
    settings.OIDC_UPN_CLAIMS = ["email", "upn"]
    sign_in(client, provider, upn="erin@corp.example", email="erin@example.com", groups="grp-staff")
    person = signed_in_user(client)
    assert person is not None and user_upn(person) == "erin@example.com"


def test_a_second_sign_in_with_other_groups_changes_the_role_and_audits_it(provider, client):
    sign_in(client, provider, upn="frank@corp.example", groups=["grp-staff"])
    person = signed_in_user(client)
    assert person is not None and user_role(person) is Role.EMPLOYEE
    client.post(reverse("logout"))
    sign_in(client, provider, upn="frank@corp.example", groups=["grp-portal-admins"])
    again = signed_in_user(client)
    assert again is not None and again.pk == person.pk
    assert user_role(again) is Role.ADMIN
    last = AuditEvent.objects.filter(action=AuditAction.ROLE_CHANGED).latest("id")
    assert (last.details["before"], last.details["after"]) == ("Employee", "Admin")
    assert User.objects.count() == 1


def test_everyone_signed_in_gets_the_role_mapped_to_star(provider, client, settings):
    settings.OIDC_ROLE_GROUPS = parse_role_groups("Admin=grp-portal-admins,Employee=*")
    sign_in(client, provider, upn="gina@corp.example")
    person = signed_in_user(client)
    assert person is not None and user_role(person) is Role.EMPLOYEE


def test_a_person_in_no_mapped_group_gets_a_page_saying_whom_to_ask(provider, client):
    sign_in(client, provider, upn="hal@corp.example", groups=["grp-unrelated"])
    person = signed_in_user(client)
    assert person is not None and user_role(person) is None
    page = client.get(reverse("home"))
    assert page.status_code == 403
    text = page.content.decode()
    assert "No portal role yet" in text and "the Acme service desk (ext. 4242)" in text
    assert "sign out and sign in again" in text
    # Every other page says the same instead of a bare refusal.
    other = client.get(reverse("self_service:home"))
    assert other.status_code == 403
    assert "no portal role yet" in other.content.decode()
    assert "the Acme service desk (ext. 4242)" in other.content.decode()


def test_losing_every_mapped_group_removes_the_role(provider, client):
    sign_in(client, provider, upn="ivy@corp.example", groups=["grp-staff"])
    client.post(reverse("logout"))
    sign_in(client, provider, upn="ivy@corp.example", groups=[])
    person = signed_in_user(client)
    assert person is not None and user_role(person) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": 1_000_000_000},  # expired long ago
        {"aud": "another-client"},
        {"iss": "http://127.0.0.1:9/evil"},
        {"nonce": "not-the-nonce-the-portal-sent"},
    ],
    ids=["expired", "audience", "issuer", "nonce"],
)
def test_a_bad_id_token_is_refused_with_a_page(provider, client, changes):
    provider.state.id_token_changes = changes
    response = sign_in(client, provider, upn="jack@corp.example", groups=["grp-staff"])
    assert response.status_code == 400
    assert "Signing in with Acme did not work" in response.content.decode()
    assert signed_in_user(client) is None and not User.objects.exists()


def test_an_id_token_signed_with_another_key_is_refused(provider, client):
    provider.state.forge_signature = True
    response = sign_in(client, provider, upn="kim@corp.example", groups=["grp-staff"])
    assert response.status_code == 400
    assert signed_in_user(client) is None and not User.objects.exists()


def test_a_callback_with_another_state_is_refused_and_a_code_is_used_once(provider, client):
    provider.state.claims = {"sub": "subject-2", "upn": "lee@corp.example", "groups": "grp-staff"}
    callback = to_provider(client)
    query = parse_qs(urlsplit(callback).query)
    forged = client.get(reverse("sso:callback"), {"code": query["code"][0], "state": "forged"})
    assert forged.status_code == 400 and signed_in_user(client) is None
    assert back_to_portal(client, callback).status_code == 302
    assert signed_in_user(client) is not None
    # The same answer again: its state was spent.
    client.post(reverse("logout"))
    replay = back_to_portal(client, callback)
    assert replay.status_code == 400 and signed_in_user(client) is None


def test_a_wrong_pkce_verifier_is_refused_by_the_provider(provider, client):
    provider.state.claims = {"sub": "subject-3", "upn": "max@corp.example"}
    callback = to_provider(client)
    session = client.session
    for entry in session["oidc_states"].values():
        entry["code_verifier"] = "x" * 64
    session.save()
    response = back_to_portal(client, callback)
    assert response.status_code == 400 and signed_in_user(client) is None
    assert "pkce_verified" not in provider.state.token_requests[-1]


def test_the_provider_saying_no_and_a_callback_without_code_give_a_page(provider, client):
    denied = client.get(reverse("sso:callback"), {"error": "access_denied", "state": "x"})
    bare = client.get(reverse("sso:callback"))
    assert denied.status_code == bare.status_code == 400
    assert "ask the Acme service desk" in denied.content.decode()


def test_odd_claim_values_are_read_or_refused_never_an_error(provider, client):
    response = sign_in(
        client,
        provider,
        sub="subject-\x00odd",
        upn=["not", "a", "string"],
        preferred_username="quinn\x00@corp.example",
        email="q" * 300,
        given_name={"nested": True},
        groups=[1, None, "grp-staff"],
    )
    assert response.status_code == 302
    person = signed_in_user(client)
    assert person is not None and user_upn(person) == "quinn@corp.example"
    assert user_role(person) is Role.EMPLOYEE and person.first_name == ""
    assert PersonProfile.objects.get(user=person).oidc_subject == "subject-odd"


def test_missing_upn_claims_give_a_page_naming_them(provider, client):
    response = sign_in(client, provider, groups=["grp-staff"])
    assert response.status_code == 403
    text = response.content.decode()
    assert "upn, preferred_username, email" in text and "Acme service desk" in text
    assert not User.objects.exists()


def test_a_local_account_is_never_taken_over_by_a_provider_name(provider, client, make_user):
    local = make_user("admin@corp.example", Role.ADMIN)
    response = sign_in(client, provider, upn="admin@corp.example", groups=["grp-staff"])
    assert response.status_code == 403
    assert "already has an account named admin@corp.example" in response.content.decode()
    assert signed_in_user(client) is None
    assert user_role(User.objects.get(pk=local.pk)) is Role.ADMIN
    assert not PersonProfile.objects.filter(oidc_subject__isnull=False).exists()


def test_an_unreachable_provider_gives_a_page(provider, client, settings):
    settings.OIDC_ISSUER = "http://127.0.0.1:9"
    response = client.get(reverse("sso:login"))
    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()


def test_the_login_page_offers_the_company_first(provider, client):
    text = client.get(reverse("login")).content.decode()
    assert "Sign in with Acme" in text
    assert text.index("Sign in with Acme") < text.index('name="password"')


def test_without_sso_the_login_page_has_no_company_button_and_sso_urls_are_404(client, db):
    assert "Sign in with" not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("sso:login")).status_code == 404
    assert client.get(reverse("sso:callback")).status_code == 404


def test_secrets_and_tokens_are_never_logged(provider, client, caplog):
    caplog.set_level(logging.DEBUG)
    provider.state.id_token_changes = {"aud": "another-client"}
    sign_in(client, provider, upn="nina@corp.example")
    provider.state.id_token_changes = {}
    sign_in(client, provider, upn="nina@corp.example", groups=["grp-staff"])
    assert signed_in_user(client) is not None
    for token in provider.state.access_tokens:
        assert token not in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert "eyJ" not in caplog.text  # no JWT (ID token) anywhere


def test_failed_callbacks_lock_out_their_address_only(provider):
    from django.test import Client as TestClient

    attacker, colleague = TestClient(REMOTE_ADDR="192.0.2.66"), TestClient(REMOTE_ADDR="192.0.2.67")
    for _ in range(5):
        to_provider(attacker)
        forged = attacker.get(reverse("sso:callback"), {"code": "guess", "state": "forged"})
        assert forged.status_code in (400, 429)
    failures = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_FAILED, ip_address="192.0.2.66")
    assert failures.count() == 5
    response = sign_in(colleague, provider, upn="olga@corp.example", groups=["grp-staff"])
    assert response.status_code == 302 and signed_in_user(colleague) is not None
    refused = sign_in(attacker, provider, sub="subject-9", upn="pat@corp.example")
    assert refused.status_code == 429 and signed_in_user(attacker) is None


# --- configuration ------------------------------------------------------------------------------


def test_role_groups_read_strongest_first_with_several_groups_and_star():
    mapping = parse_role_groups("Employee=*, Helpdesk=grp-a|grp-b ,Admin=grp-admins,Helpdesk=c")
    assert mapping == (
        ("Admin", ("grp-admins",)),
        ("Helpdesk", ("grp-a", "grp-b", "c")),
        ("Employee", ("*",)),
    )
    assert parse_role_groups("") == ()


def manage_with_sso(tmp_path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with SSO configured (a secret file), plus `env`."""
    secret = tmp_path / "oidc_secret"
    secret.write_text("s3cret\n")
    variables = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.test_settings",
        "OIDC_RP_CLIENT_ID": "portal",
        "OIDC_RP_CLIENT_SECRET_FILE": str(secret),
        "OIDC_ISSUER": "https://login.example.com",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=variables, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OIDC_ROLE_GROUPS": "Boss=grp-x"}, "OIDC_ROLE_GROUPS: 'Boss' is not one of"),
        ({"OIDC_ROLE_GROUPS": "Admin"}, "OIDC_ROLE_GROUPS: 'Admin' is not Role=group"),
        ({"OIDC_ISSUER": ""}, "OIDC_ISSUER is required"),
        ({"OIDC_RP_CLIENT_SECRET_FILE": ""}, "OIDC_RP_CLIENT_SECRET is required"),
    ],
)
def test_a_bad_sso_setting_stops_start_up_naming_it(tmp_path, env, message):
    result = manage_with_sso(tmp_path, env, "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_sso_settings_from_the_environment(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.OIDC_ENABLED, s.OIDC_USE_PKCE, s.OIDC_RP_CLIENT_SECRET, s.OIDC_UPN_CLAIMS, "
        "s.AUTHENTICATION_BACKENDS[0], s.AUTHENTICATION_BACKENDS[-1], dict(s.OIDC_ROLE_GROUPS))"
    )
    groups = "Admin=grp-portal-admins,Helpdesk=grp-servicedesk,Employee=*"
    result = manage_with_sso(tmp_path, {"OIDC_ROLE_GROUPS": groups}, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip().splitlines()[-1]
    assert printed.split(" ", 5)[:5] == [
        "True",
        "True",
        "s3cret",
        "['upn',",
        "'preferred_username',",
    ]
    assert "axes.backends.AxesStandaloneBackend workflows_app.sso.backend.PortalOIDCBackend" in (
        printed
    )
    assert "'Employee': ('*',)" in printed


def test_a_password_sign_in_never_reaches_the_provider(provider, make_user):
    make_user("local-admin", Role.ADMIN)
    client = Client(REMOTE_ADDR="192.0.2.80")
    response = client.post(
        reverse("login") + "?code=stolen&state=stolen",
        {"username": "local-admin", "password": "pw-12345-test"},
    )
    assert response.status_code == 302 and signed_in_user(client) is not None
    assert provider.state.token_requests == []


def test_a_failed_local_sign_in_keeps_the_local_form_open(provider, client):
    closed = client.get(reverse("login")).content.decode()
    failed = client.post(reverse("login"), {"username": "x", "password": "y"}).content.decode()
    assert "<details>" in closed and "<details open>" in failed
    assert "didn't match" in failed and "Sign in with Acme" in failed
