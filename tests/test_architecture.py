"""The shape of the code: no import cycle anywhere, whether the import is at module level or
inside a function (an import moved into a function still makes a circle at run time)."""

from __future__ import annotations

import io
from pathlib import Path

from django.core.management import call_command

from tests.import_graph import ROOT, cycles, import_graph


def test_no_import_cycle_in_the_project() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk found the project, not an empty folder
    assert cycles(graph) == []


def test_services_queue_work_without_importing_the_tasks() -> None:
    graph = import_graph()
    importers = sorted(name for name, targets in graph.items() if "workflows_app.tasks" in targets)
    assert [name for name in importers if name.startswith("workflows_app.services")] == []


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "app"
    (package / "services").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services" / "__init__.py").write_text("")
    (package / "tasks.py").write_text("from app.services import runs\n")
    (package / "services" / "runs.py").write_text(
        "def enqueue():\n    from ..tasks import submit\n    submit()\n"
    )
    (package / "services" / "other.py").write_text("from . import runs\n")
    assert cycles(import_graph(tmp_path, ["app"])) == [["app.services.runs", "app.tasks"]]
    assert ROOT.joinpath("workflows_app", "tasks.py").is_file()


def test_the_models_and_their_migrations_agree(db: None) -> None:
    """A model change without its migration (e.g. choices moved to another enum) is caught."""
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:
        raise AssertionError(f"models and migrations differ:\n{out.getvalue()}") from exc
