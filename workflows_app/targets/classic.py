"""Classic device UIDs: what remote actions of the classic (on-premise) platform run on.

The Act API takes device UIDs only (NXQL `device_uid`: 32 hexadecimal digits, no hyphens); a
line may carry the `uid:` prefix. Device names, users and cloud identifiers are refused, each
with a reason for its line: the portal has no lookup from a name to a classic UID.
"""

import re

from .classify import TargetError
from .model import TargetKind

EXAMPLE_CLASSIC_UID = "da2add909a144e8235453f88dc45172f"
_CLASSIC_UID = re.compile(r"[0-9a-fA-F]{32}", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F-]+", re.ASCII)
_PREFIXES = ("uid", "device-uid", "classic-uid")
EXPECTED = f"a classic device UID: 32 hexadecimal digits like {EXAMPLE_CLASSIC_UID}"
NAMES_REFUSED = (
    f"device names cannot be looked up on the classic platform (no lookup is configured): "
    f"give {EXPECTED} (NXQL device_uid)"
)


def classify_classic(text: str) -> tuple[TargetKind, str]:
    """Recognise a stripped line as a classic device UID (lower case), or say why it is not."""
    value = text
    if ":" in text:
        head, _, rest = text.partition(":")
        prefix = head.strip().lower().replace("_", "-")
        if prefix in ("name", "device-name"):
            raise TargetError(NAMES_REFUSED)
        if prefix not in _PREFIXES:
            raise TargetError(
                f"'{head.strip()}:' cannot be used for a remote action: give {EXPECTED} "
                "(the uid: prefix is optional)"
            )
        value = rest.strip()
    if _CLASSIC_UID.fullmatch(value):
        return TargetKind.DEVICE_CLASSIC_UID, value.lower()
    return TargetKind.DEVICE_CLASSIC_UID, _refuse(value)


def _refuse(value: str) -> str:
    """Raise the reason a value is not a classic device UID."""
    if not value:
        raise TargetError(f"no value; expected {EXPECTED}")
    if "@" in value or value[:2] in ("S-", "s-"):
        raise TargetError(f"remote actions run on devices, not users: give {EXPECTED}")
    if _HEX.fullmatch(value):
        digits = len(value.replace("-", ""))
        if "-" in value:
            raise TargetError(
                f"a UUID with hyphens (a Collector UUID or a cloud device UID) is not a classic "
                f"device UID: give {EXPECTED}"
            )
        raise TargetError(f"not a classic device UID: it has {digits} digits; expected {EXPECTED}")
    raise TargetError(f"'{value[:40]}' is not a classic device UID; {NAMES_REFUSED}")
