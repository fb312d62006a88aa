"""A self-contained paper-trading session: what `orders demo` runs.

Everything is seeded and simulated (prices, the broker, its clock and its faults), so two runs
with the same seed trade the same way; nothing touches the network or needs credentials. The
session is scripted to show, in under a minute of simulated time, each thing the library is
for: partial fills, a stale order cancelled, a rejection, a duplicate blocked, a lost broker
answer survived, and a lost cancel sent again.

The demo keeps to files of its own (`logs/demo.jsonl` and the simulated broker's state beside
it, `logs/demo-broker.json`), because the bot's journal is a record of what a user's bot did and
no demo may move, rewrite or mix into it. Every run appends a new session to the demo journal:
a journal is never renamed or rewritten, and client order ids never repeat in it.

The demo prints through the console every `orders` command uses (`orders._terminal`), so that
its progress and the commands' tables agree on the width they fit and on how ids and counts
read; `output_console`, `Trimmed`, `plural` and `short_ids` are still importable from here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final, TextIO

import attrs
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from orders._terminal import Trimmed, output_console, plural, short_ids
from orders.account import AccountData
from orders.audit import AuditJournal
from orders.bot import TradeResult, TradeStatus, TradingBot
from orders.config import OrderManagementConfig
from orders.gateways.paper import Fault, PaperBroker
from orders.lifecycle import Order
from orders.manager import OrderManager
from orders.model import OrderState, uuid4_text
from orders.safety import SafetyChecks
from orders.stats import OrderStats, compute_stats

__all__ = [
    "DEFAULT_DEMO_JOURNAL",
    "DemoResult",
    "ManualClock",
    "Trimmed",
    "broker_state_path",
    "output_console",
    "plural",
    "run_demo",
    "short_ids",
]

DEFAULT_DEMO_JOURNAL: Final = Path("logs/demo.jsonl")

START: Final = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
PRICES: Final = {"AAPL": Decimal("187.40"), "MSFT": Decimal("415.10"), "NVDA": Decimal("131.25")}
STALE_AFTER_SECONDS: Final = 20
# Long enough for a cancel the broker lost to be sent again (after 30 s) and confirmed.
WIND_DOWN_SECONDS: Final = 45
DEMO_CONFIG: Final = {
    "default_offset": {"kind": "bps", "value": "5"},
    "strategy_overrides": {
        "momentum": {"kind": "bps", "value": "10"},
        "mean_reversion": {"kind": "absolute", "value": "0.02"},
    },
    "max_slippage_bps": "50",
    "cancel_after_seconds": STALE_AFTER_SECONDS,
    "unknown_order_grace_seconds": 3,
    "unknown_order_lookups": 2,
    "sync_interval_seconds": 1,
}


class ManualClock:
    """A clock that moves only when told: the demo's simulated seconds."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@attrs.frozen
class DemoResult:
    """What the session did, for the summary and for tests.

    `stats` are this run's orders; `journal_orders` counts every order in the journal,
    earlier runs' included.
    """

    journal: Path
    stats: OrderStats
    trades: tuple[TradeResult, ...]
    highlights: tuple[str, ...]
    broker_state: Path
    journal_orders: int


def broker_state_path(journal_path: Path) -> Path:
    """Where the demo keeps its simulated broker: beside its journal, named after it."""
    return journal_path.with_name(f"{journal_path.stem}-broker.json")


