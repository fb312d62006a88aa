"""Robinhood's live broker edge, over robin_stocks' authenticated session.

Why the order functions of robin_stocks are not used:

* `order_buy_limit` draws a fresh `uuid4()` as `ref_id` on every call, so a retry after a
  timeout could place the order twice. Here the payload is built by hand with the order's
  `client_order_id` as `ref_id`, which Robinhood deduplicates ("Order with this ref_id already
  exists"), and an ambiguous attempt is looked up before it is sent again (`_resubmit`).
* Its helpers swallow timeouts, 429s and 5xx into `None` or `[]`, truncate pagination
  silently, and send GETs with no timeout. Here every request goes through `_http`, which
  classifies each failure once, with our own timeouts and retries.
* It spends 5 requests per order (account, instrument, two quotes, POST) and pages the whole
  order history to list open orders. Here the account and instruments are cached
  (`_robinhood_catalog`), one quote feeds both ask and bid, and syncing asks only for orders
  updated since a moment.
* It rounds prices through binary floats. Here prices and quantities leave as exact decimal
  strings, and an off-tick price is refused rather than rounded (`_robinhood_form`).

Outcome of a submission:

* `Accepted(snapshot)`: Robinhood created the order (a 2xx order document), or answered that
  the `ref_id` already exists and the order was then found.
* `Rejected(reason)`: a 4xx answer with a readable body (the reason is Robinhood's own words);
  also a symbol Robinhood does not know or will not trade (decided before any POST).
* `Unknown(error)`: a timeout, connection error, 5xx, 429 or unreadable answer that retries
  did not resolve. A network failure is never `Rejected`.
* Raised, with nothing sent: `AuthenticationError` (not logged in, or a 401 that re-login did
  not cure) and `InvalidOrderError` (fractional quantity, off-tick price).

Gateways know nothing of the state machine: this module translates and classifies, it never
fires an order's triggers.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from robin_stocks.robinhood import urls as rh_urls

from orders.config import ConfiguredPart, Disagreement, OrderManagementConfig, RetryConfig
from orders.errors import BrokerError, InvalidOrderError, OrderError
from orders.gateways import _robinhood_account
from orders.gateways._http import DEFAULT_TIMEOUT, Reply, RetriesExhausted, RetryPolicy
from orders.gateways._ratelimit import (
    DEFAULT_ORDER_LIMITS,
    DEFAULT_REQUEST_LIMITS,
    RateLimit,
    RateLimiter,
    limits_for,
)
from orders.gateways._resubmit import submit_with_lookup
from orders.gateways._robinhood_catalog import Catalog, LookupFailed
from orders.gateways._robinhood_form import (
    ensure_legal_tick,
    legal_tick,
    order_form,
    whole_shares,
    wire_time,
)
from orders.gateways._robinhood_pages import order_pages
from orders.gateways._robinhood_transport import RobinhoodTransport, SessionRenewer, require_login
from orders.gateways._robinhood_wire import (
    DERIVED_EXECUTION_PREFIX,
    ROBINHOOD_STATES,
    parse_robinhood_order,
)
from orders.gateways.base import Accepted, AmbiguousAttempt, Rejected, SubmitOutcome, Unknown
from orders.model import BrokerOrder, ensure_aware

if TYPE_CHECKING:
    from orders.lifecycle import Order

__all__ = [
    "DERIVED_EXECUTION_PREFIX",
    "ROBINHOOD_STATES",
    "RobinhoodGateway",
    "SessionRenewer",
    "build_robinhood_gateway",
    "legal_tick",
    "parse_robinhood_order",
]

_log = logging.getLogger(__name__)
# The documented defaults of `order_management.retry`, defined once there.
_RETRY: Final = RetryConfig()
_SAFE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RobinhoodGateway:
    """`OrderGateway` for Robinhood; see the module docstring for how outcomes are decided.

    Keyword options beyond the protocol: `clock` (monotonic seconds, for the rate limiter),
    `now` (aware UTC wall clock, for `updated_at` queries), `request_limits` / `order_limits`
    (pass `()` to disable), `max_attempts` per request, `backoff_base` / `backoff_cap` seconds,
    `max_throttle_wait` (a longer 429 wait is an IP block: give up instead of sleeping),
    `timeout` (connect, read) seconds, `seed` or `rng` for the jitter, `lookup_margin`
    (clock skew allowed when looking an order up by `ref_id`), `client_id_lookback` (how far
    `find_by_client_id` searches an id this gateway did not send; None: the whole history),
    `auth` (a `SessionRenewer` called once on a 401 before giving up).
    """

    def __init__(
        self,
        *,
        account_number: str | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
        request_limits: tuple[RateLimit, ...] = DEFAULT_REQUEST_LIMITS,
        order_limits: tuple[RateLimit, ...] = DEFAULT_ORDER_LIMITS,
        max_attempts: int = _RETRY.max_attempts,
        backoff_base: float = _RETRY.backoff_base_seconds,
        backoff_cap: float = _RETRY.backoff_max_seconds,
        max_throttle_wait: float = 300.0,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        seed: int | None = None,
        rng: random.Random | None = None,
        lookup_margin: timedelta = timedelta(minutes=5),
        client_id_lookback: timedelta | None = timedelta(days=7),
        auth: SessionRenewer | None = None,
    ) -> None:
        self._retry = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_throttle_wait=max_throttle_wait,
            sleep=sleep,
            rng=rng if rng is not None else random.Random(seed),  # noqa: S311 - jitter
        )
        self._account_number = account_number
        self._auth = auth
        self._now = now
        self.request_limits = tuple(request_limits)
        self.order_limits = tuple(order_limits)
        self._transport = RobinhoodTransport(
            retry=self._retry,
            requests=RateLimiter(request_limits, sleep=sleep, clock=clock),
            orders=RateLimiter(order_limits, sleep=sleep, clock=clock),
            timeout=timeout,
            auth=auth,
        )
        self._problems: list[str] = []
        self._catalog = Catalog(
            self._transport.get, account_number=account_number, note=self._problems.append
        )
        self._lookup_margin = lookup_margin
        self._client_id_lookback = client_id_lookback
        self._sent: dict[str, tuple[str, datetime]] = {}  # ref_id -> (broker id, sent at)

    @classmethod
    def from_config(cls, config: OrderManagementConfig, **options: Any) -> RobinhoodGateway:
        """A gateway tuned by the configuration's `retry` and `rate_limit` blocks; `options`
        are the other keyword options of the constructor (`auth`, `sleep`, ...)."""
        retry = config.retry
        request_limits, order_limits = limits_for(config.rate_limit)
        return cls(
            max_attempts=retry.max_attempts,
            backoff_base=retry.backoff_base_seconds,
            backoff_cap=retry.backoff_max_seconds,
            request_limits=request_limits,
            order_limits=order_limits,
            **options,
        )

    def config_disagreements(self, config: OrderManagementConfig) -> Iterator[Disagreement]:
        """The `retry` and `rate_limit` settings where this gateway (or its `auth`) differs
        from `config`."""
        yield from self._retry.disagreements(config.retry)
        if isinstance(self._auth, ConfiguredPart):  # its login retries by the same block
            yield from self._auth.config_disagreements(config)
        limits = (self.request_limits, self.order_limits)
        if limits_for(config.rate_limit) != limits:
            yield "rate_limit", config.rate_limit, limits

    def __repr__(self) -> str:
        account = "default" if self._account_number is None else "set"
        return f"RobinhoodGateway(account={account}, max_attempts={self._retry.max_attempts})"

    # -- OrderGateway -----------------------------------------------------------------------

    def submit_limit(self, order: Order) -> SubmitOutcome:
        """Send `order` with its client_order_id as `ref_id`; resend only after a lookup."""
        require_login()
        whole_shares(order.quantity)
        ensure_legal_tick(order)
        try:
            account = self._catalog.account()
            instrument = self._catalog.instrument(order.symbol)
            if instrument is None:
                return Rejected(
                    f"Robinhood does not know the symbol {order.symbol!r}; check the ticker "
                    "(no order was sent)"
                )
            if not instrument.tradable:
                return Rejected(
                    f"Robinhood does not trade {order.symbol} ({instrument.why_not}); "
                    "no order was sent"
                )
            ensure_legal_tick(order, instrument.min_tick_size)
            ask, bid = self._catalog.quote(order.symbol)
        except LookupFailed as exc:
            return Unknown(f"{exc}; no order was sent")
        form = order_form(
            order, account=account, instrument=instrument, ask=ask, bid=bid, now=self._now()
        )
        outcome = self._post_order(form, order.client_order_id, order.symbol)
        if isinstance(outcome, Accepted) and outcome.snapshot.client_order_id is not None:
            sent = (outcome.snapshot.broker_order_id, self._now())
            self._sent[outcome.snapshot.client_order_id] = sent
        return outcome

    def cancel(self, broker_order_id: str) -> None:
        """Ask Robinhood to cancel; its answer is not trusted, the next snapshot decides.

        A refusal is logged, not raised, and never read as the order's end: Robinhood answers
        "Order cannot be cancelled at this time." for a filled order but also for a `queued`
        one that is still working and that a later cancel request does cancel, and 404 for
        one already cancelled. The caller keeps the cancel outstanding until a snapshot shows
        the order ended, and sends it again while it works (`OrderManager` re-sends a cancel
        not confirmed within 30 s). A 2xx answer, even with an empty body (Robinhood's
        documented answer to a successful cancel), is a delivered request. A request that
        could not be delivered after every retry raises `BrokerError`: the order may still
        be working, so cancel again.
        """
        require_login()
        url = rh_urls.cancel_url(_safe_id(broker_order_id))
        try:
            reply = self._retry.run(
                lambda: self._transport.request("POST", url, data={}, empty_ok=True)
            )
        except RetriesExhausted as exc:
            raise BrokerError(
                f"the cancel request for Robinhood order {broker_order_id} was not delivered "
                f"({exc.last}); the order may still be working: cancel again"
            ) from None
        if reply.status >= 400:
            _log.warning(
                "Robinhood refused to cancel %s (%s %s); the order may still be working: "
                "send the cancel again until a snapshot shows it ended",
                broker_order_id,
                reply.status,
                reply.reason,
            )

    def fetch(self, broker_order_id: str) -> BrokerOrder | None:
        """Robinhood's current view of one order; None when Robinhood answers 404."""
        require_login()
        url = rh_urls.orders_url(_safe_id(broker_order_id))
        reply = self._transport.get(url, None, allow_404=True)
        if reply.status == 404:
            return None
        return self._parse(reply.body)

    def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order sent under this `ref_id`: one request when this gateway sent it, else a
        scan of the orders updated within `client_id_lookback`."""
        require_login()
        sent = self._sent.get(client_order_id)
        if sent is not None:
            return self.fetch(sent[0])
        since = None
        if self._client_id_lookback is not None:
            since = self._now() - self._client_id_lookback
        raw = self._first_with_ref_id(client_order_id, since)
        return None if raw is None else self._parse(raw)

    # -- AccountSource: buying power and positions for the safety checks --------------------

    def fetch_buying_power(self) -> Decimal:
        """The account's buying power, exactly (one request; `AccountData` caches it)."""
        require_login()
        return _robinhood_account.buying_power(self._transport.get, self._catalog)

    def fetch_positions(self) -> Mapping[str, Decimal]:
        """Shares held per symbol (one request per page, plus one per new instrument)."""
        require_login()
        return _robinhood_account.positions(
            self._transport.get, self._catalog, self._account_number
        )

    def drain_problems(self) -> list[str]:
        """Orders skipped by `updated_since` since the last call (see ReportsProblems)."""
        problems = list(self._problems)
        self._problems.clear()  # the catalog notes into this very list
        return problems

    def updated_since(self, when: datetime) -> list[BrokerOrder]:
        """Every order Robinhood updated at or after `when`: one request per page.

        A page that cannot be read after every retry raises `BrokerError` (never a partial
        list). One order that cannot be parsed (an unknown state word) is logged at ERROR and
        left out, so one odd order does not blind the whole sync.
        """
        require_login()
        ensure_aware(when, "when")
        latest: dict[str, BrokerOrder] = {}
        for raw in order_pages(self._transport.get, self._account_number, when):
            snapshot = self._parse_or_note(raw)
            if snapshot is None:
                continue
            seen = latest.get(snapshot.broker_order_id)
            if seen is None or _newer(snapshot, seen):
                latest[snapshot.broker_order_id] = snapshot
        return list(latest.values())

    # -- submission -------------------------------------------------------------------------

    def _post_order(self, form: dict[str, str], ref_id: str, symbol: str) -> SubmitOutcome:
        url = rh_urls.orders_url(account_number=self._account_number)
        started = self._now()

        def send() -> SubmitOutcome:
            reply = self._transport.request("POST", url, data=form, is_order=True)
            return self._settle(reply, ref_id, started, symbol)

        def pause(attempt: int, failure: AmbiguousAttempt) -> bool:
            return self._retry.pause(attempt, failure, last_attempt_waits=True)

        return submit_with_lookup(
            send,
            lambda: self._look_up(ref_id, started, symbol),
            attempts=self._retry.max_attempts,
            pause=pause,
            client_order_id=ref_id,
        )

    def _settle(self, reply: Reply, ref_id: str, started: datetime, symbol: str) -> SubmitOutcome:
        """The outcome of a POST that Robinhood answered; raises AmbiguousAttempt if it
        cannot tell."""
        if reply.ok:
            if not isinstance(reply.body, Mapping) or not reply.body.get("id"):
                raise AmbiguousAttempt(f"Robinhood answered {reply.status} without an order id")
            try:
                return Accepted(parse_robinhood_order(reply.body, symbol=symbol))
            except BrokerError as exc:
                return Unknown(f"Robinhood created the order but its answer is unreadable: {exc}")
        if not _ref_id_exists(reply):
            return Rejected(reply.reason)
        found = self._look_up(ref_id, started, symbol)
        if found is not None:
            return Accepted(found)
        return Unknown(
            f"Robinhood says an order with ref_id {ref_id} already exists, but it was not "
            f"among the orders updated since {wire_time(started - self._lookup_margin)}; "
            "look it up by client order id before sending anything"
        )

    def _look_up(self, ref_id: str, started: datetime, symbol: str) -> BrokerOrder | None:
        """The order sent under `ref_id`, if Robinhood lists it. A failed lookup is not fatal:
        the resend carries the same ref_id, which Robinhood refuses to create twice."""
        try:
            raw = self._first_with_ref_id(ref_id, started - self._lookup_margin)
            return None if raw is None else parse_robinhood_order(raw, symbol=symbol)
        except OrderError as exc:  # a lookup failure never decides the outcome
            _log.warning("order %s: lookup by ref_id failed: %s", ref_id, exc)
        return None

    # -- reading orders ---------------------------------------------------------------------

    def _first_with_ref_id(self, ref_id: str, since: datetime | None) -> Mapping[str, Any] | None:
        for raw in order_pages(self._transport.get, self._account_number, since):
            if isinstance(raw, Mapping) and raw.get("ref_id") == ref_id:
                return raw
        return None

    def _parse(self, raw: object) -> BrokerOrder:
        if not isinstance(raw, Mapping):
            raise BrokerError("a Robinhood order is not a JSON object; report the answer")
        return parse_robinhood_order(raw, symbol=self._catalog.symbol_for(raw.get("instrument")))

    def _parse_or_note(self, raw: object) -> BrokerOrder | None:
        """The order of a listing, or None (and a problem noted) when it cannot be read."""
        # A failed instrument request raises (no partial list); only a bad order is skipped.
        known: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        symbol = self._catalog.symbol_for(known.get("instrument"))
        try:
            if not isinstance(raw, Mapping):
                raise BrokerError("a Robinhood order is not a JSON object; report the answer")
            return parse_robinhood_order(raw, symbol=symbol)
        except BrokerError as exc:
            problem = (
                f"skipped Robinhood order {known.get('id')!r} "
                f"(ref_id {known.get('ref_id')!r}): {exc}"
            )
            _log.error("%s", problem)
            self._problems.append(problem)
            return None


