"""The admin console: catalogue state, curation and execution follow-up."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workflows_app.roles import Role, role_required


@role_required(Role.ADMIN)
def home(request: HttpRequest) -> HttpResponse:
    """The admin's home page."""
    return render(request, "console/home.html", {})
