"""Where the lifecycle diagram's arrows and labels go: curves that avoid boxes and each other.

The diagram is laid out in Python rather than by Graphviz, so the page needs no tool to be
drawn; this is the plane geometry that keeps its arrows readable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from orders._report_text import num
from orders.diagram import Arrow, Edge

__all__ = ["LABEL_CH", "Box", "Rect", "Route", "place_label", "route_arrow"]

LABEL_CH: Final = 6.7  # width of a character of a label (11 px monospace)


@attrs.frozen
class Box:
    state: str
    cx: float
    cy: float
    w: float
    h: float
    loops: tuple[Edge, ...]

    @property
    def x0(self) -> float:
        return self.cx - self.w / 2

    @property
    def y0(self) -> float:
        return self.cy - self.h / 2

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        return (
            self.x0 - margin <= x <= self.x0 + self.w + margin
            and self.y0 - margin <= y <= self.y0 + self.h + margin
        )


_Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


def _bezier(p0: _Point, c: _Point, p1: _Point, t: float) -> _Point:
    u = 1 - t
    return (
        u * u * p0[0] + 2 * u * t * c[0] + t * t * p1[0],
        u * u * p0[1] + 2 * u * t * c[1] + t * t * p1[1],
    )


def _samples(p0: _Point, c: _Point, p1: _Point, n: int = 40) -> list[_Point]:
    return [_bezier(p0, c, p1, i / n) for i in range(n + 1)]


def _crosses(a: Sequence[_Point], b: Sequence[_Point]) -> int:
    """How many times two polylines cross."""
    if (
        max(p[0] for p in a) < min(p[0] for p in b)
        or max(p[0] for p in b) < min(p[0] for p in a)
        or max(p[1] for p in a) < min(p[1] for p in b)
        or max(p[1] for p in b) < min(p[1] for p in a)
    ):
        return 0

    def ccw(p: _Point, q: _Point, r: _Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    count = 0
    for p, q in itertools.pairwise(a):
        for r, s in itertools.pairwise(b):
            if ccw(p, q, r) * ccw(p, q, s) < 0 and ccw(r, s, p) * ccw(r, s, q) < 0:
                count += 1
    return count


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@attrs.frozen
class Route:
    arrow: Arrow
    p0: _Point
    c: _Point
    p1: _Point
    t0: float
    t1: float

    def points(self) -> list[_Point]:
        return _samples(self.p0, self.c, self.p1, 10)

    def path(self) -> str:
        """The visible part (outside both boxes) as one quadratic Bézier."""
        a = _bezier(self.p0, self.c, self.p1, self.t0)
        b = _bezier(self.p0, self.c, self.p1, self.t1)
        u = 1 - self.t0
        d = (
            2 * u * (self.c[0] - self.p0[0]) + 2 * self.t0 * (self.p1[0] - self.c[0]),
            2 * u * (self.c[1] - self.p0[1]) + 2 * self.t0 * (self.p1[1] - self.c[1]),
        )
        k = (self.t1 - self.t0) / 2
        ctrl = (a[0] + k * d[0], a[1] + k * d[1])
        return f"M{num(a[0])},{num(a[1])} Q{num(ctrl[0])},{num(ctrl[1])} {num(b[0])},{num(b[1])}"


def _clip(box: Box, route: tuple[_Point, _Point, _Point], leaving: bool) -> float:
    """The curve parameter where it crosses `box`'s border (bisection)."""
    inside, outside = (0.0, 1.0) if leaving else (1.0, 0.0)
    for _ in range(30):
        mid = (inside + outside) / 2
        if box.contains(*_bezier(*route, mid), margin=3):
            inside = mid
        else:
            outside = mid
    return outside


def route_arrow(arrow: Arrow, boxes: Mapping[str, Box], drawn: Sequence[Route]) -> Route:
    src, dst = boxes[arrow.source], boxes[arrow.dest]
    p0, p1 = (src.cx, src.cy), (dst.cx, dst.cy)
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    length = math.hypot(dx, dy) or 1.0
    normal = (-dy / length, dx / length)
    mid = ((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2)
    others = [b for b in boxes.values() if b.state not in {arrow.source, arrow.dest}]
    drawn_points = [r.points() for r in drawn]
    best: tuple[float, _Point] | None = None
    for bend in [0.0, *(s * k * 60.0 for k in range(1, 12) for s in (1, -1))]:
        c = (mid[0] + normal[0] * bend, mid[1] + normal[1] * bend)
        points = _samples(p0, c, p1)
        hits = sum(1 for b in others for p in points if b.contains(*p, margin=14))
        coarse = points[::4]
        crossings = sum(_crosses(coarse, r) for r in drawn_points)
        score = hits * 1000 + crossings * 40 + abs(bend) / 60
        if best is None or score < best[0]:
            best = (score, c)
    assert best is not None
    c = best[1]
    return Route(arrow, p0, c, p1, _clip(src, (p0, c, p1), True), _clip(dst, (p0, c, p1), False))


def place_label(
    route: Route, taken: list[Rect], boxes: Iterable[Box]
) -> tuple[float, float, str, Rect]:
    """Where the label goes: on the curve if it fits there, else beside it."""
    lines = route.arrow.labels
    width = max(len(text) for text in lines) * LABEL_CH + 10
    height = len(lines) * 15 + 6
    blocked = [*taken, *((b.x0 - 4, b.y0 - 4, b.x0 + b.w + 4, b.y0 + b.h + 4) for b in boxes)]
    candidates = []
    for t in (0.5, 0.42, 0.58, 0.34, 0.66):
        x, y = _bezier(route.p0, route.c, route.p1, t)
        candidates += [
            (x, y, "middle", (x - width / 2, y - height / 2, x + width / 2, y + height / 2)),
            (x - 8, y, "end", (x - 8 - width, y - height / 2, x - 8, y + height / 2)),
            (x + 8, y, "start", (x + 8, y - height / 2, x + 8 + width, y + height / 2)),
        ]
    for x, y, anchor, rect in candidates:
        if not any(_overlaps(rect, other) for other in blocked):
            return x, y, anchor, rect
    return candidates[0]
