"""A broker kept in a state file is the broker that never stopped, restarts and folds included.

`PaperBroker.open` keeps the broker in a state file and a change file of one line per change,
folded into the state file when it grows and at every start. A change line carries only what
moved, so whatever a change leaves out of its line (a book that stopped working, an evicted
order, a reading of the clock, a fault used up) is lost at the next start, and only then.
Such omissions are easy to make and hard to list, so Hypothesis makes the same calls into a
broker kept in a file, restarted and folded at arbitrary points, and into a twin that only
ever lived in memory. Whatever a caller can see must agree: every answer, the account after
every step, every order whenever it is fetched, and at the end what the files alone hold.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from orders.gateways import _paper_changes
from orders.gateways.base import Accepted
from orders.gateways.paper import Fault, PaperBroker, SimulatedClock
from orders.lifecycle import Order

D = Decimal
Spec = tuple[str, str, Decimal, Decimal]  # symbol, side, quantity, limit

START = SimulatedClock.DEFAULT_START
# Each reading of the clock moves it 20 s, and a finished order may go 60 s after its last
# update: a few calls age an order out, so a run of 25 steps evicts.
STEP = timedelta(seconds=20)
RETENTION = 60.0
DEFAULT_FOLD_MIN_BYTES = _paper_changes._FOLD_MIN_BYTES

SYMBOLS = ("AAPL", "MSFT", "TSLA")
symbols = st.sampled_from(SYMBOLS)
# Limits and quotes from one narrow range: about half the orders are marketable at a quote.
prices = st.integers(min_value=95, max_value=105).map(D)
specs = st.tuples(symbols, st.sampled_from(["buy", "sell"]), st.integers(1, 50).map(D), prices)
# Several orders a step: Hypothesis leaves some rules out of a run altogether (swarm testing),
# so the orders of a run should not all hang on one rule.
batches = st.lists(specs, min_size=1, max_size=3)
picks = st.integers(min_value=0, max_value=63)  # an index into what is known, modulo its length
# Ratio 0 folds at every change; 1 and 4 let the change file grow to once or four times the
# state file, which lands the folds at points that depend on what the run holds.
fold_ratios = st.sampled_from([0, 1, 4])


class KeptBrokerMatchesTwin(RuleBasedStateMachine):
    """The same calls into a broker kept in a file and a twin in memory; only the kept one is
    restarted and folded."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory()  # one per run: a run starts with no file
        self.path = Path(self.directory.name) / "paper-broker.json"
        self.patches = pytest.MonkeyPatch()
        self.settings: dict[str, Any] = {}
        self.clock = SimulatedClock(START, STEP)  # the twin's, which `updated_since` reads
        self.twin = PaperBroker()
        self.kept = self.twin
        self.watch = True
        self.broker_ids: list[str] = []
        self.client_ids: list[str] = []
        # False while a step runs: teardown runs after a failed step too, and a second
        # failure there would hide the first.
        self.settled = False

    @initialize(
        seed=st.integers(min_value=0, max_value=3),
        quotes=st.tuples(*(prices for _ in SYMBOLS)),
        buying_power=st.sampled_from([D(5000), D(100000)]),
        allow_short=st.booleans(),
        liquidity=st.one_of(st.none(), st.integers(1, 20).map(D)),
        fault_rates=st.sampled_from(
            [
                None,
                {Fault.DUPLICATE_SNAPSHOTS: 0.3, Fault.TIMEOUT_AFTER_ACCEPT: 0.2},
                {Fault.REJECT_AFTER_ACCEPT: 0.3, Fault.LATE_FILL_AFTER_CANCEL: 0.3},
            ]
        ),
        fold_min_bytes=st.sampled_from([0, DEFAULT_FOLD_MIN_BYTES]),
        fold_ratio=fold_ratios,
        watch=st.sampled_from([False, False, False, True]),
        orders=batches,
    )
    def start(
        self,
        seed: int,
        quotes: tuple[Decimal, ...],
        buying_power: Decimal,
        allow_short: bool,
        liquidity: Decimal | None,
        fault_rates: Mapping[Fault | str, float] | None,
        fold_min_bytes: int,
        fold_ratio: int,
        watch: bool,
        orders: list[Spec],
    ) -> None:
        """`watch` fetches every order after every step, in one run of four. Fetching marks
        an order delivered, which decides whether it may be evicted, so watching in every run
        would hide what a restart does to that mark; without it only the rules fetch."""
        self.thresholds(fold_min_bytes, fold_ratio)
        self.settings = {
            "liquidity": liquidity,
            "allow_short": allow_short,
            "fault_rates": fault_rates,
            "retention_seconds": RETENTION,
        }
        self.watch = watch
        self.twin = PaperBroker(
            seed=seed, buying_power=buying_power, clock=self.clock, **self.settings
        )
        self.kept = PaperBroker.open(
            self.path,
            seed=seed,
            buying_power=buying_power,
            clock=SimulatedClock(START, STEP),
            fsync=False,
            **self.settings,
        )
        for symbol, price in zip(SYMBOLS, quotes, strict=True):
            self.set_quote(symbol, price)
        self.submit(orders)

    # -- calls into both -----------------------------------------------------------------------

    def both_submit(self, order: Order) -> None:
        outcome = self.twin.submit_limit(order)
        assert self.kept.submit_limit(order) == outcome
        if isinstance(outcome, Accepted):
            self.learn(outcome.snapshot.broker_order_id)

    def learn(self, broker_order_id: str) -> None:
        if broker_order_id not in self.broker_ids:
            self.broker_ids.append(broker_order_id)

    @rule(orders=batches)
    def submit(self, orders: list[Spec]) -> None:
        self.settled = False
        for symbol, side, quantity, limit in orders:
            client_order_id = f"c{len(self.client_ids)}"
            self.client_ids.append(client_order_id)
            self.both_submit(Order(symbol, side, quantity, limit, client_order_id=client_order_id))

    @precondition(lambda self: bool(self.client_ids))
    @rule(pick=picks, order=specs)
    def resubmit(self, pick: int, order: Spec) -> None:
        """A known client order id answers with its order, or opens a new one once evicted."""
        self.settled = False
        client_order_id = self.client_ids[pick % len(self.client_ids)]
        self.both_submit(Order(*order, client_order_id=client_order_id))

    @rule(symbol=symbols, price=st.one_of(st.none(), prices))
    def set_quote(self, symbol: str, price: Decimal | None) -> None:
        self.settled = False
        for broker in (self.twin, self.kept):
            broker.set_quote(symbol, price)

    @rule(symbol=symbols, shares=st.one_of(st.none(), st.integers(1, 20).map(D)))
    def set_liquidity(self, symbol: str, shares: Decimal | None) -> None:
        self.settled = False
        for broker in (self.twin, self.kept):
            broker.set_liquidity(symbol, shares)

    @rule(
        fault=st.one_of(st.none(), st.sampled_from(Fault)),
        symbol=st.one_of(st.none(), symbols),
        times=st.integers(min_value=1, max_value=2),
    )
    def inject(self, fault: Fault | None, symbol: str | None, times: int) -> None:
        """No fault: disarm them all."""
        self.settled = False
        for broker in (self.twin, self.kept):
            if fault is None:
                broker.clear_faults()
            else:
                broker.inject(fault, times=times, symbol=symbol)

    @rule()
    def match(self) -> None:
        self.settled = False
        assert self.kept.match() == self.twin.match()

    @precondition(lambda self: bool(self.broker_ids))
    @rule(pick=picks)
    def cancel(self, pick: int) -> None:
        self.settled = False
        broker_order_id = self.broker_ids[pick % len(self.broker_ids)]
        for broker in (self.twin, self.kept):
            broker.cancel(broker_order_id)

    @rule(back=st.integers(min_value=0, max_value=6))
    def updated_since(self, back: int) -> None:
        """Also evicts what finished more than the retention ago, reading the clock to know."""
        self.settled = False
        when = self.clock.peek() - back * STEP
        assert self.kept.updated_since(when) == self.twin.updated_since(when)

    @rule(back=st.integers(min_value=0, max_value=6))
    def sync(self, back: int) -> None:
        """A paper bot's round: the market runs, then the manager polls. One rule, so that
        runs where Hypothesis leaves out `match` or `updated_since` still have both."""
        self.match()
        self.updated_since(back)

    @precondition(lambda self: bool(self.client_ids))
    @rule(pick=picks, by_client=st.booleans())
    def fetch(self, pick: int, by_client: bool) -> None:
        """By client order id is also how the id of an order whose answer was lost is
        learnt."""
        self.settled = False
        if by_client:
            client_order_id = self.client_ids[pick % len(self.client_ids)]
            found = self.twin.find_by_client_id(client_order_id)
            assert self.kept.find_by_client_id(client_order_id) == found
            if found is not None:
                self.learn(found.broker_order_id)
        elif self.broker_ids:
            broker_order_id = self.broker_ids[pick % len(self.broker_ids)]
            assert self.kept.fetch(broker_order_id) == self.twin.fetch(broker_order_id)

    @rule()
    def fetch_everything(self) -> None:
        self.settled = False
        self.compare_orders(self.kept)

    # -- only the kept broker ------------------------------------------------------------------

    @rule()
    def restart(self) -> None:
        """A start reads the state file and the change file, then folds them; the clock is
        not passed, so it comes back from the file where it stopped."""
        self.settled = False
        self.kept = PaperBroker.open(self.path, fsync=False, **self.settings)
        assert self.kept.resumed

    @rule(ratio=st.one_of(st.none(), fold_ratios))
    def fold(self, ratio: int | None) -> None:
        """Fold now, and again within the next change, which then reads `ratio` (if any) for
        the folds after it.

        The thresholds are read whenever the change file is emptied: saved to its own state
        file with both at 0, the broker folds, and its next change must fold too.
        """
        self.settled = False
        size, kept_ratio = _paper_changes._FOLD_MIN_BYTES, _paper_changes._FOLD_RATIO
        self.thresholds(0, 0)
        self.kept.save(self.path)
        if ratio is None:
            self.thresholds(size, kept_ratio)
        else:
            self.thresholds(0, ratio)

    def thresholds(self, size: int, ratio: int) -> None:
        self.patches.setattr(_paper_changes, "_FOLD_MIN_BYTES", size)
        self.patches.setattr(_paper_changes, "_FOLD_RATIO", ratio)

    # -- what a caller sees --------------------------------------------------------------------

    def compare_account(self, broker: PaperBroker) -> None:
        assert broker.fetch_buying_power() == self.twin.fetch_buying_power()
        assert broker.fetch_positions() == self.twin.fetch_positions()
        assert broker.armed_faults == self.twin.armed_faults

    def compare_orders(self, broker: PaperBroker) -> None:
        """An evicted order is None on both."""
        for broker_order_id in self.broker_ids:
            assert broker.fetch(broker_order_id) == self.twin.fetch(broker_order_id)
        for client_order_id in self.client_ids:
            found = self.twin.find_by_client_id(client_order_id)
            assert broker.find_by_client_id(client_order_id) == found

    @invariant()
    def sees_the_same(self) -> None:
        assert self.kept.drain_problems() == []
        self.compare_account(self.kept)
        if self.watch:
            self.compare_orders(self.kept)
        self.settled = True

    def teardown(self) -> None:
        """At the end the files alone (`load`, not a start) hold the same broker, down to the
        clock and the generators the next order reads."""
        try:
            if self.settled:
                self.compare_files()
        finally:
            self.patches.undo()
            self.directory.cleanup()

    def compare_files(self) -> None:
        loaded = PaperBroker.load(self.path)
        self.compare_account(loaded)
        for broker in (self.kept, loaded):
            self.compare_orders(broker)
        last = Order("AAPL", "sell", 1, 100, client_order_id="last")
        outcome = self.twin.submit_limit(last)
        assert self.kept.submit_limit(last) == outcome
        assert loaded.submit_limit(last) == outcome


