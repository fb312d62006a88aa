"""How the report writes a value: escaped for HTML, rounded for SVG, timed for people.

Every part of the page formats figures the same way (a ratio as `orders stats` prints it, a
quantity never in exponent form, a duration in the unit that reads best), so those rules live
once, here.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from decimal import Decimal
from typing import Final

from orders.model import OrderState

__all__ = [
    "DASH",
    "STATES",
    "TIME_STEPS",
    "breakable",
    "clock",
    "duration",
    "esc",
    "nice_step",
    "num",
    "pct",
    "qty",
    "tick_label",
    "time_step",
]

STATES: Final = tuple(str(s) for s in OrderState)
DASH: Final = "\u2013"  # what a figure shows when there is nothing to compute it from


def esc(value: object) -> str:
    """`value` as HTML text or attribute value (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def breakable(value: str) -> str:
    """A strategy name as HTML that may wrap after its underscores, not inside its words."""
    return esc(value).replace("_", "_<wbr>")


def pct(value: float | Decimal | None) -> str:
    """A ratio as `orders stats` prints it."""
    return DASH if value is None else f"{float(value):.1%}"


def num(value: float) -> str:
    """A coordinate for SVG: short, no exponent."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def qty(value: Decimal) -> str:
    """A share count or price as the journal writes it, never in exponent form."""
    return f"{value:f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def tick_label(seconds: float, step: float) -> str:
    """An axis label: the unit follows the step (`30 s`, `5 min`, `2 h`)."""
    if seconds == 0:
        return "0"
    unit, name = (3600, "h") if step >= 3600 else (60, "min") if step >= 60 else (1, "s")
    return f"{seconds / unit:g}\u2009{name}"


# Steps a time axis may take, in seconds: round numbers of seconds, minutes and hours.
TIME_STEPS: Final = (
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


def time_step(span: float, target: int) -> float:
    """A round step of time that cuts `span` seconds into about `target` parts."""
    raw = span / target
    for step in TIME_STEPS:
        if raw <= step:
            return float(step)
    return nice_step(span / 86400, target) * 86400


def clock(at: datetime, with_date: bool) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def nice_step(span: float, target: int) -> float:
    """A 1-2-5 step that cuts `span` into about `target` parts."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10
