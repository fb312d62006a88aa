"""The process the segment crash test kills: a journal that rotates all the time, until then.

Usage: ``python -m tests.segment_crash_child JOURNAL SEED SEGMENT_BYTES``. It writes
``WORKING`` working orders into the journal at ``JOURNAL`` with one large segment, reopens it
with ``SEGMENT_BYTES`` (so its first rotation has to learn the working orders from the files),
prints ``ready``, then places, fills, cancels and rejects orders until it is killed. With a
tiny ``SEGMENT_BYTES`` every record opens a segment whose checkpoint holds every working
order, so most of its time is spent writing checkpoints: a kill almost always lands in one.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from orders import AuditJournal, Order, OrderHooks

WORKING = 40
LIFETIME_SECONDS = 30  # a child the test forgot to kill does not run forever
SYMBOLS = ("AAPL", "MSFT", "IBM", "GE", "F", "T")


def _place(journal: AuditJournal, hooks: OrderHooks, number: int, rng: random.Random) -> Order:
    order = Order(
        rng.choice(SYMBOLS),
        rng.choice(("buy", "sell")),
        rng.randint(2, 9),
        f"{rng.randint(90, 110)}.{rng.randint(0, 99):02d}",
        client_order_id=f"c-{number}",
        hooks=hooks,
    )
    journal.record_intent(order)
    if rng.random() < 0.9:
        order.submit(f"b-{number}")
    return order


def _step(order: Order, rng: random.Random, number: int) -> None:
    """One legal move of a working order, chosen by `rng`."""
    roll = rng.random()
    if order.state == "pending":
        order.reject("never placed") if roll < 0.5 else order.submit(f"b-{number}")
    elif roll < 0.5:
        leaves = order.leaves_quantity
        order.fill(f"x-{number}", rng.randint(1, int(leaves)), "100.01")
    elif roll < 0.7 and not order.cancel_requested:
        order.request_cancel()
    elif roll < 0.85:
        order.cancel("asked")
    else:
        order.fill(f"x-{number}", order.leaves_quantity, "99.99")


def run(path: Path, seed: int, segment_bytes: int) -> None:
    rng = random.Random(seed)
    journal = AuditJournal(path, fsync="never")
    hooks = OrderHooks(on_event=(journal.record_event,))
    working = [_place(journal, hooks, n, rng) for n in range(WORKING)]
    journal.close()
    journal = AuditJournal(path, fsync="never", segment_bytes=segment_bytes)
    hooks = OrderHooks(on_event=(journal.record_event,))
    for order in working:
        order.attach_hooks(hooks)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    number = WORKING
    deadline = time.monotonic() + LIFETIME_SECONDS
    while time.monotonic() < deadline:
        number += 1
        index = rng.randrange(len(working))
        _step(working[index], rng, number)
        if working[index].is_terminal:
            working[index] = _place(journal, hooks, number, rng)
    sys.exit(3)


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