class _View:
    """The highlighted events, one line each (wrapped under their marker when long), and on a
    terminal a progress bar below them that is redrawn in place and erased at the end.

    The bar is only drawn where a person watches it: piped or redirected, the output is the
    event lines alone, with no carriage return or cursor movement in it.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.highlights: list[str] = []
        self.progress: Progress | None = None

    def running(self, ticks: int) -> Progress:
        """The progress bar for a run of `ticks`, to use as a context manager: it is erased
        when the run ends, and when it is interrupted.

        The line stops two columns short of the edge, where the terminal echoes a Ctrl-C as
        "^C": echoed past the edge it would wrap onto a new line, and the bar could then no
        longer be erased.
        """
        counter = f"tick {ticks}/{ticks}"
        bar = self.console.width - len(counter) - len(_status_text(99, 99, 99, 99)) - 4
        self.progress = Progress(
            TextColumn(f"tick {{task.completed:>{len(str(ticks))}.0f}}/{ticks}"),
            BarColumn(bar_width=max(5, bar), complete_style="cyan", finished_style="green"),
            TextColumn("{task.description}"),
            console=self.console,
            auto_refresh=False,  # redrawn once per tick: the demo's pace, not a timer thread
            transient=True,
            redirect_stdout=False,
            disable=not self.console.is_interactive,
        )
        self.task = self.progress.add_task("", total=ticks)
        return self.progress

    def status(self, tick: int, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=tick, description=text, refresh=True)

    def note(self, text: str) -> None:
        text = short_ids(text)
        self.highlights.append(text)
        marker, _, rest = text.partition(" ")
        shown = Text("  ")
        shown.append(marker, style=_MARKER_STYLES.get(marker, ""))
        for n, line in enumerate(
            Text(rest).wrap(self.console, max(10, self.console.width - 4), overflow="fold")
        ):
            line.rstrip()
            shown.append("\n    " if n else " ")
            shown.append_text(line)
        self.console.print(shown, soft_wrap=True)  # wrapped here, under the text


_MARKER_STYLES: Final = {"!": "bold red", "x": "yellow", "=": "green", "-": "magenta"}


class _Session:
    """The demo's moving parts, and how each outcome is shown."""

    def __init__(self, journal_path: Path, seed: int, view: _View, *, earlier: int) -> None:
        self.clock = ManualClock()
        self.rng = random.Random(seed)  # noqa: S311 - a price path, not a secret
        self.broker = PaperBroker(quotes=PRICES, seed=seed, liquidity=Decimal(30), clock=self.clock)
        config = OrderManagementConfig.from_dict(
            {**DEMO_CONFIG, "audit_log_path": str(journal_path)}
        )
        journal = AuditJournal(
            journal_path, fsync=config.fsync, segment_bytes=config.journal_segment_bytes
        )
        # Seeded, so a run is reproducible; by the orders already in the journal too, so a
        # run appended to an earlier one never reuses its ids.
        stream = f"client-order-ids-{seed}" + (f"-after-{earlier}" if earlier else "")
        ids = random.Random(stream)  # noqa: S311 - reproducible, not secret
        self.safety = SafetyChecks.from_config(config.circuit_breakers)
        self.manager = OrderManager(
            self.broker,
            config=config,
            journal=journal,
            safety=self.safety,
            account=AccountData(self.broker),
            clock=self.clock,
            client_order_ids=lambda: uuid4_text(ids.getrandbits(128)),
        )
        self.bot = TradingBot(self.manager)
        self.view = view
        self.prices = dict(PRICES)
        self.history: dict[str, list[Decimal]] = {s: [p] for s, p in PRICES.items()}
        self.blocked = 0

    def move_prices(self) -> None:
        for symbol, price in list(self.prices.items()):
            step = Decimal(self.rng.randint(-30, 30)) / Decimal(10_000)
            moved = (price * (1 + step)).quantize(_CENT)
            self.prices[symbol] = moved
            self.history[symbol].append(moved)
            self.broker.set_quote(symbol, moved)

    def strategies(self, tick: int) -> None:
        """Momentum buys after a rise, mean reversion sells after a fall."""
        if tick % 7 != 3:
            return
        for symbol, path in self.history.items():
            if len(path) < 4:
                continue
            if path[-1] > path[-4]:
                self.trade(symbol, "buy", 50, "momentum", self.prices[symbol])
            elif path[-1] < path[-4]:
                self.trade(symbol, "sell", 40, "mean_reversion", self.prices[symbol])

    def trade(self, symbol: str, action: str, quantity: int, strategy: str, ref: Decimal) -> None:
        result = self.bot.execute_trade(symbol, action, quantity, ref, strategy=strategy)
        order = None if result.order_id is None else self.manager.get(result.order_id)
        label = f"{strategy} {action} {quantity} {symbol}"
        if result.status is TradeStatus.SUBMITTED and order is not None:
            if order.state is OrderState.PENDING:
                self.view.note(f"~ {label}: broker answer lost; looking it up by client id")
            else:
                self.view.note(f"+ {label} @ {order.limit_price} sent ({order.state})")
        elif result.status is TradeStatus.BLOCKED:
            self.blocked += 1
            if self.blocked <= 2:
                holder = self.safety.holder(symbol, action)
                cause = f"duplicate of working order {holder[:8]}" if holder else result.reasons[0]
                self.view.note(f"x {label} blocked: {cause}")
            elif self.blocked == 3:
                self.view.note("x (further blocked duplicates are counted, not shown)")
        elif result.status is TradeStatus.REJECTED:
            reason = order.reason if order is not None else result.message
            self.view.note(f"! {label} rejected: {reason}")
        else:
            self.view.note(f"? {label}: {result.status}: {result.message}")

    def sync(self) -> None:
        report = self.bot.sync()  # paper mode: the simulated market runs first
        note = self.view.note
        for cid in report.resolved:
            note(f"~ order {cid[:8]} found at the broker by client id: no resend needed")
        for cid in report.never_placed:
            note(f"~ order {cid[:8]} was never placed; its guard is released")
        for cid in report.auto_cancelled:
            note(f"- order {cid[:8]} working over {STALE_AFTER_SECONDS} s: cancel sent")
        for cid in report.cancels_resent:
            note(f"~ order {cid[:8]}: cancel not confirmed in time, sent again")
        for error in report.errors:
            note(f"! {error}")
        for cid, event in report.events:
            order = self.manager.get(cid)
            if order is None:
                continue
            name = f"order {cid[:8]} {order.side} {order.symbol}"
            if event.trigger == "fill" and event.execution is not None:
                note(
                    f"= {name}: {event.execution.quantity} @ {event.execution.price}, "
                    f"{order.filled_quantity}/{order.quantity} filled"
                )
            elif event.trigger == "cancel":
                filled = order.filled_quantity
                kept = f"{filled} filled, kept" if filled else "nothing filled"
                note(f"- {name} cancelled ({kept})")

    def status(self, tick: int) -> None:
        done = compute_stats(self.manager.orders()).by_state
        working = len(self.manager.open_orders())
        self.view.status(
            tick,
            _status_text(
                working,
                done.get(OrderState.FILLED, 0),
                done.get(OrderState.CANCELLED, 0),
                done.get(OrderState.REJECTED, 0),
            ),
        )


