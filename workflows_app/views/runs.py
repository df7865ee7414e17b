"""Views of runs: starting one (runs_start) and following them (runs_follow)."""

from workflows_app.views.runs_follow import run_detail, run_list, run_progress
from workflows_app.views.runs_start import change, confirm, start

__all__ = ["change", "confirm", "run_detail", "run_list", "run_progress", "start"]
