from django.urls import path

from workflows_app.views import console

app_name = "console"
urlpatterns = [path("", console.home, name="home")]
