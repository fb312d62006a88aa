"""The JSON documents `orders stats --json` and `orders replay --json` print, for tools.

Money and quantities are exact decimals in strings and times ISO 8601 in UTC, because a tool
that reads a float or a local time would read a different figure from the one journalled.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

from orders._cli_tables import by_frequency
from orders.lifecycle import Order
from orders.model import OrderState
from orders.stats import OrderStats

__all__ = ["order_json", "stats_json", "write_json"]


def write_json(out: TextIO, document: dict[str, Any]) -> None:
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _decimal(value: Decimal) -> str:
    """Exact, and never in exponent form (`1E+2` reads as a float to some tools)."""
    return format(value, "f")


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def stats_json(stats: OrderStats) -> dict[str, Any]:
    cancels = stats.cancels
    return {
        "orders": stats.orders,
        "finished": stats.finished,
        "by_state": {str(s): stats.by_state.get(str(s), 0) for s in OrderState},
        "success_rate": stats.success_rate,
        "ordered_quantity": _decimal(stats.ordered_quantity),
        "filled_quantity": _decimal(stats.filled_quantity),
        "fill_ratio": None if stats.fill_ratio is None else float(stats.fill_ratio),
        "cancels": {
            "requested": cancels.requested,
            "confirmed": cancels.confirmed,
            "filled_first": cancels.filled_first,
            "rejected": cancels.rejected,
            "outstanding": cancels.outstanding,
            "reliability": cancels.reliability,
            "latency_seconds": {
                "p50": cancels.latency(0.5),
                "p90": cancels.latency(0.9),
                "max": cancels.latency(1.0),
            },
        },
        "reject_reasons": dict(by_frequency(stats.reject_reasons)),
    }


def order_json(order: Order) -> dict[str, Any]:
    average = order.average_fill_price
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "strategy": order.strategy,
        "symbol": order.symbol,
        "side": str(order.side),
        "quantity": _decimal(order.quantity),
        "limit_price": _decimal(order.limit_price),
        "time_in_force": str(order.time_in_force),
        "state": str(order.state),
        "filled_quantity": _decimal(order.filled_quantity),
        "filled_notional": _decimal(order.filled_notional),
        "average_fill_price": None if average is None else _decimal(average),
        "cancel_requested": order.cancel_requested,
        "reason": order.reason,
        "first_event_at": _time(order.first_event_at),
        "last_event_at": _time(order.last_event_at),
        "executions": [
            {
                "execution_id": e.execution_id,
                "quantity": _decimal(e.quantity),
                "price": _decimal(e.price),
                "at": _time(e.timestamp),
            }
            for e in order.executions
        ],
        "history": [
            {
                "at": _time(e.at),
                "trigger": e.trigger,
                "source": str(e.source),
                "dest": str(e.dest),
                "reason": e.reason,
            }
            for e in order.history
        ],
    }
