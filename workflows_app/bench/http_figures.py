"""The full benchmark's HTTP figures: history, admin, API and catalogue through gunicorn.

Every request goes over real HTTP to the portal the harness started, as a signed-in superuser
(a session made in the scratch database) or with its API token. Each figure is a list of
request times in ms; a ratio is computed between two figures of the same run.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from html import unescape
from typing import Any
from urllib.parse import urlencode

import requests
from django.utils import timezone

from workflows_app.bench.context import BenchContext
from workflows_app.bench.harness import GUNICORN_WORKERS, run_python
from workflows_app.bench.report import Figure, FullReport
from workflows_app.fake_history import SOME_DEVICE, SOME_WORKFLOW_WORD

GROWTH_TARGET = 1.5
ADMIN_TARGET_100K = 5.0
ADMIN_TARGET_1M = 20.0
CATALOGUE_TARGET = 3.0
CATALOGUE_URL = "/workflows/?dependency=DEVICE&trigger=API"
# Constant pages from the same gunicorn workers: a static file WhiteNoise answers before any
# middleware, and the smallest Django view there is (through every middleware; it asks the
# database and the broker whether they answer).
STATIC_URL = "/static/portal/favicon.svg"
BARE_VIEW_URL = "/healthz"
ADMIN_URL = "/django-admin/workflows_app/run/"
OLDER = re.compile(r'<a href="([^"]+)" data-testid="runs-older"')
FILTERS = ("workflow", "requester", "device", "outcome", "date_range")
PAGES = ("first", "deep")


@dataclass(frozen=True)
class Sizes:
    """How big each part is: the full run's sizes, or a smoke run's tiny ones."""

    small_targets: int
    small_runs: int
    large_targets: int
    large_runs: int
    huge_runs: int  # added to the large history's runs for the admin figure at a million
    older_links: int
    workflows: int
    clients: int
    requests_per_client: int

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(300, 100, 3_000, 600, 1_000, 3, 60, 4, 3)
        return cls(1_000, 1_000, 1_000_000, 100_000, 899_000, 50, 2_000, 20, 10)


# Every figure key the HTTP part reports (the smoke test checks the table has them all).
FIGURE_KEYS = (
    *(f"history.{f}.{p}.{s}" for f in FILTERS for p in PAGES for s in ("small", "large")),
    *(f"admin.{page}.{size}" for size in ("large", "huge") for page in ("portal", "changelist")),
    "api.small",
    "api.large",
    "catalogue.static",
    "catalogue.constant",
    "catalogue.filtered",
)


@dataclass
class Seeded:
    """What a history seed left, for the filters to ask for values that exist."""

    helpdesk_username: str
    days: int
    runs: int
    targets: int
    seconds: float


def seed(ctx: BenchContext, *args: str) -> dict[str, Any]:
    """Run `python -m workflows_app.bench.seed <args>` against the scratch database."""
    out = run_python(ctx.env, "-m", "workflows_app.bench.seed", *args)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def signed_in(ctx: BenchContext) -> tuple[requests.Session, str]:
    """A session of a new superuser, and that person's API token."""
    people = seed(ctx, "people")
    session = requests.Session()
    session.cookies.set(people["session_cookie"], people["session"], domain="127.0.0.1")
    return session, people["api_token"]


