"""`manage.py benchmark`: figures printed, nothing left behind, real portals left alone."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from workflows_app import benchmarks
from workflows_app.models import Batch, Run, Target, Workflow
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


@pytest.mark.parametrize("args", [["--targets", "0"], ["--targets", "100001"], ["--repeat", "0"]])
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
