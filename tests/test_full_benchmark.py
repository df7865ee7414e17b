"""`manage.py benchmark --suite full --quick`: the whole harness end to end, on tiny sizes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from workflows_app.bench import http_figures, pipeline_figures
from workflows_app.bench.harness import scratch_names

FIGURE_KEYS = (*http_figures.FIGURE_KEYS, *pipeline_figures.FIGURE_KEYS)


def test_quick_full_run_reports_every_figure_and_drops_its_database() -> None:
    before = set(scratch_names())
    done = subprocess.run(
        [sys.executable, "manage.py", "benchmark", "--suite", "full", "--quick", "--json"],
        env=os.environ.copy(),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    figures = {f["key"]: f for f in report["figures"]}
    assert set(FIGURE_KEYS) <= set(figures)
    for key in FIGURE_KEYS:
        assert figures[key]["samples"], key
        assert figures[key]["met"] is None, f"{key}: a quick run sets no threshold"
    assert figures["catalogue.filtered"]["note"].startswith("0 call(s) to Nexthink")
    # The workers the pipeline figures started were found and measured.
    assert figures["pipeline.worker_memory"]["samples"][0] > 0
    dropped = [n for n in report["notes"] if n.startswith("scratch database ")]
    assert len(dropped) == 1 and dropped[0].endswith(" dropped")
    assert set(scratch_names()) == before


def run_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "benchmark", "--suite", "full", "--quick", *args],
        env=os.environ.copy(),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )


def test_only_measures_the_stages_asked_for_and_refuses_unknown_ones() -> None:
    # Refused before anything starts: asked in this process, no harness to wait for.
    with pytest.raises(CommandError, match=re.escape("unknown stage(s) bulky")):
        call_command("benchmark", "--suite", "full", "--quick", "--only", "catalogue,bulky")

    done = run_benchmark("--only", "catalogue,self_service", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    keys = {f["key"] for f in json.loads(done.stdout)["figures"]}
    assert keys == {
        "catalogue.static",
        "catalogue.constant",
        "catalogue.filtered",
        "pipeline.self_service_latency",
    }
