"""The base every feature stands on: settings, roles, login, home routing and the health check."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from portal.env import ConfigError, env_bool, env_int, env_secret
from workflows_app.roles import Role
from workflows_app.services.accounts import ensure_demo_accounts


def test_env_bool_rejects_garbage(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ConfigError, match="X_FLAG"):
        env_bool("X_FLAG")


def test_env_int_checks_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "3")
    with pytest.raises(ConfigError, match="at least 10"):
        env_int("X_NUM", 20, minimum=10)
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ConfigError, match="not a whole number"):
        env_int("X_NUM", 20)


def test_secret_read_from_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret_file))
    assert env_secret("X_SECRET", required=True) == "s3cr3t"


def test_missing_secret_names_the_variable(monkeypatch):
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.delenv("X_SECRET_FILE", raising=False)
    with pytest.raises(ConfigError, match="X_SECRET is required"):
        env_secret("X_SECRET", required=True)


def test_production_start_without_client_secret_names_it(tmp_path):
    """Outside demo mode a missing secret stops start-up with a message naming the variable."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXTHINK_", "PORTAL_DEMO"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        SECRET_KEY="x",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/portal",
        NEXTHINK_INSTANCE="acme",
        NEXTHINK_REGION="eu",
        NEXTHINK_CLIENT_ID="abc",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "NEXTHINK_CLIENT_SECRET is required" in result.stderr


def test_a_saved_query_id_that_nexthink_would_refuse_stops_start_up():
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.test_settings",
        "NEXTHINK_RECENT_EXECUTIONS_QUERY_ID": "portal recent executions",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "NEXTHINK_RECENT_EXECUTIONS_QUERY_ID must be a saved NQL query id" in result.stderr


@pytest.mark.django_db
def test_roles_exist_after_migration():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in Role}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "home"),
    [("employee", "/self-service/"), ("helpdesk", "/workflows/"), ("admin", "/console/")],
)
def test_each_demo_account_logs_in_to_its_home(client, username, home):
    ensure_demo_accounts(password="demo-pass-123")
    response = client.post(
        reverse("login"), {"username": username, "password": "demo-pass-123"}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == home
    assert username in response.content.decode()


@pytest.mark.django_db
def test_wrong_password_is_refused_with_a_message(client):
    ensure_demo_accounts(password="demo-pass-123")
    response = client.post(reverse("login"), {"username": "admin", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_anonymous_is_sent_to_login(client):
    response = client.get("/workflows/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/self-service/", {Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN}),
        ("/workflows/", {Role.HELPDESK, Role.ADMIN}),
        ("/console/", {Role.ADMIN}),
    ],
)
def test_role_pages_refuse_other_roles(make_user, client, path, allowed):
    for role in Role:
        user = make_user(f"user-{role.value.lower()}", role)
        client.force_login(user)
        status = client.get(path).status_code
        assert status == (200 if role in allowed else 403), (role, path, status)


def test_account_without_role_is_told_why(make_user, client):
    client.force_login(make_user("nobody", None))
    response = client.get("/")
    assert response.status_code == 403
    assert "No portal role" in response.content.decode()


def test_logout_needs_post(make_user, client):
    client.force_login(make_user("someone", Role.EMPLOYEE))
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302


@pytest.mark.django_db
def test_healthz_ok_with_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_503_when_broker_is_down(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] != "ok"
    assert response.json()["database"] == "ok"


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_a_request_the_server_cannot_read_gets_the_portals_own_explanation(make_user, client):
    """Django refuses a body with too many fields before any view: the 400 page says why."""
    client.force_login(make_user("admin", Role.ADMIN))
    fields = {f"field{i}": "x" for i in range(2_000)}  # DATA_UPLOAD_MAX_NUMBER_FIELDS is 1,000
    response = client.post("/console/curation/import/", fields)
    assert response.status_code == 400
    assert 'data-testid="refusal"' in response.content.decode()
    assert "Nothing was changed" in response.content.decode()
