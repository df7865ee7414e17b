"""A flow's steps drawn as a graph, server-side: pure layout for an inline SVG template.

Steps stand in columns by depth (a step sits one column right of the deepest step it depends
on), in flow order within a column; an edge goes from a dependency's right side to the
dependent's left side. A cycle (only in an input being edited) is laid out as if cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NODE_W, NODE_H = 180, 54
GAP_X, GAP_Y, MARGIN = 60, 22, 10


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    sub: str
    x: int
    y: int
    css: str
    href: str

    @property
    def text_x(self) -> int:
        return self.x + 10

    @property
    def label_y(self) -> int:
        return self.y + 22

    @property
    def sub_y(self) -> int:
        return self.y + 42


@dataclass(frozen=True)
class Edge:
    path: str
    css: str


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int

    @property
    def label(self) -> str:
        """What the picture says, for people who cannot see it."""
        parts = []
        for node in self.nodes:
            parts.append(f"{node.label} ({node.sub})")
        return "Steps: " + "; ".join(parts)


@dataclass(frozen=True)
class StepState:
    """What a flow run knows of one step, for colouring and linking its node."""

    state: str
    label: str
    href: str = ""


def depths(steps: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Each step's column: 0 without dependencies, else one more than its deepest dependency."""
    ids = {s["id"] for s in steps}
    deps = {s["id"]: [d for d in s.get("depends_on") or [] if d in ids] for s in steps}
    found: dict[str, int] = {}

    def depth(sid: str, seen: frozenset[str]) -> int:
        if sid in found:
            return found[sid]
        parents = [d for d in deps.get(sid, []) if d not in seen]
        value = 1 + max((depth(d, seen | {sid}) for d in parents), default=-1)
        found[sid] = value
        return value

    for step in steps:
        depth(step["id"], frozenset())
    return found


def layout(
    steps: Sequence[Mapping[str, Any]], states: Mapping[str, StepState] | None = None
) -> Graph:
    """Place the steps and their edges; `states` colours and links each step of a flow run."""
    column = depths(steps)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    nodes: list[Node] = []
    for step in steps:
        sid = step["id"]
        col = column.get(sid, 0)
        row = rows.get(col, 0)
        rows[col] = row + 1
        x, y = MARGIN + col * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y)
        place[sid] = (x, y)
        known = (states or {}).get(sid)
        skipped = step.get("is_skipped")
        state = known.state if known else ("skipped" if skipped else "defined")
        sub = (
            known.label
            if known
            else (f"skipped · {step['referrer']}" if skipped else step["referrer"])
        )
        nodes.append(
            Node(
                id=sid,
                label=_short(step.get("name") or sid, 24),
                sub=_short(sub, 28),
                x=x,
                y=y,
                css=f"flow-node state-{state}",
                href=known.href if known else "",
            )
        )
    edges: list[Edge] = []
    for step in steps:
        for dep in step.get("depends_on") or []:
            if dep not in place or step["id"] not in place:
                continue
            (x1, y1), (x2, y2) = place[dep], place[step["id"]]
            start_x, start_y = x1 + NODE_W, y1 + NODE_H // 2
            end_x, end_y = x2, y2 + NODE_H // 2
            middle = (start_x + end_x) // 2
            path = f"M{start_x},{start_y} C{middle},{start_y} {middle},{end_y} {end_x - 6},{end_y}"
            run_on = step.get("run_on", "all")
            edges.append(Edge(path=path, css=f"flow-edge run-on-{run_on}"))
    width = MARGIN * 2 + (max(column.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Graph(nodes=nodes, edges=edges, width=width, height=height)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
