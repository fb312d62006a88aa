"""Service performance figures: a full paper lifecycle and journal replay.

Run: `uv run python bench/bench_manager.py`. One line per figure, each beside a baseline
measured in the same run (each function's docstring says how).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from orders import (
    AuditJournal,
    Order,
    OrderHooks,
    OrderManagementConfig,
    OrderManager,
    OrderRequest,
    PaperBroker,
)

LIFECYCLE_RATE_TARGET = 5_000
OVERHEAD_TARGET = 3
REPLAY_TARGET = 200_000
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD")


def managed_lifecycles(n: int, workdir: Path) -> float:
    """Seconds per order: submit, two partial fills, filled, all through the manager."""
    broker = PaperBroker(
        quotes={s: Decimal("100") for s in SYMBOLS},
        liquidity=Decimal(40),
        buying_power=Decimal(10) ** 12,
    )
    config = OrderManagementConfig.from_dict(
        {"fsync": "never", "circuit_breakers": {"max_orders_per_minute": 10**9}}
    )
    journal = AuditJournal(workdir / "managed.jsonl", fsync="never")
    manager = OrderManager(broker, config=config, journal=journal)
    requests = [OrderRequest(SYMBOLS[i % len(SYMBOLS)], "buy", 100, "100") for i in range(n)]
    start = time.perf_counter()
    for request in requests:
        manager.submit(request)
        for _ in range(3):
            manager.ingest(broker.match())
    elapsed = time.perf_counter() - start
    journal.close()
    assert all(o.state == "filled" for o in manager.orders())
    return elapsed / n


def _hand_line(out: object, order: Order, event: str, seq: int) -> None:
    record = {
        "v": 1,
        "seq": seq,
        "ts": datetime.now(UTC).isoformat(),
        "event": event,
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "symbol": order.symbol,
        "side": "buy",
        "strategy": order.strategy,
        "quantity": str(order.quantity),
        "limit_price": str(order.limit_price),
        "filled_quantity": str(order.filled_quantity),
    }
    out.write(orjson.dumps(record) + b"\n")  # type: ignore[attr-defined]
    out.flush()  # type: ignore[attr-defined]


def bare_lifecycles(n: int, workdir: Path) -> float:
    """Seconds per order: the same four triggers and five journal lines, by hand."""
    part, last, px = Decimal(40), Decimal(20), Decimal("100.05")
    with (workdir / "bare.jsonl").open("ab") as out:
        seq = 0
        start = time.perf_counter()
        for i in range(n):
            order = Order(SYMBOLS[i % len(SYMBOLS)], "buy", 100, px, hooks=OrderHooks())
            seq += 1
            _hand_line(out, order, "intent", seq)
            order.submit(f"B{i}")
            seq += 1
            _hand_line(out, order, "submit", seq)
            for k, qty in enumerate((part, part, last)):
                order.fill(f"X{i}-{k}", qty, px)
                seq += 1
                _hand_line(out, order, "fill", seq)
        return (time.perf_counter() - start) / n


def replay_rate(path: Path, repeats: int) -> tuple[float, int]:
    records = sum(1 for line in path.read_bytes().split(b"\n") if line)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        AuditJournal.replay(path)
        times.append(time.perf_counter() - start)
    return records / statistics.median(times), records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--replay-orders", type=int, default=25_000)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        managed = statistics.median(
            managed_lifecycles(args.orders, workdir / str(r)) for r in range(args.repeats)
        )
        bare = statistics.median(bare_lifecycles(args.orders, workdir) for _ in range(args.repeats))
        rate = 1 / managed
        ratio = managed / bare
        print(
            f"paper lifecycle   {rate:8,.0f} orders/s ({managed * 1e6:.0f} us/order)  "
            f"target >= {LIFECYCLE_RATE_TARGET:,}  "
            f"{'ok' if rate >= LIFECYCLE_RATE_TARGET else 'MISSED'}"
        )
        print(
            f"manager overhead  {ratio:8.2f}x  vs bare triggers + hand-written journal "
            f"({bare * 1e6:.0f} us/order)  target <= {OVERHEAD_TARGET}x  "
            f"{'ok' if ratio <= OVERHEAD_TARGET else 'MISSED'}"
        )

        journal_path = workdir / "replay.jsonl"
        journal = AuditJournal(journal_path, fsync="never")
        hooks = OrderHooks(on_event=(journal.record_event,))
        part, px = Decimal(25), Decimal("10.50")
        for i in range(args.replay_orders):
            order = Order("AAPL", "buy", 100, px, hooks=hooks)
            journal.record_intent(order)
            order.submit(f"B{i}")
            for k in range(4):
                order.fill(f"X{i}-{k}", part, px)
        journal.close()
        per_second, records = replay_rate(journal_path, args.repeats)
        print(
            f"journal replay    {per_second:8,.0f} records/s ({records:,} records)  "
            f"target >= {REPLAY_TARGET:,}  {'ok' if per_second >= REPLAY_TARGET else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
