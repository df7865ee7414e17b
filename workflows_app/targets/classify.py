"""Recognising one target: which kind it is and its normalised value, or why it is not usable."""

import re

from workflows_app.nexthink.models import SID_PATTERN, UPN_PATTERN, UUID_PATTERN

from .model import TargetKind

# The client's patterns are the Workflows spec's (DeviceData, UserData). Compiled ASCII-only: the
# spec is JSON Schema, where \d means 0-9, while Python's default would also accept Arabic digits.

_UUID = re.compile(UUID_PATTERN, re.ASCII)
_SID = re.compile(SID_PATTERN, re.ASCII)
_UPN = re.compile(UPN_PATTERN, re.ASCII)

# Bare lines that were probably meant as a UUID or a SID: reported as a broken UUID or SID
# rather than quietly taken for a device name.
_UUID_LIKE = re.compile(
    r"\{.*"  # registry-style {uuid}
    r"|[0-9a-fA-F]{32}"  # hyphens left out
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F-]*"  # cut short
    r"|[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}"  # non-hex
    r"|[0-9a-fA-F]+(?:-[0-9a-fA-F]+){4,}",  # wrong group lengths
    re.ASCII,
)
_SID_LIKE = re.compile(r"[sS]-1-.*|[sS]-[0-9-]+", re.ASCII)

# Not in any device name we could look up; separators and spaces mean several values on a line.
_NAME_FORBIDDEN = re.compile(r'[\s,;@:"<>|\\/*?]')
_SEPARATORS = {" ": "a space", "\t": "a tab", ",": "a comma", ";": "a semicolon"}
MAX_NAME_LENGTH = 255

EXAMPLE_UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
EXAMPLE_SID = "S-1-5-21-1004336348-1177238915-682003330-512"
EXAMPLE_UPN = "jane.doe@example.com"

