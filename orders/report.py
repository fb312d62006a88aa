"""A journal as one self-contained HTML page: what `orders report` writes.

The page carries everything inline (CSS, SVG charts drawn here in Python, a few lines of
JavaScript for filtering the timeline), so it opens from disk, mailed or archived, with no
network. It shows the headline figures of `orders.stats` (success rate, cancel reliability,
fill ratio, cancel latency) overall and per strategy, their distributions, a timeline of every
order (its states as coloured segments, its fills sized by quantity, its cancel request and the
broker's confirmation), and the lifecycle diagram drawn from `orders.diagram.arrows()`.

Every figure on the page comes from `compute_stats` / `stats_by_strategy`, so it equals what
`orders stats` prints; every text that comes from a journal (ids, strategy names, reasons) is
HTML-escaped.
"""

from __future__ import annotations

import functools
import html
import itertools
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from orders.audit import AuditJournal
from orders.diagram import Arrow, Edge, arrows
from orders.lifecycle import Order
from orders.model import TERMINAL_STATES, OrderState
from orders.stats import OrderStats, compute_stats, percentile, stats_by_strategy

__all__ = ["MAX_TIMELINE_ROWS", "lifecycle_svg", "render_report", "write_report"]

# Rows drawn per strategy in the timeline; the most recent are kept, and the page says how many
# were left out. A few hundred rows stay quick to draw and to scroll.
MAX_TIMELINE_ROWS: Final = 400

_STATES: Final = tuple(str(s) for s in OrderState)
_TERMINAL: Final = frozenset(str(s) for s in TERMINAL_STATES)
_ZERO: Final = Decimal(0)
_DASH: Final = "\u2013"  # what a figure shows when there is nothing to compute it from


def _e(value: object) -> str:
    """`value` as HTML text or attribute value (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def _name(value: str) -> str:
    """A strategy name as HTML that may wrap after its underscores, not inside its words."""
    return _e(value).replace("_", "_<wbr>")


def _pct(value: float | Decimal | None) -> str:
    """A ratio as `orders stats` prints it."""
    return _DASH if value is None else f"{float(value):.1%}"


def _num(value: float) -> str:
    """A coordinate for SVG: short, no exponent."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def _qty(value: Decimal) -> str:
    """A share count or price as the journal writes it, never in exponent form."""
    return f"{value:f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return _DASH
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _tick(seconds: float, step: float) -> str:
    """An axis label: the unit follows the step (`30 s`, `5 min`, `2 h`)."""
    if seconds == 0:
        return "0"
    unit, name = (3600, "h") if step >= 3600 else (60, "min") if step >= 60 else (1, "s")
    return f"{seconds / unit:g}\u2009{name}"


# Steps a time axis may take, in seconds: round numbers of seconds, minutes and hours.
_TIME_STEPS: Final = (
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)


def _time_step(span: float, target: int) -> float:
    """A round step of time that cuts `span` seconds into about `target` parts."""
    raw = span / target
    for step in _TIME_STEPS:
        if raw <= step:
            return float(step)
    return _nice_step(span / 86400, target) * 86400


def _clock(at: datetime, with_date: bool) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _nice_step(span: float, target: int) -> float:
    """A 1-2-5 step that cuts `span` into about `target` parts."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


# -- timelines ---------------------------------------------------------------------------------


@attrs.frozen
class _Segment:
    state: str
    start: float
    end: float


@attrs.frozen
class _Mark:
    kind: str
    at: float
    tip: str
    quantity: Decimal = _ZERO


@attrs.frozen
class _Line:
    """One order laid out in seconds since it was created."""

    order: Order
    start: datetime
    duration: float
    segments: tuple[_Segment, ...]
    marks: tuple[_Mark, ...]
    cancel_asked: float | None
    cancel_done: float | None
    open_ended: bool


def _build_line(order: Order, created: datetime | None, journal_end: datetime) -> _Line:
    history = order.history
    first = history[0].at if history else (created or journal_end)
    start = first if created is None else min(created, first)

    def rel(at: datetime) -> float:
        return (at - start).total_seconds()

    segments: list[_Segment] = []
    marks: list[_Mark] = []
    state = str(history[0].source) if history else str(order.state)
    since = 0.0
    asked = done = None
    filled = _ZERO
    for event in history:
        at = rel(event.at)
        when = f"{_clock(event.at, False)} (+{_duration(at)})"
        if event.trigger == "fill" and event.execution is not None:
            filled += event.execution.quantity
            late = str(event.source) == str(OrderState.CANCELLED)
            marks.append(
                _Mark(
                    "late-fill" if late else "fill",
                    at,
                    f"{'late ' if late else ''}fill {_qty(event.execution.quantity)} @ "
                    f"{_qty(event.execution.price)} at {when}; {_qty(filled)}/"
                    f"{_qty(order.quantity)} filled",
                    event.execution.quantity,
                )
            )
        elif event.trigger == "request_cancel":
            asked = at if asked is None else asked
            marks.append(_Mark("ask", at, f"cancel requested at {when}"))
        elif event.trigger == "cancel":
            done = at if done is None else done
            because = f": {event.reason}" if event.reason else ""
            marks.append(_Mark("cancel", at, f"cancel confirmed at {when}{because}"))
        elif event.trigger == "cancel_rejected":
            because = f": {event.reason}" if event.reason else ""
            marks.append(_Mark("cancel-rejected", at, f"cancel refused at {when}{because}"))
        elif event.trigger == "reject":
            because = f": {event.reason}" if event.reason else ""
            marks.append(_Mark("reject", at, f"rejected at {when}{because}"))
        elif event.trigger == "correct_fill":
            marks.append(_Mark("correct", at, f"fills corrected by the broker at {when}"))
        if str(event.dest) != state:
            segments.append(_Segment(state, since, at))
            state, since = str(event.dest), at
    open_ended = state not in _TERMINAL
    end = rel(journal_end) if open_ended else (rel(history[-1].at) if history else 0.0)
    segments.append(_Segment(state, since, max(since, end)))
    return _Line(
        order=order,
        start=start,
        duration=max(end, 0.0),
        segments=tuple(segments),
        marks=tuple(marks),
        cancel_asked=asked,
        cancel_done=done,
        open_ended=open_ended,
    )


@attrs.frozen
class _Axis:
    """Seconds since an order's creation, shared by every timeline row."""

    span: float
    step: float

    def x(self, seconds: float) -> float:
        """Percent of the track's width."""
        return max(0.0, min(100.0, 100.0 * seconds / self.span))

    def ticks(self) -> list[float]:
        count = round(self.span / self.step)
        return [i * self.step for i in range(count + 1)]


def _axis_for(lines: Sequence[_Line]) -> _Axis:
    durations = [line.duration for line in lines]
    top = max(durations, default=0.0)
    p90 = percentile(durations, 0.9) or 0.0
    # One very long order should not squash every other row to a sliver: past 3x the 90th
    # percentile, the axis stops at 1.5x it and longer rows end in an arrow.
    span = top if top <= 3 * p90 or p90 == 0 else 1.5 * p90
    step = _time_step(span, 6)
    return _Axis(span=max(step, math.ceil(span / step - 1e-9) * step), step=step)


