"""One full benchmark run: start the harness, measure each group of figures, stop everything."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import replace

from workflows_app.bench.context import BenchContext
from workflows_app.bench.harness import full_harness
from workflows_app.bench.report import FullReport

FigureGroup = Callable[[BenchContext, FullReport], None]


def machine() -> str:
    """What the figures were measured on."""
    return f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"


def run_full(
    groups: Sequence[FigureGroup],
    *,
    quick: bool,
    keep: bool,
    repeat: int,
    only: frozenset[str] = frozenset(),
) -> FullReport:
    """Every group's figures (or the `only` stages'), against one harness (dropped after)."""
    report = FullReport(machine=machine())

    def dropped(name: str) -> None:
        report.notes.append(f"scratch database {name} dropped")

    # No standing worker: the pipeline figures start the workers they measure.
    with full_harness(quick=quick, keep=keep, on_drop=dropped, workers=0) as ctx:
        if keep:
            report.notes.append(f"scratch database kept: {ctx.database_url}")
        measured = replace(ctx, repeat=repeat, only=only)
        for group in groups:
            try:
                group(measured, report)
            except Exception as exc:
                # The figures measured so far are still worth printing; the command then fails.
                name = getattr(group, "__name__", repr(group))
                report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
    return report
