"""Routes of the company sign-in (/sso/); the callback is the redirect URI to register."""

from django.urls import path

from workflows_app.views.sign_in import SsoCallback, SsoStart

app_name = "sso"
urlpatterns = [
    path("login/", SsoStart.as_view(), name="login"),
    path("callback/", SsoCallback.as_view(), name="callback"),
]
