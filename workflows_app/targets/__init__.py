"""Parsing and classifying the devices and users a workflow run targets (pure, no Django).

A helpdesk agent pastes lines or uploads a file. Each line is recognised by its shape:

- a UUID is a device's Collector UUID; a SID (S-1-5-...) a user's SID; name@domain a user's UPN;
- anything else that can be a device name (no spaces, '@', ':' or control characters) is one;
- a prefix settles doubt, case-insensitively: collector:, device-uid: (or uid:), name:, sid:, upn:,
  user-uid:. Only name: can carry what a bare line cannot (a name shaped like a UUID, a space),
  and only sid: can carry the spec's special SID "0".

Every bad line is reported with its line number and a reason; duplicates are dropped and counted.

A `Target` is the one in-memory shape from the form to the execute call: `codec` writes it to the
session or a database row and reads it back, `execution_request` turns a batch of them into the
client's request model. The spec's patterns and per-request limit are the client's
(`workflows_app.nexthink.models`); they are re-exported here for the code that classifies values.
"""

from workflows_app.nexthink.models import MAX_TARGETS, SID_PATTERN, UPN_PATTERN, UUID_PATTERN

from .classic import EXAMPLE_CLASSIC_UID, classify_classic
from .classify import TargetError, classify, normalise
from .codec import from_row, from_session_text, to_line, to_row, to_session_text
from .model import (
    MAX_ERRORS,
    MAX_TARGETS_PER_RUN,
    LineError,
    ParsedTargets,
    Target,
    TargetKind,
    too_many_targets,
)
from .parse import COLUMNS, parse_csv, parse_items, parse_text, parse_upload
from .payloads import (
    ApiVersion,
    api_version,
    batches,
    check_dependency,
    execution_request,
    fits_v1,
)

__all__ = [
    "COLUMNS",
    "MAX_ERRORS",
    "EXAMPLE_CLASSIC_UID",
    "MAX_TARGETS",
    "MAX_TARGETS_PER_RUN",
    "SID_PATTERN",
    "UPN_PATTERN",
    "UUID_PATTERN",
    "ApiVersion",
    "LineError",
    "ParsedTargets",
    "Target",
    "TargetError",
    "TargetKind",
    "api_version",
    "batches",
    "check_dependency",
    "classify",
    "classify_classic",
    "execution_request",
    "fits_v1",
    "from_row",
    "from_session_text",
    "normalise",
    "parse_csv",
    "parse_items",
    "parse_text",
    "parse_upload",
    "to_line",
    "to_row",
    "to_session_text",
    "too_many_targets",
]
