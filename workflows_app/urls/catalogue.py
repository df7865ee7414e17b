"""Routes of the workflow catalogue (/workflows/); /workflows/<id>/run/ belongs to runs."""

from django.urls import path

from workflows_app.views import catalogue

app_name = "catalogue"
urlpatterns = [
    path("", catalogue.workflow_list, name="list"),
    path("<int:pk>/", catalogue.workflow_detail, name="detail"),
    path("<int:pk>/refresh/", catalogue.workflow_refresh, name="refresh"),
]
