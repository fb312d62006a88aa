"""The report's SVG charts: state bars, meters, and the distributions (orders over time, fill
ratios, cancel latency, time to fill).

Drawn in Python, because the page must open from disk, mailed or archived, with no network
and no charting library. The headline figures say how a journal went on average; the
distributions say whether a few slow cancels or a burst of rejections hide behind it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import attrs

from orders._report_text import (
    DASH,
    STATES,
    TIME_STEPS,
    duration,
    esc,
    nice_step,
    num,
    tick_label,
    time_step,
)
from orders.lifecycle import Order
from orders.model import OrderState
from orders.stats import percentile

__all__ = [
    "activity_chart",
    "fill_ratio_chart",
    "meter",
    "seconds_histogram",
    "state_bar",
    "time_to_fill",
]


def state_bar(by_state: Mapping[str, int], total: int, *, height: int, cls: str) -> str:
    """A 100 % bar of how many orders are in each state."""
    if total == 0:
        return f'<svg class="{cls}" width="100%" height="{height}"></svg>'
    parts, x = [], 0.0
    names = [s for s in STATES if by_state.get(s)] + sorted(set(by_state) - set(STATES))
    for state in names:
        width = 100.0 * by_state[state] / total
        parts.append(
            f'<rect class="s-{esc(state)}" x="{num(x)}%" width="{num(width)}%" '
            f'height="{height}"><title>{esc(state)}: {by_state[state]}</title></rect>'
        )
        x += width
    return (
        f'<svg class="{cls}" width="100%" height="{height}" role="img" '
        f'aria-label="orders by state">{"".join(parts)}</svg>'
    )


def meter(value: float | Decimal | None, cls: str) -> str:
    """A small horizontal bar for a ratio in 0..1."""
    width = 0.0 if value is None else max(0.0, min(1.0, float(value))) * 100
    return (
        f'<svg class="meter" width="100%" height="6"><rect class="meter-bg" width="100%" '
        f'height="6" rx="3"/><rect class="{cls}" width="{num(width)}%" height="6" rx="3"/></svg>'
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
    step = max(1, math.ceil(nice_step(max(peak, 1), 4)))
    y_max = max(step, math.ceil(peak / step) * step)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" role="img" '
        f'aria-label="{esc(caption)}">'
    ]
    for i in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * i / y_max
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{num(y)}" '
            f'y2="{num(y)}"/><text class="tick" x="{left - 6}" y="{num(y + 4)}" '
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
                f'<rect class="{esc(cls)}" x="{num(x)}" y="{num(y)}" width="{num(bar_w)}" '
                f'height="{num(h)}"><title>{esc(tip)}</title></rect>'
            )
        if bar.total:
            out.append(
                f'<text class="count" x="{num(x + bar_w / 2)}" y="{num(y - 5)}" '
                f'text-anchor="middle">{bar.total}</text>'
            )
        if edges is None:
            out.append(
                f'<text class="tick" x="{num(left + slot * (index + 0.5))}" '
                f'y="{top + plot_h + 16}" text-anchor="middle">{esc(bar.label)}</text>'
            )
    if edges is not None:
        every = max(1, math.ceil(len(edges) / max_labels))
        for index, text in enumerate(edges):
            if index % every:
                continue
            x = left + slot * index
            out.append(
                f'<line class="axis" x1="{num(x)}" x2="{num(x)}" y1="{top + plot_h}" '
                f'y2="{top + plot_h + 4}"/><text class="tick" x="{num(x)}" '
                f'y="{top + plot_h + 16}" text-anchor="middle">{esc(text)}</text>'
            )
    out.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
        f'y2="{top + plot_h}"/><text class="axis-title" x="{left + plot_w / 2}" '
        f'y="{height - 6}" text-anchor="middle">{esc(caption)}</text></svg>'
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
        step = time_step(top, 10) if top > 0 else 1.0
        bins = max(1, math.floor(top / step) + 1)
        return [i * step for i in range(bins + 1)], False
    first = next((i for i, e in enumerate(TIME_STEPS) if e > min(positive)), 0)
    edges = [0.0, *(float(e) for e in TIME_STEPS[first:] if e < top)]
    following = [float(e) for e in TIME_STEPS if e > top] or [top * 2]
    return [*edges, following[0]], True


def seconds_histogram(values: Sequence[float], cls: str, what: str, caption: str) -> str:
    if not values:
        return f'<p class="empty">No {esc(what)} in this journal.</p>'
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
                    f"{count} {what}: {duration(edges[i])} to {duration(edges[i + 1])}",
                ),
            ),
        )
        for i, count in enumerate(counts)
    ]
    step = edges[1] - edges[0]
    labels = [_short_time(e) if log else tick_label(e, step) for e in edges]
    caption += " (bins widen in 1-2-5 steps)" if log else ""
    return _bar_chart(bars, edges=labels, caption=caption)


def activity_chart(orders: Sequence[Order], created: Mapping[str, datetime]) -> str:
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
    step = time_step(span, 24) if span > 0 else 1.0
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
                    f"{counts[i][state]} {state}, created {labels[i]}{DASH}{labels[i + 1]}",
                )
                for state in STATES
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
    f"1{DASH}25%",
    f"25{DASH}50%",
    f"50{DASH}75%",
    f"75{DASH}99%",
    "100%",
)


def _fill_bin(ratio: Decimal) -> str:
    """The `_FILL_BINS` label of a filled share: nothing, a quarter, ..., not all, all."""
    if ratio <= 0:
        return _FILL_BINS[0]
    if ratio >= 1:
        return _FILL_BINS[-1]
    return _FILL_BINS[min(4, 1 + int((ratio - Decimal("0.000001")) * 4))]


def fill_ratio_chart(orders: Sequence[Order]) -> str:
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
                for state in STATES
                if counts[label][state]
            ),
        )
        for label in _FILL_BINS
    ]
    return _bar_chart(bars, edges=None, caption="share of each order's quantity filled")


def time_to_fill(orders: Sequence[Order], created: Mapping[str, datetime]) -> list[float]:
    values = []
    for order in orders:
        history = order.history
        if order.state is not OrderState.FILLED or not history:
            continue
        done = next((e.at for e in history if e.dest is OrderState.FILLED), history[-1].at)
        start = created.get(order.client_order_id, history[0].at)
        values.append((done - min(start, history[0].at)).total_seconds())
    return values
