"""The part every Nexthink client shares: it owns a requests session and closes it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import requests


class SessionClient:
    """A client that owns a requests session: `close()` or the end of a `with` block closes it.

    Its repr names only where it calls, never a credential.
    """

    def __init__(self, session: requests.Session | None) -> None:
        self.session = session if session is not None else requests.Session()

    def _where(self) -> tuple[str, str]:
        """The config field and URL the repr shows."""
        raise NotImplementedError

    def __repr__(self) -> str:
        field, url = self._where()
        return f"{type(self).__name__}({field}={url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self.session.close()
