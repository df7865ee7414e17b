"""URL routes of the workflows app: one module per area, each owning its namespace."""

from django.urls import include, path

from workflows_app.api import api

urlpatterns = [
    path("workflows/", include("workflows_app.urls.catalogue")),
    path("self-service/", include("workflows_app.urls.self_service")),
    path("console/", include("workflows_app.urls.console")),
    path("console/curation/", include("workflows_app.urls.curation")),
    path("people/", include("workflows_app.urls.people")),
    path("flows/", include("workflows_app.urls.flows")),
    path("approvals/", include("workflows_app.urls.approvals")),
    path("sso/", include("workflows_app.urls.sso")),
    path("account/", include("workflows_app.urls.account")),
    path("api/v1/", api.urls),
    path("", include("workflows_app.urls.help_requests")),
    # Runs own both /workflows/<id>/run/ (start) and /runs/... (follow-up).
    path("", include("workflows_app.urls.runs")),
]
