"""Reading a pasted list or an uploaded file into targets, reporting every bad line at once."""

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from .classic import classify_classic
from .classify import TargetError, classify, normalise
from .model import (
    MAX_ERRORS,
    MAX_TARGETS_PER_RUN,
    LineError,
    ParsedTargets,
    Target,
    TargetKind,
    too_many_targets,
)

# CSV column names (lower-cased, '-' and ' ' read as '_'); None means "recognise each value".
COLUMNS: dict[str, TargetKind | None] = {
    "target": None,
    "device_name": TargetKind.DEVICE_NAME,
    "name": TargetKind.DEVICE_NAME,
    "collector_uid": TargetKind.DEVICE_COLLECTOR,
    "collector": TargetKind.DEVICE_COLLECTOR,
    "device_uid": TargetKind.DEVICE_UID,
    "sid": TargetKind.USER_SID,
    "upn": TargetKind.USER_UPN,
    "user_uid": TargetKind.USER_UID,
}
_ACCEPTED_COLUMNS = ", ".join(COLUMNS)
_DELIMITERS = (",", ";", "\t")
# Invisible characters that ride along when copying from chat, mail or web pages.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_BOM = b"\xef\xbb\xbf"


class _Collector:
    """Accumulates targets, duplicates and errors while lines are read."""

    def __init__(self, *, classic: bool = False) -> None:
        # Classic: every value must be a classic device UID (a remote action's targets).
        self.classic = classic
        self.targets: list[Target] = []
        self.seen: set[tuple[TargetKind, str]] = set()
        self.errors: list[LineError] = []
        self.errors_truncated = 0
        self.duplicates = 0

    def take(self, line: int, text: str, kind: TargetKind | None = None) -> None:
        """Classify one stripped value (as `kind` when the column says so) and keep it."""
        try:
            if self.classic:
                if kind not in (None, TargetKind.DEVICE_UID):
                    raise TargetError(
                        "this column cannot be used for a remote action: give classic device "
                        "UIDs in a target or device_uid column"
                    )
                kind, value = classify_classic(text)
            elif kind is None:
                kind, value = classify(text)
            else:
                value = normalise(kind, text)
        except TargetError as exc:
            self.error(line, text, exc.reason)
            return
        target = Target(kind, value, line)
        key = target.key
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(key)
            self.targets.append(target)

    def error(self, line: int | None, text: str, reason: str) -> None:
        """Record an error, or only count it once the list is long enough."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(LineError(line, text, reason))
        else:
            self.errors_truncated += 1

    def result(self, total_lines: int) -> ParsedTargets:
        """Finish: add the whole-input errors (first, so they are seen) and build the result."""
        general: list[LineError] = []
        count = len(self.targets)
        if count == 0 and not self.errors:
            general.append(LineError(None, "", "No targets: give one device or user per line."))
        if count > MAX_TARGETS_PER_RUN:
            general.append(LineError(None, "", too_many_targets(count)))
        errors = general + self.errors
        truncated = self.errors_truncated + max(0, len(errors) - MAX_ERRORS)
        return ParsedTargets(
            targets=self.targets,
            errors=errors[:MAX_ERRORS],
            duplicates=self.duplicates,
            total_lines=total_lines,
            errors_truncated=truncated,
        )


def parse_text(text: str, *, classic: bool = False) -> ParsedTargets:
    """Read pasted text: one target per line, `#` comments and blank lines skipped.

    `classic`: the targets of a remote action, classic device UIDs only (every parser).
    """
    lines = _split_lines(text)
    collector = _Collector(classic=classic)
    _take_lines(collector, enumerate(lines, start=1), kind=None)
    return collector.result(total_lines=len(lines))


def parse_items(items: Sequence[str], *, classic: bool = False) -> ParsedTargets:
    """Read a list of targets, one per item (the API's): errors carry the item's number (1-based).

    The same values as a pasted line, except that an item is never a comment or blank line: an
    empty item, or one holding a line break, is an error of its own.
    """
    collector = _Collector(classic=classic)
    for number, raw in enumerate(items, start=1):
        text = _clean(raw)
        if not text:
            collector.error(number, "", "empty: give one device or user per item")
        elif "\n" in raw or "\r" in raw:
            collector.error(number, text, "one target per item: no line breaks")
        else:
            collector.take(number, text)
    return collector.result(total_lines=len(items))


def parse_csv(data: bytes, *, classic: bool = False) -> ParsedTargets:
    """Read an uploaded CSV file: one column of any targets, or named columns of given kinds."""
    text, problem = _decode(data, "CSV")
    if problem is not None:
        return _failed(problem, data)
    lines = _split_lines(text)
    collector = _Collector(classic=classic)
    first_index = next(
        (i for i, line in enumerate(lines) if (c := _clean(line)) and not c.startswith("#")), None
    )
    if first_index is not None:
        first = _clean(lines[first_index])
        delimiter = max(_DELIMITERS, key=first.count)
        if first.count(delimiter) == 0:
            # One column: like pasted text, except that a first line naming the column is a header.
            column = _column_name(first)
            start = first_index + 1 if column in COLUMNS else first_index
            numbered = enumerate(lines[start:], start=start + 1)
            _take_lines(collector, numbered, kind=COLUMNS.get(column))
        else:
            _take_rows(collector, lines[first_index:], delimiter, first_line=first_index + 1)
    return collector.result(total_lines=len(lines))


def parse_upload(data: bytes, filename: str, *, classic: bool = False) -> ParsedTargets:
    """Read an uploaded file by its extension: .csv/.tsv as CSV, .txt (or none) as pasted text."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return parse_csv(data, classic=classic)
    if suffix in (".txt", ""):
        text, problem = _decode(data, "text")
        if problem is not None:
            return _failed(problem, data)
        return parse_text(text, classic=classic)
    if suffix in (".xlsx", ".xls", ".xlsm", ".ods"):
        reason = "Spreadsheets cannot be read directly: save the sheet as CSV UTF-8, upload that."
    else:
        reason = f"Files of type '{suffix}' cannot be read: upload a .csv or .txt file."
    return _failed(LineError(None, filename, reason), data)


def _take_lines(
    collector: _Collector, lines: Iterable[tuple[int, str]], kind: TargetKind | None
) -> None:
    """Take each numbered line that is not blank or a comment."""
    for number, raw in lines:
        line = _clean(raw)
        if line and not line.startswith("#"):
            collector.take(number, line, kind)


def _take_rows(collector: _Collector, lines: list[str], delimiter: str, first_line: int) -> None:
    """Take the cells of a CSV whose first row names the columns, each as its column's kind."""
    # Only lines from the header on reach the reader, so that a stray quote in a comment above
    # it cannot swallow the header. Lines are already split, so "\n" is the only line break.
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    kinds: list[TargetKind | None] | None = None
    named: list[bool] = []
    previous_end = 0
    try:
        for row in reader:
            line = first_line + previous_end
            previous_end = reader.line_num
            cells = [_clean(cell) for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if kinds is None:
                names = [_column_name(cell) for cell in cells]
                unknown = [
                    cell for cell, n in zip(cells, names, strict=True) if n and n not in COLUMNS
                ]
                if unknown:
                    collector.error(line, delimiter.join(row), _header_problem(unknown, names))
                    return
                kinds = [COLUMNS.get(n) for n in names]
                named = [bool(n) for n in names]
                continue
            if len(cells) > len(kinds) and any(cells[len(kinds) :]):
                collector.error(
                    line,
                    delimiter.join(row),
                    f"has {len(cells)} values but the first row names {len(kinds)} columns",
                )
                continue
            for index, cell in enumerate(cells):
                if not cell:
                    continue
                if named[index]:
                    collector.take(line, cell, kinds[index])
                else:
                    collector.error(line, cell, f"value in column {index + 1}, which has no name")
    except csv.Error as exc:
        line = first_line + reader.line_num - 1
        collector.error(line, "", f"The file could not be read as CSV: {exc}")


def _header_problem(unknown: list[str], names: list[str]) -> str:
    """Explain a header row with unknown column names (or a missing header row)."""
    listed = ", ".join(f"'{cell}'" for cell in unknown)
    if not any(n in COLUMNS for n in names):
        return (
            f"A file with several columns needs a first row naming them ({_ACCEPTED_COLUMNS}); "
            f"this one starts with {listed}."
        )
    return f"Unknown column(s) {listed}; the accepted column names are {_ACCEPTED_COLUMNS}."


def _decode(data: bytes, label: str) -> tuple[str, LineError | None]:
    """Decode UTF-8 (with or without BOM), or say where the first non-UTF-8 byte is."""
    if data.startswith(b"PK\x03\x04"):
        return "", LineError(
            None,
            "",
            "The file is a spreadsheet or zip archive, not text: "
            f"save it as UTF-8 {label} and upload that.",
        )
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        position = exc.start + (len(_BOM) if data.startswith(_BOM) else 0)
        line_start = data.rfind(b"\n", 0, position) + 1
        line_end = data.find(b"\n", position)
        snippet = data[line_start : line_end if line_end >= 0 else len(data)]
        return "", LineError(
            _line_of(data, position),
            snippet.decode("utf-8", errors="replace").strip(),
            f"The file is not UTF-8 text (byte 0x{data[position]:02X} at position {position}); "
            f"save it as UTF-8 {label}",
        )


def _failed(problem: LineError, data: bytes) -> ParsedTargets:
    """A result holding only an error about the file as a whole."""
    # bytes.splitlines() splits on \n, \r\n and \r only, as _split_lines does.
    total = len(data.splitlines())
    return ParsedTargets(targets=[], errors=[problem], duplicates=0, total_lines=total)


def _line_of(data: bytes, position: int) -> int:
    """The 1-based line number, as _split_lines counts lines, of a byte offset."""
    before = data[:position]
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1


def _split_lines(text: str) -> list[str]:
    """Split on \\n, \\r\\n or \\r as editors do; a final line break does not start a new line."""
    if not text:
        return []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _clean(raw: str) -> str:
    """Strip whitespace and the invisible characters that copying from chat or web pages adds."""
    return raw.strip().strip(_INVISIBLE).strip()


def _column_name(cell: str) -> str:
    """Normalise a header cell for lookup in COLUMNS."""
    return _clean(cell).strip('"').strip().lower().replace("-", "_").replace(" ", "_")
