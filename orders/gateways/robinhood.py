"""Robinhood's live broker edge, over robin_stocks' authenticated session.

Why the order functions of robin_stocks are not used:

* `order_buy_limit` draws a fresh `uuid4()` as `ref_id` on every call, so a retry after a
  timeout could place the order twice. Here the payload is built by hand with the order's
  `client_order_id` as `ref_id`, which Robinhood deduplicates ("Order with this ref_id already
  exists"): resending after an ambiguous failure is safe.
* Its helpers swallow timeouts, 429s and 5xx into `None` or `[]`, truncate pagination
  silently, and send GETs with no timeout. Here every request goes through `helper.SESSION`
  directly with our own timeouts, and `_send` reads the status code itself: it is the one place
  where a robin_stocks or requests failure becomes an outcome.
* It spends 5 requests per order (account, instrument, two quotes, POST) and pages the whole
  order history to list open orders. Here the account and instruments are cached, one quote
  feeds both ask and bid, and syncing asks only for orders updated since a moment.
* It rounds prices through binary floats. Here prices and quantities leave as exact decimal
  strings, and an off-tick price is refused rather than rounded: rounding is the caller's
  decision (`pricing.compute_limit_price`), never a silent side effect of sending.

What robin_stocks still provides: the `requests.Session` (with the bearer token `RobinhoodAuth`
installed), the login flag (`helper.LOGGED_IN`) and the URL builders.

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

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import requests
from robin_stocks.robinhood import helper as rh_helper
from robin_stocks.robinhood import urls as rh_urls

from orders.config import Disagreement, OrderManagementConfig, RetryConfig
from orders.errors import AuthenticationError, BrokerError, InvalidOrderError, OrderError
from orders.gateways.base import Accepted, Rejected, SubmitOutcome, Unknown
from orders.gateways.ratelimit import (
    DEFAULT_ORDER_LIMITS,
    DEFAULT_REQUEST_LIMITS,
    RateLimit,
    RateLimiter,
    limits_for,
)
from orders.gateways.session import send_form
from orders.model import (
    MAX_DECIMAL_PLACES,
    BrokerOrder,
    Execution,
    OrderState,
    Side,
    TimeInForce,
    ensure_aware,
    to_decimal,
)

if TYPE_CHECKING:
    from orders.lifecycle import Order

__all__ = [
    "DERIVED_EXECUTION_PREFIX",
    "ROBINHOOD_STATES",
    "RobinhoodGateway",
    "SessionRenewer",
    "legal_tick",
    "parse_robinhood_order",
]

_log = logging.getLogger(__name__)
# The documented defaults of `order_management.retry`, defined once there.
_RETRY: Final = RetryConfig()

_API: Final = "https://api.robinhood.com/"
_THROTTLE: Final = re.compile(r"[Ee]xpected available in (\d+(?:\.\d+)?) second")
_SAFE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}")
_MAX_PAGES: Final = 10_000

ROBINHOOD_STATES: Final[Mapping[str, OrderState]] = MappingProxyType(
    {
        "queued": OrderState.SUBMITTED,
        # A state of Robinhood's app that no captured payload shows. Whatever its nuance, it
        # names an order Robinhood holds (it has an id) that has not ended: not terminal and
        # not a fill, which is all `submitted` claims. Fills, if any, are still booked from
        # cumulative_quantity and executions, as for any working order.
        "new": OrderState.SUBMITTED,
        "unconfirmed": OrderState.SUBMITTED,
        "confirmed": OrderState.SUBMITTED,
        "partially_filled": OrderState.PARTIALLY_FILLED,
        # A cancel was asked for and is not done: the order still works and may still fill.
        # Reported as partially_filled when it has fills (see _PENDING_CANCEL).
        "pending_cancelled": OrderState.SUBMITTED,
        "pending_canceled": OrderState.SUBMITTED,
        "filled": OrderState.FILLED,
        "cancelled": OrderState.CANCELLED,
        # Robinhood spells it "cancelled"; the US spelling is accepted because docs use it.
        "canceled": OrderState.CANCELLED,
        # Part filled, the rest cancelled: cancelled with its fills, as a plain `cancelled`
        # with cumulative_quantity > 0 already is.
        "partially_filled_rest_cancelled": OrderState.CANCELLED,
        "partially_filled_rest_canceled": OrderState.CANCELLED,
        "rejected": OrderState.REJECTED,
        "failed": OrderState.REJECTED,
        # Deliberately absent, so they raise BrokerError: `voided` (no payload shows whether a
        # voided order can carry fills, and `rejected` would drop them), `triggered`,
        # `locating`, `locate_failed`, `locate_completed`, `inactive` (stop and short-sale
        # words whose effect on a limit order is not documented).
    }
)

_PENDING_CANCEL: Final = frozenset({"pending_cancelled", "pending_canceled"})

# Where Robinhood states why an order was cancelled; `reject_reason` is null in every real
# payload, cancels included.
_IPO_CANCEL_FIELD: Final = "ipo_access_cancellation_reason"
_CANCEL_CATEGORY_FIELD: Final = "response_category"

# Prefix of an execution id made up for an execution Robinhood sent without one. Robinhood's
# own ids are UUIDs, and the state machine's inferred fills start with "inferred:", so an id
# with this prefix can be neither.
DERIVED_EXECUTION_PREFIX: Final = "rh-derived:"

# The range a number from Robinhood must fall in: share counts and prices are far inside it,
# and arithmetic on numbers inside it (notional = quantity x price, an average's inverse)
# cannot overflow or underflow Decimal's default context. A number outside it is refused
# with the one payload it came in, instead of raising decimal.Overflow later, mid-sync.


# -- wire -> BrokerOrder ------------------------------------------------------------------


def parse_robinhood_order(payload: Mapping[str, Any], *, symbol: str | None = None) -> BrokerOrder:
    """A snapshot from Robinhood's order JSON; anything unreadable raises `BrokerError`.

    Robinhood's order JSON names the instrument by URL only, so the caller passes `symbol`
    when it knows it. An unknown state word is never mapped to a guess: the order could be in
    any state, and guessing wrong would move money. A crypto or option order (which a merged
    history can hold) is refused by kind rather than misread as a stock order.

    `raw_state` keeps Robinhood's word: `pending_cancelled` (a working order whose cancel
    Robinhood has not carried out yet) can only be told apart from `confirmed` by it.

    `cancel_reason`, on a cancelled order only, is Robinhood's word for why, unaltered:
    `ipo_access_cancellation_reason` as "ipo_access: <word>" (e.g. "ipo_access:
    no_allocation") when present, else `response_category` as is (e.g. "end_of_day" for a gfd
    order expired at the close). A value that is not a string is ignored rather than refusing
    the whole order: it explains a cancel, it does not change one.

    An execution without an `id` (Robinhood's 2016 field set) gets one derived from the order
    id and the execution's position, timestamp, quantity and price, so every snapshot of the
    order names it the same way and it is booked once.
    """
    if not isinstance(payload, Mapping):
        raise BrokerError(
            f"a Robinhood order must be a JSON object, not {type(payload).__name__}; "
            "nothing was changed; report the broker's answer"
        )
    order_id = payload.get("id")
    label = f"Robinhood order {order_id!r}"
    _refuse_other_kinds(payload, label)
    raw_state = payload.get("state")
    if not isinstance(raw_state, str) or raw_state not in ROBINHOOD_STATES:
        raise BrokerError(
            f"{label} has state {raw_state!r}, which this version does not know "
            f"(known: {', '.join(ROBINHOOD_STATES)}); it was not guessed and the order was left "
            "unchanged; check the order in the Robinhood app and report the new state word"
        )
    try:
        if symbol is None and isinstance(payload.get("symbol"), str):
            symbol = payload["symbol"]
        cumulative = _cumulative(payload)
        state = ROBINHOOD_STATES[raw_state]
        if raw_state in _PENDING_CANCEL and cumulative > 0:
            state = OrderState.PARTIALLY_FILLED
        return BrokerOrder(
            broker_order_id=order_id,
            client_order_id=_optional_str(payload.get("ref_id"), "ref_id"),
            symbol=symbol,
            side=payload.get("side"),
            quantity=_wire_decimal(payload.get("quantity"), "quantity"),
            limit_price=_optional_decimal(payload.get("price"), "price"),
            state=state,
            raw_state=raw_state,
            cumulative_quantity=cumulative,
            average_price=_average_price(payload),
            executions=tuple(
                _execution(item, position, order_id)
                for position, item in enumerate(_list(payload.get("executions")))
            ),
            reject_reason=_optional_str(payload.get("reject_reason"), "reject_reason"),
            updated_at=_timestamp(payload.get("updated_at"), "updated_at"),
            cancel_reason=_cancel_reason(payload) if state is OrderState.CANCELLED else None,
        )
    # ArithmeticError: decimal.Overflow or InvalidOperation, and OverflowError from a
    # timestamp moved past year 1 or 9999 by its offset. None of them may escape: a caller
    # skips one bad order only if it is told with a BrokerError.
    except (OrderError, TypeError, ValueError, KeyError, ArithmeticError) as exc:
        raise BrokerError(
            f"{label} is malformed: {exc}; the order was left unchanged; report the broker's answer"
        ) from None


def _refuse_other_kinds(payload: Mapping[str, Any], label: str) -> None:
    """Crypto and option orders share words with stock orders (state, quantity, price), so
    read as one they would parse into a stock order with no symbol, or fail on a side."""
    if payload.get("currency_pair_id") is not None and not payload.get("instrument"):
        raise BrokerError(
            f"{label} is a crypto order (it has currency_pair_id and no instrument), not a "
            "stock order; orders trades stocks only and left it alone; if it came from the "
            "stock orders endpoint, report the broker's answer"
        )
    if payload.get("legs") is not None and payload.get("side") is None:
        raise BrokerError(
            f"{label} is an option order (it has legs and no side), not a stock order; orders "
            "trades stocks only and left it alone; if it came from the stock orders endpoint, "
            "report the broker's answer"
        )


def _cancel_reason(payload: Mapping[str, Any]) -> str | None:
    ipo = payload.get(_IPO_CANCEL_FIELD)
    if isinstance(ipo, str) and ipo.strip():
        return f"ipo_access: {ipo.strip()}"
    category = payload.get(_CANCEL_CATEGORY_FIELD)
    if isinstance(category, str) and category.strip():
        return category.strip()
    return None


def _wire_decimal(value: object, field: str) -> Decimal:
    # Robinhood sends numbers as decimal strings; a JSON number arrives here as a Decimal
    # (see _read_json), so a binary float never gets in. Beyond the range every number must
    # keep, a broker's digits are bounded too: a 5,000-digit string refuses one order.
    result = to_decimal(value, field)
    exponent = result.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise ValueError(
            f"{field}={_short(value)} is out of range: more than {MAX_DECIMAL_PLACES} "
            "decimal places"
        )
    return result


def _short(value: object) -> str:
    # A refused number can be thousands of digits long; the message needs only its start.
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} characters)"


def _optional_decimal(value: object, field: str) -> Decimal | None:
    return None if value is None else _wire_decimal(value, field)


def _optional_str(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{field}={value!r} is not a string")


def _list(value: object) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"executions={value!r} is not a list")
    return value


def _cumulative(payload: Mapping[str, Any]) -> Decimal:
    value = _optional_decimal(payload.get("cumulative_quantity"), "cumulative_quantity")
    return Decimal(0) if value is None else value


def _average_price(payload: Mapping[str, Any]) -> Decimal | None:
    average = _optional_decimal(payload.get("average_price"), "average_price")
    # Before the first fill Robinhood sends null; a zero there means the same thing.
    return None if average is None or average == 0 else average


def _execution(item: object, position: int, order_id: object) -> Execution:
    if not isinstance(item, Mapping):
        raise ValueError(f"execution {item!r} is not an object")
    quantity = _wire_decimal(item.get("quantity"), "execution quantity")
    price = _wire_decimal(item.get("price"), "execution price")
    timestamp = _timestamp(item.get("timestamp"), "execution timestamp")
    execution_id = item.get("id")
    if execution_id is None or execution_id == "":
        execution_id = _derived_execution_id(order_id, position, timestamp, quantity, price)
    return Execution(execution_id=execution_id, quantity=quantity, price=price, timestamp=timestamp)


def _derived_execution_id(
    order_id: object, position: int, timestamp: datetime | None, quantity: Decimal, price: Decimal
) -> str:
    """A stable id for an execution Robinhood sent without one.

    Built from values as read (numbers without trailing zeros, the time in UTC), not from
    their text, so a snapshot that writes "1.00000000" where another wrote "1" names the
    same execution: a second snapshot of the order must not book it twice.
    """
    when = "-" if timestamp is None else timestamp.isoformat()
    key = "|".join((str(order_id), str(position), when, _plain(quantity), _plain(price)))
    return DERIVED_EXECUTION_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:20]


def _plain(value: Decimal) -> str:
    # Not Decimal.normalize(): it rounds to the context's 28 digits.
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _timestamp(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field}={value!r} is not a timestamp string")
    parsed = datetime.fromisoformat(value)
    return ensure_aware(parsed, field).astimezone(UTC)


# -- Order -> wire ------------------------------------------------------------------------


def legal_tick(price: Decimal, min_tick_size: Decimal | None = None) -> bool:
    """Whether Robinhood accepts `price` as is: cents at or above $1, at most 4 decimals
    below (SEC Rule 612 and Robinhood's own answers), and a multiple of the instrument's
    `min_tick_size` where it sets one."""
    if price <= 0:
        return False
    step = Decimal("0.01") if price >= 1 else Decimal("0.0001")
    if price % step != 0:
        return False
    return min_tick_size is None or min_tick_size <= 0 or price % min_tick_size == 0


def _wire_price(price: Decimal) -> str:
    step = Decimal("0.01") if price >= 1 else Decimal("0.0001")
    return format(price.quantize(step), "f")


def _whole_shares(quantity: Decimal) -> str:
    if quantity <= 0 or quantity != quantity.to_integral_value():
        raise InvalidOrderError(
            "quantity",
            quantity,
            "Robinhood takes limit orders in whole shares only; round the quantity down to a "
            "whole number (nothing was sent)",
        )
    return str(int(quantity))


@attrs.frozen
class _Instrument:
    url: str
    symbol: str
    tradable: bool
    why_not: str
    min_tick_size: Decimal | None


# -- transport ----------------------------------------------------------------------------


@attrs.frozen
class _Reply:
    status: int
    body: Any  # parsed JSON (numbers as Decimal), None when the body is not JSON
    text: str


class _Ambiguous(Exception):
    """The request's effect is unknown: it may or may not have reached Robinhood."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Refused(BrokerError):
    """Robinhood answered a GET with a definitive refusal (a 4xx other than 401)."""


class _Unauthorized(Exception):
    """Robinhood answered 401: the bearer token is missing, expired or revoked."""


class SessionRenewer(Protocol):
    """What the gateway needs to cure a 401: `RobinhoodAuth` implements it."""

    def relogin(self) -> None: ...


def _read_json(text: str) -> Any:
    # Integers as Decimal too: int() refuses a literal of more than 4300 digits, which would
    # make a whole page of orders unreadable for one bad number; _wire_decimal refuses it
    # with its one order instead.
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
        return None


def _reason(reply: _Reply) -> str:
    body = reply.body
    if isinstance(body, Mapping) and set(body) == {"detail"} and isinstance(body["detail"], str):
        return body["detail"]
    return reply.text.strip()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _wire_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RobinhoodGateway:
    """`OrderGateway` for Robinhood; see the module docstring for how outcomes are decided.

    Keyword options beyond API.md: `clock` (monotonic seconds, for the rate limiter), `now`
    (aware UTC wall clock, for `updated_at` queries), `request_limits` / `order_limits` (pass
    `()` to disable), `max_attempts` per request, `backoff_base` / `backoff_cap` seconds,
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
        timeout: tuple[float, float] = (3.05, 16.0),
        seed: int | None = None,
        rng: random.Random | None = None,
        lookup_margin: timedelta = timedelta(minutes=5),
        client_id_lookback: timedelta | None = timedelta(days=7),
        auth: SessionRenewer | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._account_number = account_number
        self._sleep = sleep
        self._now = now
        self.request_limits = tuple(request_limits)
        self.order_limits = tuple(order_limits)
        self._requests = RateLimiter(request_limits, sleep=sleep, clock=clock)
        self._orders = RateLimiter(order_limits, sleep=sleep, clock=clock)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_throttle_wait = max_throttle_wait
        self._timeout = timeout
        self._rng = rng if rng is not None else random.Random(seed)  # noqa: S311 - jitter, not crypto
        self._problems: list[str] = []
        self._lookup_margin = lookup_margin
        self._client_id_lookback = client_id_lookback
        self._auth = auth
        self._account_url: str | None = None
        self._instruments: dict[str, _Instrument | None] = {}
        self._symbols_by_url: dict[str, str] = {}
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
        """The `retry` and `rate_limit` settings where this gateway differs from `config`."""
        retry = config.retry
        for key, wanted, actual in (
            ("retry.max_attempts", retry.max_attempts, self._max_attempts),
            ("retry.backoff_base_seconds", retry.backoff_base_seconds, self._backoff_base),
            ("retry.backoff_max_seconds", retry.backoff_max_seconds, self._backoff_cap),
        ):
            if wanted != actual:
                yield key, wanted, actual
        limits = (self.request_limits, self.order_limits)
        if limits_for(config.rate_limit) != limits:
            yield "rate_limit", config.rate_limit, limits

    def __repr__(self) -> str:
        account = "default" if self._account_number is None else "set"
        return f"RobinhoodGateway(account={account}, max_attempts={self._max_attempts})"

    # -- OrderGateway -----------------------------------------------------------------------

    def submit_limit(self, order: Order) -> SubmitOutcome:
        """Send `order` with its client_order_id as `ref_id`; resend only after a lookup."""
        self._require_login()
        symbol = order.symbol
        quantity = _whole_shares(order.quantity)
        price = order.limit_price
        if not legal_tick(price):
            raise self._off_tick(order, None)
        try:
            account = self._account()
            instrument = self._instrument(symbol)
        except _LookupFailed as exc:
            return Unknown(f"{exc}; no order was sent")
        if instrument is None:
            return Rejected(
                f"Robinhood does not know the symbol {symbol!r}; check the ticker "
                "(no order was sent)"
            )
        if not instrument.tradable:
            return Rejected(
                f"Robinhood does not trade {symbol} ({instrument.why_not}); no order was sent"
            )
        if not legal_tick(price, instrument.min_tick_size):
            raise self._off_tick(order, instrument.min_tick_size)
        try:
            ask, bid = self._quote(symbol)
        except _LookupFailed as exc:
            return Unknown(f"{exc}; no order was sent")
        payload = self._payload(
            order, account=account, instrument=instrument, quantity=quantity, ask=ask, bid=bid
        )
        return self._post_order(payload, order.client_order_id, symbol)

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
        self._require_login()
        url = rh_urls.cancel_url(_safe_id(broker_order_id))
        last: _Ambiguous | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                reply = self._request("POST", url, data={}, empty_ok=True)
            except _Ambiguous as exc:
                last = exc
                if not self._wait_before_retry(attempt, exc):
                    break
                continue
            if reply.status >= 400:
                _log.warning(
                    "Robinhood refused to cancel %s (%s %s); the order may still be working: "
                    "send the cancel again until a snapshot shows it ended",
                    broker_order_id,
                    reply.status,
                    _reason(reply),
                )
            return
        raise BrokerError(
            f"the cancel request for Robinhood order {broker_order_id} was not delivered "
            f"({last}); the order may still be working: cancel again"
        )

    def fetch(self, broker_order_id: str) -> BrokerOrder | None:
        """Robinhood's current view of one order; None when Robinhood answers 404."""
        self._require_login()
        reply = self._get(rh_urls.orders_url(_safe_id(broker_order_id)), None, allow_404=True)
        if reply.status == 404:
            return None
        return self._parse(reply.body)

    def find_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order sent under this `ref_id`: one request when this gateway sent it, else a
        scan of the orders updated within `client_id_lookback`."""
        self._require_login()
        sent = self._sent.get(client_order_id)
        if sent is not None:
            return self.fetch(sent[0])
        since = None
        if self._client_id_lookback is not None:
            since = self._now() - self._client_id_lookback
        for raw in self._pages(since):
            if isinstance(raw, Mapping) and raw.get("ref_id") == client_order_id:
                return self._parse(raw)
        return None

    # -- AccountSource: buying power and positions for the safety checks --------------------

    def fetch_buying_power(self) -> Decimal:
        """The account's buying power, exactly (one request; `AccountData` caches it)."""
        self._require_login()
        body = self._get(self._account(), None).body
        value = body.get("buying_power") if isinstance(body, Mapping) else None
        try:
            return _wire_decimal(value, "buying_power")
        except ValueError as exc:
            raise BrokerError(f"Robinhood's account answer: {exc}; report it") from None

    def fetch_positions(self) -> Mapping[str, Decimal]:
        """Shares held per symbol (one request per page, plus one per new instrument)."""
        self._require_login()
        held: dict[str, Decimal] = {}
        url = rh_urls.positions_url(account_number=self._account_number)
        for raw in self._results(url, {"nonzero": "true"}, "positions"):
            if not isinstance(raw, Mapping):
                raise BrokerError("a Robinhood position is not a JSON object; report it")
            try:
                quantity = _wire_decimal(raw.get("quantity"), "quantity")
            except ValueError as exc:
                raise BrokerError(f"a Robinhood position: {exc}; report it") from None
            symbol = self._symbol_for(raw.get("instrument"))
            if symbol is None:
                raise BrokerError(
                    f"a Robinhood position of {quantity} shares names no known instrument "
                    f"({raw.get('instrument')!r}); positions cannot be read; report it"
                )
            if quantity:
                held[symbol] = held.get(symbol, Decimal(0)) + quantity
        return held

    def drain_problems(self) -> list[str]:
        """Orders skipped by `updated_since` since the last call (see ReportsProblems)."""
        problems, self._problems = self._problems, []
        return problems

    def updated_since(self, when: datetime) -> list[BrokerOrder]:
        """Every order Robinhood updated at or after `when`: one request per page.

        A page that cannot be read after every retry raises `BrokerError` (never a partial
        list). One order that cannot be parsed (an unknown state word) is logged at ERROR and
        left out, so one odd order does not blind the whole sync.
        """
        self._require_login()
        ensure_aware(when, "when")
        latest: dict[str, BrokerOrder] = {}
        for raw in self._pages(when):
            # A failed instrument request raises (no partial list); only a bad order is skipped.
            instrument = raw.get("instrument") if isinstance(raw, Mapping) else None
            symbol = self._symbol_for(instrument)
            try:
                snapshot = parse_robinhood_order(raw, symbol=symbol)
            except BrokerError as exc:
                known = raw if isinstance(raw, Mapping) else {}
                problem = (
                    f"skipped Robinhood order {known.get('id')!r} "
                    f"(ref_id {known.get('ref_id')!r}): {exc}"
                )
                _log.error("%s", problem)
                self._problems.append(problem)
                continue
            seen = latest.get(snapshot.broker_order_id)
            if seen is None or _newer(snapshot, seen):
                latest[snapshot.broker_order_id] = snapshot
        return list(latest.values())

    # -- submission -------------------------------------------------------------------------

    def _payload(
        self,
        order: Order,
        *,
        account: str,
        instrument: _Instrument,
        quantity: str,
        ask: Decimal | None,
        bid: Decimal | None,
    ) -> dict[str, str]:
        # The field set of robin_stocks 3.4.0's order() for a regular-hours limit order:
        # Robinhood validates this "order form" and refuses older shapes.
        payload = {
            "account": account,
            "instrument": instrument.url,
            "symbol": instrument.symbol,
            "price": _wire_price(order.limit_price),
            "bid_ask_timestamp": self._now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "quantity": quantity,
            "ref_id": order.client_order_id,
            "type": "limit",
            "time_in_force": TimeInForce(order.time_in_force).value,
            "trigger": "immediate",
            "side": Side(order.side).value,
            "market_hours": "regular_hours",
            "extended_hours": "False",
            "order_form_version": "4",
        }
        if ask is not None:
            payload["ask_price"] = format(ask, "f")
        if bid is not None:
            payload["bid_price"] = format(bid, "f")
        if payload["side"] == "buy":
            payload["preset_percent_limit"] = "0.05"
        return payload

    def _post_order(self, payload: dict[str, str], ref_id: str, symbol: str) -> SubmitOutcome:
        url = rh_urls.orders_url(account_number=self._account_number)
        started = self._now()
        last: _Ambiguous | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                reply = self._request("POST", url, data=payload, is_order=True)
                outcome = self._settle(reply, ref_id, started, symbol)
            except _Ambiguous as exc:
                last = exc
                _log.warning("order %s: attempt %d is ambiguous: %s", ref_id, attempt, exc)
            except OrderError as exc:
                if last is None:
                    raise  # refused before any POST could have created the order
                # An earlier POST may have created it: never report that as a refusal.
                return Unknown(
                    f"{type(exc).__name__} after an ambiguous attempt ({last}): {exc}; the "
                    f"order may exist: look it up by client order id {ref_id}"
                )
            else:
                if isinstance(outcome, Rejected) and last is not None:
                    # A refusal of the resend says nothing about the first attempt, which may
                    # have created the order (and reserved the cash the resend lacked).
                    return Unknown(
                        f"the resend was refused ({outcome.reason}) after an ambiguous "
                        f"attempt ({last}); the order may exist: look it up by client order "
                        f"id {ref_id}"
                    )
                return outcome
            if not self._wait_before_retry(attempt, last, last_attempt_waits=True):
                break
            # Look before resending: the first POST may have created the order.
            found = self._look_up(ref_id, started, symbol)
            if found is not None:
                return self._accepted(found)
        return Unknown(
            f"no definite answer from Robinhood: {last}; the order may exist: look it up by "
            f"client order id {ref_id} before sending it again"
        )

    def _settle(self, reply: _Reply, ref_id: str, started: datetime, symbol: str) -> SubmitOutcome:
        """The outcome of a POST that Robinhood answered; raises _Ambiguous if it cannot tell."""
        if 200 <= reply.status < 300:
            if not isinstance(reply.body, Mapping) or not reply.body.get("id"):
                raise _Ambiguous(f"Robinhood answered {reply.status} without an order id")
            try:
                return self._accepted(parse_robinhood_order(reply.body, symbol=symbol))
            except BrokerError as exc:
                return Unknown(f"Robinhood created the order but its answer is unreadable: {exc}")
        if _ref_id_exists(reply):
            found = self._look_up(ref_id, started, symbol)
            if found is not None:
                return self._accepted(found)
            return Unknown(
                f"Robinhood says an order with ref_id {ref_id} already exists, but it was not "
                f"among the orders updated since {_wire_time(started - self._lookup_margin)}; "
                "look it up by client order id before sending anything"
            )
        return Rejected(_reason(reply))

    def _accepted(self, snapshot: BrokerOrder) -> Accepted:
        if snapshot.client_order_id is not None:
            self._sent[snapshot.client_order_id] = (snapshot.broker_order_id, self._now())
        return Accepted(snapshot)

    def _look_up(self, ref_id: str, started: datetime, symbol: str) -> BrokerOrder | None:
        """The order sent under `ref_id`, if Robinhood lists it. A failed lookup is not fatal:
        the resend carries the same ref_id, which Robinhood refuses to create twice."""
        try:
            for raw in self._pages(started - self._lookup_margin):
                if isinstance(raw, Mapping) and raw.get("ref_id") == ref_id:
                    return parse_robinhood_order(raw, symbol=symbol)
        except OrderError as exc:  # a lookup failure never decides the outcome
            _log.warning("order %s: lookup by ref_id failed: %s", ref_id, exc)
        return None

    def _off_tick(self, order: Order, min_tick: Decimal | None) -> InvalidOrderError:
        rule = "whole cents at or above $1, at most 4 decimals below $1"
        if min_tick is not None:
            rule += f", and a multiple of {order.symbol}'s minimum tick {min_tick}"
        return InvalidOrderError(
            "limit_price",
            order.limit_price,
            f"not a legal Robinhood price ({rule}); round it with "
            "orders.pricing.compute_limit_price (nothing was sent)",
        )

    # -- lookups (cached) -------------------------------------------------------------------

    def _account(self) -> str:
        if self._account_url is not None:
            return self._account_url
        body = self._lookup(rh_urls.account_profile_url(self._account_number), "the account")
        if self._account_number is None:
            results = body.get("results") if isinstance(body, Mapping) else None
            if not isinstance(results, list) or not results:
                raise BrokerError(
                    "Robinhood lists no account for this login; check the account in the app"
                )
            if len(results) > 1:
                raise BrokerError(
                    f"this login has {len(results)} Robinhood accounts; choose one with "
                    "RobinhoodGateway(account_number=...)"
                )
            body = results[0]
        url = body.get("url") if isinstance(body, Mapping) else None
        if not isinstance(url, str) or not url.startswith(_API):
            raise BrokerError("Robinhood's account answer has no account url; report it")
        self._account_url = url
        return url

    def _instrument(self, symbol: str) -> _Instrument | None:
        if symbol in self._instruments:
            return self._instruments[symbol]
        body = self._lookup(rh_urls.instruments_url(), f"the instrument {symbol}", symbol=symbol)
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, list):
            raise _LookupFailed(f"Robinhood's instrument answer for {symbol} is unreadable")
        match = next(
            (r for r in results if isinstance(r, Mapping) and r.get("symbol") == symbol), None
        )
        instrument = None if match is None else _instrument_from(match)
        self._instruments[symbol] = instrument
        if instrument is not None:
            self._symbols_by_url[instrument.url] = instrument.symbol
        return instrument

    def _quote(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        body = self._lookup(rh_urls.quotes_url(), f"the quote for {symbol}", symbols=symbol)
        results = body.get("results") if isinstance(body, Mapping) else None
        quote = results[0] if isinstance(results, list) and results else None
        if not isinstance(quote, Mapping):
            raise _LookupFailed(f"Robinhood's quote answer for {symbol} is unreadable")
        try:
            ask = _optional_decimal(quote.get("ask_price"), "ask_price")
            bid = _optional_decimal(quote.get("bid_price"), "bid_price")
        except ValueError as exc:
            raise _LookupFailed(f"Robinhood's quote for {symbol} is unreadable: {exc}") from None
        return ask, bid

    def _lookup(self, url: str, what: str, **params: str) -> Any:
        try:
            return self._get(url, params or None).body
        except BrokerError as exc:
            raise _LookupFailed(f"could not read {what} from Robinhood: {exc}") from None

    def _symbol_for(self, instrument_url: object) -> str | None:
        """The symbol of an order's instrument; None (and a problem noted) when Robinhood
        refuses the instrument, e.g. a delisted one: the order is still applied by its ids,
        and one odd instrument must not stop every sync. A transport failure still raises,
        so the listing is retried whole."""
        if not isinstance(instrument_url, str):
            return None
        cached = self._symbols_by_url.get(instrument_url)
        if cached is not None:
            return cached
        if not instrument_url.startswith(_API):
            self._problems.append(f"instrument url {instrument_url!r} is not Robinhood's")
            return None
        try:
            body = self._get(instrument_url, None).body
        except _Refused as exc:
            self._problems.append(f"instrument {_path(instrument_url)} unknown: {exc}")
            return None
        symbol = body.get("symbol") if isinstance(body, Mapping) else None
        if not isinstance(symbol, str):
            self._problems.append(f"instrument {_path(instrument_url)} has no symbol")
            return None
        self._symbols_by_url[instrument_url] = symbol
        return symbol

    def _parse(self, raw: object) -> BrokerOrder:
        if not isinstance(raw, Mapping):
            raise BrokerError("a Robinhood order is not a JSON object; report the answer")
        return parse_robinhood_order(raw, symbol=self._symbol_for(raw.get("instrument")))

    def _pages(self, since: datetime | None) -> Iterator[Any]:
        """Raw orders updated since `since`, page by page; a failed page raises BrokerError."""
        params: dict[str, str] = {}
        if self._account_number is not None:
            params["account_numbers"] = self._account_number
        if since is not None:
            params["updated_at[gte]"] = _wire_time(since)
        return self._results(rh_urls.orders_url(), params, "orders")

    def _results(self, first: str, params: dict[str, str], what: str) -> Iterator[Any]:
        """Every item of a paginated Robinhood list; a failed page raises BrokerError."""
        url: str | None = first
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise BrokerError(f"Robinhood's {what} pages loop at {url}; report it")
            seen.add(url)
            body = self._get(url, params or None).body
            params = {}  # the `next` url already carries the query
            results = body.get("results") if isinstance(body, Mapping) else None
            if not isinstance(results, list):
                raise BrokerError(f"a page of Robinhood {what} has no results list; report it")
            yield from results
            url = body.get("next")
            if url is not None and (not isinstance(url, str) or not url.startswith(_API)):
                raise BrokerError(f"Robinhood's next page {url!r} is not on its API; report it")

    # -- transport: the one place where requests and robin_stocks failures are translated --

    def _require_login(self) -> None:
        if not rh_helper.LOGGED_IN:
            raise AuthenticationError(
                "no Robinhood session: call RobinhoodAuth(...).login() first (nothing was sent)"
            )

    def _get(
        self, url: str, params: Mapping[str, str] | None, *, allow_404: bool = False
    ) -> _Reply:
        """A GET with bounded retries; anything but a readable 2xx raises BrokerError."""
        last: _Ambiguous | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                reply = self._request("GET", url, params=params)
            except _Ambiguous as exc:
                last = exc
                if not self._wait_before_retry(attempt, exc):
                    break
                continue
            if reply.status == 404 and allow_404:
                return reply
            if 200 <= reply.status < 300:
                return reply
            raise _Refused(f"Robinhood refused GET {_path(url)}: {reply.status} {_reason(reply)}")
        raise BrokerError(
            f"GET {_path(url)} failed after {attempt} attempt(s): {last}; try again later"
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        is_order: bool = False,
        empty_ok: bool = False,
    ) -> _Reply:
        try:
            return self._send(
                method, url, params=params, data=data, is_order=is_order, empty_ok=empty_ok
            )
        except _Unauthorized:
            if self._auth is None:
                raise AuthenticationError(
                    "Robinhood answered 401: the session expired; log in again with "
                    "RobinhoodAuth.login() (the request was not carried out)"
                ) from None
            _log.warning("Robinhood answered 401; logging in again")
            self._auth.relogin()
        try:
            return self._send(
                method, url, params=params, data=data, is_order=is_order, empty_ok=empty_ok
            )
        except _Unauthorized:
            raise AuthenticationError(
                "Robinhood answered 401 even after a fresh login; check the account in the "
                "Robinhood app (the request was not carried out)"
            ) from None

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        is_order: bool,
        empty_ok: bool = False,
    ) -> _Reply:
        """One request; `empty_ok`: a 2xx without a JSON body is an answer, not a puzzle
        (a cancel's, whose body nothing reads)."""
        self._require_login()
        if is_order:
            self._orders.acquire()
        self._requests.acquire()
        where = f"{method} {_path(url)}"
        try:
            response = send_form(method, url, params=params, data=data, timeout=self._timeout)
        except requests.Timeout:
            raise _Ambiguous(f"{where}: no answer within {self._timeout[1]} s") from None
        except requests.RequestException as exc:
            raise _Ambiguous(f"{where}: connection failed ({type(exc).__name__})") from None
        reply = _Reply(response.status_code, _read_json(response.text), response.text)
        if reply.status == 401:
            raise _Unauthorized
        if reply.status == 429:
            match = _THROTTLE.search(reply.text)
            retry_after = float(match.group(1)) if match else None
            raise _Ambiguous(f"{where}: throttled (429): {_reason(reply)}", retry_after)
        if reply.status >= 500:
            raise _Ambiguous(f"{where}: server error {reply.status}")
        if (
            reply.body is None
            and not (reply.status == 404 and method == "GET")
            and not (empty_ok and 200 <= reply.status < 300)
        ):
            raise _Ambiguous(f"{where}: unreadable answer ({reply.status}, not JSON)")
        if 300 <= reply.status < 400:
            raise _Ambiguous(f"{where}: unexpected redirect ({reply.status})")
        return reply

    def _wait_before_retry(
        self, attempt: int, exc: _Ambiguous, *, last_attempt_waits: bool = False
    ) -> bool:
        """Sleep before the next attempt; False when there is none or the wait is hopeless."""
        if attempt >= self._max_attempts and not last_attempt_waits:
            return False
        backoff = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        delay = backoff * (0.5 + self._rng.random() / 2)
        if exc.retry_after is not None:
            if exc.retry_after > self._max_throttle_wait:
                _log.error(
                    "Robinhood throttles this client for %s s (an IP-level block?); giving up",
                    exc.retry_after,
                )
                return False
            delay = max(delay, exc.retry_after)
        self._sleep(delay)
        return True


class _LookupFailed(BrokerError):
    """A lookup before the POST failed: nothing was sent, the outcome is still Unknown."""


def _instrument_from(raw: Mapping[str, Any]) -> _Instrument | None:
    url = raw.get("url")
    symbol = raw.get("symbol")
    if not isinstance(url, str) or not url.startswith(_API) or not isinstance(symbol, str):
        return None
    tradability = raw.get("tradability")
    state = raw.get("state")
    tradeable = raw.get("tradeable", True)
    tradable = tradability == "tradable" and state == "active" and tradeable is not False
    min_tick = raw.get("min_tick_size")
    try:
        tick = _optional_decimal(min_tick, "min_tick_size")
    except ValueError:
        tick = None
    return _Instrument(
        url=url,
        symbol=symbol,
        tradable=tradable,
        why_not=f"tradability={tradability!r}, state={state!r}",
        min_tick_size=tick,
    )


def _ref_id_exists(reply: _Reply) -> bool:
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


def _path(url: str) -> str:
    return url.removeprefix(_API.rstrip("/")).split("?", 1)[0]
