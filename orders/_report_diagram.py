"""The order lifecycle as inline SVG, drawn from `orders.diagram.arrows()`.

Drawn from the running state machine, never by hand, so the page shows the lifecycle the
library really enforces.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Final

from orders._report_geometry import LABEL_CH, Box, Rect, Route, place_label, route_arrow
from orders._report_text import STATES, esc, num
from orders.diagram import Arrow, Edge, arrows
from orders.model import TERMINAL_STATES, OrderState

__all__ = ["lifecycle_svg"]

# Where each state sits: (column centre x, row). Any state missing here (a state added to the
# machine later) goes in an extra row below, so it is still drawn.
_PLACES: Final[Mapping[str, tuple[float, int]]] = {
    OrderState.PENDING: (540.0, 0),
    OrderState.SUBMITTED: (540.0, 1),
    OrderState.PARTIALLY_FILLED: (540.0, 2),
    OrderState.FILLED: (540.0, 3),
    OrderState.REJECTED: (150.0, 1),
    OrderState.CANCELLED: (960.0, 2),
}
_NAME_CH: Final = 8.6  # width of a character of a state's name (14 px bold)
_LINE_H: Final = 17.0
_HEAD_H: Final = 32.0
_PAD: Final = 12.0
_ROW_GAP: Final = 84.0


def _layout(found: Sequence[Arrow]) -> dict[str, Box]:
    states = list(dict.fromkeys([*STATES, *(a.source for a in found), *(a.dest for a in found)]))
    loops: dict[str, list[Edge]] = {s: [] for s in states}
    for arrow in found:
        if arrow.source == arrow.dest:
            loops[arrow.source] += arrow.edges
    places = dict(_PLACES)
    extra = [s for s in states if s not in places]
    last_row = max(row for _, row in places.values())
    for index, state in enumerate(extra):
        places[state] = (150.0 + 330.0 * (index % 3), last_row + 1 + index // 3)
    sizes = {}
    for state in states:
        width = max(
            [len(state) * _NAME_CH + 20, *(len(e.label) * LABEL_CH + 22 for e in loops[state])]
        )
        height = _HEAD_H + (_LINE_H * len(loops[state]) + 8 if loops[state] else 0)
        sizes[state] = (width + 2 * _PAD, height)
    rows = sorted({row for _, row in places.values()})
    centre, y = {}, 60.0
    for row in rows:
        tallest = max(sizes[s][1] for s in states if places[s][1] == row)
        centre[row] = y + tallest / 2
        y += tallest + _ROW_GAP
    return {
        s: Box(s, places[s][0], centre[places[s][1]], sizes[s][0], sizes[s][1], tuple(loops[s]))
        for s in states
    }


def _edge_tspans(edge: Edge) -> str:
    """An edge's label with the trigger stressed; the text is exactly `edge.label`."""
    rest = edge.label[len(edge.trigger) :]
    return f'<tspan class="trig">{esc(edge.trigger)}</tspan>' + (
        f'<tspan class="guard">{esc(rest)}</tspan>' if rest else ""
    )


