"""The report's timeline: every order's row, grouped by strategy, under one time axis.

A row is drawn in pixels around points placed in percent of its track, so rows of any width
share one axis. A long-running bot has thousands of orders, so a strategy shows its most recent
`MAX_TIMELINE_ROWS`, and the page says how many it left out rather than grow without end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final

from orders._report_charts import state_bar
from orders._report_lines import Axis, Line, Mark, axis_for, build_line
from orders._report_text import breakable, clock, duration, esc, num, pct, qty, tick_label
from orders.lifecycle import Order
from orders.model import TERMINAL_STATES, OrderState
from orders.stats import compute_stats

__all__ = ["MAX_TIMELINE_ROWS", "timeline_html"]

# Rows drawn per strategy in the timeline; the most recent are kept, and the page says how many
# were left out. A few hundred rows stay quick to draw and to scroll.
MAX_TIMELINE_ROWS: Final = 400
_ROW_H: Final = 34
_BAR_Y: Final = 14
_BAR_H: Final = 10
_MID: Final = _BAR_Y + _BAR_H / 2


def _glyph(x: float, body: str, tip: str, cls: str) -> str:
    """A small drawing at `x` percent of the track, in pixels around that point."""
    return (
        f'<svg x="{num(x)}%" y="0" overflow="visible" class="{cls}"><g>'
        f"<title>{esc(tip)}</title>{body}</g></svg>"
    )


def _row_svg(line: Line, axis: Axis, max_fill: Decimal) -> str:
    parts = [
        f'<line class="grid" x1="{num(axis.x(t))}%" x2="{num(axis.x(t))}%" y1="2" '
        f'y2="{_ROW_H - 2}"/>'
        for t in axis.ticks()[1:-1]
    ]
    parts.append(f'<line class="track" x1="0" x2="100%" y1="{num(_MID)}" y2="{num(_MID)}"/>')
    for seg in line.segments:
        x0, x1 = axis.x(seg.start), axis.x(seg.end)
        terminal = seg.state in TERMINAL_STATES
        y, h = (_MID - 1.5, 3.0) if terminal else (_BAR_Y, _BAR_H)
        if x1 - x0 <= 0 and not (seg is line.segments[-1] and line.open_ended):
            continue
        tip = f"{seg.state} for {duration(seg.end - seg.start)}"
        if seg is line.segments[-1] and line.open_ended:
            tip += " (still working when the journal ends)"
        parts.append(
            f'<rect class="seg s-{esc(seg.state)}" x="{num(x0)}%" y="{num(y)}" '
            f'width="{num(max(x1 - x0, 0.0))}%" height="{num(h)}" rx="2">'
            f"<title>{esc(tip)}</title></rect>"
        )
    parts += _cancel_parts(line, axis)
    for mark in line.marks:
        parts.append(_mark_svg(mark, axis, max_fill))
    parts.append(_end_svg(line, axis))
    return (
        f'<svg class="tl-svg" width="100%" height="{_ROW_H}" overflow="visible" '
        f'role="img" aria-label="{esc(_row_aria(line))}">{"".join(parts)}</svg>'
    )


def _row_aria(line: Line) -> str:
    order = line.order
    return f"order {order.client_order_id}: {order.state} after {duration(line.duration)}"


def _cancel_parts(line: Line, axis: Axis) -> list[str]:
    """The wait between the cancel request and its outcome: hatched, with a latency bracket."""
    asked = line.cancel_asked
    if asked is None:
        return []
    order = line.order
    if line.cancel_done is not None:
        end, text = line.cancel_done, duration(line.cancel_done - asked)
        tip = f"cancel confirmed {text} after it was requested"
    elif order.state is OrderState.FILLED:
        end = line.duration
        text = "filled first"
        tip = f"filled {duration(end - asked)} after the cancel request"
    elif order.state is OrderState.REJECTED:
        end, text, tip = line.duration, "rejected", "rejected after the cancel request"
    else:
        end, text = line.duration, "waiting"
        tip = f"cancel requested {duration(end - asked)} before the journal ends, unconfirmed"
    x0, x1 = axis.x(asked), axis.x(end)
    parts = [
        f'<rect class="cancel-wait" x="{num(x0)}%" y="{_BAR_Y - 1}" '
        f'width="{num(max(x1 - x0, 0.0))}%" height="{_BAR_H + 2}"><title>{esc(tip)}</title></rect>',
        f'<line class="bracket" x1="{num(x0)}%" x2="{num(x1)}%" y1="5" y2="5"/>',
        f'<line class="bracket" x1="{num(x1)}%" x2="{num(x1)}%" y1="2" y2="8"/>',
    ]
    anchor = "end" if x1 > 88 else "start"
    dx = -6 if anchor == "end" else 6
    parts.append(
        f'<text class="latency" x="{num(x1)}%" dx="{dx}" y="9" text-anchor="{anchor}">'
        f"{esc(text)}<title>{esc(tip)}</title></text>"
    )
    return parts


def _mark_svg(mark: Mark, axis: Axis, max_fill: Decimal) -> str:
    x = axis.x(mark.at)
    if mark.kind in {"fill", "late-fill"}:
        share = float(mark.quantity / max_fill) if max_fill > 0 else 1.0
        radius = 2.5 + 6.0 * math.sqrt(max(0.0, min(1.0, share)))
        return _glyph(
            x,
            f'<circle cx="0" cy="{num(_MID)}" r="{num(radius)}"/>',
            mark.tip,
            f"m-{mark.kind}",
        )
    if mark.kind == "ask":
        body = f'<path d="M-4,0 L4,0 L0,6 Z"/><line x1="0" x2="0" y1="6" y2="{_ROW_H - 4}"/>'
        return _glyph(x, body, mark.tip, "m-ask")
    if mark.kind == "cancel":
        body = f'<line x1="0" x2="0" y1="2" y2="{_ROW_H - 4}"/>'
        return _glyph(x, body, mark.tip, "m-cancel")
    if mark.kind == "cancel-rejected":
        body = f'<path d="M-4,{_ROW_H - 2} L4,{_ROW_H - 2} L0,{_ROW_H - 8} Z"/>'
        return _glyph(x, body, mark.tip, "m-cancel-rejected")
    if mark.kind == "correct":
        y = _MID
        body = f'<path d="M0,{num(y - 5)} L5,{num(y)} L0,{num(y + 5)} L-5,{num(y)} Z"/>'
        return _glyph(x, body, mark.tip, "m-correct")
    return ""  # "reject": the end marker says it


def _end_svg(line: Line, axis: Axis) -> str:
    order, state = line.order, str(line.order.state)
    if line.open_ended:
        x = axis.x(line.duration)
        body = f'<path d="M-1,{_BAR_Y - 2} L6,{num(_MID)} L-1,{_BAR_Y + _BAR_H + 2} Z"/>'
        return _glyph(x, body, f"still {state} when the journal ends", f"end s-{state}")
    end = next((s.start for s in line.segments if s.state in TERMINAL_STATES), line.duration)
    x = axis.x(end)
    tip = f"{state} after {duration(end)}"
    if order.reason:
        tip += f": {order.reason}"
    if state == "rejected":
        body = (
            f'<path d="M-4.5,{num(_MID - 4.5)} L4.5,{num(_MID + 4.5)} '
            f'M4.5,{num(_MID - 4.5)} L-4.5,{num(_MID + 4.5)}"/>'
        )
    else:
        body = f'<rect x="-2" y="{_BAR_Y - 3}" width="5" height="{_BAR_H + 6}" rx="1.5"/>'
    parts = [_glyph(x, body, tip, f"end s-{state}")]
    if line.duration > axis.span:
        more = (
            f'<path d="M2,{_BAR_Y - 1} L8,{num(_MID)} L2,{_BAR_Y + _BAR_H + 1} '
            f'M7,{_BAR_Y - 1} L13,{num(_MID)} L7,{_BAR_Y + _BAR_H + 1}"/>'
        )
        parts.append(_glyph(100, more, f"lasted {duration(line.duration)}, past the axis", "more"))
    return "".join(parts)


def _axis_html(axis: Axis) -> str:
    ticks = axis.ticks()
    labels = []
    for i, t in enumerate(ticks):
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"
        labels.append(
            f'<text x="{num(axis.x(t))}%" y="14" text-anchor="{anchor}">'
            f"{esc(tick_label(t, axis.step))}</text>"
        )
    return (
        '<div class="tl-row tl-axis"><div class="lab muted">order · created (UTC)</div>'
        f'<svg class="tl-svg" width="100%" height="20" overflow="visible">{"".join(labels)}'
        '</svg><div class="out muted">outcome</div></div>'
    )


def _outcome_html(line: Line) -> str:
    order = line.order
    state = str(order.state)
    filled = f"{qty(order.filled_quantity)}/{qty(order.quantity)}"
    detail = ""
    if state == "rejected":
        detail = order.reason or ""
    elif line.cancel_asked is not None and line.cancel_done is not None:
        detail = f"cancel {duration(line.cancel_done - line.cancel_asked)}"
    elif line.open_ended:
        detail = "still working"
    title = f"{state}, {filled} filled" + (f": {detail}" if detail else "")
    return (
        f'<div class="out" title="{esc(title)}"><span class="pill s-{esc(state)}">{esc(state)}'
        f'</span> <span class="num">{esc(filled)}</span>'
        + (f' <span class="muted detail">{esc(detail)}</span>' if detail else "")
        + "</div>"
    )


def _row_html(line: Line, axis: Axis, max_fill: Decimal, with_date: bool) -> str:
    order = line.order
    search = " ".join(
        [
            order.client_order_id,
            order.symbol,
            str(order.side),
            str(order.state),
            order.strategy,
            order.reason or "",
        ]
    ).lower()
    title = (
        f"{order.client_order_id}\n{order.side} {qty(order.quantity)} {order.symbol} @ "
        f"{qty(order.limit_price)} ({order.strategy}), created {clock(line.start, True)} UTC"
    )
    if order.broker_order_id:
        title += f"\nbroker id {order.broker_order_id}"
    side = str(order.side)
    label = (
        f'<div class="lab" title="{esc(title)}"><div><b>{esc(order.symbol)}</b> '
        f'<span class="side {esc(side)}">{esc(side)}</span> {esc(qty(order.quantity))} @ '
        f"{esc(qty(order.limit_price))}</div>"
        f'<div class="sub"><code>{esc(order.client_order_id[:8])}</code> · '
        f"{esc(clock(line.start, with_date))}</div></div>"
    )
    return (
        f'<div class="tl-row" data-q="{esc(search)}" data-order="{esc(order.client_order_id)}">'
        f"{label}{_row_svg(line, axis, max_fill)}{_outcome_html(line)}</div>"
    )


def timeline_html(
    orders: Sequence[Order], created: Mapping[str, datetime], journal_end: datetime
) -> str:
    lines = [build_line(o, created.get(o.client_order_id), journal_end) for o in orders]
    axis = axis_for(lines)
    fills = [m.quantity for line in lines for m in line.marks if m.kind in {"fill", "late-fill"}]
    max_fill = max(fills, default=Decimal(1))
    starts = [line.start for line in lines]
    with_date = bool(starts) and min(starts).date() != max(starts).date()
    groups: dict[str, list[Line]] = {}
    for line in sorted(lines, key=lambda ln: (ln.start, ln.order.client_order_id)):
        groups.setdefault(line.order.strategy, []).append(line)
    sections = []
    for index, name in enumerate(sorted(groups)):
        members = groups[name]
        shown = members[-MAX_TIMELINE_ROWS:]
        stats = compute_stats(line.order for line in members)
        left_out = len(members) - len(shown)
        note = (
            f'<p class="note">{left_out} earlier orders of this strategy are not drawn; '
            f"the {len(shown)} most recent are.</p>"
            if left_out
            else ""
        )
        rows = "".join(_row_html(line, axis, max_fill, with_date) for line in shown)
        sections.append(
            f'<details class="tl-group"{" open" if index < 6 else ""}>'
            f'<summary><span class="gname">{breakable(name)}</span> '
            f'<span class="muted">{len(members)} order{"s" if len(members) != 1 else ""} · '
            f"success {esc(pct(stats.success_rate))} · cancel reliability "
            f"{esc(pct(stats.cancels.reliability))}</span>"
            f"{state_bar(stats.by_state, stats.orders, height=8, cls='gbar')}</summary>"
            f'{note}<div class="tl-scroll">{_axis_html(axis)}{rows}</div></details>'
        )
    legend = (
        '<div class="legend">'
        + "".join(
            f'<span><i class="sw s-{s}"></i>{s}</span>'
            for s in ("pending", "submitted", "partially_filled")
        )
        + '<span><svg width="16" height="14"><circle class="m-fill-ic" cx="8" cy="7" r="5"/>'
        "</svg>fill (area ∝ quantity)</span>"
        '<span><svg width="12" height="14"><path class="m-ask-ic" d="M2,1 L10,1 L6,8 Z"/></svg>'
        "cancel requested</span>"
        '<span><i class="sw hatch"></i>waiting for the cancel, with its latency</span>'
        '<span><svg width="10" height="14"><rect class="end-ic s-filled" x="2" y="1" width="5" '
        'height="12" rx="1.5"/></svg>filled / '
        '<svg width="10" height="14"><rect class="end-ic s-cancelled" x="2" y="1" width="5" '
        'height="12" rx="1.5"/></svg>cancelled</span>'
        '<span><svg width="12" height="14"><path class="end-x" d="M2,3 L10,11 M10,3 L2,11"/>'
        "</svg>rejected</span></div>"
    )
    cap = (
        f" Long orders run past the axis's end ({esc(duration(axis.span))}), marked »."
        if any(line.duration > axis.span for line in lines)
        else ""
    )
    return (
        '<p class="note">Each row is one order, from its creation (left) on; all rows share one '
        f"time axis. Hover over a segment or a mark for its details.{cap}</p>"
        f"{legend}"
        '<div class="filter"><input id="tl-filter" type="search" placeholder="filter: id, '
        'symbol, side, state, reason…" aria-label="filter the orders"> '
        '<span id="tl-count" class="muted"></span></div>' + "".join(sections)
    )