_ROW_H: Final = 34
_BAR_Y: Final = 14
_BAR_H: Final = 10
_MID: Final = _BAR_Y + _BAR_H / 2


def _glyph(x: float, body: str, tip: str, cls: str) -> str:
    """A small drawing at `x` percent of the track, in pixels around that point."""
    return (
        f'<svg x="{_num(x)}%" y="0" overflow="visible" class="{cls}"><g>'
        f"<title>{_e(tip)}</title>{body}</g></svg>"
    )


def _row_svg(line: _Line, axis: _Axis, max_fill: Decimal) -> str:
    parts = [
        f'<line class="grid" x1="{_num(axis.x(t))}%" x2="{_num(axis.x(t))}%" y1="2" '
        f'y2="{_ROW_H - 2}"/>'
        for t in axis.ticks()[1:-1]
    ]
    parts.append(f'<line class="track" x1="0" x2="100%" y1="{_num(_MID)}" y2="{_num(_MID)}"/>')
    for seg in line.segments:
        x0, x1 = axis.x(seg.start), axis.x(seg.end)
        terminal = seg.state in _TERMINAL
        y, h = (_MID - 1.5, 3.0) if terminal else (_BAR_Y, _BAR_H)
        if x1 - x0 <= 0 and not (seg is line.segments[-1] and line.open_ended):
            continue
        tip = f"{seg.state} for {_duration(seg.end - seg.start)}"
        if seg is line.segments[-1] and line.open_ended:
            tip += " (still working when the journal ends)"
        parts.append(
            f'<rect class="seg s-{_e(seg.state)}" x="{_num(x0)}%" y="{_num(y)}" '
            f'width="{_num(max(x1 - x0, 0.0))}%" height="{_num(h)}" rx="2">'
            f"<title>{_e(tip)}</title></rect>"
        )
    parts += _cancel_parts(line, axis)
    for mark in line.marks:
        parts.append(_mark_svg(mark, axis, max_fill))
    parts.append(_end_svg(line, axis))
    return (
        f'<svg class="tl-svg" width="100%" height="{_ROW_H}" overflow="visible" '
        f'role="img" aria-label="{_e(_row_aria(line))}">{"".join(parts)}</svg>'
    )


def _row_aria(line: _Line) -> str:
    order = line.order
    return f"order {order.client_order_id}: {order.state} after {_duration(line.duration)}"


def _cancel_parts(line: _Line, axis: _Axis) -> list[str]:
    """The wait between the cancel request and its outcome: hatched, with a latency bracket."""
    asked = line.cancel_asked
    if asked is None:
        return []
    order = line.order
    if line.cancel_done is not None:
        end, text = line.cancel_done, _duration(line.cancel_done - asked)
        tip = f"cancel confirmed {text} after it was requested"
    elif order.state is OrderState.FILLED:
        end = line.duration
        text = "filled first"
        tip = f"filled {_duration(end - asked)} after the cancel request"
    elif order.state is OrderState.REJECTED:
        end, text, tip = line.duration, "rejected", "rejected after the cancel request"
    else:
        end, text = line.duration, "waiting"
        tip = f"cancel requested {_duration(end - asked)} before the journal ends, unconfirmed"
    x0, x1 = axis.x(asked), axis.x(end)
    parts = [
        f'<rect class="cancel-wait" x="{_num(x0)}%" y="{_BAR_Y - 1}" '
        f'width="{_num(max(x1 - x0, 0.0))}%" height="{_BAR_H + 2}"><title>{_e(tip)}</title></rect>',
        f'<line class="bracket" x1="{_num(x0)}%" x2="{_num(x1)}%" y1="5" y2="5"/>',
        f'<line class="bracket" x1="{_num(x1)}%" x2="{_num(x1)}%" y1="2" y2="8"/>',
    ]
    anchor = "end" if x1 > 88 else "start"
    dx = -6 if anchor == "end" else 6
    parts.append(
        f'<text class="latency" x="{_num(x1)}%" dx="{dx}" y="9" text-anchor="{anchor}">'
        f"{_e(text)}<title>{_e(tip)}</title></text>"
    )
    return parts


def _mark_svg(mark: _Mark, axis: _Axis, max_fill: Decimal) -> str:
    x = axis.x(mark.at)
    if mark.kind in {"fill", "late-fill"}:
        share = float(mark.quantity / max_fill) if max_fill > 0 else 1.0
        radius = 2.5 + 6.0 * math.sqrt(max(0.0, min(1.0, share)))
        return _glyph(
            x,
            f'<circle cx="0" cy="{_num(_MID)}" r="{_num(radius)}"/>',
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
        body = f'<path d="M0,{_num(y - 5)} L5,{_num(y)} L0,{_num(y + 5)} L-5,{_num(y)} Z"/>'
        return _glyph(x, body, mark.tip, "m-correct")
    return ""  # "reject": the end marker says it


def _end_svg(line: _Line, axis: _Axis) -> str:
    order, state = line.order, str(line.order.state)
    if line.open_ended:
        x = axis.x(line.duration)
        body = f'<path d="M-1,{_BAR_Y - 2} L6,{_num(_MID)} L-1,{_BAR_Y + _BAR_H + 2} Z"/>'
        return _glyph(x, body, f"still {state} when the journal ends", f"end s-{state}")
    end = next((s.start for s in line.segments if s.state in _TERMINAL), line.duration)
    x = axis.x(end)
    tip = f"{state} after {_duration(end)}"
    if order.reason:
        tip += f": {order.reason}"
    if state == "rejected":
        body = (
            f'<path d="M-4.5,{_num(_MID - 4.5)} L4.5,{_num(_MID + 4.5)} '
            f'M4.5,{_num(_MID - 4.5)} L-4.5,{_num(_MID + 4.5)}"/>'
        )
    else:
        body = f'<rect x="-2" y="{_BAR_Y - 3}" width="5" height="{_BAR_H + 6}" rx="1.5"/>'
    parts = [_glyph(x, body, tip, f"end s-{state}")]
    if line.duration > axis.span:
        more = (
            f'<path d="M2,{_BAR_Y - 1} L8,{_num(_MID)} L2,{_BAR_Y + _BAR_H + 1} '
            f'M7,{_BAR_Y - 1} L13,{_num(_MID)} L7,{_BAR_Y + _BAR_H + 1}"/>'
        )
        parts.append(_glyph(100, more, f"lasted {_duration(line.duration)}, past the axis", "more"))
    return "".join(parts)


def _axis_html(axis: _Axis) -> str:
    ticks = axis.ticks()
    labels = []
    for i, t in enumerate(ticks):
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"
        labels.append(
            f'<text x="{_num(axis.x(t))}%" y="14" text-anchor="{anchor}">{_e(_tick(t, axis.step))}'
            "</text>"
        )
    return (
        '<div class="tl-row tl-axis"><div class="lab muted">order · created (UTC)</div>'
        f'<svg class="tl-svg" width="100%" height="20" overflow="visible">{"".join(labels)}'
        '</svg><div class="out muted">outcome</div></div>'
    )


def _outcome_html(line: _Line) -> str:
    order = line.order
    state = str(order.state)
    filled = f"{_qty(order.filled_quantity)}/{_qty(order.quantity)}"
    detail = ""
    if state == "rejected":
        detail = order.reason or ""
    elif line.cancel_asked is not None and line.cancel_done is not None:
        detail = f"cancel {_duration(line.cancel_done - line.cancel_asked)}"
    elif line.open_ended:
        detail = "still working"
    title = f"{state}, {filled} filled" + (f": {detail}" if detail else "")
    return (
        f'<div class="out" title="{_e(title)}"><span class="pill s-{_e(state)}">{_e(state)}'
        f'</span> <span class="num">{_e(filled)}</span>'
        + (f' <span class="muted detail">{_e(detail)}</span>' if detail else "")
        + "</div>"
    )


def _row_html(line: _Line, axis: _Axis, max_fill: Decimal, with_date: bool) -> str:
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
        f"{order.client_order_id}\n{order.side} {_qty(order.quantity)} {order.symbol} @ "
        f"{_qty(order.limit_price)} ({order.strategy}), created {_clock(line.start, True)} UTC"
    )
    if order.broker_order_id:
        title += f"\nbroker id {order.broker_order_id}"
    side = str(order.side)
    label = (
        f'<div class="lab" title="{_e(title)}"><div><b>{_e(order.symbol)}</b> '
        f'<span class="side {_e(side)}">{_e(side)}</span> {_e(_qty(order.quantity))} @ '
        f"{_e(_qty(order.limit_price))}</div>"
        f'<div class="sub"><code>{_e(order.client_order_id[:8])}</code> · '
        f"{_e(_clock(line.start, with_date))}</div></div>"
    )
    return (
        f'<div class="tl-row" data-q="{_e(search)}" data-order="{_e(order.client_order_id)}">'
        f"{label}{_row_svg(line, axis, max_fill)}{_outcome_html(line)}</div>"
    )


