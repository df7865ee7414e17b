"""Employee self-service pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workflows_app.roles import Role, role_required


@role_required(Role.EMPLOYEE, Role.HELPDESK, Role.ADMIN)
def home(request: HttpRequest) -> HttpResponse:
    """Show the self-service fixes offered to the signed-in person."""
    return render(request, "self_service/home.html", {})
