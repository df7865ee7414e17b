"""The NQL export API: start an export, poll its status, download the CSV at a pre-signed URL.

`POST /api/v1/nql/export` answers an export id; `GET /api/v1/nql/status/{exportId}` moves
SUBMITTED -> IN_PROGRESS -> COMPLETED (or ERROR) over `export_seconds`; the completed status
carries `resultsFileUrl`, a link on this server signed like an S3 pre-signed URL. The file is
every row of the query (no 1,000-row limit), taken when the export completes. The download needs
no bearer token and refuses one, as S3 does; a wrong or expired signature is a 403.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from .faults import Faults
from .inventory import Inventory
from .queries import ColumnShape, requested_query, table, to_csv
from .replies import Incoming, Reply, error_reply, json_reply
from .state import SimState

EXPORTS_PREFIX = "/_exports/"
SUBMITTED, IN_PROGRESS, COMPLETED, ERROR = "SUBMITTED", "IN_PROGRESS", "COMPLETED", "ERROR"
COMPRESSIONS = ("NONE", "GZIP")  # ZSTD is valid upstream; the simulator cannot write it
_FILE_PATH = re.compile(r"^/_exports/(?P<id>[0-9a-f-]{36})\.csv(?P<gz>\.gz)?$")
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_ERROR_DESCRIPTION = "Simulated export failure: the query took longer than the export time limit."

Produce = Callable[[], tuple[list[str], list[dict[str, Any]]]]


@dataclass
class SimExport:
    """One export: what it runs, when it was asked for, and its file once completed."""

    export_id: str
    query_id: str
    parameters: dict[str, str]
    compression: str
    created_at: float
    fails: bool
    produce: Produce
    status: str = SUBMITTED
    content: bytes | None = None
    rows: int = 0
    error_description: str | None = None

    @property
    def file_name(self) -> str:
        """The name of its results file."""
        return f"{self.export_id}.csv" + (".gz" if self.compression == "GZIP" else "")

    def summary(self) -> dict[str, Any]:
        """As GET /_simulator/state shows it."""
        return {
            "export_id": self.export_id,
            "query_id": self.query_id,
            "parameters": self.parameters,
            "status": self.status,
            "rows": self.rows,
        }


class ExportStore:
    """The tenant's exports and the key that signs their download links."""

    def __init__(
        self,
        export_seconds: float = 1.0,
        url_seconds: float = 900,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.export_seconds = export_seconds
        self.url_seconds = url_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._key = secrets.token_bytes(32)
        self.exports: dict[str, SimExport] = {}

    def reset(self) -> None:
        """Forget every export."""
        with self.lock:
            self.exports = {}

    def create(
        self,
        *,
        query_id: str,
        parameters: dict[str, str],
        compression: str,
        fails: bool,
        produce: Produce,
    ) -> SimExport:
        """Accept an export; it completes (or fails) export_seconds later."""
        export = SimExport(
            export_id=str(uuid.uuid4()),
            query_id=query_id,
            parameters=parameters,
            compression=compression,
            created_at=self._clock(),
            fails=fails,
            produce=produce,
        )
        with self.lock:
            self.exports[export.export_id] = export
        return export

    def _move(self, export: SimExport, now: float) -> None:
        if export.status in (COMPLETED, ERROR):
            return
        elapsed = now - export.created_at
        if elapsed < self.export_seconds / 2:
            return
        if elapsed < self.export_seconds:
            export.status = IN_PROGRESS
            return
        if export.fails:
            export.status, export.error_description = ERROR, _ERROR_DESCRIPTION
            return
        headers, rows = export.produce()  # the snapshot: rows as they are when it completes
        content = to_csv(headers, rows)
        export.content = gzip.compress(content) if export.compression == "GZIP" else content
        export.rows = len(rows)
        export.status = COMPLETED

    def get(self, export_id: str) -> SimExport | None:
        """The export, moved on to where its time has come; None when unknown."""
        with self.lock:
            export = self.exports.get(export_id.lower())
            if export is not None:
                self._move(export, self._clock())
            return export

    def complete_all(self) -> None:
        """End every export now (POST /_simulator/advance)."""
        with self.lock:
            for export in self.exports.values():
                self._move(export, float("inf"))

    # --- pre-signed links -----------------------------------------------------------------
    def _signature(self, file_name: str, date: str, expires: str) -> str:
        message = f"GET\n{EXPORTS_PREFIX}{file_name}\n{date}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def signed_path(self, export: SimExport) -> str:
        """The path and query of a fresh download link, valid url_seconds from now."""
        date = datetime.fromtimestamp(self._wall_clock(), UTC).strftime(_DATE_FORMAT)
        expires = str(int(self.url_seconds))
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(export.file_name, date, expires),
        }
        return f"{EXPORTS_PREFIX}{export.file_name}?{urlencode(query)}"

    def link_problem(self, file_name: str, query: dict[str, list[str]]) -> Reply | None:
        """Why a download link is refused (S3's 403s), or None when it is valid now."""
        date = _first(query, "X-Amz-Date")
        expires = _first(query, "X-Amz-Expires")
        signature = _first(query, "X-Amz-Signature")
        if not (date and expires and signature):
            return s3_error(
                403,
                "AccessDenied",
                "Query-string authentication requires the X-Amz-Date, X-Amz-Expires and "
                "X-Amz-Signature parameters.",
            )
        expected = self._signature(file_name, date, expires)
        if not hmac.compare_digest(expected, signature):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            issued = datetime.strptime(date, _DATE_FORMAT).replace(tzinfo=UTC).timestamp()
            lifetime = int(expires)
        except ValueError:
            return s3_error(403, "AccessDenied", "X-Amz-Date or X-Amz-Expires is malformed.")
        if self._wall_clock() >= issued + lifetime:
            return s3_error(403, "AccessDenied", "Request has expired")
        return None


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def s3_error(status: int, code: str, message: str) -> Reply:
    """An error as S3 words it: an XML document with a Code and a Message."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Reply(status, body.encode(), "application/xml")


def start(
    request: Incoming,
    *,
    inventory: Inventory,
    state: SimState,
    exports: ExportStore,
    faults: Faults,
    column_shape: ColumnShape,
) -> Reply:
    """POST /api/v1/nql/export {queryId, parameters, compression?}: answers {"exportId"}."""
    found = requested_query(request.body)
    if isinstance(found, Reply):
        return found
    query, value = found
    compression = request.body.get("compression") or "NONE"
    if compression not in COMPRESSIONS:
        return error_reply(
            400,
            "UNSUPPORTED_COMPRESSION",
            f"The simulator writes exports with compression {' or '.join(COMPRESSIONS)}.",
        )

    def produce() -> tuple[list[str], list[dict[str, Any]]]:
        return table(query, value, inventory=inventory, state=state, shape=column_shape)

    export = exports.create(
        query_id=query.query_id,
        parameters=dict(request.body.get("parameters") or {}),
        compression=compression,
        fails=faults.take_export_error(request.path),
        produce=produce,
    )
    return json_reply(200, {"exportId": export.export_id})


def status(request: Incoming, *, exports: ExportStore) -> Reply:
    """GET /api/v1/nql/status/{exportId}: the status, with a fresh download link once done."""
    export_id = request.path_params["exportId"]
    export = exports.get(export_id)
    if export is None:
        return error_reply(404, "EXPORT_NOT_FOUND", f"No export with id {export_id}.")
    answer: dict[str, Any] = {"status": export.status}
    if export.status == COMPLETED:
        # Where the caller reached this server (a container name in compose), not where it bound.
        answer["resultsFileUrl"] = request.origin + exports.signed_path(export)
    elif export.status == ERROR:
        answer["errorDescription"] = export.error_description
    return json_reply(200, answer)


def download(request: Incoming, *, exports: ExportStore) -> Reply:
    """GET /_exports/{exportId}.csv[.gz]?X-Amz-...: the results file, for a valid link only."""
    if request.method != "GET":
        reply = s3_error(405, "MethodNotAllowed", "The specified method is not allowed.")
        reply.headers["Allow"] = "GET"
        return reply
    if request.header("Authorization") is not None:
        return s3_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
        )
    match = _FILE_PATH.match(request.path)
    file_name = request.path[len(EXPORTS_PREFIX) :]
    problem = exports.link_problem(file_name, request.query)
    if problem is not None:
        return problem
    export = exports.get(match["id"]) if match else None
    if export is None or export.content is None or export.file_name != file_name:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    content_type = "application/gzip" if export.compression == "GZIP" else "text/csv"
    return Reply(200, export.content, content_type)
