"""The JSON API at /api/v1/ (django-ninja): token-authenticated, OpenAPI 3.1 at openapi.json.

Endpoints parse and answer; every rule is the portal's own (CONTRACTS.md, "JSON API").
"""

from ninja import NinjaAPI

from workflows_app.api import approvals, catalogue, errors, executions, flows, runs
from workflows_app.api.auth import TokenAuth

api = NinjaAPI(
    title="Nexthink Workflows portal API",
    version="1",
    description=(
        "Start workflow runs, follow their outcomes and resume waiting executions. "
        "Authenticate with a personal API token: `Authorization: Bearer nxp_…`."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
    docs_url=None,
)
errors.install(api)
api.add_router("", catalogue.router)
api.add_router("", runs.router)
api.add_router("", executions.router)
api.add_router("", flows.router)
api.add_router("", approvals.router)
