"""Routes of a person's own account pages (/account/): their API tokens (helpdesk and admins)
and their e-mail notification choices (everyone)."""

from django.urls import path

from workflows_app.views import account

app_name = "account"
urlpatterns = [
    path("tokens/", account.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", account.revoke, name="revoke"),
    path("notifications/", account.notifications, name="notifications"),
]