def _status_text(working: int, filled: int, cancelled: int, rejected: int) -> str:
    return (
        f"working {working:>2}  filled {filled:>2}  cancelled {cancelled:>2}  "
        f"rejected {rejected:>2}"
    )


def run_demo(
    journal_path: Path = DEFAULT_DEMO_JOURNAL,
    *,
    seed: int = 7,
    ticks: int = 60,
    delay: float = 0.05,
    out: TextIO,
    live: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DemoResult:
    """Run the scripted session, appending it to the journal at `journal_path`; the simulated
    broker's state goes beside it (`broker_state_path`), also when the run is interrupted.

    Events are written to `out` as lines; a progress bar is drawn under them when `out` is a
    terminal (`live` forces it on or off)."""
    journal_path = Path(journal_path)
    state_path = broker_state_path(journal_path)
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    console = output_console(out, live=live)
    console.print(
        Trimmed(
            Text(
                f"orders demo: paper trading on the simulated broker (seed {seed}, "
                f"{plural(ticks, 'tick')} of 1 s)"
            )
        )
    )
    console.print(Text(f"journal: {journal_path}\n"), soft_wrap=True)  # whole, to copy
    view = _View(console)
    earlier = AuditJournal.replay(journal_path)
    if any(not o.is_terminal for o in earlier.values()):
        _finish_interrupted_run(journal_path, state_path, earlier, view)
    session = _Session(journal_path, seed, view, earlier=len(earlier))
    try:
        with view.running(ticks):
            for tick in range(1, ticks + 1):
                session.clock.advance(1)
                session.move_prices()
                _script(tick, session)
                session.strategies(tick)
                session.sync()
                session.status(tick)
                sleep(delay)

            # Wind down: cancel what still works and let the broker confirm.
            session.bot.cancel_all(reason="demo over")
            for _ in range(WIND_DOWN_SECONDS):
                session.clock.advance(1)
                session.sync()
                if not session.manager.open_orders():
                    break
    finally:
        # Saved even when interrupted, so the next run can finish this run's working orders.
        session.manager.journal.close()
        session.broker.save(state_path)
    orders = AuditJournal.replay(journal_path)
    mine = [orders[cid] for cid in orders if cid not in earlier]
    return DemoResult(
        journal=journal_path,
        stats=compute_stats(mine),
        trades=tuple(session.bot.trades()),
        highlights=tuple(view.highlights),
        broker_state=state_path,
        journal_orders=len(orders),
    )


def _finish_interrupted_run(
    journal_path: Path, state_path: Path, earlier: dict[str, Order], view: _View
) -> None:
    """Cancel the orders an interrupted earlier run left working, on the broker that holds
    them, so that no demo order stays working in the journal forever."""
    working = sum(1 for o in earlier.values() if not o.is_terminal)
    if not state_path.exists():
        view.note(
            f"~ {plural(working, 'order')} left working by an interrupted earlier run cannot "
            f"be finished: the simulated broker holding {'it' if working == 1 else 'them'} "
            f"({state_path}) is gone"
        )
        return
    clock = ManualClock()
    broker = PaperBroker.load(state_path, clock=clock)
    last = max((o.updated_at for o in broker.updated_since(START) if o.updated_at), default=START)
    clock.now = max(START, last)
    config = OrderManagementConfig.from_dict({**DEMO_CONFIG, "audit_log_path": str(journal_path)})
    manager = OrderManager(
        broker,
        config=config,
        journal=AuditJournal(
            journal_path, fsync=config.fsync, segment_bytes=config.journal_segment_bytes
        ),
        account=AccountData(broker),
        clock=clock,
    )
    bot = TradingBot(manager)
    broker.clear_faults()  # the interrupted run's scripted faults are not this run's
    manager.recover()
    bot.cancel_all(reason="left working by an interrupted demo run")
    for _ in range(WIND_DOWN_SECONDS):
        clock.advance(1)
        bot.sync()
        if not manager.open_orders():
            break
    manager.journal.close()
    broker.save(state_path)
    still = len(manager.open_orders())
    done = f"{working - still} cancelled" + (f", {still} still working" if still else "")
    view.note(f"~ {plural(working, 'order')} left working by an interrupted earlier run: {done}")


def _script(tick: int, session: _Session) -> None:
    """The scripted moments, each showing one thing the library is for."""
    prices, broker, trade = session.prices, session.broker, session.trade
    if tick == 1:
        # A patient bid 5 % under the market: it rests until it is cancelled as stale, and the
        # broker drops that first cancel request, so it is sent again.
        broker.inject(Fault.LOST_CANCEL, symbol="MSFT")
        trade("MSFT", "buy", 10, "default", (prices["MSFT"] * Decimal("0.95")).quantize(_CENT))
    elif tick == 2:
        trade("AAPL", "buy", 100, "momentum", prices["AAPL"])  # fills in parts of 30
        trade("AAPL", "buy", 100, "momentum", prices["AAPL"])  # the same again: blocked
    elif tick == 6:
        broker.inject(Fault.REJECT, message="symbol halted for news (simulated)")
        trade("NVDA", "sell", 25, "mean_reversion", prices["NVDA"])
    elif tick == 9:
        broker.inject(Fault.TIMEOUT_AFTER_ACCEPT)
        session.view.note("~ the broker will accept the next order but its answer will be lost")
        trade("NVDA", "buy", 20, "default", prices["NVDA"])


_CENT: Final = Decimal("0.01")
