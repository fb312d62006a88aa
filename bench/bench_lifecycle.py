"""Lifecycle performance figures, as ratios against baselines measured in the same run.

Run: `uv run python bench/bench_lifecycle.py` (about half a minute). One line per figure;
each is taken as the docstring of its function says. Nothing here is asserted: the
figures go in the closing notes and the CHANGELOG.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import attrs

from orders import Order, OrderHooks

TRIGGER_TARGET = 30  # was 50; tightened for long-running bots
CREATION_TARGET = 5
MEMORY_TARGET = 1024
GC_TARGET_MS = 25  # was 50


def median_seconds(run: Callable[[], float], repeats: int) -> float:
    return statistics.median(run() for _ in range(repeats))


# -- trigger cost ----------------------------------------------------------------------------


def _noop(order: object, event: object) -> None:
    return None


class HandOrder:
    """The baseline: a dict transition table, Decimal accounting, a dict of ids, 3 hooks."""

    __slots__ = ("execution_ids", "filled", "quantity", "state")
    TABLE: ClassVar[dict[tuple[str, str], str]] = {
        ("pending", "submit"): "submitted",
        ("submitted", "fill"): "partially_filled",
        ("partially_filled", "fill"): "partially_filled",
    }
    HOOKS = (_noop, _noop, _noop)

    def __init__(self, quantity: Decimal) -> None:
        self.state = "pending"
        self.quantity = quantity
        self.filled = Decimal(0)
        self.execution_ids: dict[str, Decimal] = {}

    def _go(self, trigger: str) -> None:
        dest = self.TABLE[(self.state, trigger)]
        self.state = dest
        for hook in self.HOOKS:
            hook(self, None)

    def submit(self) -> None:
        self._go("submit")

    def fill(self, execution_id: str, quantity: Decimal) -> None:
        if execution_id in self.execution_ids:
            return
        self.execution_ids[execution_id] = quantity
        self.filled += quantity
        if self.filled == self.quantity:
            self.state = "filled"
            for hook in self.HOOKS:
                hook(self, None)
        else:
            self._go("fill")


def bench_triggers(n: int, repeats: int) -> tuple[float, float]:
    qty, part, rest, px = Decimal(100), Decimal(40), Decimal(60), Decimal("10.50")
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    hooks = OrderHooks(on_event=(_noop, _noop, _noop))

    def ours() -> float:
        orders = [Order("AAPL", "buy", qty, px, hooks=hooks) for _ in range(n)]
        start = time.perf_counter()
        for order in orders:
            order.submit("B", at=at)
            order.fill("x1", part, px, at=at)
            order.fill("x2", rest, px, at=at)
        return (time.perf_counter() - start) / (3 * n)

    def hand() -> float:
        orders = [HandOrder(qty) for _ in range(n)]
        start = time.perf_counter()
        for order in orders:
            order.submit()
            order.fill("x1", part)
            order.fill("x2", rest)
        return (time.perf_counter() - start) / (3 * n)

    return median_seconds(ours, repeats), median_seconds(hand, repeats)


# -- creation --------------------------------------------------------------------------------


@attrs.define
class PlainOrder:
    symbol: str
    side: str
    quantity: Decimal
    limit_price: Decimal
    strategy: str
    client_order_id: str
    time_in_force: str


def bench_creation(n: int, repeats: int) -> tuple[float, float]:
    qty, px = Decimal(100), Decimal("10.50")

    def ours() -> float:
        start = time.perf_counter()
        for _ in range(n):
            Order("AAPL", "buy", qty, px)
        return (time.perf_counter() - start) / n

    def plain() -> float:
        start = time.perf_counter()
        for _ in range(n):
            PlainOrder("AAPL", "buy", qty, px, "default", str(uuid.uuid4()), "gfd")
        return (time.perf_counter() - start) / n

    return median_seconds(ours, repeats), median_seconds(plain, repeats)


# -- memory and gc, in a fresh process ---------------------------------------------------------

_MEMORY_CHILD = """
import gc, statistics, sys, time, tracemalloc, uuid
from decimal import Decimal
from orders import Order
n, floor = int(sys.argv[1]), sys.argv[2] == "floor"
ids = [str(uuid.uuid4()) for _ in range(n)]
broker_ids = [f"B{i}" for i in range(n)]
exec_ids = [f"X{i}" for i in range(n)]
# Every input is the order's own, as a caller's would be (one shared Decimal would hide the
# cost of the Decimals an order keeps).
qtys = [Decimal(100) for _ in range(n)]
parts = [Decimal(40) for _ in range(n)]
prices = [Decimal("10.50") for _ in range(n)]


