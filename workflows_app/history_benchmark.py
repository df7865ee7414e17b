"""Benchmark of the history pages: the same GETs at a small and a large history, side by side.

Each size is seeded (`fake_history`), measured and rolled back in its own transaction. Every
query is a GET of the real URL through Django's test Client, as an admin or as a helpdesk
person, so the figures hold the whole request: middleware, session, permission checks, the
selector, the template. One warm-up request counts the SQL statements (a page whose count
grows with the history has an N+1 or a COUNT); the repeats after it are timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.http.response import HttpResponseBase
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workflows_app.benchmarks import Figure, database_description
from workflows_app.fake_history import (
    SOME_DEVICE,
    SOME_WORKFLOW_WORD,
    TABLES,
    FakeHistory,
    HistoryShape,
    seed_history,
)

LIST_URL = "/runs/"
EXPORT_URL = "/runs/export.csv"
EXPORT_BYTES = 64 * 1024
TARGET_RATIO = 1.5
OLDER_LINK = "runs-older"  # the data-testid of the list's "Older" link
SIZES = ("small", "large")


@dataclass(frozen=True)
class HistoryQuery:
    """One thing people ask the history, as the URL parameters that ask it."""

    key: str
    label: str
    params: dict[str, str]
    as_helpdesk: bool = False
    # Time the page the first page's "Older" link leads to, instead of the first page.
    older: bool = False
    # Time the CSV export with these parameters, reading its first EXPORT_BYTES only.
    export: bool = False

    def url(self) -> str:
        base = EXPORT_URL if self.export else LIST_URL
        return f"{base}?{urlencode(self.params)}" if self.params else base


def history_queries(history: FakeHistory, today: date) -> list[HistoryQuery]:
    """The queries measured, with values that exist in this history."""
    all_time = {"since": ""}
    range_ = {"since": (today - timedelta(days=60)).isoformat()}
    range_["until"] = (today - timedelta(days=31)).isoformat()
    return [
        HistoryQuery("default", "admin: default page (last 7 days)", {}),
        HistoryQuery("all_time", "admin: all time (since=)", all_time),
        HistoryQuery("older", "admin: all time, 2nd page (Older link)", all_time, older=True),
        HistoryQuery(
            "workflow",
            f"admin: workflow={SOME_WORKFLOW_WORD} (partial)",
            {"workflow": SOME_WORKFLOW_WORD},
        ),
        HistoryQuery(
            "requester",
            "admin: requester=<a helpdesk user>",
            {"requester": history.helpdesk_username},
        ),
        HistoryQuery(
            "target",
            f"admin: target={SOME_DEVICE.lower()}, all time",
            {"target": SOME_DEVICE.lower(), **all_time},
        ),
        HistoryQuery(
            "reason", "admin: reason=<INC ticket>, all time", {"reason": history.ticket, **all_time}
        ),
        HistoryQuery(
            "status_range",
            "admin: status=failed, 60 to 31 days ago",
            {"status": "failed", **range_},
        ),
        HistoryQuery("outcome", "admin: outcome=failure", {"outcome": "failure"}),
        HistoryQuery("mine", "helpdesk: mine=1", {"mine": "1"}, as_helpdesk=True),
        HistoryQuery(
            "mine_all", "helpdesk: mine=1, all time", {"mine": "1", **all_time}, as_helpdesk=True
        ),
        HistoryQuery(
            "export",
            f"admin: export.csv, all time, first {EXPORT_BYTES // 1024} KB",
            all_time,
            export=True,
        ),
    ]


@dataclass
class Measure:
    """One query at one size: its timings, SQL statements, HTTP status and rows returned."""

    url: str
    figure: Figure | None = None
    # Time spent executing its SQL statements (a streamed export's later fetches not included).
    db_figure: Figure | None = None
    sql: int = 0
    status: int = 0
    rows: int = 0
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        timing = self.figure.as_dict() if self.figure else {}
        return {
            "url": self.url,
            **{k: timing[k] for k in ("median_ms", "min_ms", "max_ms", "samples_ms") if timing},
            "db_median_ms": round(self.db_figure.median_ms, 3) if self.db_figure else None,
            "sql": self.sql,
            "status": self.status,
            "rows": self.rows,
            "problem": self.problem,
        }


@dataclass
class Row:
    """One query at both sizes."""

    key: str
    label: str
    measures: dict[str, Measure] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Large median over small median, when both were measured."""
        return self._ratio(lambda m: m.figure)

    @property
    def db_ratio(self) -> float | None:
        """The same for the time in SQL alone: what the history's size can make grow."""
        return self._ratio(lambda m: m.db_figure)

    def _ratio(self, pick: Callable[[Measure], Figure | None]) -> float | None:
        small, large = (self.measures.get(size) for size in SIZES)
        if not (small and large):
            return None
        below, above = pick(small), pick(large)
        if below and above and below.median_ms:
            return above.median_ms / below.median_ms
        return None


