"""Reading what an NQL export's pre-signed link serves: its CSV file, or S3's error.

Also keeps the link's signature (a credential for 15 minutes) out of messages and logs.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import zlib
from urllib.parse import urlsplit, urlunsplit

import requests

from .errors import InvalidResponse

# A pre-signed link's signature is a credential: keep it out of urllib3's debug log of each
# request line. (The client's own messages never show a link's query string at all.)
_SIGNATURE = re.compile(r"(?i)\b((?:x-amz-|x-goog-)?signature|sig)=[^&\s\"']+")


class _RedactSignatures(logging.Filter):
    """Blank the signature of pre-signed URLs in the records of urllib3's connection pool."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SIGNATURE.sub(r"\1=[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


_POOL_LOGGER = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactSignatures) for f in _POOL_LOGGER.filters):
    _POOL_LOGGER.addFilter(_RedactSignatures())


def without_query(url: str) -> str:
    """A URL fit for logs and messages: its query string (a pre-signed signature) left out."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]  # and no user:password either
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]{0,500})</\1>")


def storage_error(response: requests.Response) -> tuple[str, str]:
    """The Code and Message of an S3-style XML error, a JSON {code, details}, else the text."""
    text = response.text[:4000]
    found = dict(_XML_FIELD.findall(text))
    if found:
        return found.get("Code", ""), found.get("Message", "")
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        details = data.get("details", data.get("message"))
        return str(data.get("code") or ""), "" if details is None else str(details)
    return "", " ".join(text.split())[:500]


def csv_rows(content: bytes) -> list[dict[str, str]]:
    """Rows of an export's CSV file keyed by its header row (UTF-8, BOM and gzip tolerated)."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error):
            raise InvalidResponse("The NQL export's file is a broken gzip file.") from None
    if content[:4] == b"\x28\xb5\x2f\xfd":
        raise InvalidResponse(
            "The NQL export's file is compressed with ZSTD, which the portal cannot read."
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidResponse("The NQL export's file is not UTF-8 text.") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        width = len(header)
        # zip in C: 10,000 rows of a dozen columns are read in a few milliseconds. A short
        # record is padded with "", values beyond the header are dropped (not strict).
        padding = [""] * width
        rows = [
            dict(zip(header, record if len(record) >= width else record + padding, strict=False))
            for record in reader
            if record
        ]
    except csv.Error as exc:
        raise InvalidResponse(f"The NQL export's file is not valid CSV ({exc}).") from None
    return rows
