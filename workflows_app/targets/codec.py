"""How a Target is written outside memory and read back: a session line, a database row, a
prefixed line for the run form.

Each keeps the kind and the value only. The line a target was pasted on is not kept, so reading
back numbers the targets by their position instead (1, 2, ... in the order written).
"""

from collections.abc import Sequence

from .classify import CANONICAL_PREFIX
from .model import Target, TargetKind

# No target value holds a tab or a line break: the parser refuses control characters.
_FIELD = "\t"
_LINE = "\n"
# TargetKind(value) goes through Enum's metaclass: a dict is several times faster, which counts
# when 100,000 targets are read back from the session or from their rows.
_KINDS = {kind.value: kind for kind in TargetKind}


def _kind(value: str) -> TargetKind:
    """The kind stored as `value` (ValueError, as TargetKind(value), for an unknown one)."""
    try:
        return _KINDS[value]
    except KeyError:
        raise ValueError(f"{value!r} is not a valid TargetKind") from None


def to_session_text(targets: Sequence[Target]) -> str:
    """The targets as one compact string for the session: a 'kind<TAB>value' line each."""
    return _LINE.join(f"{t.kind.value}{_FIELD}{t.value}" for t in targets)


def from_session_text(text: str) -> list[Target]:
    """The targets `to_session_text` wrote, in order, numbered from 1."""
    if not text:
        return []
    targets = []
    for number, line in enumerate(text.split(_LINE), start=1):
        kind, _, value = line.partition(_FIELD)
        targets.append(Target(_kind(kind), value, number))
    return targets


def to_line(kind: str, value: str) -> str:
    """A stored target as a line the run form reads back as the same target: `prefix:value`."""
    return f"{CANONICAL_PREFIX[TargetKind(kind)]}:{value}"


def to_row(target: Target) -> tuple[str, str]:
    """The (kind, value) columns a target is stored in."""
    return target.kind.value, target.value


def from_row(kind: str, value: str, line: int = 0) -> Target:
    """A target read back from its stored (kind, value) columns."""
    return Target(_kind(kind), value, line)
