"""The dashboard's chart geometry (pure functions) and the template filters counts and times use."""

from __future__ import annotations

import datetime as dt

import pytest

from workflows_app import charts
from workflows_app.templatetags.portal import duration, percent, thousands


@pytest.mark.parametrize(
    ("value", "step"),
    [(0, 1), (0.3, 1), (1, 1), (1.5, 2), (3, 5), (7, 10), (152, 200), (999, 1000)],
)
def test_steps_are_one_two_or_five_times_a_power_of_ten(value, step):
    assert charts.nice_step(value) == step


def test_count_ticks_reach_a_round_number_at_least_the_maximum():
    ceiling, ticks = charts.count_ticks(610, top=10, height=200)
    assert ceiling == 800
    assert [t.label for t in ticks] == ["0", "200", "400", "600", "800"]
    assert (ticks[0].y, ticks[-1].y) == (210, 10)  # 0 at the bottom, the ceiling at the top

    ceiling, ticks = charts.count_ticks(0, top=0, height=100)
    assert ceiling == 1 and [t.label for t in ticks] == ["0", "1"]

    assert [t.label for t in charts.count_ticks(12_000, top=0, height=1)[1]][-1] == "15,000"


def test_stacked_columns_are_as_high_as_their_parts():
    stacks = [
        [charts.Part("a", 3, "a: 3"), charts.Part("b", 1, "b: 1")],
        [charts.Part("a", 0, "a: 0"), charts.Part("b", 2, "b: 2")],
    ]
    chart = charts.stacked_columns(["Mon", "Tue"], stacks, ["Mon: 4", "Tue: 2"])

    frame = chart.frame
    first, second = chart.columns
    # The scale goes to 4: the first column fills the plot, a's part three quarters of it.
    assert [s.key for s in first.segments] == ["a", "b"]
    assert first.segments[0].height == pytest.approx(frame.plot_height * 3 / 4, abs=0.01)
    assert first.segments[0].y + first.segments[0].height == pytest.approx(frame.bottom)
    assert first.segments[1].y == pytest.approx(frame.top, abs=0.01)
    assert [s.key for s in second.segments] == ["b"]  # nothing drawn for a zero
    assert second.x > first.x and first.title == "Mon: 4"
    assert [label.text for label in chart.x_labels] == ["Mon", "Tue"]


def test_at_most_about_eight_day_labels_always_the_last():
    labels = [f"d{n}" for n in range(90)]
    stacks = [[charts.Part("a", 1, "")] for _ in labels]
    chart = charts.stacked_columns(labels, stacks, labels)
    shown = [label.text for label in chart.x_labels]
    assert len(shown) <= 9 and shown[0] == "d0" and shown[-1] == "d89"


def test_share_line_leaves_days_without_runs_out_and_starts_again_after_them():
    chart = charts.share_line(["a", "b", "c", "d"], [0.5, None, 1.0, 0.0], ["a", "", "c", "d"])

    assert [p.title for p in chart.points] == ["a", "c", "d"]
    assert [p.starts for p in chart.points] == [True, True, False]
    assert chart.path.startswith("M") and chart.path.count("M") == 2 and chart.path.count("L") == 1
    top, bottom = chart.frame.top, chart.frame.bottom
    assert [p.y for p in chart.points] == [
        pytest.approx((top + bottom) / 2),
        pytest.approx(top),
        pytest.approx(bottom),
    ]


def test_horizontal_bars_are_as_long_as_their_fraction_and_keep_their_links():
    rows = [
        charts.BarInput("A long workflow name that goes on and on", 1.0, "10", "A: 10", "/runs/"),
        charts.BarInput("B", 0.25, "2", "B: 2"),
        charts.BarInput("C", 7.0, "?", "C"),  # clamped
    ]
    chart = charts.horizontal_bars(rows)

    full = chart.frame.plot_width
    assert [bar.width for bar in chart.bars] == [full, pytest.approx(full / 4), full]
    assert chart.bars[0].label.endswith("…") and len(chart.bars[0].label) == 26
    assert chart.bars[0].href == "/runs/" and chart.bars[1].href == ""
    assert chart.bars[1].y > chart.bars[0].y
    assert chart.bars[1].value_x == pytest.approx(chart.frame.left + full / 4 + 6)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (999, "999"), (1000, "1,000"), (1_234_567, "1,234,567"), (-4200, "-4,200"),
     ("12345", "12,345"), ("", ""), ("n/a", "n/a"), (None, None), (True, True), (2.5, 2.5)],
)  # fmt: skip
def test_thousands_separators(value, shown):
    assert thousands(value) == shown


def test_percent_and_duration_filters():
    assert percent(0.4) == "40.0 %" and percent(1 / 3, 0) == "33 %" and percent(None) == "—"
    assert duration(None) == "—"
    cases = {
        0.4: "0.4 s",
        9.96: "10.0 s",
        12: "12 s",
        90: "1 min 30 s",
        120: "2 min",
        3600 * 2 + 300: "2 h 5 min",
        3600 * 5: "5 h",
        86400 * 3 + 3600 * 4: "3 d 4 h",
        86400: "1 d",
    }
    for seconds, shown in cases.items():
        assert duration(dt.timedelta(seconds=seconds)) == shown, seconds