def _ref_id_exists(reply: Reply) -> bool:
    body = reply.body
    return (
        isinstance(body, Mapping)
        and "ref_id" in body
        and "already exists" in json.dumps(body["ref_id"], default=str)
    )


def _newer(a: BrokerOrder, b: BrokerOrder) -> bool:
    if a.updated_at is None or b.updated_at is None:
        return True
    return a.updated_at >= b.updated_at


def _safe_id(broker_order_id: str) -> str:
    if not isinstance(broker_order_id, str) or _SAFE_ID.fullmatch(broker_order_id) is None:
        raise InvalidOrderError(
            "broker_order_id",
            broker_order_id,
            "is not a Robinhood order id (letters, digits and '-')",
        )
    return broker_order_id


def build_robinhood_gateway(
    config: OrderManagementConfig, env: Mapping[str, str] | None = None
) -> RobinhoodGateway:
    """The live gateway `order_management.broker: "robinhood"` names: logged in with the
    environment's credentials (None: the process's own), tuned by `retry` and `rate_limit`."""
    from orders.gateways.auth import login_from_env  # noqa: PLC0415 - pyotp loads only here

    auth = login_from_env(config, env, "live mode", 'or set mode to "paper"')
    return RobinhoodGateway.from_config(config, auth=auth)
