"""Create the demo accounts, one per role."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from workflows_app.roles import Role

DEMO_ACCOUNTS = (
    ("employee", "employee@example.com", "Erin", "Employee", Role.EMPLOYEE),
    ("helpdesk", "helpdesk@example.com", "Hugo", "Helpdesk", Role.HELPDESK),
    ("admin", "admin@example.com", "Ada", "Admin", Role.ADMIN),
)


def ensure_demo_accounts(*, password: str) -> list[str]:
    """Create or reset the demo accounts with the given password; return their usernames."""
    user_model = get_user_model()
    created = []
    for username, email, first, last, role in DEMO_ACCOUNTS:
        user, _ = user_model.objects.get_or_create(username=username)
        user.email = email
        user.first_name = first
        user.last_name = last
        user.is_staff = role == Role.ADMIN
        user.set_password(password)
        user.save()
        group, _ = Group.objects.get_or_create(name=role.value)
        user.groups.set([group])
        created.append(username)
    return created
