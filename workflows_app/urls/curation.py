"""Routes of the curation pages (admins only), mounted at /console/curation/."""

from django.urls import path

from workflows_app.views import curation, remote_actions

app_name = "curation"
urlpatterns = [
    path("", curation.workflow_list, name="list"),
    path("export/", curation.export, name="export"),
    path("import/", curation.import_document, name="import"),
    path("self-service-settings/", curation.self_service_settings, name="settings"),
    path("remote-actions/new/", remote_actions.register_page, name="register_remote_action"),
    path("<int:pk>/", curation.edit, name="edit"),
    path("<int:pk>/parameter-row/", curation.parameter_row, name="parameter_row"),
]
