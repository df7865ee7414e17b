"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from workflows_app.roles import Role
from workflows_app.services import dispatch

pytest_plugins = ["tests.nexthink_fixtures", "tests.celery_fixtures", "tests.notify_support"]


@pytest.fixture
def make_user(db, django_user_model):
    """Build a user with a role (or none)."""

    def make(username: str, role: Role | None, *, email: str | None = None):
        user = django_user_model.objects.create_user(
            username=username, email=email or f"{username}@example.com", password="pw-12345-test"
        )
        if role is not None:
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        return user

    return make


@pytest.fixture
def enqueued(monkeypatch):
    """Ids of the batches queued for sending (on commit), recorded instead of published.

    Run events published for notification (services/notifications.py) are dropped too.
    """
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_batch", lambda batch_id, **_: sent.append(batch_id))
    monkeypatch.setattr(dispatch, "enqueue_notification", lambda *args: None)
    return sent


@pytest.fixture
def employee(make_user):
    return make_user("employee", Role.EMPLOYEE)


@pytest.fixture
def helpdesk(make_user):
    return make_user("helpdesk", Role.HELPDESK)


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", Role.ADMIN)


@pytest.fixture
def client_for(client):
    """Return a test client signed in as the given user."""

    def signed_in(user):
        client.force_login(user)
        return client

    return signed_in


@pytest.fixture
def nexthink_settings(settings, simulator):
    """Point the portal's Nexthink settings at the simulator."""
    settings.NEXTHINK_API_URL = simulator.base_url
    settings.NEXTHINK_TOKEN_URL = simulator.token_url
    settings.NEXTHINK_CLIENT_ID = simulator.client_id
    settings.NEXTHINK_CLIENT_SECRET = simulator.client_secret
    settings.NEXTHINK_READ_TIMEOUT = 3.0
    settings.NEXTHINK_CONNECT_TIMEOUT = 2.0
    settings.NEXTHINK_CLASSIC_URL = simulator.base_url
    settings.NEXTHINK_CLASSIC_USER = simulator.classic.user
    settings.NEXTHINK_CLASSIC_PASSWORD = simulator.classic.password
    from django.core.cache import cache

    cache.clear()
    return settings
