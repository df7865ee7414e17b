"""Which Nexthink platforms the portal drives (NEXTHINK_PLATFORMS): cloud, classic or both."""

from __future__ import annotations

from django.conf import settings

from workflows_app.models import RunnableKind

PLATFORM_KINDS: dict[str, frozenset[RunnableKind]] = {
    "cloud": frozenset({RunnableKind.WORKFLOW}),
    "classic": frozenset({RunnableKind.REMOTE_ACTION}),
    "both": frozenset({RunnableKind.WORKFLOW, RunnableKind.REMOTE_ACTION}),
}


def enabled_kinds() -> frozenset[RunnableKind]:
    """The kinds of runnable the configured platforms serve."""
    return PLATFORM_KINDS.get(str(settings.NEXTHINK_PLATFORMS), PLATFORM_KINDS["cloud"])


def kind_enabled(kind: str) -> bool:
    """Whether the platform running this kind is configured."""
    return kind in enabled_kinds()


def classic_enabled() -> bool:
    """Whether remote actions of the classic platform are served."""
    return RunnableKind.REMOTE_ACTION in enabled_kinds()
