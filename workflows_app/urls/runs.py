"""Routes of runs, mounted at the root: /workflows/<id>/run/ starts one, /runs/ follows them."""

from django.urls import path

from workflows_app.views import runs, waiting

app_name = "runs"
urlpatterns = [
    path("workflows/<int:workflow_id>/run/", runs.start, name="start"),
    path("workflows/<int:workflow_id>/run/confirm/", runs.confirm, name="confirm"),
    path("workflows/<int:workflow_id>/run/change/", runs.change, name="change"),
    path("runs/", runs.run_list, name="list"),
    path("runs/export.csv", runs.runs_export, name="export"),
    path("runs/<int:pk>/targets.csv", runs.run_targets_export, name="targets_export"),
    path("runs/<int:pk>/", runs.run_detail, name="detail"),
    path("runs/<int:pk>/progress/", runs.run_progress, name="progress"),
    path("runs/waiting/", waiting.inbox, name="waiting"),
    path("runs/waiting/<str:execution_uuid>/resume/", waiting.resume, name="resume"),
]
