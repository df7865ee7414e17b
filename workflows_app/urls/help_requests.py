"""Routes of help requests: an employee's "Get help" on their run, the helpdesk's list."""

from django.urls import path

from workflows_app.views import help_requests

app_name = "help"
urlpatterns = [
    path("runs/<int:run_id>/help/", help_requests.ask, name="ask"),
    path("help-requests/", help_requests.help_request_list, name="list"),
    path("help-requests/<int:pk>/handled/", help_requests.mark_handled, name="handled"),
]