class Bare:
    # The floor: one plain Python object per order, its values in one untracked tuple.
    __slots__ = ("a", "b", "c")


gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
orders = []
for i in range(n):
    if floor:
        o = Bare()
        o.a = o.b = None
        o.c = ("AAPL", "buy", qtys[i], prices[i], ids[i], broker_ids[i], exec_ids[i], parts[i])
    else:
        o = Order("AAPL", "buy", qtys[i], prices[i], client_order_id=ids[i])
        o.submit(broker_ids[i])
        o.fill(exec_ids[i], parts[i], prices[i])
    orders.append(o)
gc.collect()
after = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
# The orders now hold their inputs; the six lists of 100,000 that built them are this
# script's scaffolding, not something a bot keeps, and would add 600,000 visits to each pass.
del ids, broker_ids, exec_ids, qtys, parts, prices


def full_pass() -> float:
    start = time.perf_counter()
    gc.collect()
    return time.perf_counter() - start


gc.collect()
pause = statistics.median(full_pass() for _ in range(5))
print((after - before) / n, pause * 1000, len(orders))
"""


def bench_memory(n: int, *, floor: bool = False) -> tuple[float, float]:
    """Bytes per order and the median full-gc pause, in a fresh process.

    With `floor`, the same inputs go into bare `__slots__` objects instead: the pause any
    pure-Python order must cost on this host, so the figure can be read on a slow machine.
    """
    out = subprocess.run(  # noqa: S603 - runs this interpreter on a constant script
        [sys.executable, "-c", _MEMORY_CHILD, str(n), "floor" if floor else "orders"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def _line(name: str, value: str, ratio: float | None, target: str, ok: bool) -> str:
    ratio_text = f"{ratio:6.1f}x" if ratio is not None else "       "
    return f"{name:<28} {value:<34} {ratio_text}  target {target:<10} {'ok' if ok else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--live-orders", type=int, default=100_000)
    args = parser.parse_args(argv)

    ours, hand = bench_triggers(args.orders, args.repeats)
    ratio = ours / hand
    print(
        _line(
            "trigger cost",
            f"{ours * 1e6:.2f} us vs hand-written {hand * 1e6:.3f} us",
            ratio,
            f"<= {TRIGGER_TARGET}x",
            ratio <= TRIGGER_TARGET,
        )
    )
    ours, plain = bench_creation(args.orders, args.repeats)
    ratio = ours / plain
    print(
        _line(
            "order creation",
            f"{ours * 1e6:.2f} us vs attrs+uuid4 {plain * 1e6:.2f} us",
            ratio,
            f"<= {CREATION_TARGET}x",
            ratio <= CREATION_TARGET,
        )
    )
    per_order, pause_ms = bench_memory(args.live_orders)
    _, floor_ms = bench_memory(args.live_orders, floor=True)
    print(
        _line(
            "memory per live order",
            f"{per_order:.0f} B ({args.live_orders:,} orders)",
            None,
            f"<= {MEMORY_TARGET} B",
            per_order <= MEMORY_TARGET,
        )
    )
    print(
        _line(
            "full gc pause",
            f"{pause_ms:.1f} ms vs bare objects {floor_ms:.1f} ms",
            pause_ms / floor_ms,
            f"<= {GC_TARGET_MS} ms",
            pause_ms <= GC_TARGET_MS,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
