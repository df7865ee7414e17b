"""The workflow catalogue pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workflows_app.roles import Role, role_required


@role_required(Role.HELPDESK, Role.ADMIN)
def workflow_list(request: HttpRequest) -> HttpResponse:
    """List the workflows the person may see."""
    return render(request, "catalogue/list.html", {})