@dataclass
class HistoryReport:
    """What the history suite measured."""

    repeat: int
    database: dict[str, str]
    sizes: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, key: str, label: str) -> Row:
        found = next((r for r in self.rows if r.key == key), None)
        if found is None:
            found = Row(key, label)
            self.rows.append(found)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": "history",
            "repeat": self.repeat,
            "database": self.database,
            "target_ratio": TARGET_RATIO,
            "sizes": self.sizes,
            "queries": [
                {
                    "key": r.key,
                    "label": r.label,
                    **{size: m.as_dict() for size, m in r.measures.items()},
                    "ratio": round(r.ratio, 3) if r.ratio is not None else None,
                    "db_ratio": round(r.db_ratio, 3) if r.db_ratio is not None else None,
                }
                for r in self.rows
            ],
            "notes": self.notes,
        }


def run_history_benchmark(*, small: int, large: int, repeat: int) -> HistoryReport:
    """Seed, measure and roll back each size in turn; the figures side by side."""
    if connection.vendor != "postgresql":
        raise RuntimeError("The history benchmark needs PostgreSQL (it seeds with bulk SQL).")
    report = HistoryReport(repeat=repeat, database=database_description())
    for size, targets in zip(SIZES, (small, large), strict=True):
        with transaction.atomic():
            history = seed_history(HistoryShape.for_targets(targets))
            report.sizes[size] = {
                "targets": history.targets_seeded,
                "runs": history.runs_seeded,
                "seed_seconds": round(history.seconds, 3),
            }
            _measure_size(report, size, history, repeat)
            transaction.set_rollback(True)
        _tidy_after_rollback(report)
    return report


def _measure_size(report: HistoryReport, size: str, history: FakeHistory, repeat: int) -> None:
    users = get_user_model().objects
    clients = {
        False: _client_for(users.get(pk=history.admin_id)),
        True: _client_for(users.get(pk=history.helpdesk_id)),
    }
    for query in history_queries(history, timezone.localdate()):
        client = clients[query.as_helpdesk]
        measure = Measure(url=query.url())
        if query.older:
            first = _get(client, measure.url)
            older = older_link(first.content.decode()) if first.status_code == 200 else None
            if older is None:
                measure.status = first.status_code
                measure.problem = "no Older link on the first page"
                report.row(query.key, query.label).measures[size] = measure
                continue
            measure.url = older
        read = partial_reader(client, measure.url, export=query.export)
        with CaptureQueriesContext(connection) as captured:
            measure.status, measure.rows = read()  # the warm-up
        measure.sql = len(captured.captured_queries)
        if measure.status == 200:
            total, in_db = timed_with_sql(read, repeat)
            measure.figure = Figure(query.key, query.label, total)
            measure.db_figure = Figure(query.key, query.label, in_db)
        else:
            measure.problem = f"HTTP {measure.status}"
        report.row(query.key, query.label).measures[size] = measure


class _SqlClock:
    """A database execute wrapper adding up the time its statements take."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def timed_with_sql(step: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Run `step` `repeat` times: the wall-clock seconds of each, and of its SQL statements."""
    total, in_db = [], []
    for _ in range(repeat):
        clock = _SqlClock()
        with connection.execute_wrapper(clock):
            started = time.perf_counter()
            step()
            total.append(time.perf_counter() - started)
        in_db.append(clock.seconds)
    return total, in_db


def partial_reader(client: Client, url: str, *, export: bool) -> Callable[[], tuple[int, int]]:
    """A GET of `url` answering (status, rows): runs on the page, or CSV lines in the part read."""

    def read() -> tuple[int, int]:
        response = _get(client, url)
        if response.status_code != 200:
            response.close()
            return response.status_code, 0
        if not export:
            return 200, response.content.decode().count("data-run=")
        body = _first_bytes(response, EXPORT_BYTES)
        lines = body.count(b"\n")
        return 200, max(0, lines - 1)  # less the header

    return read


def _first_bytes(response: HttpResponseBase, limit: int) -> bytes:
    """At least `limit` bytes of a (streamed) answer, or all of it if shorter; then close it."""
    if not response.streaming:
        return response.content[:limit]  # type: ignore[attr-defined]
    body = bytearray()
    for chunk in response.streaming_content:  # type: ignore[attr-defined]
        body += chunk
        if len(body) >= limit:
            break
    # Stop the stream (the view's cursor closes) through the test Client's wrapper around it,
    # which fires request_finished without Django's handler that closes old connections:
    # response.close() alone would fire it, and inside our transaction it closes the connection.
    # Django keeps the wrapper in `_iterator` only; a test reads a partial export to prove this.
    stream = getattr(response, "_iterator", None)
    if stream is None or not hasattr(stream, "close"):
        raise RuntimeError("Cannot stop a streamed answer read in part: Django changed.")
    stream.close()
    return bytes(body)


