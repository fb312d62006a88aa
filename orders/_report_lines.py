"""A journal's orders laid out in time: what the report's timeline draws.

Each order becomes a `Line` in seconds since it was created: the stretches it spent in each
state, its fills and cancel marks, and when its cancel was asked and confirmed. Kept apart from
the drawing so that what an order did is decided once, whatever the page makes of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from orders._report_text import clock, duration, qty, time_step
from orders.lifecycle import Order
from orders.model import TERMINAL_STATES, OrderState
from orders.stats import percentile

__all__ = ["Axis", "Line", "Mark", "axis_for", "build_line", "intent_times"]

_ZERO: Final = Decimal(0)


@attrs.frozen
class _Segment:
    state: str
    start: float
    end: float


@attrs.frozen
class Mark:
    kind: str
    at: float
    tip: str
    quantity: Decimal = _ZERO


@attrs.frozen
class Line:
    """One order laid out in seconds since it was created."""

    order: Order
    start: datetime
    duration: float
    segments: tuple[_Segment, ...]
    marks: tuple[Mark, ...]
    cancel_asked: float | None
    cancel_done: float | None
    open_ended: bool


def build_line(order: Order, created: datetime | None, journal_end: datetime) -> Line:
    history = order.history
    first = history[0].at if history else (created or journal_end)
    start = first if created is None else min(created, first)

    def rel(at: datetime) -> float:
        return (at - start).total_seconds()

    segments: list[_Segment] = []
    marks: list[Mark] = []
    state = str(history[0].source) if history else str(order.state)
    since = 0.0
    asked = done = None
    filled = _ZERO
    for event in history:
        at = rel(event.at)
        when = f"{clock(event.at, False)} (+{duration(at)})"
        if event.trigger == "fill" and event.execution is not None:
            filled += event.execution.quantity
            late = str(event.source) == str(OrderState.CANCELLED)
            marks.append(
                Mark(
                    "late-fill" if late else "fill",
                    at,
                    f"{'late ' if late else ''}fill {qty(event.execution.quantity)} @ "
                    f"{qty(event.execution.price)} at {when}; {qty(filled)}/"
                    f"{qty(order.quantity)} filled",
                    event.execution.quantity,
                )
            )
        elif event.trigger == "request_cancel":
            asked = at if asked is None else asked
            marks.append(Mark("ask", at, f"cancel requested at {when}"))
        elif event.trigger == "cancel":
            done = at if done is None else done
            because = f": {event.reason}" if event.reason else ""
            marks.append(Mark("cancel", at, f"cancel confirmed at {when}{because}"))
        elif event.trigger == "cancel_rejected":
            because = f": {event.reason}" if event.reason else ""
            marks.append(Mark("cancel-rejected", at, f"cancel refused at {when}{because}"))
        elif event.trigger == "reject":
            because = f": {event.reason}" if event.reason else ""
            marks.append(Mark("reject", at, f"rejected at {when}{because}"))
        elif event.trigger == "correct_fill":
            marks.append(Mark("correct", at, f"fills corrected by the broker at {when}"))
        if str(event.dest) != state:
            segments.append(_Segment(state, since, at))
            state, since = str(event.dest), at
    open_ended = state not in TERMINAL_STATES
    end = rel(journal_end) if open_ended else (rel(history[-1].at) if history else 0.0)
    segments.append(_Segment(state, since, max(since, end)))
    return Line(
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
class Axis:
    """Seconds since an order's creation, shared by every timeline row."""

    span: float
    step: float

    def x(self, seconds: float) -> float:
        """Percent of the track's width."""
        return max(0.0, min(100.0, 100.0 * seconds / self.span))

    def ticks(self) -> list[float]:
        count = round(self.span / self.step)
        return [i * self.step for i in range(count + 1)]


def axis_for(lines: Sequence[Line]) -> Axis:
    durations = [line.duration for line in lines]
    top = max(durations, default=0.0)
    p90 = percentile(durations, 0.9) or 0.0
    # One very long order should not squash every other row to a sliver: past 3x the 90th
    # percentile, the axis stops at 1.5x it and longer rows end in an arrow.
    span = top if top <= 3 * p90 or p90 == 0 else 1.5 * p90
    step = time_step(span, 6)
    return Axis(span=max(step, math.ceil(span / step - 1e-9) * step), step=step)


def intent_times(path: Path) -> dict[str, datetime]:
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
