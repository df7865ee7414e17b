from django.urls import path

from workflows_app.views import self_service

app_name = "self_service"
urlpatterns = [path("", self_service.home, name="home")]