def _get(client: Client, url: str) -> Any:
    return client.get(url, secure=True)


def _client_for(user: Any) -> Client:
    client = Client(HTTP_HOST=request_host())
    client.force_login(user)
    return client


def request_host() -> str:
    """A host name this portal's ALLOWED_HOSTS accepts, for the test Client's requests."""
    for host in settings.ALLOWED_HOSTS:
        if host == "*":
            return "testserver"
        return host.lstrip(".") or "testserver"
    return "localhost"  # Django's own default when DEBUG is on and the list is empty


class _OlderLink(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("data-testid") == OLDER_LINK and self.href is None:
            self.href = found.get("href")


def older_link(page: str) -> str | None:
    """The href of the list's "Older" link (`data-testid="runs-older"`), entities decoded."""
    parser = _OlderLink()
    parser.feed(page)
    parser.close()
    return parser.href


def _tidy_after_rollback(report: HistoryReport) -> None:
    """Give the tables back their statistics (and space) from before the seeding, when we can.

    ANALYZE inside the rolled-back transaction left the planner's row estimates of the fake
    history behind. Outside a transaction, VACUUM ANALYZE puts them right; inside one (tests,
    a caller's atomic block) nothing can, and a note says so.
    """
    if connection.in_atomic_block:
        note = "Run inside a transaction: the tables' statistics still count the fake rows."
        if note not in report.notes:
            report.notes.append(note)
        return
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(TABLES)}")


def render_history_table(report: HistoryReport) -> str:
    """The report as a plain text table, the two sizes side by side."""
    db = report.database
    lines = [
        f"History benchmark: GET through Django's test Client, median, min and max of "
        f"{report.repeat} repeat(s) after one warm-up; times in ms",
        f"Database: {db['vendor']} {db['version']} ({db['name']}), DEBUG={db['debug']}",
    ]
    for size, shape in report.sizes.items():
        lines.append(
            f"{size}: {int(shape['targets']):,} targets in {int(shape['runs']):,} runs "
            f"(seeded and analysed in {shape['seed_seconds']:.1f} s)"
        )
    lines += [
        "Each size was written in a transaction that was rolled back. db = median ms in SQL "
        "statements; sql = statements in one request (session and user included); rows = runs "
        "on the page, or CSV rows read. A page showing more rows takes longer to render: compare "
        "sizes where the rows match, or by the db ratio.",
        "",
    ]
    width = max(len(r.label) for r in report.rows)
    cell = f"{'median':>7} {'min':>7} {'max':>7} {'db':>6} {'sql':>3} {'rows':>4}"
    head = "  ".join(f"{size:-^{len(cell)}}" for size in SIZES)
    lines.append(f"{'':<{width}}  {head}")
    lines.append(f"{'query':<{width}}  {cell}  {cell}  {'large/small':>11}  {'db l/s':>6}")
    over = False
    for row in report.rows:
        cells = [_cell(row.measures.get(size)) for size in SIZES]
        ratio = row.ratio
        mark = ""
        if ratio is not None and ratio > TARGET_RATIO:
            mark, over = " !", True
        shown = f"{ratio:>9.2f}{mark:2}" if ratio is not None else f"{'n/a':>11}"
        in_db = f"{row.db_ratio:>6.2f}" if row.db_ratio is not None else f"{'n/a':>6}"
        lines.append(f"{row.label:<{width}}  {'  '.join(cells)}  {shown}  {in_db}")
    lines.append("")
    if over:
        lines.append(f"! above the target ratio of {TARGET_RATIO} (large / small medians)")
    for row in report.rows:
        for size in SIZES:
            measure = row.measures.get(size)
            if measure and measure.problem:
                lines.append(f"Not measured: {row.label}, {size}: {measure.problem}")
    lines.append("URLs at the large size:")
    for row in report.rows:
        if measure := row.measures.get("large"):
            lines.append(f"  {row.key:<13} {measure.url}")
    lines += [f"Note: {note}" for note in report.notes]
    return "\n".join(lines)


def _cell(measure: Measure | None) -> str:
    if measure is None or measure.figure is None or measure.db_figure is None:
        sql = measure.sql if measure else "-"
        return f"{'-':>7} {'-':>7} {'-':>7} {'-':>6} {sql:>3} {'-':>4}"
    f = measure.figure
    return (
        f"{f.median_ms:>7.1f} {f.min_ms:>7.1f} {f.max_ms:>7.1f} "
        f"{measure.db_figure.median_ms:>6.1f} {measure.sql:>3} {measure.rows:>4}"
    )