# The prefix written when rendering each kind, and every spelling accepted when reading.
CANONICAL_PREFIX: dict[TargetKind, str] = {
    TargetKind.DEVICE_COLLECTOR: "collector",
    TargetKind.DEVICE_UID: "device-uid",
    TargetKind.DEVICE_NAME: "name",
    TargetKind.USER_SID: "sid",
    TargetKind.USER_UPN: "upn",
    TargetKind.USER_UID: "user-uid",
    # Read back by the classic parser (targets/classic.py) only.
    TargetKind.DEVICE_CLASSIC_UID: "uid",
}
PREFIXES: dict[str, TargetKind] = {
    **{
        prefix: kind
        for kind, prefix in CANONICAL_PREFIX.items()
        if kind is not TargetKind.DEVICE_CLASSIC_UID
    },
    "collector-uid": TargetKind.DEVICE_COLLECTOR,
    "uid": TargetKind.DEVICE_UID,
    "device-name": TargetKind.DEVICE_NAME,
}
_PREFIX_LIST = ", ".join(
    f"{p}:" for k, p in CANONICAL_PREFIX.items() if k is not TargetKind.DEVICE_CLASSIC_UID
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*", re.ASCII)


class TargetError(ValueError):
    """A value that cannot be a target; `reason` says why, for the person who typed it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def classify(text: str) -> tuple[TargetKind, str]:
    """Recognise a stripped line (optionally `prefix:value`) as a kind and a normalised value."""
    if ":" in text:
        head, _, rest = text.partition(":")
        prefix = head.strip().lower().replace("_", "-")
        kind = PREFIXES.get(prefix)
        if kind is not None:
            try:
                return kind, normalise(kind, rest.strip())
            except TargetError as exc:
                raise TargetError(f"after '{prefix}:': {exc.reason}") from None
        if _WORD.fullmatch(head.strip()):
            raise TargetError(f"unknown prefix '{head.strip()}:' (use one of {_PREFIX_LIST})")
        raise TargetError(
            f"':' is not allowed in a device name; to say what the value is, "
            f"start the line with one of {_PREFIX_LIST}"
        )
    if "@" in text:
        return TargetKind.USER_UPN, normalise(TargetKind.USER_UPN, text)
    if _UUID.fullmatch(text):
        return TargetKind.DEVICE_COLLECTOR, text.lower()
    if text[:2] in ("S-", "s-") and _SID.fullmatch("S" + text[1:]):
        return TargetKind.USER_SID, "S" + text[1:]
    hint = " (write name: before it if it is a device name)"
    if _UUID_LIKE.fullmatch(text):
        try:  # {uuid} as the registry writes it is fine; anything else UUID-ish is a broken UUID
            return TargetKind.DEVICE_COLLECTOR, normalise(TargetKind.DEVICE_COLLECTOR, text)
        except TargetError as exc:
            raise TargetError(exc.reason + hint) from None
    if _SID_LIKE.fullmatch(text):
        raise TargetError(_sid_reason(text) + hint)
    _check_name(text, strict=True)
    return TargetKind.DEVICE_NAME, text


def normalise(kind: TargetKind, value: str) -> str:
    """Check a value already known to be of `kind` and return its normalised form."""
    if not value:
        raise TargetError(f"no value; expected {_EXPECTED[kind]}")
    if kind in (TargetKind.DEVICE_COLLECTOR, TargetKind.DEVICE_UID, TargetKind.USER_UID):
        if value[0] == "{" and value[-1] == "}":
            value = value[1:-1].strip()
        if not _UUID.fullmatch(value):
            raise TargetError(_uuid_reason(value))
        return value.lower()
    if kind is TargetKind.USER_SID:
        if value[0] == "s":
            value = "S" + value[1:]
        if not _SID.fullmatch(value):
            raise TargetError(_sid_reason(value))
        return value
    if kind is TargetKind.USER_UPN:
        if not _UPN.fullmatch(value):
            raise TargetError(_upn_reason(value))
        return value.lower()
    _check_name(value, strict=False)
    return value


_EXPECTED: dict[TargetKind, str] = {
    TargetKind.DEVICE_COLLECTOR: f"a Collector UUID like {EXAMPLE_UUID}",
    TargetKind.DEVICE_UID: f"a device UID like {EXAMPLE_UUID}",
    TargetKind.USER_UID: f"a user UID like {EXAMPLE_UUID}",
    TargetKind.USER_SID: f"a SID like {EXAMPLE_SID}",
    TargetKind.USER_UPN: f"a UPN like {EXAMPLE_UPN}",
    TargetKind.DEVICE_NAME: "a device name",
    TargetKind.DEVICE_CLASSIC_UID: "a classic device UID (32 hexadecimal digits)",
}


def _uuid_reason(value: str) -> str:
    """Say what is wrong with something meant as a UUID."""
    expected = f"expected 8-4-4-4-12 hexadecimal digits like {EXAMPLE_UUID}"
    bare = value.strip("{}")
    if len(bare) == 32 and all(c in "0123456789abcdefABCDEF" for c in bare):
        return f"not a valid UUID: the hyphens are missing; {expected}"
    bad = next((c for c in bare if c not in "0123456789abcdefABCDEF-"), None)
    if bad is not None:
        return f"not a valid UUID: {bad!r} is not a hexadecimal digit; {expected}"
    groups = "-".join(str(len(g)) for g in bare.split("-"))
    return f"not a valid UUID: it has {groups} digits; {expected}"


def _sid_reason(value: str) -> str:
    """Say what is wrong with something meant as a SID."""
    expected = f"expected S and 2 to 10 numbers separated by hyphens, like {EXAMPLE_SID}"
    if value[:2] not in ("S-", "s-"):
        return f"not a valid SID: it must start with 'S-'; {expected}"
    numbers = value[2:].split("-")
    for part in numbers:
        if not part:
            return f"not a valid SID: two hyphens together or one at the end; {expected}"
        if not (part.isascii() and part.isdigit()):
            return f"not a valid SID: {part!r} is not a number; {expected}"
    count = f"{len(numbers)} number" + ("" if len(numbers) == 1 else "s")
    return f"not a valid SID: it has {count}, not 2 to 10; {expected}"


def _upn_reason(value: str) -> str:
    """Say what is wrong with something meant as a UPN."""
    expected = f"expected name@domain like {EXAMPLE_UPN}"
    if "@" not in value:
        return f"not a valid UPN: there is no '@'; {expected}"
    if value.count("@") != 1:
        return f"not a valid UPN: it has {value.count('@')} '@' signs; {expected}"
    local, _, domain = value.partition("@")
    if not local or not domain:
        return f"not a valid UPN: nothing {'before' if not local else 'after'} '@'; {expected}"
    bad = re.search(r"[^a-zA-Z0-9._%+-]", local)
    if bad:
        return f"not a valid UPN: {bad.group()!r} is not allowed before '@'; {expected}"
    bad = re.search(r"[^a-zA-Z0-9.-]", domain)
    if bad:
        return f"not a valid UPN: {bad.group()!r} is not allowed after '@'; {expected}"
    return f"not a valid UPN: {domain!r} does not end with '.' and 2 or more letters; {expected}"


def _check_name(value: str, *, strict: bool) -> None:
    """Refuse an impossible device name; `strict` for bare lines, which also allow no space."""
    if len(value) > MAX_NAME_LENGTH:
        raise TargetError(f"too long for a device name ({len(value):,} characters, at most 255)")
    if strict:
        bad = _NAME_FORBIDDEN.search(value)
        if bad:
            char = bad.group()
            if char in _SEPARATORS:
                raise TargetError(
                    f"contains {_SEPARATORS[char]}: put one target per line "
                    f"(write name:<value> for a device name that really has one)"
                )
            raise TargetError(f"{char!r} is not allowed in a device name")
    if "\n" in value or "\r" in value:  # only a quoted CSV cell can hold one
        raise TargetError("contains a line break (is a '\"' in the file left unclosed?)")
    if not value.isprintable():
        char = next(c for c in value if not c.isprintable())
        raise TargetError(f"contains an invisible or control character (U+{ord(char):04X})")
