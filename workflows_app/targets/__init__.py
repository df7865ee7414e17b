"""Parsing and classifying the devices and users a workflow run targets (pure, no Django).

A helpdesk agent pastes lines or uploads a file. Each line is recognised by its shape:

- a UUID is a device's Collector UUID; a SID (S-1-5-...) a user's SID; name@domain a user's UPN;
- anything else that can be a device name (no spaces, '@', ':' or control characters) is one;
- a prefix settles doubt, case-insensitively: collector:, device-uid: (or uid:), name:, sid:, upn:,
  user-uid:. Only name: can carry what a bare line cannot (a name shaped like a UUID, a space),
  and only sid: can carry the spec's special SID "0".

Every bad line is reported with its line number and a reason; duplicates are dropped and counted.
"""

from .classify import (
    SID_PATTERN,
    UPN_PATTERN,
    UUID_PATTERN,
    TargetError,
    classify,
    normalise,
)
from .model import (
    MAX_ERRORS,
    MAX_PER_REQUEST,
    MAX_TARGETS_PER_RUN,
    LineError,
    ParsedTargets,
    Target,
    TargetKind,
)
from .parse import COLUMNS, parse_csv, parse_text, parse_upload
from .payloads import (
    batches,
    check_dependency,
    fits_v1,
    render_targets,
    to_v1_lists,
    to_v2_lists,
)

__all__ = [
    "COLUMNS",
    "MAX_ERRORS",
    "MAX_PER_REQUEST",
    "MAX_TARGETS_PER_RUN",
    "SID_PATTERN",
    "UPN_PATTERN",
    "UUID_PATTERN",
    "LineError",
    "ParsedTargets",
    "Target",
    "TargetError",
    "TargetKind",
    "batches",
    "check_dependency",
    "classify",
    "fits_v1",
    "normalise",
    "parse_csv",
    "parse_text",
    "parse_upload",
    "render_targets",
    "to_v1_lists",
    "to_v2_lists",
]
