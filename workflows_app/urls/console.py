"""Routes of the admin console (/console/); curation lives under /console/curation/."""

from django.urls import path

from workflows_app.views import console

app_name = "console"
urlpatterns = [
    path("", console.home, name="home"),
    path("sync/", console.sync_now, name="sync"),
    path("batches/<int:batch_id>/resend/", console.resend, name="resend"),
]
