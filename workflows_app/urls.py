"""URL routes of the workflows app, grouped by area."""

from django.urls import include, path

from workflows_app.views import catalogue, console, self_service

catalogue_patterns = (
    [path("", catalogue.workflow_list, name="list")],
    "catalogue",
)
self_service_patterns = ([path("", self_service.home, name="home")], "self_service")
console_patterns = ([path("", console.home, name="home")], "console")

urlpatterns = [
    path("workflows/", include(catalogue_patterns)),
    path("self-service/", include(self_service_patterns)),
    path("console/", include(console_patterns)),
]
