"""CSV downloads: streamed one line at a time, safe to open in a spreadsheet.

The audit log's export and the history's exports all go through `csv_download`: a UTF-8 byte
order mark (so spreadsheets read the file as UTF-8), a header, then one line per row, never the
whole file in memory. A cell a spreadsheet would run as a formula is written as text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header

# A spreadsheet runs a cell starting with one of these as a formula: such a cell is written
# with a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The value as a cell no spreadsheet will run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The CSV text, one line at a time: the byte order mark and the header first."""
    line = _Line()
    writer = csv.writer(line)
    yield "\ufeff"
    writer.writerow(header)
    yield line.take()
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        yield line.take()


def csv_download(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, name: str, slug: str = ""
) -> StreamingHttpResponse:
    """A streamed CSV attachment named `<name>[-<slug>]-<today>.csv`."""
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    filename = f"{name}{'-' + slug if slug else ''}-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    response["Cache-Control"] = "no-store"
    return response


def export_refused(problems: Iterable[str]) -> HttpResponse:
    """The 400 of an export asked with filters it cannot use: a file exported without the
    filter someone meant would be silently wrong."""
    return HttpResponse(
        "Nothing was exported: " + " ".join(problems) + " Correct the filters and try again.",
        status=400,
        content_type="text/plain; charset=utf-8",
    )


class _Line:
    """A file-like object keeping what csv.writer writes until it is taken."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def take(self) -> str:
        text, self.text = self.text, ""
        return text
