"""The order manager: the one place where the core, the collaborators and a gateway meet.

Its promises, each the answer to a way trading bots lose money:

* Nothing is sent before its intent is in the journal (flushed and, by default, fsynced), so
  after a crash the order is known even if the broker never answered.
* A network failure never rejects an order and never resubmits it: an `Unknown` outcome
  leaves the order pending with its duplicate guard held, and `sync` resolves it by client
  order id. Only several definitive "not found" answers over a grace period make it
  "never placed".
* A broker report that cannot be read or applied is logged, reported and skipped; the other
  orders of the same sync still move.

One re-entrant lock guards the registry and every trigger; it is never held across a broker
call, so a slow broker does not block the bot's reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from orders._registry import OrderRegistry
from orders._sync_report import SyncReport, SyncWork, UnknownSubmit, events_report
from orders.account import AccountCache, AccountData, AccountSource
from orders.audit import LATE_FILL_WINDOW, AuditJournal, owed_late_fill
from orders.config import OrderManagementConfig, check_agreement
from orders.errors import InvalidOrderError, OrderError, SafetyViolation, UnknownOrderError
from orders.gateways.base import (
    Accepted,
    OrderGateway,
    Rejected,
    ReportsProblems,
    SubmitOutcome,
    Unknown,
)
from orders.lifecycle import Order, OrderHooks, OrderObserver, order_from_request, utc_now
from orders.log import get_logger
from orders.model import (
    BUY,
    PARTIALLY_FILLED,
    PENDING,
    REJECTED,
    SUBMITTED,
    BrokerOrder,
    LifecycleEvent,
    OrderRequest,
)
from orders.pricing import ensure_limit_order_type
from orders.safety import SafetyChecks, SafetyPolicy
from orders.snapshot import apply_snapshot

__all__ = ["OrderManager", "SyncReport"]  # SyncReport lives in orders._sync_report

# LATE_FILL_WINDOW (from the journal, whose checkpoints keep such orders): how long after its
# cancel a broker may still report a fill that raced it. The first sync after a restart lists
# from the cancel of every order cancelled this recently, so a late fill during downtime is
# booked.

_log = get_logger("orders.manager")

# Broker clocks and ours disagree, and an order updated while a sync runs must not be missed.
_WATERMARK_MARGIN = timedelta(seconds=60)
# A cancel the broker has not confirmed after this long is sent again (a lost request).
CANCEL_RETRY_AFTER = timedelta(seconds=30)


class OrderManager:
    """Submits, cancels, syncs and recovers orders through one gateway."""

    def __init__(
        self,
        gateway: OrderGateway,
        *,
        config: OrderManagementConfig | None = None,
        safety: SafetyPolicy | None = None,
        account: AccountCache | None = None,
        journal: AuditJournal | None = None,
        observers: OrderHooks | None = None,
        clock: Callable[[], datetime] = utc_now,
        client_order_ids: Callable[[], str] | None = None,
    ) -> None:
        """What is not given is built from `config` (default: the documented defaults).

        `safety` and `account` may be any objects with the methods of `SafetyPolicy` and
        `AccountCache`, so a bot keeps its own guard and caches in charge. When `config` is
        given too, a collaborator of this library whose settings differ from it raises
        `ConfigError` naming the key: one of the two would otherwise be silently ignored.
        `observers` hear every event of every order this manager tracks, after the manager's
        own (journal, account, guard). `client_order_ids` makes the ids of new orders
        (default: fresh UUID4 strings); a simulation passes a seeded one so that its runs
        are reproducible.
        """
        _check_collaborators(safety, account, observers, clock, client_order_ids)
        if config is not None:
            check_agreement(config, (safety, account, journal, gateway))
        self.gateway = gateway
        # A runtime protocol check costs microseconds: made once, not at every sync.
        self._drain_problems = (
            gateway.drain_problems if isinstance(gateway, ReportsProblems) else None
        )
        self._new_client_order_id = client_order_ids
        self.config = config = config if config is not None else OrderManagementConfig()
        self.safety: SafetyPolicy = (
            safety if safety is not None else SafetyChecks.from_config(config.circuit_breakers)
        )
        if account is None and isinstance(gateway, AccountSource):
            account = AccountData(gateway, ttl_seconds=config.account_ttl_seconds)
        self.account = account
        self.journal = (
            journal
            if journal is not None
            else AuditJournal(
                config.audit_log_path,
                fsync=config.fsync,
                segment_bytes=config.journal_segment_bytes,
            )
        )
        self._observers = observers
        self._clock = clock
        self._lock = threading.RLock()
        self._registry = OrderRegistry()
        self._unknown: dict[str, UnknownSubmit] = {}
        self._in_flight: set[str] = set()
        self._cancel_unsent: set[str] = set()
        self._cancel_sent_at: dict[str, datetime] = {}
        self._hook_failures: list[str] = []
        self._watermark: datetime | None = None
        self._resume_from: datetime | None = None  # set by recover(), for the first listing
        self.hooks = self._build_hooks()

    def _build_hooks(self) -> OrderHooks:
        exposure: tuple[OrderObserver, ...] = ()
        if self.account is not None:
            account = self.account

            def invalidate_account(order: Order, event: LifecycleEvent) -> None:
                account.invalidate()

            exposure = (invalidate_account,)
        return OrderHooks(
            on_event=(self.journal.record_event,),
            on_exposure_change=exposure,
            on_terminal=(self.safety.on_order_terminal, self._order_finished),
            on_error=self._hook_failed,
            then=self._observers,
        )

    def _order_finished(self, order: Order, event: LifecycleEvent) -> None:
        """The manager's own `on_terminal` observer: the order leaves the working set."""
        cid = order.client_order_id
        lock = self._lock
        lock.acquire()  # not `with`: see `_apply_all`
        try:
            self._registry.finish(cid, event.at)
            if self._cancel_unsent:
                self._cancel_unsent.discard(cid)
            if self._cancel_sent_at:
                self._cancel_sent_at.pop(cid, None)
        finally:
            lock.release()

    @property
    def observers(self) -> OrderHooks | None:
        """The caller's observers, as given; they run after the manager's own."""
        return self._observers

    def _hook_failed(
        self, observer: Any, order: Order, event: LifecycleEvent, error: Exception
    ) -> None:
        name = getattr(observer, "__qualname__", repr(observer))
        message = (
            f"hook {name} failed on {event.trigger} of order {order.client_order_id}: {error!r}"
        )
        _log.error(
            "order_hook_failed",
            hook=name,
            trigger=event.trigger,
            client_order_id=order.client_order_id,
            error=repr(error),
        )
        self._hook_failures.append(message)

    # -- reading -------------------------------------------------------------------------------

    def get(self, client_order_id: str, *, journal: bool = True) -> Order | None:
        """The order, live while it is tracked; a finished order that has left memory (after
        `retention_seconds`) is rebuilt from the journal, unless `journal=False`."""
        with self._lock:
            order = self._registry.orders.get(client_order_id)
        if order is not None or not journal:
            return order
        return self.journal.find(client_order_id)

    def open_orders(self) -> list[Order]:
        """Orders not yet terminal, oldest first."""
        with self._lock:
            return list(self._registry.working.values())

    def orders(self) -> list[Order]:
        """Every order held in memory: the working ones and those finished recently."""
        with self._lock:
            return list(self._registry.orders.values())

    def drain_hook_failures(self) -> list[str]:
        """Hook failures since the last call (each was also logged)."""
        if not self._hook_failures:  # the common case, read without the lock
            return []
        with self._lock:
            failures, self._hook_failures = self._hook_failures, []
            return failures

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> Order:
        """Validate, price, check, journal, guard, send; return the live order.

        Raises `UnsupportedOrderTypeError` for anything but a limit order and `SafetyViolation`
        when a check refuses it; in both cases nothing is journaled or sent.
        """
        if not isinstance(request, OrderRequest):
            raise TypeError("submit() takes an OrderRequest")
        ensure_limit_order_type(request.order_type)
        price = self.config.limit_price_for(
            request.side, request.reference_price, strategy=request.strategy
        )
        lock = self._lock
        lock.acquire()  # not `with`: see `_apply_all`
        try:
            order = order_from_request(
                request,
                price,
                None if self._new_client_order_id is None else self._new_client_order_id(),
                self._clock,
                self.hooks,
            )
            cid, side = order.client_order_id, order.side
            if cid in self._registry.orders:
                raise InvalidOrderError(
                    "client_order_id",
                    cid,
                    "is already used by a tracked order; client order ids must be unique",
                )
            notional = order.quantity * price
            buying_power = (
                self.account.buying_power() if self.account is not None and side is BUY else None
            )
            reasons = self.safety.check(
                symbol=order.symbol, side=side, notional=notional, buying_power=buying_power
            )
            if reasons:
                raise SafetyViolation(reasons)
            self.journal.record_intent(order, at=self._clock())
            self.safety.register(order)
            self.safety.note_sent()
            self._registry.add(order)
            self._in_flight.add(cid)
        finally:
            lock.release()
        try:
            outcome = self._send(order)
        except OrderError:
            raise
        except BaseException:
            # Interrupted mid-send (Ctrl-C, SIGTERM): the order may exist, so it is resolved
            # by client id like any lost answer, never forgotten with its guard held.
            with lock:
                self._in_flight.discard(cid)
                self._settle(order, Unknown("interrupted while sending"))
            raise
        lock.acquire()
        try:
            self._in_flight.discard(cid)
            self._settle(order, outcome)
        finally:
            lock.release()
        return order

    def _send(self, order: Order) -> SubmitOutcome:
        try:
            return self.gateway.submit_limit(order)
        except OrderError as error:
            # Gateways raise only when nothing can have been created (a price off the tick,
            # an unknown symbol, no session); anything ambiguous comes back as Unknown. The
            # caller gets the typed error; the journal gets the rejection.
            with self._lock:
                self._in_flight.discard(order.client_order_id)
                order.reject(f"refused before sending: {error}")
            raise
        except Exception as error:  # the order may exist: treat as unknown, never as rejected
            _log.exception("submit_failed_unexpectedly", client_order_id=order.client_order_id)
            return Unknown(f"{type(error).__name__}: {error}")

    def _settle(self, order: Order, outcome: SubmitOutcome) -> None:
        if isinstance(outcome, Accepted):
            self.safety.note_accepted()
            snapshot = outcome.snapshot
            self._registry.track_broker_id(order, snapshot.broker_order_id)
            try:
                apply_snapshot(order, snapshot)
            except OrderError as error:
                self._note_anomaly(order, f"accepted snapshot not applied: {error}")
                if order.state is PENDING:
                    order.submit(snapshot.broker_order_id)
        elif isinstance(outcome, Rejected):
            self.safety.note_rejected(outcome.reason)
            if order.state is PENDING:
                order.reject(outcome.reason)
        else:
            self.safety.note_failure(outcome.error)
            if order.state is PENDING:
                # Tracked first: a journal that cannot take the note must not make the order
                # (and its guard) forgotten.
                cid = order.client_order_id
                self._unknown.setdefault(cid, UnknownSubmit(since=self._clock()))
                _log.warning("submit_outcome_unknown", client_order_id=cid, error=outcome.error)
                self._journal_note(order, "submit_unknown", outcome.error)

    def _note_anomaly(self, order: Order, message: str) -> None:
        _log.error("order_anomaly", client_order_id=order.client_order_id, problem=message)
        self._journal_note(order, "anomaly", message)

    def _journal_note(self, order: Order, event: str, message: str) -> None:
        """A note in the journal; a journal that fails is logged and reported, not raised."""
        try:
            self.journal.record_note(order, event, message, at=self._clock())
        except (OSError, ValueError) as error:
            _log.exception("journal_write_failed", client_order_id=order.client_order_id)
            self._hook_failures.append(
                f"journal note {event!r} for order {order.client_order_id}: {error}"
            )

    # -- cancelling ----------------------------------------------------------------------------

    def cancel(self, client_order_id: str, *, reason: str = "") -> Order:
        """Ask the broker to cancel; the outcome arrives through `sync`.

        A finished order is returned unchanged. An order whose broker id is not known yet
        (its submission outcome is unknown) keeps the request and `sync` sends it once known;
        so does a request that could not be delivered (the next sync reports it).
        """
        return self._cancel(client_order_id)[0]

    def _cancel(self, client_order_id: str) -> tuple[Order, str | None]:
        """`cancel`, and what kept the request from reaching the broker (None: it was sent,
        or there was nothing to send yet)."""
        with self._lock:
            order = self._registry.orders.get(client_order_id)
            if order is None:
                raise UnknownOrderError(client_order_id)
            if order.is_terminal:
                return order, None
            order.request_cancel()
            broker_id = order.broker_order_id
            if broker_id is None:
                self._cancel_unsent.add(client_order_id)
                return order, None
        return order, self._send_cancel(order, broker_id)

    def _send_cancel(self, order: Order, broker_id: str) -> str | None:
        """Send one cancel request; what went wrong (it is sent again next sync), or None."""
        cid = order.client_order_id
        try:
            self.gateway.cancel(broker_id)
        except Exception as error:  # retried by the next sync
            _log.warning("cancel_not_sent", client_order_id=cid, error=repr(error))
            with self._lock:
                self._cancel_unsent.add(cid)
            return f"{type(error).__name__}: {error}"
        with self._lock:
            self._cancel_unsent.discard(cid)
            self._cancel_sent_at[cid] = self._clock()
        return None

    # -- syncing -------------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Bring every tracked order up to the broker's view; report what changed."""
        work = SyncWork()
        started = self._clock()
        since = self._since(started)
        snapshots: list[BrokerOrder] = []
        try:
            snapshots = self.gateway.updated_since(since)
        except Exception as error:  # the rest of the sync still runs
            work.errors.append(f"updated_since failed: {error!r}")
            _log.warning("sync_listing_failed", error=repr(error))
        else:
            self._apply_all(snapshots, work)
            with self._lock:
                self._watermark = started
        if self._drain_problems is not None:
            work.errors.extend(self._drain_problems())
        self._resolve_unknown(work)
        self._fetch_cancel_requested(work, seen=snapshots)
        self._resend_cancels(work)
        self._auto_cancel(started, work)
        with self._lock:
            self._registry.evict(started, timedelta(seconds=self.config.retention_seconds))
        self._catch_up_journal(work)
        work.errors.extend(self.drain_hook_failures())
        return work.report()

    def _catch_up_journal(self, work: SyncWork) -> None:
        """Write the records a full disk refused, and say so every sync until they are: while
        they wait, a crash would lose them and no new order can be journaled (or sent)."""
        if not self.journal.unwritten:
            return
        try:
            self.journal.flush()
        except OSError as error:
            work.errors.append(
                f"journal {self.journal.path}: {self.journal.unwritten} records are waiting for "
                f"the disk ({error}); no new order is sent until they are written"
            )

    def ingest(self, snapshots: Iterable[BrokerOrder]) -> SyncReport:
        """Apply snapshots a broker pushed (a stream, or PaperBroker.match()) without polling."""
        work = SyncWork()
        self._apply_all(snapshots, work)
        if not (work.errors or self._hook_failures or work.resolved or work.untracked):
            return events_report(tuple(work.events))  # the common case, built lean
        work.errors.extend(self.drain_hook_failures())
        return work.report()

    def _since(self, now: datetime) -> datetime:
        """Where the listing starts: the last sync; before the first, the oldest working
        order's first event, or what `recover()` found the journal still owes."""
        with self._lock:
            if self._watermark is not None:
                return self._watermark - _WATERMARK_MARGIN
            first = min(
                (at for o in self._registry.working.values() if (at := o.first_event_at)),
                default=now,
            )
            if self._resume_from is not None:
                first = min(first, self._resume_from)
            return min(first, now) - _WATERMARK_MARGIN

    def _apply_all(self, snapshots: Iterable[BrokerOrder], work: SyncWork) -> None:
        # The lock is taken with acquire and release where it is taken for every order
        # (here, `submit`, `_order_finished`): a `with` block looks up and calls __enter__
        # and __exit__, about 140 ns more each time, six times an order.
        lock = self._lock
        lock.acquire()
        try:
            for snapshot in snapshots:
                order = self._registry.order_for(snapshot)
                if order is None:
                    work.untracked += 1
                    continue
                self._apply(order, snapshot, work)
        finally:
            lock.release()

    def _apply(self, order: Order, snapshot: BrokerOrder, work: SyncWork) -> None:
        cid = order.client_order_id
        if (
            order.state is REJECTED
            and order.broker_order_id is None  # given up locally, never seen at the broker
            and snapshot.state is not REJECTED
        ):
            self._rejected_but_alive(order, snapshot, work)
            return
        try:
            events = apply_snapshot(order, snapshot)
        except OrderError as error:
            message = f"order {cid}: broker snapshot skipped: {error}"
            work.errors.append(message)
            self._note_anomaly(order, message)
            return
        # Indexed again on every report, not only when the order learns its id: an index
        # entry lost (an observer interrupted mid-submit) is then restored by the next one.
        self._registry.track_broker_id(order, snapshot.broker_order_id)
        for event in events:
            work.events.append((cid, event))
        if cid in self._unknown and order.state is not PENDING:
            del self._unknown[cid]
            work.resolved.append(cid)

    def _rejected_but_alive(self, order: Order, snapshot: BrokerOrder, work: SyncWork) -> None:
        """An order given up as never placed (or refused) that the broker does hold.

        It must not trade on unseen: a working one is cancelled at once, and the case is
        reported loudly every time, because its fills cannot be booked on a rejected order.
        """
        message = (
            f"order {order.client_order_id} was marked rejected ({order.reason}) but the broker "
            f"holds it as {snapshot.raw_state} with {snapshot.cumulative_quantity} filled; "
        )
        if snapshot.state in (SUBMITTED, PARTIALLY_FILLED):
            message += "a cancel was sent; reconcile its fills with the broker by hand"
            self._cancel_sent_at.pop(order.client_order_id, None)
            try:
                self.gateway.cancel(snapshot.broker_order_id)
            except Exception as error:
                message += f" (the cancel failed: {error!r}; cancel it by hand)"
        else:
            message += "reconcile it with the broker by hand"
        work.errors.append(message)
        self._note_anomaly(order, message)

    def _resolve_unknown(self, work: SyncWork) -> None:
        """Look up, by client order id, each order whose submission outcome is unknown."""
        with self._lock:
            pending = [
                cid
                for cid in self._unknown
                if cid not in self._in_flight and self._registry.orders[cid].state is PENDING
            ]
        for cid in pending:
            try:
                found = self.gateway.find_by_client_id(cid)
            except Exception as error:  # a network error is not evidence of absence
                work.errors.append(f"order {cid}: lookup by client id failed: {error!r}")
                continue
            with self._lock:
                self._resolve_one(cid, found, work)

    def _resolve_one(self, cid: str, found: BrokerOrder | None, work: SyncWork) -> None:
        """Apply what a lookup found; a lookup that found nothing is evidence, and enough of
        it over the grace period makes the order "never placed"."""
        order = self._registry.orders[cid]
        tracker = self._unknown.get(cid)
        if tracker is None or order.state is not PENDING:
            return
        if found is not None:
            self._apply(order, found, work)
            return
        tracker.not_found += 1
        waited = self._clock() - tracker.since
        grace = timedelta(seconds=self.config.unknown_order_grace_seconds)
        if tracker.not_found < self.config.unknown_order_lookups or waited < grace:
            return
        start = order.event_count
        order.reject(
            f"never placed: not found at the broker after {tracker.not_found} "
            f"lookups over {waited.total_seconds():.0f} s"
        )
        del self._unknown[cid]
        work.never_placed.append(cid)
        work.events.extend((cid, e) for e in order.events_since(start))

    def _fetch_cancel_requested(self, work: SyncWork, *, seen: Iterable[BrokerOrder]) -> None:
        """A working order with a cancel requested that the listing did not mention: ask."""
        seen_ids = {s.broker_order_id for s in seen}
        with self._lock:
            targets = [
                o
                for o in self._registry.working.values()
                if o.cancel_requested
                and o.broker_order_id is not None
                and o.broker_order_id not in seen_ids
            ]
        for order in targets:
            assert order.broker_order_id is not None
            try:
                snapshot = self.gateway.fetch(order.broker_order_id)
            except Exception as error:
                work.errors.append(f"order {order.client_order_id}: fetch failed: {error!r}")
                continue
            with self._lock:
                if snapshot is None:
                    message = f"order {order.client_order_id}: the broker does not know it"
                    work.errors.append(message)
                    self._note_anomaly(order, message)
                else:
                    self._apply(order, snapshot, work)

    def _resend_cancels(self, work: SyncWork) -> None:
        """Send cancels that could not be sent, or that the broker has not confirmed in time."""
        now = self._clock()
        with self._lock:
            targets = []
            for order in self._registry.working.values():
                cid = order.client_order_id
                if not order.cancel_requested or order.broker_order_id is None:
                    continue
                sent = self._cancel_sent_at.get(cid)
                if cid in self._cancel_unsent or (
                    sent is not None and now - sent >= CANCEL_RETRY_AFTER
                ):
                    targets.append((order, order.broker_order_id))
        for order, broker_id in targets:
            cid = order.client_order_id
            problem = self._send_cancel(order, broker_id)
            if problem is None:
                _log.info("cancel_resent", client_order_id=cid)
                work.cancels_resent.append(cid)
            else:
                work.errors.append(_undelivered(cid, problem))

    def _auto_cancel(self, now: datetime, work: SyncWork) -> None:
        age = self.config.cancel_after_seconds
        if age is None:
            return
        limit = timedelta(seconds=age)
        with self._lock:
            stale = [
                o.client_order_id
                for o in self._registry.working.values()
                if not o.cancel_requested
                and (started := o.first_event_at) is not None
                and now - started >= limit
                and o.state is not PENDING
            ]
        for cid in stale:
            _, problem = self._cancel(cid)
            work.auto_cancelled.append(cid)
            if problem is not None:
                work.errors.append(_undelivered(cid, problem))

    # -- recovery ------------------------------------------------------------------------------

    def recover(self) -> SyncReport:
        """Rebuild orders and guards from the journal, then sync with the broker.

        Orders still pending had an unknown outcome when the process stopped (or were never
        sent): they are resolved by client order id, never resent.
        """
        old = self.journal
        old.close()
        self.journal = AuditJournal(
            old.path, fsync=old.fsync, segment_bytes=old.segment_bytes, clock=old.clock
        )
        # From the newest checkpoint on: a restart reads the working orders and about one
        # segment, not the whole history.
        rebuilt = self.journal.recover_orders()
        self.hooks = self._build_hooks()
        now = self._clock()
        self._resume_from = _owed_since(rebuilt.values())
        with self._lock:
            for order in self._registry.rejoin(rebuilt.values()):
                order.attach_hooks(self.hooks, clock=self._clock)
                if not order.is_terminal:
                    self._resume_working(order, now)
        return self.sync()

    def _resume_working(self, order: Order, now: datetime) -> None:
        """Restore what a working order rebuilt from the journal had: its guard, an unknown
        submission outcome to resolve, a cancel request to send."""
        cid = order.client_order_id
        try:
            self.safety.register(order)
        except OrderError as error:
            self._note_anomaly(order, f"guard not restored: {error}")
        if order.state is PENDING:
            self._unknown.setdefault(cid, UnknownSubmit(since=now))
        if order.cancel_requested:
            self._cancel_unsent.add(cid)