def timed_get(session: requests.Session, url: str, **kwargs: Any) -> tuple[float, str]:
    """One GET: its time in ms and its body; an answer other than 200 is an error."""
    started = time.perf_counter()
    response = session.get(url, timeout=120, allow_redirects=False, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
    return elapsed, response.text


def time_of(session: requests.Session, url: str) -> float:
    """One GET's time in ms."""
    return timed_get(session, url)[0]


def samples(get: Callable[[], float], repeat: int) -> list[float]:
    """`repeat` timings after warming up every gunicorn worker.

    gunicorn's sync workers close each connection, so requests land on any worker: one
    warm-up would leave the others' first request (its caches, its connection) in the figure.
    """
    for _ in range(GUNICORN_WORKERS):
        get()
    return [get() for _ in range(repeat)]


def history_params(seeded: Seeded) -> dict[str, dict[str, str]]:
    """Each filter of the growth figure, with values that exist in this history."""
    today = timezone.localdate()
    return {
        "workflow": {"workflow": SOME_WORKFLOW_WORD, "since": ""},
        "requester": {"requester": seeded.helpdesk_username, "since": ""},
        "device": {"target": SOME_DEVICE.lower(), "since": ""},
        "outcome": {"outcome": "failure", "since": ""},
        "date_range": {
            "since": (today - timedelta(days=seeded.days - 1)).isoformat(),
            "until": (today - timedelta(days=seeded.days // 2)).isoformat(),
        },
    }


def deep_url(session: requests.Session, base: str, first: str, links: int) -> tuple[str, int]:
    """The page reached by following up to `links` "Older" links, and how many were followed.

    It stops before the last page: a short last page would be compared with a full one (a small
    history has fewer than `links` pages under some filters), so every deep page timed is full.
    """
    url, followed = first, 0
    _, body = timed_get(session, url)
    while followed < links and (found := OLDER.search(body)):
        older = base + unescape(found.group(1))
        _, older_body = timed_get(session, older)
        if not OLDER.search(older_body):
            break  # `older` is the last page: maybe short
        url, body, followed = older, older_body, followed + 1
    return url, followed


def measure_history(
    ctx: BenchContext,
    report: FullReport,
    session: requests.Session,
    seeded: Seeded,
    size: str,
    *,
    links: int,
    repeat: int,
) -> None:
    """The growth figures at one size: each filter's first page and deep page."""
    base = ctx.portal_url
    for name, params in history_params(seeded).items():
        first = f"{base}/runs/?{urlencode(params)}"
        deep, followed = deep_url(session, base, first, links)
        for page, url in (("first", first), ("deep", deep)):
            label = "first page" if page == "first" else f"after {followed} Older links"
            report.figures.append(
                Figure(
                    key=f"history.{name}.{page}.{size}",
                    name=f"history {name} {page} ({size})",
                    workload=f"/runs/ {name}, {label}, {seeded.targets:,} targets",
                    samples=samples(partial(time_of, session, url), repeat),
                )
            )


def growth_ratios(report: FullReport, *, quick: bool) -> None:
    """large/small for every history figure, on the large one."""
    by_key = {f.key: f for f in report.figures}
    for name in FILTERS:
        for page in PAGES:
            small = by_key[f"history.{name}.{page}.small"]
            large = by_key[f"history.{name}.{page}.large"]
            _ratio(large, small, target=GROWTH_TARGET, quick=quick, at_most=True)


def _ratio(figure: Figure, other: Figure, *, target: float, quick: bool, at_most: bool) -> None:
    """figure/other on `figure`, and whether it meets `target` (None on a quick run)."""
    if figure.median is None or not other.median:
        return
    figure.ratio = figure.median / other.median
    figure.ratio_of = other.key
    figure.target = f"{'<=' if at_most else '>='} {target:g}"
    if not quick:
        figure.met = figure.ratio <= target if at_most else figure.ratio >= target


def measure_admin(
    ctx: BenchContext,
    report: FullReport,
    session: requests.Session,
    *,
    size: str,
    runs: int,
    target: float,
) -> None:
    """The same listing (all runs, newest first) through the portal and the admin changelist."""
    portal = f"{ctx.portal_url}/runs/?since="
    admin = f"{ctx.portal_url}{ADMIN_URL}"
    portal_figure = Figure(
        key=f"admin.portal.{size}",
        name=f"history vs admin: portal ({size})",
        workload=f"/runs/?since= first page, {runs:,} runs",
        samples=samples(partial(time_of, session, portal), ctx.repeat),
    )
    admin_figure = Figure(
        key=f"admin.changelist.{size}",
        name=f"history vs admin: admin ({size})",
        workload=f"{ADMIN_URL} first page, {runs:,} runs",
        samples=samples(partial(time_of, session, admin), ctx.repeat),
    )
    # How many times faster the portal is: admin/portal, held on the admin's line.
    _ratio(admin_figure, portal_figure, target=target, quick=ctx.quick, at_most=False)
    report.figures += [portal_figure, admin_figure]


def measure_api(
    ctx: BenchContext, report: FullReport, token: str, seeded: Seeded, size: str, repeat: int
) -> None:
    """GET /api/v1/runs with each history filter in turn: every request is a sample."""
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    urls = [f"{ctx.portal_url}/api/v1/runs?{urlencode(p)}" for p in history_params(seeded).values()]
    for url in urls * GUNICORN_WORKERS:
        timed_get(api, url)
    report.figures.append(
        Figure(
            key=f"api.{size}",
            name=f"API listing ({size})",
            workload=f"GET /api/v1/runs, {len(urls)} filters, {seeded.targets:,} targets",
            samples=[timed_get(api, url)[0] for _ in range(repeat) for url in urls],
        )
    )
    if size == "large":
        by_key = {f.key: f for f in report.figures}
        _ratio(
            by_key["api.large"],
            by_key["api.small"],
            target=GROWTH_TARGET,
            quick=ctx.quick,
            at_most=True,
        )


def concurrent_times(
    cookies: requests.cookies.RequestsCookieJar, url: str, clients: int, each: int
) -> list[float]:
    """`clients` threads, each with its own connection, GETting `url` `each` times at once."""
    results: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client() -> None:
        own = requests.Session()
        own.cookies.update(cookies)
        try:
            start.wait()
            mine = [timed_get(own, url)[0] for _ in range(each)]
        except BaseException as exc:  # reported after the join, in the main thread
            errors.append(exc)
            return
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"A catalogue client failed: {errors[0]}")
    return results


def simulator_requests(ctx: BenchContext) -> int:
    """How many API requests the simulator has recorded (token requests included)."""
    response = requests.get(
        f"{ctx.simulator_url}/_simulator/state",
        headers={"X-Simulator-Token": ctx.simulator_token},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["counts"]["requests"])


def measure_catalogue(
    ctx: BenchContext, report: FullReport, session: requests.Session, sizes: Sizes
) -> None:
    """The filtered catalogue under concurrent clients vs a constant page, and Nexthink calls."""
    seed(ctx, "catalogue", "--workflows", str(sizes.workflows))
    calls_before = simulator_requests(ctx)
    figures: dict[str, Figure] = {}
    for key, name, path, what in (
        ("static", "catalogue: static file", STATIC_URL, "WhiteNoise, before Django's middleware"),
        ("constant", "catalogue: bare view", BARE_VIEW_URL, "a small constant JSON view"),
        ("filtered", "catalogue: filtered", CATALOGUE_URL, f"{sizes.workflows:,} workflows"),
    ):
        url = ctx.portal_url + path
        for _ in range(GUNICORN_WORKERS):
            timed_get(session, url)
        figures[key] = Figure(
            key=f"catalogue.{key}",
            name=name,
            workload=f"{path} ({what}), {sizes.clients} concurrent clients",
            samples=concurrent_times(
                session.cookies, url, sizes.clients, sizes.requests_per_client
            ),
        )
    calls = simulator_requests(ctx) - calls_before
    static, constant, filtered = figures["static"], figures["constant"], figures["filtered"]
    _ratio(filtered, constant, target=CATALOGUE_TARGET, quick=ctx.quick, at_most=True)
    if filtered.met is not None:
        filtered.met = filtered.met and calls == 0
    against_static = (filtered.median or 0) / (static.median or 1)
    filtered.note = (
        f"{calls} call(s) to Nexthink during the catalogue figures (target: 0); "
        f"{against_static:.2f}x the static file"
    )
    report.figures += [static, constant, filtered]


def measure_http(ctx: BenchContext, report: FullReport) -> None:
    """Every HTTP figure: seeds the small history, measures, grows it, measures again."""
    sizes = Sizes.of(ctx.quick)
    session, token = signed_in(ctx)
    runs = 0
    if ctx.wants("history"):
        runs = measure_histories(ctx, report, session, token, sizes)
        measure_admin(ctx, report, session, size="large", runs=runs, target=ADMIN_TARGET_100K)
    if ctx.wants("catalogue"):
        measure_catalogue(ctx, report, session, sizes)
    if ctx.wants("history"):
        # Last, as the slowest seed: enough one-target runs to pass a million in all.
        huge = str(sizes.huge_runs)
        made = seed(ctx, "history", "--targets", huge, "--runs", huge)
        report.notes.append(
            f"one-target runs for the admin figure: {made['runs']:,} seeded in {made['seconds']} s"
        )
        runs += made["runs"]
        measure_admin(ctx, report, session, size="huge", runs=runs, target=ADMIN_TARGET_1M)


def measure_histories(
    ctx: BenchContext, report: FullReport, session: requests.Session, token: str, sizes: Sizes
) -> int:
    """The growth and API figures at the small and the large history; the runs seeded."""
    for size, targets, runs in (
        ("small", sizes.small_targets, sizes.small_runs),
        ("large", sizes.large_targets, sizes.large_runs),
    ):
        made = seed(ctx, "history", "--targets", str(targets), "--runs", str(runs))
        seeded = Seeded(
            helpdesk_username=made["helpdesk_username"],
            days=made["days"],
            runs=made["runs"],
            targets=made["targets"],
            seconds=made["seconds"],
        )
        report.notes.append(
            f"{size} history: {seeded.runs:,} runs, {seeded.targets:,} targets seeded "
            f"in {seeded.seconds:.1f} s (INSERT … SELECT over generate_series)"
        )
        measure_history(
            ctx, report, session, seeded, size, links=sizes.older_links, repeat=ctx.repeat
        )
        measure_api(ctx, report, token, seeded, size, ctx.repeat)
    growth_ratios(report, quick=ctx.quick)
    return sizes.small_runs + sizes.large_runs
