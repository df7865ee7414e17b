"""Views of runs: starting one (runs_start), following them (runs_follow), the history and its
exports (history)."""

from workflows_app.views.history import run_list, run_targets_export, runs_export
from workflows_app.views.runs_follow import run_detail, run_progress
from workflows_app.views.runs_start import change, confirm, start

__all__ = [
    "change",
    "confirm",
    "run_detail",
    "run_list",
    "run_progress",
    "run_targets_export",
    "runs_export",
    "start",
]
