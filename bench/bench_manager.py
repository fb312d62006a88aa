"""Service performance figures: a full paper lifecycle, journal replay, and what a bot that
runs for months pays for the orders it finished long ago (sync, memory, garbage collection).

Run: `uv run python bench/bench_manager.py`. One line per figure, each beside a baseline
measured in the same run (each function's docstring says how).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import orjson

from orders import (
    AuditJournal,
    Order,
    OrderHooks,
    OrderManagementConfig,
    OrderManager,
    OrderRequest,
    PaperBroker,
    SafetyChecks,
)

LIFECYCLE_RATE_TARGET = 5_000
OVERHEAD_TARGET = 3
REPLAY_TARGET = 200_000
IDLE_SYNC_TARGET = 1.5
FINISHED_OBJECTS_TARGET = 0.05
FINISHED_BYTES_TARGET = 64
FINISHED_GC_TARGET = 2
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD")


def managed_lifecycles(n: int, workdir: Path, fsync: str = "never") -> float:
    """Seconds per order: submit, two partial fills, filled, all through the manager, with
    the journal's `fsync` policy (the figure's is "never"; the default is printed beside)."""
    broker = PaperBroker(
        quotes={s: Decimal("100") for s in SYMBOLS},
        liquidity=Decimal(40),
        buying_power=Decimal(10) ** 12,
    )
    config = OrderManagementConfig.from_dict(
        {"fsync": fsync, "circuit_breakers": {"max_orders_per_minute": 10**9}}
    )
    journal = AuditJournal(workdir / "managed.jsonl", fsync=fsync)
    manager = OrderManager(broker, config=config, journal=journal)
    requests = _requests(n)
    gc.collect()  # nothing left by the run before to collect while this one is timed
    start = time.perf_counter()
    _lifecycles(manager, broker, requests)
    elapsed = time.perf_counter() - start
    journal.close()
    assert all(o.state == "filled" for o in manager.orders())
    return elapsed / n


def _requests(n: int) -> list[OrderRequest]:
    """`n` buys of 100 shares, referenced at the quotes' price, over the symbols in turn."""
    return [OrderRequest(SYMBOLS[i % len(SYMBOLS)], "buy", 100, "100") for i in range(n)]


def _lifecycles(manager: OrderManager, broker: PaperBroker, requests: list[OrderRequest]) -> None:
    """Each request submitted, then filled in three rounds of the market (40, 40, 20)."""
    for request in requests:
        manager.submit(request)
        for _ in range(3):
            manager.ingest(broker.match())


class _Clock:
    """A UTC clock that moves only when told (shared by the manager and the broker)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        """The same clock as monotonic seconds, for the safety checks' rate window."""
        return self.now.timestamp()