def _owed_since(orders: Iterable[Order]) -> datetime | None:
    """The earliest cancel, shortly before the journal's last event, of an order cancelled
    with quantity left: a late fill may have landed on it while the process was down. None
    when there is none (working orders are listed from their first event anyway).
    """
    last: datetime | None = None
    cancelled: list[datetime] = []
    for order in orders:
        at = order.last_event_at
        if at is None:
            continue
        if last is None or at > last:
            last = at
        if owed_late_fill(order):
            cancelled.append(at)
    if last is None:
        return None
    return min((at for at in cancelled if last - at <= LATE_FILL_WINDOW), default=None)


def _undelivered(client_order_id: str, problem: str) -> str:
    return (
        f"order {client_order_id}: the cancel could not be delivered ({problem}); it is sent "
        "again at the next sync, and the order may still fill meanwhile"
    )


def _check_collaborators(
    safety: object, account: object, observers: object, clock: object, ids: object
) -> None:
    """Refuse, when the manager is built, a collaborator it could not use: otherwise the first
    order would fail deep inside with an AttributeError naming neither the argument nor the
    fix. (The gateway is left to the first call: test doubles often implement only part.)"""
    for name, value, protocol in (
        ("safety", safety, SafetyPolicy),
        ("account", account, AccountCache),
    ):
        if value is None:
            continue
        missing = [m for m in _methods(protocol) if not callable(getattr(value, m, None))]
        if missing:
            # Named by type, not repr: a bot's own object may print what it holds.
            raise TypeError(
                f"{name} (of type {type(value).__name__}) lacks the method(s) "
                f"{', '.join(missing)} of {protocol.__name__}; pass an object with all of them, "
                "or None for the standard one"
            )
    if observers is not None and not isinstance(observers, OrderHooks):
        raise TypeError(
            f"observers (of type {type(observers).__name__}) is not an OrderHooks; wrap the "
            "callables, e.g. observers=OrderHooks(on_event=[my_observer])"
        )
    for name, value in (("clock", clock), ("client_order_ids", ids)):
        if value is not None and not callable(value):
            raise TypeError(f"{name}={value!r} is not callable; pass a function, or leave it out")


def _methods(protocol: type) -> list[str]:
    """The public methods a protocol class declares, in declaration order."""
    return [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
