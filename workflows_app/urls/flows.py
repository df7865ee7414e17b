"""Routes of flows: the list, one flow, the editor, import/export, running and following one."""

from django.urls import path

from workflows_app.views import flow_fix, flow_runs, flows

app_name = "flows"
urlpatterns = [
    path("", flows.flow_list, name="list"),
    path("new/", flows.flow_edit, name="new"),
    path("export.json", flows.flow_export, name="export"),
    path("import/", flows.flow_import, name="import"),
    path("<int:pk>/", flows.flow_detail, name="detail"),
    path("<int:pk>/edit/", flows.flow_edit, name="edit"),
    path("<int:pk>/delete/", flows.flow_delete, name="delete"),
    path("<int:pk>/run/", flow_runs.start, name="start"),
    path("<int:pk>/run/confirm/", flow_runs.confirm, name="confirm"),
    path("<int:pk>/run/change/", flow_runs.change, name="change"),
    path("<int:pk>/fix/", flow_fix.fix, name="fix"),
    path("runs/", flow_runs.flow_run_list, name="runs"),
    path("runs.csv", flow_runs.flow_runs_export, name="runs_export"),
    path("runs/<int:pk>/", flow_runs.flow_run_detail, name="run"),
    path("runs/<int:pk>/progress/", flow_runs.flow_run_progress, name="run_progress"),
]