def _timeline_html(
    orders: Sequence[Order], created: Mapping[str, datetime], journal_end: datetime
) -> str:
    lines = [_build_line(o, created.get(o.client_order_id), journal_end) for o in orders]
    axis = _axis_for(lines)
    fills = [m.quantity for line in lines for m in line.marks if m.kind in {"fill", "late-fill"}]
    max_fill = max(fills, default=Decimal(1))
    starts = [line.start for line in lines]
    with_date = bool(starts) and min(starts).date() != max(starts).date()
    groups: dict[str, list[_Line]] = {}
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
            f'<summary><span class="gname">{_name(name)}</span> '
            f'<span class="muted">{len(members)} order{"s" if len(members) != 1 else ""} · '
            f"success {_e(_pct(stats.success_rate))} · cancel reliability "
            f"{_e(_pct(stats.cancels.reliability))}</span>"
            f"{_state_bar(stats.by_state, stats.orders, height=8, cls='gbar')}</summary>"
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
        f" Long orders run past the axis's end ({_e(_duration(axis.span))}), marked »."
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


# -- charts ------------------------------------------------------------------------------------


def _state_bar(by_state: Mapping[str, int], total: int, *, height: int, cls: str) -> str:
    """A 100 % bar of how many orders are in each state."""
    if total == 0:
        return f'<svg class="{cls}" width="100%" height="{height}"></svg>'
    parts, x = [], 0.0
    names = [s for s in _STATES if by_state.get(s)] + sorted(set(by_state) - set(_STATES))
    for state in names:
        width = 100.0 * by_state[state] / total
        parts.append(
            f'<rect class="s-{_e(state)}" x="{_num(x)}%" width="{_num(width)}%" '
            f'height="{height}"><title>{_e(state)}: {by_state[state]}</title></rect>'
        )
        x += width
    return (
        f'<svg class="{cls}" width="100%" height="{height}" role="img" '
        f'aria-label="orders by state">{"".join(parts)}</svg>'
    )


def _meter(value: float | Decimal | None, cls: str) -> str:
    """A small horizontal bar for a ratio in 0..1."""
    width = 0.0 if value is None else max(0.0, min(1.0, float(value))) * 100
    return (
        f'<svg class="meter" width="100%" height="6"><rect class="meter-bg" width="100%" '
        f'height="6" rx="3"/><rect class="{cls}" width="{_num(width)}%" height="6" rx="3"/></svg>'
    )


@attrs.frozen
class _Bar:
    """One bar of a histogram: its parts (CSS class, count, tooltip) stacked bottom up."""

    label: str
    parts: tuple[tuple[str, int, str], ...]

    @property
    def total(self) -> int:
        return sum(count for _, count, _ in self.parts)


def _bar_chart(
    bars: Sequence[_Bar], *, edges: Sequence[str] | None, caption: str, max_labels: int = 12
) -> str:
    """Vertical bars; `edges` labels the bin boundaries (one more than bars; at most
    `max_labels` of them are written), else each bar is labelled under its middle."""
    width, height = 520, 230
    left, right, top, bottom = 36, 26, 20, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((b.total for b in bars), default=0)
    step = max(1, math.ceil(_nice_step(max(peak, 1), 4)))
    y_max = max(step, math.ceil(peak / step) * step)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" role="img" '
        f'aria-label="{_e(caption)}">'
    ]
    for i in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * i / y_max
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" '
            f'y2="{_num(y)}"/><text class="tick" x="{left - 6}" y="{_num(y + 4)}" '
            f'text-anchor="end">{i}</text>'
        )
    slot = plot_w / max(len(bars), 1)
    bar_w = slot * (0.86 if edges is not None else 0.7)
    for index, bar in enumerate(bars):
        x = left + slot * index + (slot - bar_w) / 2
        y = top + plot_h
        for cls, count, tip in bar.parts:
            if count == 0:
                continue
            h = plot_h * count / y_max
            y -= h
            out.append(
                f'<rect class="{_e(cls)}" x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" '
                f'height="{_num(h)}"><title>{_e(tip)}</title></rect>'
            )
        if bar.total:
            out.append(
                f'<text class="count" x="{_num(x + bar_w / 2)}" y="{_num(y - 5)}" '
                f'text-anchor="middle">{bar.total}</text>'
            )
        if edges is None:
            out.append(
                f'<text class="tick" x="{_num(left + slot * (index + 0.5))}" '
                f'y="{top + plot_h + 16}" text-anchor="middle">{_e(bar.label)}</text>'
            )
    if edges is not None:
        every = max(1, math.ceil(len(edges) / max_labels))
        for index, text in enumerate(edges):
            if index % every:
                continue
            x = left + slot * index
            out.append(
                f'<line class="axis" x1="{_num(x)}" x2="{_num(x)}" y1="{top + plot_h}" '
                f'y2="{top + plot_h + 4}"/><text class="tick" x="{_num(x)}" '
                f'y="{top + plot_h + 16}" text-anchor="middle">{_e(text)}</text>'
            )
    out.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
        f'y2="{top + plot_h}"/><text class="axis-title" x="{left + plot_w / 2}" '
        f'y="{height - 6}" text-anchor="middle">{_e(caption)}</text></svg>'
    )
    return "".join(out)


