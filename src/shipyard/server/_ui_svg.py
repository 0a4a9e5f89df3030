"""Layered layout for the UI's graphs (a flow run's DAG, a model's lineage), drawn as inline SVG.

The pages draw the boxes and arrows from :class:`Layout` in a Jinja template, so every label
goes through autoescaping; this module only places them: a node's column is the longest path
that reaches it, its row is its order inside that column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 44, 70, 22, 10


@dataclass(frozen=True, slots=True)
class Box:
    """A placed node: ``css`` is its kind or state, used as the SVG class."""

    id: str
    label: str
    css: str
    x: int
    y: int
    href: str | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class Arrow:
    """An edge from the right side of one box to the left side of another."""

    source: str
    target: str
    path: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Layout:
    """Boxes, arrows and the drawing's size."""

    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


@dataclass(frozen=True, slots=True)
class GraphNode:
    """What a page hands over: an id, a label, a CSS class, an optional link and hover text."""

    id: str
    label: str
    css: str
    href: str | None = None
    title: str = ""


def _columns(nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """Longest-path depth of each node; bounded by the node count, so a cycle cannot loop forever."""
    depth = {n.id: 0 for n in nodes}
    for _ in range(len(nodes)):
        moved = False
        for source, target, _label in edges:
            if source in depth and target in depth and depth[target] < depth[source] + 1 <= len(nodes):
                depth[target] = depth[source] + 1
                moved = True
        if not moved:
            break
    return depth


def layout(nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str, str]]) -> Layout:
    """Place ``nodes`` in columns by ``edges`` (``(source, target, label)``), left to right."""
    depth = _columns(nodes, edges)
    rows: dict[int, int] = {}
    boxes: dict[str, Box] = {}
    for node in nodes:
        column = depth[node.id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        x = PAD + column * (NODE_W + GAP_X)
        y = PAD + row * (NODE_H + GAP_Y)
        boxes[node.id] = Box(node.id, node.label, node.css, x, y, node.href, node.title)
    width = PAD * 2 + (max(depth.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    bottom = height - PAD  # below every box: where an edge that skips columns passes
    arrows = []
    for source, target, label in edges:
        a, b = boxes.get(source), boxes.get(target)
        if a is None or b is None:
            continue
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        if depth[target] - depth[source] > 1:
            # A cubic with both control points at ``low`` reaches 3/4 of the way there mid-span.
            low = max(y1, y2) + int((bottom + GAP_Y // 2 - max(y1, y2)) / 0.75)
            path = f"M{x1},{y1} C{x1 + GAP_X},{low} {x2 - GAP_X},{low} {x2 - 4},{y2}"
            height = max(height, bottom + GAP_Y + PAD)
        else:
            mid = (x1 + x2) // 2
            path = f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2 - 4},{y2}"
        arrows.append(Arrow(source, target, path, label))
    return Layout(tuple(boxes.values()), tuple(arrows), width, height)
