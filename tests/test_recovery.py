"""Recovery: a new process rebuilds orders and guards from the journal and the broker's state."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from orders import (
    AuditJournal,
    Fault,
    OrderManagementConfig,
    OrderManager,
    OrderRequest,
    OrderState,
    PaperBroker,
    SafetyViolation,
    Side,
)
from tests import crash_child
from tests.factories import Desk, ManualUtcClock, SpyGateway, broker_orders, guard_of, make_desk

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
CONFIG: dict[str, Any] = {"unknown_order_grace_seconds": 0}


def restart(desk: Desk, tmp_path: Path, config: dict[str, Any] | None = None) -> Desk:
    """A new manager (a new process) over the same journal file and the same broker."""
    desk.manager.journal.close()
    return make_desk(tmp_path, broker=desk.broker, config=CONFIG if config is None else config)


def buy(symbol: str = "AAPL", quantity: str = "10") -> OrderRequest:
    return OrderRequest(symbol, "buy", quantity, "100")


class TestRecover:
    """recover() rebuilds every order, re-takes the guards of working ones and never resends."""

    def test_working_and_finished_orders_come_back(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="4"), config=CONFIG)
        working = desk.manager.submit(buy("AAPL"))
        done = desk.manager.submit(buy("MSFT"))
        desk.broker.set_quote("AAPL", "100")
        desk.broker.set_quote("MSFT", "100")
        desk.broker.match()
        desk.manager.sync()
        desk.manager.cancel(done.client_order_id)
        desk.manager.sync()
        assert (working.state, done.state) == (OrderState.PARTIALLY_FILLED, OrderState.CANCELLED)

        again = restart(desk, tmp_path)
        report = again.manager.recover()
        assert report.errors == ()
        back = again.manager.get(working.client_order_id)
        assert back is not None
        assert back.state is OrderState.PARTIALLY_FILLED
        assert back.filled_quantity == D("4")
        assert back.broker_order_id == working.broker_order_id
        assert [o.client_order_id for o in again.manager.open_orders()] == [working.client_order_id]
        assert guard_of(again.manager).pending_orders() == {
            ("AAPL", Side.BUY): working.client_order_id
        }
        with pytest.raises(SafetyViolation):
            again.manager.submit(buy("AAPL"))
        assert again.spy.count("submit_limit") == 0
        # The recovered order keeps moving, and its events reach the reopened journal.
        again.broker.match()
        again.broker.match()
        again.manager.sync()
        after = again.manager.get(working.client_order_id)
        assert after is back and after.state is OrderState.FILLED
        assert not guard_of(again.manager).has_pending("AAPL", "buy")
        replayed = AuditJournal.replay(again.journal_path)
        assert replayed[working.client_order_id].state is OrderState.FILLED
        seqs = [r["seq"] for r in again.records()]
        assert seqs == list(range(1, len(seqs) + 1))

    def test_fills_that_happened_while_down_are_booked(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, config=CONFIG)
        order = desk.manager.submit(buy())
        desk.broker.set_quote("AAPL", "99.5")
        desk.broker.match()  # the process is gone; the broker fills the order
        again = restart(desk, tmp_path)
        again.manager.recover()
        back = again.manager.get(order.client_order_id)
        assert back is not None
        assert back.state is OrderState.FILLED
        assert back.average_fill_price == D("99.5")
        assert guard_of(again.manager).pending_orders() == {}

    def test_order_accepted_but_unanswered_is_found_not_resent(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, config=CONFIG)
        desk.broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        order = desk.manager.submit(buy())
        assert order.state is OrderState.PENDING
        again = restart(desk, tmp_path)
        report = again.manager.recover()
        back = again.manager.get(order.client_order_id)
        assert back is not None
        assert back.state is OrderState.SUBMITTED
        assert report.resolved == (order.client_order_id,)
        assert again.spy.count("submit_limit") == 0
        assert len(again.broker_orders()) == 1
        assert guard_of(again.manager).holder("AAPL", "buy") == order.client_order_id

    def test_order_that_never_arrived_is_rejected_after_the_lookups(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, config=CONFIG)
        desk.broker.inject(Fault.TIMEOUT_BEFORE_ACCEPT)
        order = desk.manager.submit(buy())
        again = restart(desk, tmp_path)
        again.manager.recover()
        assert guard_of(again.manager).has_pending("AAPL", "buy")  # the guard came back with it
        again.manager.sync()
        report = again.manager.sync()
        assert report.never_placed == (order.client_order_id,)
        back = again.manager.get(order.client_order_id)
        assert back is not None
        assert back.state is OrderState.REJECTED
        assert not guard_of(again.manager).has_pending("AAPL", "buy")
        assert again.spy.count("submit_limit") == 0
        assert again.broker_orders() == []

    def test_recovered_unknown_order_waits_the_grace_period(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, config=CONFIG)
        desk.broker.inject(Fault.TIMEOUT_BEFORE_ACCEPT)
        order = desk.manager.submit(buy())
        again = restart(desk, tmp_path, config={"unknown_order_grace_seconds": 3600})
        again.manager.recover()
        for _ in range(5):
            again.manager.sync()
        back = again.manager.get(order.client_order_id)
        assert back is not None
        assert back.state is OrderState.PENDING

    def test_a_cancel_requested_but_not_sent_is_sent(self, tmp_path: Path) -> None:
        class CancelsFail(SpyGateway):
            def cancel(self, broker_order_id: str) -> None:
                raise ConnectionError("connection reset")

        desk = make_desk(tmp_path, config=CONFIG)
        order = desk.manager.submit(buy())
        desk.manager.gateway = CancelsFail(desk.broker)
        desk.manager.cancel(order.client_order_id)
        assert order.cancel_requested
        again = restart(desk, tmp_path)
        again.manager.recover()
        assert again.spy.count("cancel") == 1
        again.manager.sync()
        back = again.manager.get(order.client_order_id)
        assert back is not None
        assert back.state is OrderState.CANCELLED
        assert not guard_of(again.manager).has_pending("AAPL", "buy")

    def test_recovering_twice_gives_the_same_orders(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, broker=PaperBroker(liquidity="3"), config=CONFIG)
        desk.manager.submit(buy("AAPL"))
        desk.manager.submit(buy("MSFT"))
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        first = restart(desk, tmp_path)
        first.manager.recover()
        view = {o.client_order_id: (o.state, o.filled_quantity) for o in first.manager.orders()}
        second = restart(first, tmp_path)
        second.manager.recover()
        assert {
            o.client_order_id: (o.state, o.filled_quantity) for o in second.manager.orders()
        } == view
        assert second.spy.count("submit_limit") == 0

    def test_recovering_after_a_torn_write_twice(self, tmp_path: Path) -> None:
        desk = make_desk(tmp_path, config=CONFIG)
        order = desk.manager.submit(buy())
        desk.manager.journal.close()
        with desk.journal_path.open("ab") as journal:
            journal.write(b'{"v":1,"seq":3,"ts":"2026-')  # the crash cut this record short
        first = restart(desk, tmp_path)
        first.manager.recover()
        first.broker.set_quote("AAPL", "100")
        first.broker.match()
        first.manager.sync()  # the fill is journaled after the torn fragment
        second = restart(first, tmp_path)
        second.manager.recover()
        back = second.manager.get(order.client_order_id)
        assert back is not None
        assert back.state is OrderState.FILLED


# -- the crash test: a child process killed with SIGKILL at a random point --------------------

SEEDS = range(20)


def spawn(workdir: Path, seed: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "tests.crash_child", str(workdir), str(seed)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_and_kill(tmp_path: Path) -> list[Path]:
    """Start one child per seed, kill each with SIGKILL a seeded moment after it is ready."""
    children = []
    for seed in SEEDS:
        workdir = tmp_path / f"seed-{seed}"
        workdir.mkdir()
        children.append((seed, workdir, spawn(workdir, seed)))
    try:
        deadlines = []
        for seed, _workdir, child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line == "ready\n", (seed, line, child.stderr.read() if child.stderr else "")
            delay = random.Random(seed).uniform(0.0, 0.4)
            deadlines.append((time.monotonic() + delay, child))
        for deadline, child in sorted(deadlines, key=lambda d: d[0]):
            time.sleep(max(0.0, deadline - time.monotonic()))
            child.send_signal(signal.SIGKILL)
    finally:
        for _seed, _workdir, child in children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()
    for seed, _workdir, child in children:
        stderr = child.stderr.read() if child.stderr else ""
        if child.stderr is not None:
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL, (seed, child.returncode, stderr)
    return [workdir for _seed, workdir, _child in children]


def recover_and_check(workdir: Path) -> tuple[int, int]:
    """Recover one killed session and check its invariants; return (broker orders, fills)."""
    broker = PaperBroker.load(workdir / "broker.json")
    at_crash = {b.broker_order_id for b in broker_orders(broker)}
    journal_path = workdir / "orders.jsonl"
    journaled = AuditJournal.replay(journal_path)
    spy = SpyGateway(broker)
    manager = OrderManager(
        spy,
        config=OrderManagementConfig.from_dict(crash_child.CONFIG),
        journal=AuditJournal(journal_path),
    )
    manager.recover()
    for _ in range(4):
        broker.match()
        manager.sync()

    # No duplicate order: recovery sends nothing, and the broker holds one order per intent.
    assert spy.count("submit_limit") == 0
    at_broker = broker_orders(broker)
    assert {b.broker_order_id for b in at_broker} == at_crash
    client_ids = Counter(b.client_order_id for b in at_broker)
    assert all(n == 1 for n in client_ids.values()), client_ids
    assert set(client_ids) <= set(journaled)  # the intent is always journaled first
    assert {o.client_order_id for o in manager.orders()} == set(journaled)

    # No lost fill: every broker order's fills are booked on its recovered order.
    for snap in at_broker:
        assert snap.client_order_id is not None
        order = manager.get(snap.client_order_id)
        assert order is not None
        assert order.broker_order_id == snap.broker_order_id
        assert order.filled_quantity == snap.cumulative_quantity, (order, snap)
        assert {e.execution_id for e in snap.executions} <= {
            e.execution_id for e in order.executions
        }
        assert order.is_terminal == snap.state.is_terminal, (order, snap)
    positions: defaultdict[str, Decimal] = defaultdict(Decimal)
    for order in manager.orders():
        signed = order.filled_quantity if order.side is Side.BUY else -order.filled_quantity
        positions[order.symbol] += signed
    assert {s: q for s, q in positions.items() if q} == dict(broker.fetch_positions())

    # An order the broker never got ended as never placed, with nothing filled.
    for order in manager.orders():
        if broker.find_by_client_id(order.client_order_id) is None:
            assert order.state is OrderState.REJECTED, order
            assert order.filled_quantity == 0

    # No leaked guard: the guards are held by exactly the working orders.
    working = manager.open_orders()
    assert guard_of(manager).pending_orders() == {
        (o.symbol, o.side): o.client_order_id for o in working
    }
    assert len(guard_of(manager).pending_orders()) == len(working)

    # The journal, reopened and appended to, still replays to the live orders.
    manager.journal.close()
    replayed = AuditJournal.replay(journal_path)
    for order in manager.orders():
        twin = replayed[order.client_order_id]
        assert (twin.state, twin.filled_quantity, twin.executions, twin.cancel_requested) == (
            order.state,
            order.filled_quantity,
            order.executions,
            order.cancel_requested,
        )
    fills = sum(len(b.executions) for b in at_broker)
    return len(at_broker), fills


class TestCrash:
    """Killed at a random point, a session recovers with no duplicate, no lost fill, no leak."""

    def test_sigkill_at_random_points(self, tmp_path: Path) -> None:
        totals = [recover_and_check(workdir) for workdir in run_and_kill(tmp_path)]
        # The sessions really traded before they died (else the test proves nothing).
        assert sum(orders for orders, _ in totals) >= len(SEEDS)
        assert sum(fills for _, fills in totals) > 0


class TestLongDowntime:
    """What the broker did while the process was down is booked at the next start."""

    def test_a_late_fill_that_landed_during_a_long_downtime_is_booked(self, tmp_path: Path) -> None:
        clock = ManualUtcClock()
        broker = PaperBroker(quotes={"AAPL": "101"}, clock=clock)
        desk = make_desk(tmp_path, broker=broker, config=CONFIG, clock=clock)
        order = desk.manager.submit(buy())
        broker.inject(Fault.LATE_FILL_AFTER_CANCEL)
        desk.manager.cancel(order.client_order_id)
        desk.manager.sync()
        assert order.state is OrderState.CANCELLED and order.filled_quantity == 0
        desk.manager.journal.close()  # the bot stops: nothing is working any more

        clock.advance(30)
        broker.match()  # the fill that raced the cancel lands while the bot is down
        clock.advance(600)  # ten minutes later the bot starts again

        restarted = make_desk(tmp_path, broker=broker, config=CONFIG, clock=clock)
        report = restarted.manager.recover()
        again = restarted.manager.get(order.client_order_id)
        assert again is not None
        assert (again.state, again.filled_quantity) == (OrderState.CANCELLED, D(10))
        assert [e.trigger for _, e in report.events] == ["fill"]
        replayed = AuditJournal.replay(desk.journal_path)[order.client_order_id]
        assert replayed.filled_quantity == 10

    def test_an_old_cancel_does_not_stretch_every_restart(self, tmp_path: Path) -> None:
        clock = ManualUtcClock()
        broker = PaperBroker(quotes={"AAPL": "101", "MSFT": "101"}, clock=clock)
        desk = make_desk(tmp_path, broker=broker, config=CONFIG, clock=clock)
        old = desk.manager.submit(buy())
        desk.manager.cancel(old.client_order_id)
        desk.manager.sync()
        clock.advance(2 * 3600)  # well past the window in which a late fill can come
        broker.set_quote("MSFT", "99")
        desk.manager.submit(buy("MSFT"))
        broker.match()
        desk.manager.sync()
        desk.manager.journal.close()
        clock.advance(600)

        restarted = make_desk(tmp_path, broker=broker, config=CONFIG, clock=clock)
        restarted.manager.recover()
        (listed_since,) = [arg for name, arg in restarted.spy.calls if name == "updated_since"]
        assert isinstance(listed_since, datetime)
        assert listed_since > clock() - timedelta(minutes=5)
