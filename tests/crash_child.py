"""The process the crash-recovery test kills: a seeded paper trading session that runs until then.

Usage: ``python -m tests.crash_child WORKDIR SEED``. It writes ``WORKDIR/orders.jsonl`` (the
journal) and ``WORKDIR/broker.json`` (the PaperBroker, saved after every call that changes it,
before the answer reaches the manager, so the saved broker is never behind what the journal
could know), prints ``ready`` once set up, then trades until it is killed. An odd seed's broker
keeps itself (`PaperBroker.open`: a line per change in ``broker.changes.jsonl``, the state file
rewritten when that outgrows it, here every few changes); an even seed's is saved whole.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from orders import (
    AuditJournal,
    BrokerOrder,
    Fault,
    Order,
    OrderManagementConfig,
    OrderManager,
    OrderRequest,
    PaperBroker,
    SafetyViolation,
    SubmitOutcome,
)
from orders.gateways import _paper_changes

SYMBOLS = ("AAPL", "MSFT", "IBM", "GE")
LIFETIME_SECONDS = 30  # a child the test forgot to kill does not run forever

# Shared with the test so the recovering process is configured like the one that died.
CONFIG = {
    "unknown_order_grace_seconds": 0,
    "circuit_breakers": {
        "max_consecutive_rejects": 1_000_000,
        "max_consecutive_failures": 1_000_000,
        "max_orders_per_minute": 1_000_000,
    },
}
FAULT_RATES: Mapping[Fault | str, float] = {
    Fault.TIMEOUT_BEFORE_ACCEPT: 0.05,
    Fault.TIMEOUT_AFTER_ACCEPT: 0.1,
    Fault.SERVER_ERROR: 0.03,
    Fault.REJECT_AFTER_ACCEPT: 0.03,
    Fault.LOST_CANCEL: 0.1,
    Fault.CANCEL_LOSES_RACE: 0.1,
    Fault.LATE_FILL_AFTER_CANCEL: 0.1,
    Fault.DUPLICATE_SNAPSHOTS: 0.1,
    Fault.STALE_SNAPSHOTS: 0.1,
}


class SavingGateway:
    """A PaperBroker that is saved to disk after every call that changes it."""

    def __init__(self, broker: PaperBroker, path: Path) -> None:
        self.broker = broker
        self.path = path

    def submit_limit(self, order: Order) -> SubmitOutcome:
        outcome = self.broker.submit_limit(order)
        self.broker.save(self.path)
        return outcome

    def cancel(self, broker_order_id: str) -> None:
        self.broker.cancel(broker_order_id)
        self.broker.save(self.path)

    def fetch(self, broker_order_id: str) -> BrokerOrder | None:
        return self.broker.fetch(broker_order_id)

    def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        return self.broker.find_by_client_id(client_order_id)

    def updated_since(self, when: datetime) -> list[BrokerOrder]:
        return self.broker.updated_since(when)

    def fetch_buying_power(self) -> Decimal:
        return self.broker.fetch_buying_power()

    def fetch_positions(self) -> dict[str, Decimal]:
        return dict(self.broker.fetch_positions())


def run(workdir: Path, seed: int) -> None:
    rng = random.Random(seed)
    broker_path = workdir / "broker.json"
    keeps_itself = seed % 2 == 1
    gateway: PaperBroker | SavingGateway
    if keeps_itself:
        # A small fold threshold, so kills also land while the state file is rewritten.
        _paper_changes._FOLD_MIN_BYTES = 64 << 10  # type: ignore[misc]
        broker = PaperBroker.open(broker_path, seed=seed, liquidity="3", fault_rates=FAULT_RATES)
        gateway = broker
    else:
        broker = PaperBroker(seed=seed, liquidity="3", fault_rates=FAULT_RATES)
        gateway = SavingGateway(broker, broker_path)
    for symbol in SYMBOLS:
        broker.set_quote(symbol, "100")
    broker.save(broker_path)
    manager = OrderManager(
        gateway,
        config=OrderManagementConfig.from_dict(CONFIG),
        journal=AuditJournal(workdir / "orders.jsonl"),
    )
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    deadline = time.monotonic() + LIFETIME_SECONDS
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.4:
            side = rng.choice(("buy", "sell"))
            request = OrderRequest(
                rng.choice(SYMBOLS), side, str(rng.randint(1, 9)), str(rng.randint(97, 103))
            )
            with contextlib.suppress(SafetyViolation):  # a duplicate (symbol, side)
                manager.submit(request)
        elif roll < 0.55:
            working = manager.open_orders()
            if working:
                manager.cancel(rng.choice(working).client_order_id)
        elif roll < 0.8:
            broker.set_quote(rng.choice(SYMBOLS), str(rng.randint(97, 103)))
            broker.match()
            if not keeps_itself:
                broker.save(broker_path)
        else:
            manager.sync()
    sys.exit(3)


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]))
