"""URL routes of the workflows app: one module per area, each owning its namespace."""

from django.urls import include, path

urlpatterns = [
    path("workflows/", include("workflows_app.urls.catalogue")),
    path("self-service/", include("workflows_app.urls.self_service")),
    path("console/", include("workflows_app.urls.console")),
    path("console/curation/", include("workflows_app.urls.curation")),
    path("people/", include("workflows_app.urls.people")),
    path("sso/", include("workflows_app.urls.sso")),
    # Runs own both /workflows/<id>/run/ (start) and /runs/... (follow-up).
    path("", include("workflows_app.urls.runs")),
]