@functools.cache
def lifecycle_svg() -> str:
    """The order lifecycle as inline SVG, drawn from `orders.diagram.arrows()`.

    One box per state (double-bordered when terminal); the transitions that keep an order in
    its state are listed inside its box, those that move it are arrows. Every transition's
    label is one `<text class="tr">` element. Drawn once per process: the machine is fixed.
    """
    found = arrows()
    boxes = _layout(found)
    routes: list[Route] = []
    moving = [a for a in found if a.source != a.dest]
    # Short straight arrows first, so the long ones bend around them.
    moving.sort(
        key=lambda a: math.hypot(
            boxes[a.source].cx - boxes[a.dest].cx, boxes[a.source].cy - boxes[a.dest].cy
        )
    )
    for arrow in moving:
        routes.append(route_arrow(arrow, boxes, routes))
    body: list[str] = []
    labels: list[str] = []
    taken: list[Rect] = []
    for route in routes:
        internal = " internal" if route.arrow.internal else ""
        body.append(
            f'<path class="edge{internal}" d="{route.path()}" marker-end="url(#lc-arrow)">'
            f"<title>{esc(route.arrow.source)} → {esc(route.arrow.dest)}</title></path>"
        )
        x, y, anchor, rect = place_label(route, taken, boxes.values())
        taken.append(rect)
        labels.append(
            f'<rect class="halo" x="{num(rect[0])}" y="{num(rect[1])}" '
            f'width="{num(rect[2] - rect[0])}" height="{num(rect[3] - rect[1])}" rx="4"/>'
        )
        top = y - (len(route.arrow.edges) - 1) * 7.5 + 4
        for index, edge in enumerate(route.arrow.edges):
            labels.append(
                f'<text class="tr" x="{num(x)}" y="{num(top + 15 * index)}" '
                f'text-anchor="{anchor}">{_edge_tspans(edge)}</text>'
            )
    for box in boxes.values():
        body.append(_box_svg(box))
    initial = boxes.get(str(OrderState.PENDING)) or next(iter(boxes.values()))
    start = (initial.cx, initial.y0 - 40)
    body.append(
        f'<circle class="start" cx="{num(start[0])}" cy="{num(start[1])}" r="7"/>'
        f'<path class="edge" d="M{num(start[0])},{num(start[1] + 8)} L{num(start[0])},'
        f'{num(initial.y0 - 3)}" marker-end="url(#lc-arrow)"/>'
    )
    rects = [
        *((b.x0, b.y0, b.x0 + b.w, b.y0 + b.h) for b in boxes.values()),
        *taken,
        (start[0] - 10, start[1] - 10, start[0] + 10, start[1] + 10),
    ]
    x0 = min(r[0] for r in rects) - 16
    y0 = min(r[1] for r in rects) - 16
    x1 = max(r[2] for r in rects) + 16
    y1 = max(r[3] for r in rects) + 16
    width, height = x1 - x0, y1 - y0
    return (
        f'<svg id="lifecycle" class="lifecycle" viewBox="{num(x0)} {num(y0)} {num(width)} '
        f'{num(height)}" width="{num(width)}" role="img" aria-label="order lifecycle: '
        f'{sum(len(a.edges) for a in found)} transitions between {len(boxes)} states">'
        '<defs><marker id="lc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path class="arrowhead" '
        'd="M0,0 L10,5 L0,10 z"/></marker></defs>' + "".join(body) + "".join(labels) + "</svg>"
    )


def _box_svg(box: Box) -> str:
    terminal = box.state in TERMINAL_STATES
    parts = [
        f'<g class="state s-{esc(box.state)}"><title>{esc(box.state)}'
        f"{' (terminal)' if terminal else ''}</title>"
        f'<rect class="box" x="{num(box.x0)}" y="{num(box.y0)}" width="{num(box.w)}" '
        f'height="{num(box.h)}" rx="10"/>'
    ]
    if terminal:
        parts.append(
            f'<rect class="box inner" x="{num(box.x0 + 4)}" y="{num(box.y0 + 4)}" '
            f'width="{num(box.w - 8)}" height="{num(box.h - 8)}" rx="7"/>'
        )
    parts.append(
        f'<rect class="chip" x="{num(box.x0 + 12)}" y="{num(box.y0 + 11)}" width="10" '
        f'height="10" rx="2"/><text class="sname" x="{num(box.x0 + 30)}" '
        f'y="{num(box.y0 + 21)}">{esc(box.state)}</text>'
    )
    if box.loops:
        y = box.y0 + _HEAD_H
        parts.append(
            f'<line class="divider" x1="{num(box.x0 + 8)}" x2="{num(box.x0 + box.w - 8)}" '
            f'y1="{num(y - 2)}" y2="{num(y - 2)}"/>'
        )
        for index, edge in enumerate(box.loops):
            ly = y + 13 + _LINE_H * index
            lx = box.x0 + _PAD
            cls = "loop internal" if edge.internal else "loop"
            parts.append(
                f'<path class="{cls}" d="M{num(lx + 11)},{num(ly - 2)} a5,5 0 1 1 -3,-4.5"/>'
                f'<path class="loophead" d="M{num(lx + 5.5)},{num(ly - 9)} l4,1 l-3,3 z"/>'
                f'<text class="tr in-box{" internal" if edge.internal else ""}" '
                f'x="{num(lx + 18)}" y="{num(ly)}">{_edge_tspans(edge)}</text>'
            )
    parts.append("</g>")
    return "".join(parts)
