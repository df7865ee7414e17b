"""Client of the Nexthink Workflows API: typed models, typed errors, shared OAuth2 tokens.

Knows nothing of Django. Typical use::

    client = NexthinkClient(ClientConfig(api_url=..., token_url=..., client_id=...,
                                         client_secret=...), token_cache=shared_cache)
    client.execute_v2(ExternalIdsExecutionRequest(workflowId="#restart", devices=[...]))
"""

from .auth import MemoryTokenCache, TokenCache, TokenProvider
from .client import ClientConfig, NexthinkClient
from .errors import (
    BadRequest,
    ExportLinkExpired,
    Forbidden,
    InvalidResponse,
    NexthinkError,
    OutcomeUnknown,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from .models import (
    MAX_TARGETS,
    NQL_QUERY_ID_PATTERN,
    SID_PATTERN,
    UPN_PATTERN,
    UUID_PATTERN,
    Dependency,
    DeviceData,
    ErrorResponse,
    ExecutionRequest,
    ExecutionResponse,
    ExternalIdsExecutionRequest,
    NqlExportRequest,
    NqlExportResponse,
    NqlExportStatus,
    NqlRequest,
    NqlResponse,
    ThinkletTriggerRequest,
    ThinkletTriggerResponse,
    TriggerMethod,
    UserData,
    Workflow,
    WorkflowStatus,
    parse_trigger_methods,
)

__all__ = [
    "MAX_TARGETS",
    "NQL_QUERY_ID_PATTERN",
    "SID_PATTERN",
    "UPN_PATTERN",
    "UUID_PATTERN",
    "BadRequest",
    "ClientConfig",
    "Dependency",
    "DeviceData",
    "ErrorResponse",
    "ExecutionRequest",
    "ExecutionResponse",
    "ExportLinkExpired",
    "ExternalIdsExecutionRequest",
    "Forbidden",
    "InvalidResponse",
    "MemoryTokenCache",
    "NexthinkClient",
    "NexthinkError",
    "NqlExportRequest",
    "NqlExportResponse",
    "NqlExportStatus",
    "NqlRequest",
    "NqlResponse",
    "OutcomeUnknown",
    "RateLimited",
    "ThinkletTriggerRequest",
    "ThinkletTriggerResponse",
    "TokenCache",
    "TokenProvider",
    "TriggerMethod",
    "Unauthorized",
    "Unavailable",
    "UserData",
    "Workflow",
    "WorkflowStatus",
    "parse_trigger_methods",
]
