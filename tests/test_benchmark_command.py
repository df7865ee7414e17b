"""`manage.py benchmark`: figures printed, nothing left behind, real portals left alone."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from workflows_app import benchmarks
from workflows_app.fake_history import HistoryShape, seed_history
from workflows_app.history_benchmark import older_link
from workflows_app.models import Batch, Run, Target, Workflow, WorkflowCuration
from workflows_app.selectors import history as history_selectors
from workflows_app.selectors import runs as run_selectors

pytestmark = pytest.mark.django_db


def benchmark(*args: str) -> str:
    out = io.StringIO()
    call_command("benchmark", *args, stdout=out)
    return out.getvalue()


def row_counts() -> tuple[int, ...]:
    models = (Run, Batch, Target, Workflow, get_user_model())
    return tuple(model.objects.count() for model in models)


def test_prints_every_figure_and_leaves_nothing_behind(
    enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    before = row_counts()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        out = benchmark("--targets", "30", "--repeat", "2")

    for step in (
        "parse_text, 30 pasted device lines",
        "create_run, 30 targets (COPY)",
        "fingerprint of 30 targets",
        "insert 30 target rows with COPY",
        "insert 30 target rows with bulk_create",
        "run page query: first 100 targets",
        "runs list query: first 50 runs",
        "create_run ms per 10,000 targets",
    ):
        assert step in out
    assert "median ms" in out and "min ms" in out and "max ms" in out
    assert row_counts() == before
    assert callbacks == [] and enqueued == []


def test_json_gives_each_figure_with_its_samples(enqueued: list[int]) -> None:
    report = json.loads(benchmark("--targets", "12", "--repeat", "3", "--json"))
    assert report["targets"] == 12 and report["database"]["vendor"] == "postgresql"
    figures = {f["key"]: f for f in report["figures"]}
    assert {"parse_text", "create_run", "insert_copy", "run_page", "runs_list"} <= set(figures)
    create = figures["create_run"]
    assert len(create["samples_ms"]) == 3 and create["min_ms"] <= create["median_ms"]
    assert create["median_ms"] <= create["max_ms"] and create["per_second"] > 0
    assert "create_run ms per 10,000 targets" in report["ratios"]


def test_a_database_with_runs_needs_force(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    from workflows_app.services.runs import create_run
    from workflows_app.targets import parse_text

    create_run(
        user=helpdesk,
        workflow=sim_workflow("#clear_teams_cache"),
        targets=parse_text("3fa85f64-5717-4562-b3fc-2c963f66afa6").targets,
        params={},
        reason="",
        source=Run.Source.HELPDESK,
    )
    with pytest.raises(CommandError, match="holds 1 run: .*--force"):
        benchmark("--targets", "5", "--repeat", "1")
    before = row_counts()
    assert "create_run, 5 targets" in benchmark("--targets", "5", "--repeat", "1", "--force")
    assert row_counts() == before


@pytest.mark.parametrize(
    "args",
    [
        ["--targets", "0"],
        ["--targets", "100001"],
        ["--repeat", "0"],
        ["--suite", "history", "--small", "0"],
        ["--suite", "history", "--large", "5000001"],
    ],
)
def test_sizes_out_of_range_are_refused(args: list[str]) -> None:
    with pytest.raises(CommandError, match="must be"):
        benchmark(*args)


def test_page_figures_time_the_selectors_the_pages_call(
    enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []

    def spy(name: str) -> Any:
        real = getattr(run_selectors, name, None) or getattr(history_selectors, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            called.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("history_page", "target_page"):
        monkeypatch.setattr(benchmarks, name, spy(name))

    benchmark("--targets", "5", "--repeat", "2")

    # One warm-up call and one per repeat, for each page.
    assert called.count("target_page") == 3 and called.count("history_page") == 3


# --- the history suite ------------------------------------------------------------------------

HISTORY_LABELS = (
    "admin: default page (last 7 days)",
    "admin: all time (since=)",
    "admin: all time, 2nd page (Older link)",
    "admin: workflow=outlook (partial)",
    "admin: requester=<a helpdesk user>",
    "admin: target=laptop-00042, all time",
    "admin: reason=<INC ticket>, all time",
    "admin: status=failed, 60 to 31 days ago",
    "admin: outcome=failure",
    "helpdesk: mine=1",
    "helpdesk: mine=1, all time",
    "admin: export.csv, all time, first 64 KB",
)
NUMBER = r"[\d,.]+"
SIZE_CELLS = rf"{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+\d+\s+\d+"


def history_rows() -> tuple[int, ...]:
    return (*row_counts(), Group.user_set.through.objects.count(), WorkflowCuration.objects.count())


def test_history_suite_prints_each_query_at_both_sizes_and_leaves_nothing_behind() -> None:
    before = history_rows()

    out = benchmark("--suite", "history", "--small", "150", "--large", "4000", "--repeat", "2")

    # Exactly the sizes asked for, counted back from the tables.
    assert "small: 150 targets in 120 runs" in out
    assert "large: 4,000 targets in 160 runs" in out
    for label in HISTORY_LABELS:
        line = next(line for line in out.splitlines() if line.startswith(label))
        # median, min, max, time in SQL, SQL statements and rows at each size, then the
        # large/small ratios of the medians and of the time in SQL.
        assert re.fullmatch(
            rf"{re.escape(label)}\s+{SIZE_CELLS}\s+{SIZE_CELLS}\s+{NUMBER}( !)?\s+{NUMBER}", line
        ), line
    assert "parse_text" not in out  # the run suite was not asked for
    assert history_rows() == before and Run.objects.count() == 0


def test_history_json_gives_every_query_at_both_sizes() -> None:
    report = json.loads(
        benchmark(
            "--suite", "history", "--small", "150", "--large", "600", "--repeat", "3", "--json"
        )
    )

    assert report["suite"] == "history" and report["target_ratio"] == 1.5
    assert report["sizes"]["small"]["targets"] == 150 and report["sizes"]["large"]["targets"] == 600
    queries = {q["key"]: q for q in report["queries"]}
    assert [q["label"] for q in report["queries"]] == list(HISTORY_LABELS)
    for query in queries.values():
        for size in ("small", "large"):
            measure = query[size]
            assert measure["status"] == 200 and measure["problem"] == "", (query["key"], size)
            assert len(measure["samples_ms"]) == 3
            assert measure["min_ms"] <= measure["median_ms"] <= measure["max_ms"]
            assert 0 < measure["db_median_ms"] < measure["median_ms"]
            # Session and user at least, then the page's own query.
            assert measure["sql"] >= 3
        expected = query["large"]["median_ms"] / query["small"]["median_ms"]
        assert query["ratio"] == pytest.approx(expected, rel=0.01)
        in_db = query["large"]["db_median_ms"] / query["small"]["db_median_ms"]
        assert query["db_ratio"] == pytest.approx(in_db, rel=0.01)
    # The second page is the one the first page's Older link leads to, and it has runs.
    for size in ("small", "large"):
        older = queries["older"][size]
        assert "before=" in older["url"] and older["rows"] > 0
        assert queries["export"][size]["url"].startswith("/runs/export.csv")
        assert queries["export"][size]["rows"] > 0
    assert queries["target"]["large"]["url"] == "/runs/?target=laptop-00042&since="
    assert queries["mine"]["large"]["url"] == "/runs/?mine=1"
    assert Run.objects.count() == 0


def test_history_suite_refuses_a_database_with_runs_unless_forced(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    from workflows_app.services.runs import create_run
    from workflows_app.targets import parse_text

    create_run(
        user=helpdesk,
        workflow=sim_workflow("#clear_teams_cache"),
        targets=parse_text("3fa85f64-5717-4562-b3fc-2c963f66afa6").targets,
        params={},
        reason="",
        source=Run.Source.HELPDESK,
    )
    args = ("--suite", "history", "--small", "60", "--large", "200", "--repeat", "1")
    with pytest.raises(CommandError, match="holds 1 run: .*--force"):
        benchmark(*args)
    before = history_rows()
    assert "admin: outcome=failure" in benchmark(*args, "--force")
    assert history_rows() == before


def test_suite_all_prints_both_suites() -> None:
    out = benchmark(
        "--suite", "all", "--targets", "5", "--small", "60", "--large", "120", "--repeat", "1"
    )
    assert "create_run, 5 targets (COPY)" in out and "History benchmark" in out


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            '<nav><a href="/runs/?since=&amp;before=42" data-testid="runs-older">Older</a></nav>',
            "/runs/?since=&before=42",
        ),
        (
            '<a data-testid="runs-older" class="x" href="/runs/?before=7">Older</a>',
            "/runs/?before=7",
        ),
        ('<a href="/runs/">Newest</a><a href="/runs/?before=7">Older</a>', None),
    ],
)
def test_older_link_is_read_from_the_page(page: str, expected: str | None) -> None:
    assert older_link(page) == expected


def test_fake_history_agrees_with_itself() -> None:
    history = seed_history(HistoryShape(targets=500, runs=40))

    runs = Run.objects.filter(pk__gte=history.first_run_id)
    assert history.runs_seeded == runs.count() == 40
    assert history.targets_seeded == Target.objects.filter(run__in=runs).count() == 500
    for run in runs:
        assert sum(run.outcome_counts.values()) == run.target_count
        assert run.batches.get().target_count == run.target_count
        succeeded = set(run.outcome_counts) == {"success"}
        assert (run.status == "succeeded") == succeeded, run.outcome_counts
    assert {r.source for r in runs} == {"self_service", "helpdesk", "cli"}
    assert runs.filter(reason__startswith="INC").exists()
    assert (
        history.ticket.startswith("INC") and runs.filter(reason__contains=history.ticket).exists()
    )
    helpdesk = get_user_model().objects.get(pk=history.helpdesk_id)
    assert helpdesk.username == history.helpdesk_username
    assert list(helpdesk.groups.values_list("name", flat=True)) == ["Helpdesk"]
    assert get_user_model().objects.get(pk=history.admin_id).is_superuser
