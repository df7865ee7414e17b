from django.urls import path

from workflows_app.views import catalogue

app_name = "catalogue"
urlpatterns = [path("", catalogue.workflow_list, name="list")]