def _short_time(seconds: float) -> str:
    """A bin edge of a log-spaced time axis, in the unit that suits it."""
    if seconds == 0:
        return "0"
    if seconds < 60:
        return f"{seconds:g}\u2009s"
    if seconds < 3600:
        return f"{seconds / 60:g}\u2009min"
    return f"{seconds / 3600:g}\u2009h"


def _time_edges(values: Sequence[float]) -> tuple[list[float], bool]:
    """Bin edges for durations, and whether they are log-spaced.

    Evenly spaced bins when the values are of one magnitude; when they span more than 20x
    (a few slow cancels among fast ones, a GTC order among day orders), bins that widen in
    1-2-5 steps, so both ends stay readable.
    """
    top = max(values)
    positive = sorted(v for v in values if v > 0)
    low = percentile(positive, 0.1) if positive else None
    if low is None or top <= 20 * low:
        step = _time_step(top, 10) if top > 0 else 1.0
        bins = max(1, math.floor(top / step) + 1)
        return [i * step for i in range(bins + 1)], False
    first = next((i for i, e in enumerate(_TIME_STEPS) if e > min(positive)), 0)
    edges = [0.0, *(float(e) for e in _TIME_STEPS[first:] if e < top)]
    following = [float(e) for e in _TIME_STEPS if e > top] or [top * 2]
    return [*edges, following[0]], True


def _seconds_histogram(values: Sequence[float], cls: str, what: str, caption: str) -> str:
    if not values:
        return f'<p class="empty">No {_e(what)} in this journal.</p>'
    edges, log = _time_edges(values)
    counts = [0] * (len(edges) - 1)
    for value in values:
        index = next((i for i in range(len(counts)) if value < edges[i + 1]), len(counts) - 1)
        counts[index] += 1
    bars = [
        _Bar(
            label="",
            parts=(
                (
                    cls,
                    count,
                    f"{count} {what}: {_duration(edges[i])} to {_duration(edges[i + 1])}",
                ),
            ),
        )
        for i, count in enumerate(counts)
    ]
    step = edges[1] - edges[0]
    labels = [_short_time(e) if log else _tick(e, step) for e in edges]
    caption += " (bins widen in 1-2-5 steps)" if log else ""
    return _bar_chart(bars, edges=labels, caption=caption)


