"""The simulated broker's state file: the whole broker as JSON (Decimals as strings), written
atomically so that a crash leaves the old file or the new one, never half of either.

A paper bot resumes from this file, so it is the simulated account: what it holds must come
back exactly (cash, positions, every order's views, the random generators' positions, the
clock), or a resumed bot would trade against a different broker than the one it left.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from orders.gateways._paper_book import Book, Books
from orders.gateways._paper_clock import BrokerTime, SimulatedClock
from orders.gateways._paper_faults import FaultPlan
from orders.gateways._paper_market import Account, Market
from orders.model import BrokerOrder, Execution, to_decimal

__all__ = [
    "FORMAT_VERSION",
    "Saved",
    "book_record",
    "dump",
    "head",
    "parse",
    "record_key",
    "relative_to",
    "render",
    "same_file",
]

# 2: orders keep their time in force and placement time, snapshots their cancel reason, and
# the file names the journal it belongs to. 3: the file of an opened broker is followed by its
# change file (see _paper_changes.py); a release that knows only 2 must refuse it, not drop
# the changes. A file of version 2 is still read.
FORMAT_VERSION: Final = 3
_READABLE_VERSIONS: Final = frozenset({2, FORMAT_VERSION})
_PRETTY: Final = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def render(value: Any, *, pretty: bool = False) -> bytes:
    """`value` as JSON, by orjson (the state file is rewritten whole, and orjson writes it at
    a twentieth of the standard library's cost with an indent); by the standard library, with
    escapes, for what orjson refuses: a lone surrogate in a message, a seed past 64 bits."""
    try:
        return orjson.dumps(value, option=_PRETTY if pretty else 0)
    except TypeError:
        text = json.dumps(value, indent=2 if pretty else None, sort_keys=pretty)
        return text.encode("ascii")


def same_file(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def relative_to(path: Path, directory: Path) -> str:
    """`path` as seen from `directory`: unchanged when both move together."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(directory))


# -- writing ------------------------------------------------------------------------------------


def dump(head_fields: dict[str, Any], books: Books) -> dict[str, Any]:
    """The broker's state as plain JSON values: its `head` and every order."""
    return {
        "format": FORMAT_VERSION,
        **head_fields,
        "orders": [book_record(b, key in books.active) for key, b in books.by_id.items()],
    }


def head(
    *,
    seed: int,
    ids: random.Random,
    journal: str | None,
    time: BrokerTime,
    market: Market,
    account: Account,
    faults: FaultPlan,
) -> dict[str, Any]:
    """Everything in the state but the orders, whose size does not grow with the orders
    held: a change line repeats the fields of it that changed."""
    return {
        "seed": seed,
        "ids_rng": _rng_state(ids),
        "faults_rng": _rng_state(faults.draws),
        "clock": _clock_state(time),
        "last_time": _opt_iso(time.last),
        "cash": str(account.cash),
        "positions": {s: str(q) for s, q in account.positions.items()},
        "quotes": {s: str(p) for s, p in market.quotes.items()},
        "liquidity": _opt_str(market.liquidity),
        "symbol_liquidity": {s: _opt_str(q) for s, q in market.symbol_liquidity.items()},
        "allow_short": account.allow_short,
        "fault_rates": {f.value: r for f, r in faults.rates.items()},
        "journal": journal,
        "armed": [
            {"fault": a.fault.value, "times": a.remaining, "symbol": a.symbol, "message": a.message}
            for a in faults.armed
        ],
    }


def book_record(book: Book, active: bool) -> dict[str, Any]:
    """One order as the state keeps it; `record_key` gives its broker order id back."""
    return {
        "history": [_snapshot_to_json(s) for s in book.history],
        "late_fill": str(book.late_fill),
        "reject_later": book.reject_later,
        "active": active,
        "gfd": book.gfd,
        "placed_at": _opt_iso(book.placed_at),
        "delivered": book.delivered,
    }


def record_key(record: Mapping[str, Any]) -> str:
    """The broker order id of an order's record (every view of an order carries it)."""
    key = record["history"][-1]["broker_order_id"]
    if not isinstance(key, str):
        raise TypeError(f"broker_order_id {key!r} is not a string")
    return key


def _clock_state(time: BrokerTime) -> dict[str, Any] | None:
    """A `SimulatedClock`'s position; any other clock is the caller's to pass again."""
    clock = time.clock
    if not isinstance(clock, SimulatedClock):
        return None
    return {"next": clock.peek().isoformat(), "step_us": clock.step // timedelta(microseconds=1)}


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _opt_str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _opt_iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _snapshot_to_json(snap: BrokerOrder) -> dict[str, Any]:
    return {
        "broker_order_id": snap.broker_order_id,
        "client_order_id": snap.client_order_id,
        "symbol": snap.symbol,
        "side": snap.side.value,
        "quantity": str(snap.quantity),
        "limit_price": _opt_str(snap.limit_price),
        "state": snap.state.value,
        "raw_state": snap.raw_state,
        "cumulative_quantity": str(snap.cumulative_quantity),
        "average_price": _opt_str(snap.average_price),
        "executions": [
            {
                "execution_id": e.execution_id,
                "quantity": str(e.quantity),
                "price": str(e.price),
                "timestamp": _opt_iso(e.timestamp),
            }
            for e in snap.executions
        ],
        "reject_reason": snap.reject_reason,
        "cancel_reason": snap.cancel_reason,
        "updated_at": _opt_iso(snap.updated_at),
    }


# -- reading ------------------------------------------------------------------------------------


@attrs.frozen
class Saved:
    """A state file read back: the constructor's settings, and what the constructor cannot
    set (generators, clock position, armed faults, orders), for the broker to put back."""

    settings: dict[str, Any]
    # May be below zero, where no new account starts: a late fill after a cancel (a fault)
    # spends cash the cancel had freed for other buys.
    cash: Decimal
    clock: SimulatedClock | None
    journal: str | None
    ids_rng: list[Any]
    faults_rng: list[Any]
    last_time: datetime | None
    symbol_liquidity: dict[str, str | None]
    armed: list[dict[str, Any]]
    books: list[tuple[Book, bool]]  # each order, and whether match() must still look at it

    def restore_generators(self, ids: random.Random, faults: random.Random) -> None:
        for rng, saved in ((ids, self.ids_rng), (faults, self.faults_rng)):
            version, internal, gauss = saved
            rng.setstate((version, tuple(internal), gauss))


def parse(data: Mapping[str, Any]) -> Saved:
    """The state `dump` wrote; a missing key or a value of the wrong kind raises KeyError,
    TypeError or ValueError, which the broker reports as a damaged file."""
    if data["format"] not in _READABLE_VERSIONS:
        raise ValueError(f"format {data['format']!r} is not {FORMAT_VERSION}")
    journal = data["journal"]
    if journal is not None and not isinstance(journal, str):
        raise TypeError(f"journal {journal!r} is not a path")
    settings = {
        "quotes": data["quotes"],
        "seed": data["seed"],
        "positions": data["positions"],
        "liquidity": data["liquidity"],
        "allow_short": data["allow_short"],
        "fault_rates": data["fault_rates"],
    }
    return Saved(
        settings=settings,
        cash=to_decimal(data["cash"], "cash"),
        clock=_clock_from(data["clock"]),
        journal=journal,
        ids_rng=data["ids_rng"],
        faults_rng=data["faults_rng"],
        last_time=_opt_time(data["last_time"]),
        symbol_liquidity=dict(data["symbol_liquidity"]),
        armed=list(data["armed"]),
        books=[_book_from(saved) for saved in data["orders"]],
    )


def _clock_from(saved: Mapping[str, Any] | None) -> SimulatedClock | None:
    if saved is None:
        return None
    return SimulatedClock(
        datetime.fromisoformat(saved["next"]), timedelta(microseconds=saved["step_us"])
    )


def _book_from(saved: Mapping[str, Any]) -> tuple[Book, bool]:
    gfd = saved["gfd"]
    if type(gfd) is not bool:
        raise TypeError(f"gfd {gfd!r} is not a boolean")
    history = [_snapshot_from_json(s) for s in saved["history"]]  # oldest first
    book = Book(
        history[-1],
        history[-2] if len(history) > 1 else None,
        to_decimal(saved["late_fill"], "late_fill"),
        saved["reject_later"],
        gfd,
        _opt_time(saved["placed_at"]),
    )
    delivered = saved.get("delivered", False)  # format 2 did not keep it
    if type(delivered) is not bool:
        raise TypeError(f"delivered {delivered!r} is not a boolean")
    book.delivered = delivered
    return book, bool(saved["active"])


def _opt_decimal(value: str | None, field: str) -> Decimal | None:
    return None if value is None else to_decimal(value, field)


def _opt_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _snapshot_from_json(data: Mapping[str, Any]) -> BrokerOrder:
    return BrokerOrder(
        broker_order_id=data["broker_order_id"],
        client_order_id=data["client_order_id"],
        symbol=data["symbol"],
        side=data["side"],
        quantity=to_decimal(data["quantity"], "quantity"),
        limit_price=_opt_decimal(data["limit_price"], "limit_price"),
        state=data["state"],
        raw_state=data["raw_state"],
        cumulative_quantity=to_decimal(data["cumulative_quantity"], "cumulative_quantity"),
        average_price=_opt_decimal(data["average_price"], "average_price"),
        executions=tuple(
            Execution(
                e["execution_id"],
                to_decimal(e["quantity"], "quantity"),
                to_decimal(e["price"], "price"),
                _opt_time(e["timestamp"]),
            )
            for e in data["executions"]
        ),
        reject_reason=data["reject_reason"],
        cancel_reason=data["cancel_reason"],
        updated_at=_opt_time(data["updated_at"]),
    )