# A failure shrinks to one short example in seconds; explaining it (which steps matter) and
# shrinking every distinct failure took minutes, each step writing files.
KeptBrokerMatchesTwin.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    report_multiple_bugs=False,
)
TestKeptBrokerMatchesTwin = KeptBrokerMatchesTwin.TestCase


def test_a_value_changed_by_a_fold_and_back_on_the_next_line() -> None:
    """A change line repeats only the head values that moved since the line before it; after
    a fold, that is since the state file. The random runs rarely move a value in a change
    that folds and put it back in the next one, which then has nothing to repeat: this run
    does, with a fault injected as the change folds and used up by the next order."""
    machine = KeptBrokerMatchesTwin()
    try:
        machine.start(
            seed=0,
            quotes=(D(100), D(100), D(100)),
            buying_power=D(100000),
            allow_short=True,
            liquidity=None,
            fault_rates=None,
            fold_min_bytes=DEFAULT_FOLD_MIN_BYTES,
            fold_ratio=4,
            watch=False,
            orders=[("AAPL", "buy", D(1), D(95))],
        )
        machine.sees_the_same()
        machine.fold(None)
        machine.sees_the_same()
        machine.inject(Fault.REJECT, None, 1)
        machine.sees_the_same()
        machine.submit([("AAPL", "buy", D(1), D(95))])
        machine.sees_the_same()
        machine.restart()
        machine.sees_the_same()
    finally:
        machine.teardown()
