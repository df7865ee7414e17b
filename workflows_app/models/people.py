"""What the portal keeps about a person beyond Django's user: their UPN and their SSO subject."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PersonProfile(models.Model):
    """A person's UPN (the self-service device lookup and user targets) and OIDC subject.

    SSO accounts get both at every sign-in (the UPN from the configured claims); local accounts
    have an UPN an admin edits on the people page, else their email address stands in.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_profile"
    )
    upn = models.CharField("UPN", max_length=255, blank=True, default="")
    # The provider's `sub`: the one claim that never changes; unique, so one account per person.
    oidc_subject = models.CharField(max_length=255, null=True, blank=True, unique=True)

    def __str__(self) -> str:
        return self.upn or f"profile of user {self.user_id}"
