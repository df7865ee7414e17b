"""Build the Nexthink clients from Django settings: the cloud one (its token in the shared Django
cache) and the classic one (remote actions)."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from pydantic import SecretStr

from workflows_app.nexthink.classic import ClassicClient, ClassicConfig
from workflows_app.nexthink.client import ClientConfig, NexthinkClient


class DjangoTokenCache:
    """The client's TokenCache on the Django cache (Redis in production), shared by processes."""

    def get(self, key: str) -> str | None:
        value = cache.get(key)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        cache.set(key, value, timeout=max(1, int(ttl_seconds)))

    def add(self, key: str, value: str, ttl_seconds: float) -> bool:
        return bool(cache.add(key, value, timeout=max(1, int(ttl_seconds))))

    def delete(self, key: str) -> None:
        cache.delete(key)


def _required(name: str, value: str | None) -> str:
    """A setting the client cannot work without; unset means the portal is misconfigured."""
    if value is None:
        raise ImproperlyConfigured(
            f"{name} is not set, so the portal cannot reach Nexthink; set it in the environment "
            '(see README "Configuration").'
        )
    return value


def client_config() -> ClientConfig:
    """The client's configuration as the settings give it."""
    return ClientConfig(
        api_url=_required("NEXTHINK_API_URL", settings.NEXTHINK_API_URL),
        token_url=_required("NEXTHINK_TOKEN_URL", settings.NEXTHINK_TOKEN_URL),
        client_id=_required("NEXTHINK_CLIENT_ID", settings.NEXTHINK_CLIENT_ID),
        client_secret=SecretStr(
            _required("NEXTHINK_CLIENT_SECRET", settings.NEXTHINK_CLIENT_SECRET)
        ),
        source=_required("NEXTHINK_SOURCE", settings.NEXTHINK_SOURCE),
        connect_timeout=settings.NEXTHINK_CONNECT_TIMEOUT,
        read_timeout=settings.NEXTHINK_READ_TIMEOUT,
    )


def get_client() -> NexthinkClient:
    """A client for the configured tenant (tests point the settings at the simulator)."""
    return NexthinkClient(client_config(), token_cache=DjangoTokenCache())


def classic_config() -> ClassicConfig:
    """The classic web interface's configuration as the settings give it."""
    return ClassicConfig(
        url=_required("NEXTHINK_CLASSIC_URL", settings.NEXTHINK_CLASSIC_URL),
        user=_required("NEXTHINK_CLASSIC_USER", settings.NEXTHINK_CLASSIC_USER),
        password=SecretStr(
            _required("NEXTHINK_CLASSIC_PASSWORD", settings.NEXTHINK_CLASSIC_PASSWORD)
        ),
        connect_timeout=settings.NEXTHINK_CONNECT_TIMEOUT,
        read_margin=settings.NEXTHINK_CLASSIC_READ_MARGIN,
        timeout_seconds=settings.NEXTHINK_CLASSIC_TIMEOUT_SECONDS,
        engines=tuple(settings.NEXTHINK_CLASSIC_ENGINES),
    )


def get_classic_client() -> ClassicClient:
    """A client of the configured classic web interface (tests point it at the simulator)."""
    return ClassicClient(classic_config())