def _activity_chart(orders: Sequence[Order], created: Mapping[str, datetime]) -> str:
    """How many orders were created in each stretch of the session, by final state."""
    starts = [
        (created.get(o.client_order_id) or o.first_event_at, str(o.state))
        for o in orders
        if created.get(o.client_order_id) or o.first_event_at
    ]
    if not starts:
        return '<p class="empty">No order has an event yet.</p>'
    first = min(at for at, _ in starts if at is not None)
    last = max(at for at, _ in starts if at is not None)
    span = (last - first).total_seconds()
    step = _time_step(span, 24) if span > 0 else 1.0
    origin = first.timestamp() // step * step
    bins = max(1, math.floor((last.timestamp() - origin) / step) + 1)
    counts: list[Counter[str]] = [Counter() for _ in range(bins)]
    for at, state in starts:
        if at is not None:
            counts[min(bins - 1, int((at.timestamp() - origin) // step))][state] += 1
    with_date = first.date() != last.date()
    edge_times = [datetime.fromtimestamp(origin + i * step, tz=UTC) for i in range(bins + 1)]
    fmt = "%H:%M:%S" if step < 60 else "%H:%M"
    labels = [t.strftime(("%m-%d " if with_date else "") + fmt) for t in edge_times]
    bars = [
        _Bar(
            label="",
            parts=tuple(
                (
                    f"s-{state}",
                    counts[i][state],
                    f"{counts[i][state]} {state}, created {labels[i]}{_DASH}{labels[i + 1]}",
                )
                for state in _STATES
                if counts[i][state]
            ),
        )
        for i in range(bins)
    ]
    return _bar_chart(
        bars, edges=labels, caption="creation time (UTC), coloured by final state", max_labels=7
    )


_FILL_BINS: Final = (
    "0%",
    f"1{_DASH}25%",
    f"25{_DASH}50%",
    f"50{_DASH}75%",
    f"75{_DASH}99%",
    "100%",
)


def _fill_bin(ratio: Decimal) -> str:
    """The `_FILL_BINS` label of a filled share: nothing, a quarter, ..., not all, all."""
    if ratio <= 0:
        return _FILL_BINS[0]
    if ratio >= 1:
        return _FILL_BINS[-1]
    return _FILL_BINS[min(4, 1 + int((ratio - Decimal("0.000001")) * 4))]


def _fill_ratio_chart(orders: Sequence[Order]) -> str:
    if not orders:
        return '<p class="empty">No orders.</p>'
    counts: dict[str, Counter[str]] = {label: Counter() for label in _FILL_BINS}
    for order in orders:
        counts[_fill_bin(order.filled_quantity / order.quantity)][str(order.state)] += 1
    bars = [
        _Bar(
            label=label,
            parts=tuple(
                (f"s-{state}", counts[label][state], f"{counts[label][state]} {state}, {label}")
                for state in _STATES
                if counts[label][state]
            ),
        )
        for label in _FILL_BINS
    ]
    return _bar_chart(bars, edges=None, caption="share of each order's quantity filled")


def _time_to_fill(orders: Sequence[Order], created: Mapping[str, datetime]) -> list[float]:
    values = []
    for order in orders:
        history = order.history
        if order.state is not OrderState.FILLED or not history:
            continue
        done = next((e.at for e in history if e.dest is OrderState.FILLED), history[-1].at)
        start = created.get(order.client_order_id, history[0].at)
        values.append((done - min(start, history[0].at)).total_seconds())
    return values


# -- figures -----------------------------------------------------------------------------------


def _figure(name: str, value: object, text: str) -> str:
    """A figure the tests compare with `compute_stats`: its exact value rides along."""
    return f'<span class="fig" data-figure="{_e(name)}" data-value="{_e(value)}">{_e(text)}</span>'


def _count(name: str, value: int) -> str:
    return _figure(name, value, str(value))


def _ratio(name: str, value: float | Decimal | None) -> str:
    return _figure(name, value, _pct(value))


def _latency(name: str, stats: OrderStats, fraction: float) -> str:
    value = stats.cancels.latency(fraction)
    return _figure(name, value, _duration(value))


def _kpis(stats: OrderStats) -> str:
    cancels = stats.cancels
    working = stats.orders - stats.finished
    settled = cancels.requested - cancels.outstanding
    cards = [
        (
            "Orders",
            _count("orders", stats.orders),
            f"{_count('finished', stats.finished)} finished · {working} still working",
            _state_bar(stats.by_state, stats.orders, height=8, cls="kbar"),
        ),
        (
            "Success rate",
            _ratio("success_rate", stats.success_rate),
            f"{_count('filled', stats.by_state.get('filled', 0))} filled of "
            f"{stats.finished} finished",
            _meter(stats.success_rate, "s-filled"),
        ),
        (
            "Cancel reliability",
            _ratio("cancel_reliability", cancels.reliability),
            f"{_count('cancels_confirmed', cancels.confirmed)} confirmed of {settled} settled; "
            f"{_count('cancels_requested', cancels.requested)} requested, "
            f"{cancels.filled_first} filled first, {cancels.rejected} rejected, "
            f"{cancels.outstanding} outstanding",
            _meter(cancels.reliability, "s-cancelled"),
        ),
        (
            "Fill ratio",
            _ratio("fill_ratio", stats.fill_ratio),
            f"{_e(_qty(stats.filled_quantity))} of {_e(_qty(stats.ordered_quantity))} "
            "shares ordered",
            _meter(stats.fill_ratio, "s-partially_filled"),
        ),
        (
            "Cancel latency p50",
            _latency("cancel_latency_p50", stats, 0.5),
            f"p90 {_latency('cancel_latency_p90', stats, 0.9)} · "
            f"max {_latency('cancel_latency_max', stats, 1.0)}",
            "",
        ),
        (
            "Rejected",
            _count("rejected", stats.by_state.get("rejected", 0)),
            _e(_top_reason(stats)),
            "",
        ),
    ]
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><div class="kname">{_e(name)}</div><div class="kval">{value}</div>'
            f'<div class="ksub">{sub}</div>{extra}</div>'
            for name, value, sub, extra in cards
        )
        + "</div>"
    )


def _top_reason(stats: OrderStats) -> str:
    if not stats.reject_reasons:
        return "no rejection"
    reason, count = max(stats.reject_reasons.items(), key=lambda kv: (kv[1], kv[0]))
    return f"most often: {reason} ({count})"


def _strategy_table(orders: Sequence[Order]) -> str:
    rows = []
    for name, stats in stats_by_strategy(orders).items():
        cancels = stats.cancels
        settled = cancels.requested - cancels.outstanding
        cells = [
            _count("orders", stats.orders),
            _state_bar(stats.by_state, stats.orders, height=12, cls="sbar"),
            _ratio("success_rate", stats.success_rate) + _meter(stats.success_rate, "s-filled"),
            _ratio("cancel_reliability", cancels.reliability)
            + _meter(cancels.reliability, "s-cancelled")
            + f'<div class="tiny">{cancels.confirmed} of {settled}</div>',
            _ratio("fill_ratio", stats.fill_ratio) + _meter(stats.fill_ratio, "s-partially_filled"),
            _latency("cancel_latency_p50", stats, 0.5),
            _count("rejected", stats.by_state.get("rejected", 0)),
        ]
        classes = ["num", "barcell", "num", "num", "num", "num", "num"]
        rows.append(
            f'<tr data-strategy="{_e(name)}"><th scope="row">{_name(name)}</th>'
            + "".join(
                f'<td class="{c}">{cell}</td>' for c, cell in zip(classes, cells, strict=True)
            )
            + "</tr>"
        )
    return (
        '<div class="tablewrap"><table class="strategies"><thead><tr><th scope="col">strategy'
        '</th><th scope="col" class="num">orders</th><th scope="col">final states</th>'
        '<th scope="col" class="num">success rate</th><th scope="col" class="num">cancel '
        'reliability</th><th scope="col" class="num">fill ratio</th><th scope="col" '
        'class="num">cancel p50</th><th scope="col" class="num">rejected</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _reasons_html(stats: OrderStats) -> str:
    if not stats.reject_reasons:
        return '<p class="empty">No order was rejected.</p>'
    items = sorted(stats.reject_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    top = items[0][1]
    rows = "".join(
        f'<tr><td class="num">{count}</td><td class="reason">{_e(reason)}'
        f'<svg width="100%" height="5"><rect class="s-rejected" width="{_num(100 * count / top)}%"'
        ' height="5" rx="2"/></svg></td></tr>'
        for reason, count in items
    )
    return f'<table class="reasons"><tbody>{rows}</tbody></table>'


def _cancel_outcomes(stats: OrderStats) -> str:
    cancels = stats.cancels
    if cancels.requested == 0:
        return '<p class="empty">No cancel was requested.</p>'
    parts = [
        ("confirmed", cancels.confirmed, "s-cancelled"),
        ("filled first", cancels.filled_first, "s-filled"),
        ("rejected", cancels.rejected, "s-rejected"),
        ("outstanding", cancels.outstanding, "s-submitted"),
    ]
    rects, x = [], 0.0
    for name, count, cls in parts:
        if not count:
            continue
        width = 100.0 * count / cancels.requested
        rects.append(
            f'<rect class="{cls}" x="{_num(x)}%" width="{_num(width)}%" height="14">'
            f"<title>{name}: {count}</title></rect>"
        )
        x += width
    legend = "".join(
        f'<span><i class="sw {cls}"></i>{name} {count}</span>' for name, count, cls in parts
    )
    return (
        f'<p class="note">How the {cancels.requested} cancel '
        f"request{'s' if cancels.requested != 1 else ''} ended:</p>"
        f'<svg width="100%" height="14">{"".join(rects)}</svg>'
        f'<div class="legend small">{legend}</div>'
    )


# -- the lifecycle diagram ---------------------------------------------------------------------

# Where each state sits: (column centre x, row). Any state missing here (a state added to the
# machine later) goes in an extra row below, so it is still drawn.
_PLACES: Final = {
    "pending": (540.0, 0),
    "submitted": (540.0, 1),
    "partially_filled": (540.0, 2),
    "filled": (540.0, 3),
    "rejected": (150.0, 1),
    "cancelled": (960.0, 2),
}
_NAME_CH: Final = 8.6  # width of a character of a state's name (14 px bold)
_LABEL_CH: Final = 6.7  # width of a character of a label (11 px monospace)
_LINE_H: Final = 17.0
_HEAD_H: Final = 32.0
_PAD: Final = 12.0
_ROW_GAP: Final = 84.0


@attrs.frozen
class _Box:
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
_Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


def _layout(found: Sequence[Arrow]) -> dict[str, _Box]:
    states = list(dict.fromkeys([*_STATES, *(a.source for a in found), *(a.dest for a in found)]))
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
            [len(state) * _NAME_CH + 20, *(len(e.label) * _LABEL_CH + 22 for e in loops[state])]
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
        s: _Box(s, places[s][0], centre[places[s][1]], sizes[s][0], sizes[s][1], tuple(loops[s]))
        for s in states
    }


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


def _overlaps(a: _Rect, b: _Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@attrs.frozen
class _Route:
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
        return (
            f"M{_num(a[0])},{_num(a[1])} Q{_num(ctrl[0])},{_num(ctrl[1])} {_num(b[0])},{_num(b[1])}"
        )


def _clip(box: _Box, route: tuple[_Point, _Point, _Point], leaving: bool) -> float:
    """The curve parameter where it crosses `box`'s border (bisection)."""
    inside, outside = (0.0, 1.0) if leaving else (1.0, 0.0)
    for _ in range(30):
        mid = (inside + outside) / 2
        if box.contains(*_bezier(*route, mid), margin=3):
            inside = mid
        else:
            outside = mid
    return outside


def _route(arrow: Arrow, boxes: Mapping[str, _Box], drawn: Sequence[_Route]) -> _Route:
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
    return _Route(arrow, p0, c, p1, _clip(src, (p0, c, p1), True), _clip(dst, (p0, c, p1), False))


def _place_label(
    route: _Route, taken: list[_Rect], boxes: Iterable[_Box]
) -> tuple[float, float, str, _Rect]:
    """Where the label goes: on the curve if it fits there, else beside it."""
    lines = route.arrow.labels
    width = max(len(text) for text in lines) * _LABEL_CH + 10
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


def _edge_tspans(edge: Edge) -> str:
    """An edge's label with the trigger stressed; the text is exactly `edge.label`."""
    rest = edge.label[len(edge.trigger) :]
    return f'<tspan class="trig">{_e(edge.trigger)}</tspan>' + (
        f'<tspan class="guard">{_e(rest)}</tspan>' if rest else ""
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
    routes: list[_Route] = []
    moving = [a for a in found if a.source != a.dest]
    # Short straight arrows first, so the long ones bend around them.
    moving.sort(
        key=lambda a: math.hypot(
            boxes[a.source].cx - boxes[a.dest].cx, boxes[a.source].cy - boxes[a.dest].cy
        )
    )
    for arrow in moving:
        routes.append(_route(arrow, boxes, routes))
    body: list[str] = []
    labels: list[str] = []
    taken: list[_Rect] = []
    for route in routes:
        internal = " internal" if route.arrow.internal else ""
        body.append(
            f'<path class="edge{internal}" d="{route.path()}" marker-end="url(#lc-arrow)">'
            f"<title>{_e(route.arrow.source)} → {_e(route.arrow.dest)}</title></path>"
        )
        x, y, anchor, rect = _place_label(route, taken, boxes.values())
        taken.append(rect)
        labels.append(
            f'<rect class="halo" x="{_num(rect[0])}" y="{_num(rect[1])}" '
            f'width="{_num(rect[2] - rect[0])}" height="{_num(rect[3] - rect[1])}" rx="4"/>'
        )
        top = y - (len(route.arrow.edges) - 1) * 7.5 + 4
        for index, edge in enumerate(route.arrow.edges):
            labels.append(
                f'<text class="tr" x="{_num(x)}" y="{_num(top + 15 * index)}" '
                f'text-anchor="{anchor}">{_edge_tspans(edge)}</text>'
            )
    for box in boxes.values():
        body.append(_box_svg(box))
    initial = boxes.get(str(OrderState.PENDING)) or next(iter(boxes.values()))
    start = (initial.cx, initial.y0 - 40)
    body.append(
        f'<circle class="start" cx="{_num(start[0])}" cy="{_num(start[1])}" r="7"/>'
        f'<path class="edge" d="M{_num(start[0])},{_num(start[1] + 8)} L{_num(start[0])},'
        f'{_num(initial.y0 - 3)}" marker-end="url(#lc-arrow)"/>'
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
        f'<svg id="lifecycle" class="lifecycle" viewBox="{_num(x0)} {_num(y0)} {_num(width)} '
        f'{_num(height)}" width="{_num(width)}" role="img" aria-label="order lifecycle: '
        f'{sum(len(a.edges) for a in found)} transitions between {len(boxes)} states">'
        '<defs><marker id="lc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path class="arrowhead" '
        'd="M0,0 L10,5 L0,10 z"/></marker></defs>' + "".join(body) + "".join(labels) + "</svg>"
    )


def _box_svg(box: _Box) -> str:
    terminal = box.state in _TERMINAL
    parts = [
        f'<g class="state s-{_e(box.state)}"><title>{_e(box.state)}'
        f"{' (terminal)' if terminal else ''}</title>"
        f'<rect class="box" x="{_num(box.x0)}" y="{_num(box.y0)}" width="{_num(box.w)}" '
        f'height="{_num(box.h)}" rx="10"/>'
    ]
    if terminal:
        parts.append(
            f'<rect class="box inner" x="{_num(box.x0 + 4)}" y="{_num(box.y0 + 4)}" '
            f'width="{_num(box.w - 8)}" height="{_num(box.h - 8)}" rx="7"/>'
        )
    parts.append(
        f'<rect class="chip" x="{_num(box.x0 + 12)}" y="{_num(box.y0 + 11)}" width="10" '
        f'height="10" rx="2"/><text class="sname" x="{_num(box.x0 + 30)}" '
        f'y="{_num(box.y0 + 21)}">{_e(box.state)}</text>'
    )
    if box.loops:
        y = box.y0 + _HEAD_H
        parts.append(
            f'<line class="divider" x1="{_num(box.x0 + 8)}" x2="{_num(box.x0 + box.w - 8)}" '
            f'y1="{_num(y - 2)}" y2="{_num(y - 2)}"/>'
        )
        for index, edge in enumerate(box.loops):
            ly = y + 13 + _LINE_H * index
            lx = box.x0 + _PAD
            cls = "loop internal" if edge.internal else "loop"
            parts.append(
                f'<path class="{cls}" d="M{_num(lx + 11)},{_num(ly - 2)} a5,5 0 1 1 -3,-4.5"/>'
                f'<path class="loophead" d="M{_num(lx + 5.5)},{_num(ly - 9)} l4,1 l-3,3 z"/>'
                f'<text class="tr in-box{" internal" if edge.internal else ""}" '
                f'x="{_num(lx + 18)}" y="{_num(ly)}">{_edge_tspans(edge)}</text>'
            )
    parts.append("</g>")
    return "".join(parts)


# -- the page ----------------------------------------------------------------------------------


_CSS: Final = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2430;--muted:#667085;--line:#e3e7ee;--grid:#eef1f5;
--pending:#98a2b3;--submitted:#3b82f6;--partially_filled:#8b5cf6;--filled:#16a34a;
--cancelled:#f59e0b;--cancel-ink:#b45309;--rejected:#dc2626;--halo:rgba(255,255,255,.92)}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1a1f26;--ink:#e6e9ef;
--muted:#98a2b3;--line:#2c333d;--grid:#232a33;--cancel-ink:#fbbf24;--halo:rgba(26,31,38,.92)}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:20px 24px 48px}
header h1{font-size:24px;margin:0 0 2px}
header p{margin:0;color:var(--muted)}
nav{margin:10px 0 0;display:flex;gap:14px;flex-wrap:wrap}
nav a{color:var(--submitted);text-decoration:none;font-weight:600}
h2{font-size:18px;margin:34px 0 10px}
h3{font-size:14px;margin:0 0 8px}
code,.num,.tr{font-family:ui-monospace,"SF Mono",Menlo,Consolas,"DejaVu Sans Mono",monospace}
.muted{color:var(--muted)}
.note{color:var(--muted);margin:4px 0 10px;font-size:13px}
.empty{color:var(--muted);font-style:italic;padding:24px;text-align:center}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px;
margin-top:18px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px;
display:flex;flex-direction:column;gap:4px}
.kname{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
font-weight:600}
.kval{font-size:28px;font-weight:700;line-height:1.1}
.ksub{font-size:12px;color:var(--muted);flex:1}
.kbar,.gbar,.sbar{display:block;border-radius:4px;overflow:hidden}
.meter{display:block;margin-top:4px}
.meter-bg{fill:var(--grid)}
.s-pending{fill:var(--pending);background:var(--pending)}
.s-submitted{fill:var(--submitted);background:var(--submitted)}
.s-partially_filled{fill:var(--partially_filled);background:var(--partially_filled)}
.s-filled{fill:var(--filled);background:var(--filled)}
.s-cancelled{fill:var(--cancelled);background:var(--cancelled)}
.s-rejected{fill:var(--rejected);background:var(--rejected)}
.c-latency{fill:var(--cancelled)}
.c-fill{fill:var(--filled)}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px;color:var(--muted);
margin:6px 0 10px;align-items:center}
.legend span{display:inline-flex;align-items:center;gap:5px}
.legend.small{margin:6px 0 0}
.sw{display:inline-block;width:14px;height:10px;border-radius:2px}
.sw.hatch{background:repeating-linear-gradient(135deg,var(--cancelled) 0 2px,transparent 2px 5px);
outline:1px solid var(--cancel-ink)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:12px}
.chart{max-width:100%;height:auto;display:block;margin:0 auto}
.chart .grid,.tl-svg .grid{stroke:var(--grid);stroke-width:1}
.chart .axis{stroke:var(--muted);stroke-width:1}
.chart text{fill:var(--muted);font-size:11px}
.chart .count{fill:var(--ink);font-size:11px;font-weight:600}
.chart .axis-title{font-size:12px}
.tablewrap{overflow-x:auto}
table{border-collapse:collapse;width:100%}
.strategies th,.strategies td{padding:8px 10px;border-bottom:1px solid var(--line);
text-align:left;vertical-align:middle}
.strategies thead th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
.strategies th[scope=row]{font-weight:600;overflow-wrap:break-word;max-width:220px}
.strategies .num{text-align:right;white-space:nowrap;width:1%}
.strategies td.num .meter{width:90px;margin-left:auto}
.strategies .barcell{min-width:140px}
.tiny{font-size:11px;color:var(--muted)}
.reasons td{padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
.reasons .reason{word-break:break-word;width:100%}
.filter{margin:4px 0 10px}
.filter input{font:inherit;padding:6px 10px;border:1px solid var(--line);border-radius:8px;
width:min(420px,100%);background:var(--card);color:var(--ink)}
.tl-group{background:var(--card);border:1px solid var(--line);border-radius:10px;
margin:0 0 12px;overflow:hidden}
.tl-group summary{cursor:pointer;padding:10px 14px;display:grid;
grid-template-columns:auto 1fr minmax(80px,200px);gap:12px;align-items:center}
.tl-group summary .muted{font-size:12px}
.gname{font-weight:700;overflow-wrap:break-word}
.tl-group summary::-webkit-details-marker{display:none}
.gname::before{content:"\\25BE\\00A0";color:var(--muted)}
details:not([open]) .gname::before{content:"\\25B8\\00A0"}
.tl-scroll{max-height:70vh;overflow-y:auto;border-top:1px solid var(--line)}
.tl-row{display:grid;grid-template-columns:210px minmax(0,1fr) 190px;gap:0 14px;
align-items:center;padding:2px 14px;border-bottom:1px solid var(--grid)}
.tl-row:hover{background:var(--grid)}
.tl-axis{position:sticky;top:0;z-index:2;background:var(--card);border-bottom:1px solid
var(--line);font-size:12px}
.tl-axis:hover{background:var(--card)}
.tl-axis text{fill:var(--muted);font-size:11px}
.lab{font-size:13px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;line-height:1.25}
.lab .sub{font-size:11px;color:var(--muted)}
.side{font-size:11px;font-weight:700;text-transform:uppercase}
.side.buy{color:var(--filled)}
.side.sell{color:var(--rejected)}
.out{font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.pill{display:inline-block;padding:0 6px;border-radius:9px;color:#fff;font-size:11px;
font-weight:600;line-height:17px}
.pill.s-cancelled{color:#3b2600}
.tl-svg{display:block;overflow:visible}
.tl-svg .track{stroke:var(--grid);stroke-width:2}
.tl-svg .cancel-wait{fill:url(#hatch);stroke:var(--cancel-ink);stroke-width:.8}
.tl-svg .bracket{stroke:var(--cancel-ink);stroke-width:1.4}
.tl-svg .latency{fill:var(--cancel-ink);font-size:10.5px;font-weight:700}
.m-fill circle,.m-fill-ic{fill:var(--filled);fill-opacity:.8;stroke:#fff;stroke-width:1.2}
.m-late-fill circle{fill:var(--cancelled);stroke:var(--filled);stroke-width:2}
.m-ask path,.m-ask-ic{fill:var(--cancel-ink)}
.m-ask line{stroke:var(--cancel-ink);stroke-width:1.2;stroke-dasharray:2 2}
.m-cancel line{stroke:var(--cancel-ink);stroke-width:2}
.m-cancel-rejected path{fill:var(--rejected)}
.m-correct path{fill:var(--card);stroke:var(--ink);stroke-width:1.3}
.end rect,.end path,.end-ic{stroke:var(--card);stroke-width:1}
.end.s-rejected path,.end-x{stroke:var(--rejected);stroke-width:2.6;fill:none}
.more path{stroke:var(--muted);stroke-width:1.6;fill:none}
.diagram{overflow-x:auto}
.lifecycle{display:block;max-width:100%;height:auto;margin:0 auto}
.lifecycle .box{fill:var(--card);stroke:var(--ink);stroke-width:1.4}
.lifecycle .state .chip{stroke:none}
.lifecycle .sname{font-size:14px;font-weight:700;fill:var(--ink)}
.lifecycle .divider{stroke:var(--line)}
.lifecycle .edge{fill:none;stroke:var(--muted);stroke-width:1.5}
.lifecycle .arrowhead{fill:var(--muted)}
.lifecycle .start{fill:var(--ink)}
.lifecycle .halo{fill:var(--halo)}
.lifecycle .tr{font-size:11px;fill:var(--ink)}
.lifecycle .tr .trig{font-weight:700}
.lifecycle .tr .guard{fill:var(--muted)}
.lifecycle .tr.internal .trig{font-weight:400}
.lifecycle .loop{fill:none;stroke:var(--ink);stroke-width:1.3}
.lifecycle .loop.internal{stroke:var(--muted);stroke-dasharray:2 1.5}
.lifecycle .loophead{fill:var(--muted)}
.lifecycle .state rect.chip{fill:inherit}
[hidden]{display:none!important}
@media (max-width:860px){main{padding:14px 12px 40px}
.tl-row{grid-template-columns:168px minmax(0,1fr) 96px;gap:0 8px;padding:2px 8px}
.lab{font-size:12px}
.out .detail{display:none}
.tl-group summary{grid-template-columns:1fr;gap:4px}
.kval{font-size:24px}
.strategies th,.strategies td{padding:6px 5px}
.strategies thead th{white-space:normal}
.strategies td.num .meter{width:56px}
.strategies .barcell{min-width:70px}
.strategies th[scope=row]{overflow-wrap:break-word}
.out{white-space:normal;line-height:1.2}
.out .num{display:block;font-size:11px}
.diagram svg{min-width:700px}}
"""

_JS: Final = """
(function(){
var box=document.getElementById('tl-filter');if(!box){return;}
var rows=document.querySelectorAll('.tl-row[data-q]');var count=document.getElementById('tl-count');
function run(){var q=box.value.trim().toLowerCase();var shown=0;
for(var i=0;i<rows.length;i++){var hit=!q||rows[i].getAttribute('data-q').indexOf(q)>=0;
rows[i].hidden=!hit;if(hit){shown++;}}
count.textContent=q?(shown+' of '+rows.length+' orders'):'';
if(q){var groups=document.querySelectorAll('details.tl-group');
for(var j=0;j<groups.length;j++){if(groups[j].querySelector('.tl-row[data-q]:not([hidden])')){
groups[j].open=true;}}}}
box.addEventListener('input',run);
})();
"""

# Patterns the timeline rows refer to (a page holds them once).
_DEFS: Final = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="hatch" width="5" height="5" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="5" height="5" fill="#fef3c7"/>'
    '<rect width="2" height="5" fill="#f59e0b"/></pattern></defs></svg>'
)


def render_report(
    orders: Iterable[Order],
    *,
    source: str | None = None,
    created: Mapping[str, datetime] | None = None,
) -> str:
    """The report page for `orders` (e.g. `AuditJournal.replay(path).values()`).

    `source` names the journal in the page's title; `created` maps a client order id to when
    its intent was journalled (before its first lifecycle event), so that a timeline starts
    there. Deterministic: the same orders give the same page.
    """
    found = sorted(orders, key=lambda o: (o.first_event_at or _EPOCH, o.client_order_id))
    created = dict(created or {})
    stats = compute_stats(found)
    title = "Order report" + (f" — {source}" if source else "")
    times = [e.at for o in found for e in o.history] + [
        created[o.client_order_id] for o in found if o.client_order_id in created
    ]
    if times:
        first, last = min(times), max(times)
        span = (
            f"{_clock(first, True)} → {_clock(last, first.date() != last.date())} UTC "
            f"({_duration((last - first).total_seconds())})"
        )
    else:
        span = "no events"
    strategies = len({o.strategy for o in found})
    intro = (
        f"{stats.orders} order{'s' if stats.orders != 1 else ''} · {strategies} "
        f"strateg{'ies' if strategies != 1 else 'y'} · {span}"
    )
    if found:
        content = _content(found, stats, created, max(times, default=_EPOCH))
    else:
        content = (
            '<section class="card"><p class="empty" id="no-orders">This journal holds no '
            "orders: nothing to chart yet. Run the bot (or <code>orders demo</code>) and "
            "report again.</p></section>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{_DEFS}<main>"
        f"<header><h1>{_e(title)}</h1><p>{_e(intro)}</p>"
        + (
            '<nav><a href="#figures">Figures</a><a href="#strategies">Strategies</a>'
            '<a href="#distributions">Distributions</a><a href="#timeline">Timeline</a>'
            '<a href="#lifecycle-section">Lifecycle</a></nav>'
            if found
            else ""
        )
        + f"</header>{content}"
        '<section id="lifecycle-section"><h2>Lifecycle</h2><div class="card diagram">'
        f"{lifecycle_svg()}"
        '<div class="legend"><span>Arrows move an order to another state. Inside a box: '
        'the transitions that keep it there</span><span><svg width="16" height="14">'
        '<circle cx="8" cy="7" r="5" fill="none" stroke="currentColor"/></svg>re-enters '
        '(on_enter hooks run)</span><span><svg width="16" height="14"><circle cx="8" cy="7" '
        'r="5" fill="none" stroke="currentColor" stroke-dasharray="2 1.5"/></svg>stays '
        "(internal)</span><span>double border: terminal state</span></div></div></section>"
        f"</main><script>{_JS}</script></body></html>\n"
    )


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _content(
    found: Sequence[Order],
    stats: OrderStats,
    created: Mapping[str, datetime],
    journal_end: datetime,
) -> str:
    latencies = list(stats.cancels.latencies_seconds)
    cards = [
        _card(
            "Orders over time",
            "Orders created in each stretch of the journal, by how they ended.",
            _activity_chart(found, created),
        ),
        _card(
            "Fill ratio per order",
            "Filled quantity over ordered quantity, each order coloured by its state.",
            _fill_ratio_chart(found),
        ),
        _card(
            "Cancel latency",
            "From the cancel request to the broker's confirmation, per confirmed cancel.",
            _seconds_histogram(
                latencies, "c-latency", "confirmed cancels", "request to confirmation"
            ),
        ),
        _card(
            "Time to fill",
            "From creation to the last fill, per filled order.",
            _seconds_histogram(
                _time_to_fill(found, created), "c-fill", "filled orders", "creation to last fill"
            ),
        ),
        _card("Cancel requests", "", _cancel_outcomes(stats)),
        _card("Reject reasons", "", _reasons_html(stats)),
    ]
    return (
        f'<section id="figures">{_kpis(stats)}</section>'
        '<section id="strategies"><h2>By strategy</h2><div class="card">'
        f"{_strategy_table(found)}"
        '<div class="legend small">'
        + "".join(f'<span><i class="sw s-{s}"></i>{s}</span>' for s in _STATES)
        + "</div></div></section>"
        f'<section id="distributions"><h2>Distributions</h2><div class="grid2">{"".join(cards)}'
        "</div></section>"
        '<section id="timeline"><h2>Timeline</h2>'
        f"{_timeline_html(found, created, journal_end)}</section>"
    )


def _card(title: str, note: str, body: str) -> str:
    text = f'<p class="note">{_e(note)}</p>' if note else ""
    return f'<div class="card"><h3>{_e(title)}</h3>{text}{body}</div>'


def _intent_times(path: Path) -> dict[str, datetime]:
    """When each order's intent was journalled, read leniently: a line this cannot read only
    costs the timeline its pending stretch (`AuditJournal.replay` has checked the file)."""
    times: dict[str, datetime] = {}
    try:
        data = path.read_bytes()
    except OSError:
        return times
    for line in data.split(b"\n"):
        if b'"intent"' not in line:
            continue
        try:
            record: Any = orjson.loads(line)
            if record.get("event") != "intent":
                continue
            at = datetime.fromisoformat(record["ts"])
            if at.tzinfo is not None:
                times.setdefault(str(record["client_order_id"]), at)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            continue
    return times


def write_report(journal: Path, out: Path) -> OrderStats:
    """Replay `journal` and write its report page to `out` (replaced whole, never half
    written). Returns the journal's figures, for a summary line. Raises `JournalError` for a
    journal that cannot be replayed, as `orders stats` does."""
    journal, out = Path(journal), Path(out)
    orders = AuditJournal.replay(journal)
    page = render_report(orders.values(), source=journal.name, created=_intent_times(journal))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(temp, 0o644)  # a page to open and share, not a secret (mkstemp makes 0600)
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return compute_stats(orders.values())
