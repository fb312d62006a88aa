"""Figures a person judges a bot by, computed from orders (typically replayed from a journal).

Pure: it reads orders and their histories, nothing else, so the same numbers come out of a live
manager and of a journal read back a week later.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final

import attrs

from orders.lifecycle import Order
from orders.model import TERMINAL_STATES, OrderState

__all__ = ["CancelStats", "OrderStats", "compute_stats", "percentile", "stats_by_strategy"]

_ZERO: Final = Decimal(0)


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (fraction in 0..1) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[min(len(ordered), int(rank)) - 1]


@attrs.frozen
class CancelStats:
    """How cancel requests ended: confirmed, beaten by a fill, or still open."""

    requested: int = 0
    confirmed: int = 0
    filled_first: int = 0
    rejected: int = 0
    outstanding: int = 0
    latencies_seconds: tuple[float, ...] = ()

    @property
    def reliability(self) -> float | None:
        """Confirmed cancels over cancels whose outcome is known (not still outstanding)."""
        settled = self.requested - self.outstanding
        return None if settled == 0 else self.confirmed / settled

    def latency(self, fraction: float) -> float | None:
        return percentile(list(self.latencies_seconds), fraction)


@attrs.frozen
class OrderStats:
    """Counts, ratios and reasons for a set of orders."""

    orders: int
    by_state: Mapping[str, int]
    ordered_quantity: Decimal
    filled_quantity: Decimal
    cancels: CancelStats
    reject_reasons: Mapping[str, int]

    @property
    def finished(self) -> int:
        return sum(self.by_state.get(str(s), 0) for s in TERMINAL_STATES)

    @property
    def success_rate(self) -> float | None:
        """Filled orders over finished orders."""
        filled = self.by_state.get(OrderState.FILLED, 0)
        return None if self.finished == 0 else filled / self.finished

    @property
    def fill_ratio(self) -> Decimal | None:
        """Filled quantity over ordered quantity."""
        if self.ordered_quantity == 0:
            return None
        return self.filled_quantity / self.ordered_quantity


def _cancel_outcome(order: Order) -> float | bool | None:
    """None when no cancel was requested; for a confirmed cancel, the seconds from request to
    confirmation; else True (the request's outcome is told by the order's state)."""
    history = order.history
    asked = next((e for e in history if e.trigger == "request_cancel"), None)
    if asked is None:
        return None
    if order.state is not OrderState.CANCELLED:
        return True
    done = next(e for e in history if e.trigger == "cancel")
    return (done.at - asked.at).total_seconds()


def compute_stats(orders: Iterable[Order]) -> OrderStats:
    """Stats over `orders`."""
    by_state: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    ordered = filled = _ZERO
    count = requested = confirmed = filled_first = rejected = outstanding = 0
    latencies: list[float] = []
    for order in orders:
        count += 1
        by_state[str(order.state)] += 1
        ordered += order.quantity
        filled += order.filled_quantity
        if order.state is OrderState.REJECTED:
            reasons[order.reason or "(no reason given)"] += 1
        outcome = _cancel_outcome(order)
        if outcome is None:
            continue
        requested += 1
        if isinstance(outcome, float):
            confirmed += 1
            latencies.append(outcome)
        elif order.state is OrderState.FILLED:
            filled_first += 1
        elif order.state is OrderState.REJECTED:
            rejected += 1
        else:
            outstanding += 1
    return OrderStats(
        orders=count,
        by_state=dict(by_state),
        ordered_quantity=ordered,
        filled_quantity=filled,
        cancels=CancelStats(
            requested=requested,
            confirmed=confirmed,
            filled_first=filled_first,
            rejected=rejected,
            outstanding=outstanding,
            latencies_seconds=tuple(latencies),
        ),
        reject_reasons=dict(reasons),
    )


def stats_by_strategy(orders: Iterable[Order]) -> dict[str, OrderStats]:
    """`compute_stats` per strategy name, sorted by name."""
    groups: dict[str, list[Order]] = {}
    for order in orders:
        groups.setdefault(order.strategy, []).append(order)
    return {name: compute_stats(groups[name]) for name in sorted(groups)}
