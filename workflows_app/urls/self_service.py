"""Routes of employee self-service (/self-service/)."""

from django.urls import path

from workflows_app.views import self_service

app_name = "self_service"
urlpatterns = [
    path("", self_service.home, name="home"),
    path("recent/", self_service.recent, name="recent"),
    path("<int:workflow_id>/", self_service.confirm, name="confirm"),
    path("<int:workflow_id>/run/", self_service.run, name="run"),
]
