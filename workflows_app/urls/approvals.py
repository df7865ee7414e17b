"""Routes of four-eyes approval (/approvals/): the inbox, one request, its decision."""

from django.urls import path

from workflows_app.views import approvals

app_name = "approvals"
urlpatterns = [
    path("", approvals.inbox, name="inbox"),
    path("<int:pk>/", approvals.detail, name="detail"),
    path("<int:pk>/decide/", approvals.decide, name="decide"),
]
