"""Geometry of the dashboard's charts, drawn by templates as inline SVG (no JavaScript, no
library): stacked columns, a line, horizontal bars. Pure functions of numbers and labels; what
the numbers mean is the caller's business. Coordinates are in the SVG's viewBox units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The viewBox widths: the SVG scales to its container, so a chart meant for a whole card is
# wider than one meant for half a card, to keep its text about the same size on screen.
WIDE = 960
NARROW = 520


def nice_step(value: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(int(m * power) for m in (1, 2, 5, 10) if m * power >= value)


@dataclass(frozen=True)
class Tick:
    y: float
    label: str

    @property
    def text_y(self) -> float:
        """Where its label's baseline goes, so the label is centred on the line."""
        return round(self.y + 4, 2)


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str


def count_ticks(maximum: int, *, top: float, height: float) -> tuple[int, list[Tick]]:
    """A scale from 0 to a round number at least `maximum`, in at most 5 ticks."""
    step = nice_step(maximum / 4)
    ceiling = step * max(1, math.ceil(maximum / step))
    ticks = [
        Tick(y=top + height - height * value / ceiling, label=f"{value:,}")
        for value in range(0, ceiling + 1, step)
    ]
    return ceiling, ticks


@dataclass(frozen=True)
class Part:
    """One value of a stacked column: `key` names its series (a CSS class), `title` says it."""

    key: str
    value: int
    title: str


@dataclass(frozen=True)
class Segment:
    key: str
    y: float
    height: float
    title: str


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    title: str
    segments: list[Segment]


@dataclass(frozen=True)
class Frame:
    """The chart's box: its size and where the plot area sits inside it."""

    width: float
    height: float
    left: float
    top: float
    plot_width: float
    plot_height: float

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    @property
    def y_label_x(self) -> float:
        """Where the y axis' labels end (right-aligned, left of the plot)."""
        return self.left - 6

    @property
    def x_label_y(self) -> float:
        """The baseline of the x axis' labels, below the plot."""
        return self.bottom + 16


@dataclass(frozen=True)
class ColumnChart:
    frame: Frame
    columns: list[Column]
    ticks: list[Tick]
    x_labels: list[XLabel]


def _frame(height: float, *, left: float = 48, bottom: float = 24) -> Frame:
    top, right = 10.0, 28.0  # room for the last day's label, centred on its column
    return Frame(WIDE, height, left, top, WIDE - left - right, height - top - bottom)


def _x_labels(labels: Sequence[str], centres: Sequence[float]) -> list[XLabel]:
    """At most about 8 labels, evenly spaced, always the last one."""
    step = max(1, math.ceil(len(labels) / 8))
    last = len(labels) - 1
    shown = [i for i in range(0, len(labels), step) if last - i >= step / 2 or i == last]
    if last >= 0 and last not in shown:
        shown.append(last)
    return [XLabel(centres[i], labels[i]) for i in shown]


def stacked_columns(
    labels: Sequence[str], stacks: Sequence[Sequence[Part]], titles: Sequence[str]
) -> ColumnChart:
    """One column per label, its parts stacked bottom-up in the order given."""
    frame = _frame(240)
    maximum = max((sum(p.value for p in stack) for stack in stacks), default=0)
    ceiling, ticks = count_ticks(maximum, top=frame.top, height=frame.plot_height)
    slot = frame.plot_width / max(1, len(labels))
    width = max(1.0, slot * 0.78)
    columns, centres = [], []
    for index, (stack, title) in enumerate(zip(stacks, titles, strict=True)):
        x = frame.left + index * slot + (slot - width) / 2
        centres.append(x + width / 2)
        base = frame.bottom
        segments = []
        for part in stack:
            if part.value <= 0:
                continue
            height = frame.plot_height * part.value / ceiling
            base -= height
            segments.append(Segment(part.key, round(base, 2), round(height, 2), part.title))
        columns.append(Column(round(x, 2), round(width, 2), title, segments))
    return ColumnChart(frame, columns, ticks, _x_labels(labels, centres))


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str
    starts: bool  # the first point, or the first after a day without a value


@dataclass(frozen=True)
class LineChart:
    frame: Frame
    points: list[Point]
    ticks: list[Tick]
    x_labels: list[XLabel]

    @property
    def path(self) -> str:
        """An SVG path through the points; a gap (no value that day) starts a new stroke."""
        return " ".join(f"{'M' if p.starts else 'L'}{p.x:.1f},{p.y:.1f}" for p in self.points)


def share_line(
    labels: Sequence[str], shares: Sequence[float | None], titles: Sequence[str]
) -> LineChart:
    """A line of percentages (0 to 100 %) over the labels; None leaves that day out."""
    frame = _frame(140, bottom=24)
    slot = frame.plot_width / max(1, len(labels))
    centres = [frame.left + slot * (i + 0.5) for i in range(len(labels))]
    points: list[Point] = []
    gap = True
    for x, share, title in zip(centres, shares, titles, strict=True):
        if share is None:
            gap = True
            continue
        y = frame.bottom - frame.plot_height * share
        points.append(Point(round(x, 2), round(y, 2), title, starts=gap))
        gap = False
    ticks = [
        Tick(frame.bottom - frame.plot_height * value / 100, f"{value} %") for value in (0, 50, 100)
    ]
    return LineChart(frame, points, ticks, _x_labels(labels, centres))


@dataclass(frozen=True)
class HBar:
    """One row: its label left of the plot, its bar, its value written after the bar."""

    y: float
    label: str
    value_label: str
    width: float
    title: str
    href: str
    label_x: float
    value_x: float
    text_y: float


@dataclass(frozen=True)
class HBarChart:
    frame: Frame
    bars: list[HBar]
    bar_height: float
    label_width: float


@dataclass(frozen=True)
class BarInput:
    label: str
    fraction: float  # of the whole plot width, 0..1
    value_label: str
    title: str
    href: str = ""


def horizontal_bars(rows: Sequence[BarInput], *, label_width: float = 180) -> HBarChart:
    """One bar per row, top to bottom; each as long as its fraction of the plot's width."""
    row_height, bar_height = 24.0, 15.0
    value_room = 120.0
    height = 8 + row_height * len(rows)
    frame = Frame(NARROW, height, label_width, 4, NARROW - label_width - value_room, height - 8)
    bars = []
    for i, row in enumerate(rows):
        y = frame.top + i * row_height + (row_height - bar_height) / 2
        width = frame.plot_width * min(1.0, max(0.0, row.fraction))
        bars.append(
            HBar(
                y=round(y, 2),
                label=_shorten(row.label, 26),
                value_label=row.value_label,
                width=round(width, 2),
                title=row.title,
                href=row.href,
                label_x=label_width - 8,
                value_x=round(frame.left + width + 6, 2),
                text_y=round(y + bar_height - 4, 2),
            )
        )
    return HBarChart(frame, bars, bar_height, label_width)


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