class FinishedDesk:
    """A manager on a PaperBroker after `n` orders filled, one a second, and were retained
    long enough to be evicted (fsync never, the clock past `retention_seconds`). What is held
    is counted from before the first order: gc-tracked objects and the bytes tracemalloc sees,
    over the manager, its broker and its checks."""

    def __init__(self, n: int, workdir: Path, *, trace: bool = False) -> None:
        clock = _Clock()
        broker = PaperBroker(
            quotes={s: Decimal("100") for s in SYMBOLS},
            buying_power=Decimal(10) ** 12,
            clock=clock,
            retention_seconds=60,
        )
        config = OrderManagementConfig.from_dict({"fsync": "never", "retention_seconds": 60})
        journal = AuditJournal(workdir / f"finished-{n}.jsonl", fsync="never")
        safety = SafetyChecks.from_config(config.circuit_breakers, monotonic=clock.timestamp)
        self.manager = OrderManager(
            broker, config=config, journal=journal, safety=safety, clock=clock
        )
        one_second = timedelta(seconds=1)
        gc.collect()
        if trace:
            tracemalloc.start()
        self.objects_before = len(gc.get_objects())
        self.bytes_before = tracemalloc.get_traced_memory()[0] if trace else 0
        for i in range(n):
            self.manager.submit(OrderRequest(SYMBOLS[i % len(SYMBOLS)], "buy", 1, "100"))
            self.manager.ingest(broker.match())
            clock.now += one_second
            if i % 60 == 0:
                self.manager.sync()  # a bot syncs every few seconds: eviction runs as it goes
        clock.now += timedelta(seconds=120)
        self.manager.sync()  # evicts everything finished more than 60 s ago
        safety.tripped()  # the rate window forgets sends older than a minute
        gc.collect()
        self.objects_after = len(gc.get_objects())
        self.bytes_after = tracemalloc.get_traced_memory()[0] if trace else 0
        if trace:
            tracemalloc.stop()
        self.manager.journal.close()

    def idle_sync_seconds(self, repeats: int) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(1000):
                self.manager.sync()
            times.append((time.perf_counter() - start) / 1000)
        return statistics.median(times)

    def full_gc_seconds(self, repeats: int) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            gc.collect()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def _desk_figures(n: int, repeats: int) -> tuple[float, float, float, float]:
    """(idle sync s, full gc s, objects, bytes held per order) for `n` finished orders,
    measured in a fresh process, so that neither size inherits the other's heap."""
    out = subprocess.run(  # noqa: S603 - runs this interpreter on this very script
        [sys.executable, __file__, "--desk", str(n), "--repeats", str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    sync, pause, objects, held = (float(x) for x in out)
    return sync, pause, objects, held


def _print_desk(n: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        desk = FinishedDesk(n, Path(tmp), trace=True)
        objects = (desk.objects_after - desk.objects_before) / n
        held = (desk.bytes_after - desk.bytes_before) / n
        print(desk.idle_sync_seconds(repeats), desk.full_gc_seconds(repeats), objects, held)


def long_running(few: int, many: int, repeats: int) -> None:
    """Idle sync, held memory and full gc after `many` finished orders against `few`."""
    small_sync, small_gc, _, _ = _desk_figures(few, repeats)
    large_sync, large_gc, objects, held = _desk_figures(many, repeats)
    ratio = large_sync / small_sync
    print(
        f"idle sync         {ratio:8.2f}x  after {many:,} finished ({large_sync * 1e6:.0f} us) "
        f"vs {few:,} ({small_sync * 1e6:.0f} us)  target <= {IDLE_SYNC_TARGET}x  "
        f"{'ok' if ratio <= IDLE_SYNC_TARGET else 'MISSED'}"
    )
    ok = objects <= FINISHED_OBJECTS_TARGET and held <= FINISHED_BYTES_TARGET
    print(
        f"finished orders   {objects:8.3f} objects, {held:.0f} B held per order after eviction "
        f"({many:,})  target <= {FINISHED_OBJECTS_TARGET}, <= {FINISHED_BYTES_TARGET} B  "
        f"{'ok' if ok else 'MISSED'}"
    )
    ratio = large_gc / small_gc
    print(
        f"gc, finished      {ratio:8.2f}x  full gc after {many:,} finished "
        f"({large_gc * 1e3:.1f} ms) vs {few:,} ({small_gc * 1e3:.1f} ms)  "
        f"target <= {FINISHED_GC_TARGET}x  {'ok' if ratio <= FINISHED_GC_TARGET else 'MISSED'}"
    )


def paper_state_seconds(held: int, timed: int, workdir: Path) -> float:
    """Seconds per order of a paper bot's broker, kept in a state file (`PaperBroker.open`,
    fsync off, so the figure is the work and not the disk), once `held` finished orders are
    in its books: what a bot that has traded for a while pays for each new order."""
    broker = PaperBroker.open(
        workdir / f"paper-{held}.json",
        liquidity=Decimal(40),
        buying_power=Decimal(10) ** 12,
        fsync=False,
    )
    for symbol in SYMBOLS:
        broker.set_quote(symbol, Decimal("100"))
    config = OrderManagementConfig.from_dict(
        {"fsync": "never", "circuit_breakers": {"max_orders_per_minute": 10**9}}
    )
    journal = AuditJournal(workdir / f"paper-{held}.jsonl", fsync="never")
    manager = OrderManager(broker, config=config, journal=journal)

    _lifecycles(manager, broker, _requests(held))
    requests = _requests(timed)
    start = time.perf_counter()
    _lifecycles(manager, broker, requests)
    elapsed = time.perf_counter() - start
    journal.close()
    return elapsed / timed


def paper_state(few: int, many: int, timed: int) -> None:
    """A paper bot's cost per order with `many` orders held against `few`."""
    with tempfile.TemporaryDirectory() as tmp:
        small = paper_state_seconds(few, timed, Path(tmp))
        large = paper_state_seconds(many, timed, Path(tmp))
    print(
        f"paper state file  {large / small:8.2f}x  per order with {many:,} orders held "
        f"({large * 1e3:.2f} ms) vs {few:,} ({small * 1e3:.2f} ms), fsync off  (reported)"
    )


def _hand_line(
    out: BinaryIO, order: Order, seq: int, event: str, tail: Mapping[str, object]
) -> None:
    """One journal line built by hand: the fields, order and values of the journal's own."""
    record = {
        "v": 1,
        "seq": seq,
        "ts": datetime.now(UTC),
        "event": event,
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "symbol": order.symbol,
        "side": "buy",
        "strategy": order.strategy,
        "quantity": str(order.quantity),
        "limit_price": str(order.limit_price),
        "filled_quantity": str(order.filled_quantity),
        "cancel_requested": False,
        **tail,
    }
    out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    out.flush()


_FILL_MOVES = (
    ("submitted", "partially_filled"),
    ("partially_filled", "partially_filled"),
    ("partially_filled", "filled"),
)


def bare_lifecycles(n: int, workdir: Path) -> float:
    """Seconds per order: the same four triggers by hand, and the same five journal lines
    (every field the journal writes; `_check_same_lines` compares them) written by hand."""
    part, last, px = Decimal(40), Decimal(20), Decimal("100.05")
    intent: dict[str, object] = {"source": None, "dest": "pending", "time_in_force": "gfd"}
    submit: dict[str, object] = {
        "source": "pending",
        "dest": "submitted",
        "execution": None,
        "reason": None,
    }
    # One set of hooks for every order, as a manager shares its own: making one per order
    # would add its routing table's cost (107,000 instructions, 20-30 us) to the baseline.
    hooks = OrderHooks()
    with (workdir / "bare.jsonl").open("ab") as out:
        seq = 0
        # As in `managed_lifecycles`: a collection triggered in this run would otherwise also
        # walk what the run before left (a managed run leaves its orders, books and journal).
        gc.collect()
        start = time.perf_counter()
        for i in range(n):
            order = Order(SYMBOLS[i % len(SYMBOLS)], "buy", 100, px, hooks=hooks)
            seq += 1
            _hand_line(out, order, seq, "intent", intent)
            order.submit(f"{i:08x}-0000-4000-8000-000000000000")  # a broker id's length
            seq += 1
            _hand_line(out, order, seq, "submit", submit)
            for k, qty in enumerate((part, part, last)):
                at = datetime.now(UTC)
                execution_id = f"{i:08x}-0000-4000-8000-{k:012x}"
                order.fill(execution_id, qty, px, at)
                source, dest = _FILL_MOVES[k]
                execution = {
                    "id": execution_id,
                    "quantity": str(qty),
                    "price": str(px),
                    "timestamp": at,
                }
                seq += 1
                tail = {"source": source, "dest": dest, "execution": execution, "reason": None}
                _hand_line(out, order, seq, "fill", tail)
        return (time.perf_counter() - start) / n


def _check_same_lines(managed: Path, bare: Path) -> None:
    """Stop the run if the hand-written lines lost a field the journal writes: then the
    baseline would be cheaper than the lines it stands for."""

    def shape(path: Path) -> list[list[str]]:
        lines = [orjson.loads(line) for line in path.read_bytes().splitlines()[:5]]
        return [[*r, *(r.get("execution") or {})] for r in lines]

    if shape(managed) != shape(bare):
        raise SystemExit(f"the bare lines differ from the journal's: {shape(bare)}")


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
    parser.add_argument("--finished-orders", type=int, default=100_000)
    parser.add_argument("--skip-long-running", action="store_true")
    parser.add_argument("--desk", type=int, help=argparse.SUPPRESS)  # the child of one figure
    args = parser.parse_args(argv)
    if args.desk:
        _print_desk(args.desk, args.repeats)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # Managed and bare runs alternate, and the ratio is the median of each pair's: this
        # VM's speed drifts by tens of percent within a minute, which a block of managed runs
        # followed by a block of bare ones would read as overhead.
        pairs = [
            (
                managed_lifecycles(args.orders, workdir / str(r)),
                bare_lifecycles(args.orders, workdir),
            )
            for r in range(args.repeats)
        ]
        _check_same_lines(workdir / "0" / "managed.jsonl", workdir / "bare.jsonl")
        managed = statistics.median(m for m, _ in pairs)
        bare = statistics.median(b for _, b in pairs)
        rate = 1 / managed
        ratio = statistics.median(m / b for m, b in pairs)
        print(
            f"paper lifecycle   {rate:8,.0f} orders/s ({managed * 1e6:.0f} us/order)  "
            f"target >= {LIFECYCLE_RATE_TARGET:,}  "
            f"{'ok' if rate >= LIFECYCLE_RATE_TARGET else 'MISSED'}"
        )
        synced = statistics.median(
            managed_lifecycles(args.orders, workdir / f"fsync-{r}", "intent_and_terminal")
            for r in range(args.repeats)
        )
        print(
            f"  default fsync   {1 / synced:8,.0f} orders/s ({synced * 1e6:.0f} us/order) with "
            "fsync intent_and_terminal (the intent and the final record of each order)"
        )
        print(
            f"manager overhead  {ratio:8.2f}x  median of {args.repeats} paired runs vs bare "
            f"triggers + hand-written journal ({bare * 1e6:.0f} us/order)  "
            f"target <= {OVERHEAD_TARGET}x  "
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
        if not args.skip_long_running:
            long_running(1_000, args.finished_orders, args.repeats)
            paper_state(10, 1_000, 200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
