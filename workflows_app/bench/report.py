"""Figures of the full benchmark and the one table (or JSON) they are printed as."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field


@dataclass
class Figure:
    """One line of the table: what was measured, its median and p95, and the ratio held to.

    `ratio` compares this figure with `ratio_of` (another figure's key, or a description such as
    "plain HTTP client") measured in the same run; `met` is None when there is no threshold
    (a quick run) or nothing to compare.
    """

    key: str
    name: str
    workload: str
    unit: str = "ms"
    samples: list[float] = field(default_factory=list)
    ratio: float | None = None
    ratio_of: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def p95(self) -> float | None:
        """The 95th percentile (nearest rank) of the samples."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        rank = max(0, -(-95 * len(ordered) // 100) - 1)
        return ordered[rank]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "median": self.median, "p95": self.p95}


@dataclass
class FullReport:
    """Every figure of one run, and what the run was made on."""

    machine: str = ""
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # groups of figures that stopped short

    def as_dict(self) -> dict[str, object]:
        return {
            "machine": self.machine,
            "figures": [f.as_dict() for f in self.figures],
            "notes": self.notes,
            "failures": self.failures,
        }


def render(report: FullReport) -> str:
    """The table: figure, workload, median, p95, ratio and target, one line each."""
    lines = [f"Machine: {report.machine}" if report.machine else ""]
    header = f"{'figure':<34} {'median':>10} {'p95':>10} {'ratio':>8}  {'target':<28} met  workload"
    lines += [header, "-" * len(header)]
    for f in report.figures:
        median = "" if f.median is None else f"{f.median:,.1f}"
        p95 = "" if f.p95 is None else f"{f.p95:,.1f}"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        met = {None: "-", True: "yes", False: "NO"}[f.met]
        lines.append(
            f"{f.name:<34} {median:>10} {p95:>10} {ratio:>8}  {f.target:<28} {met:<4} "
            f"{f.workload} ({f.unit})"
        )
        if f.note:
            lines.append(f"    {f.note}")
    lines += [f"Note: {n}" for n in report.notes]
    lines += [f"FAILED: {f}" for f in report.failures]
    return "\n".join(line for line in lines if line is not None)
