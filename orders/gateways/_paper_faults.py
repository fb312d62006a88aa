"""How the simulated broker misbehaves: the kinds of fault, the ones armed for the next calls,
the random draws of the configured rates, and the garbling of the lists it delivers.

Every draw comes from one seeded generator and every fault kind is looked at in a fixed order,
so a seed reproduces a run: the order of draws must not depend on string hashing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import attrs

from orders.errors import InvalidOrderError
from orders.model import BrokerOrder, coerce_enum

if TYPE_CHECKING:
    from orders.gateways._paper_book import Book

__all__ = [
    "CANCEL_FAULTS",
    "LATER_REJECT_FAULTS",
    "LOST_ANSWER_FAULTS",
    "REFUSAL_FAULTS",
    "TRANSPORT_FAULTS",
    "ArmedFault",
    "Fault",
    "FaultPlan",
    "fault_rates",
]


class Fault(StrEnum):
    """A misbehaviour the paper broker can be told to show; each hits one kind of call.

    Submission (`submit_limit`); `symbol=` in `inject` matches the order's symbol:

    - ``REJECT``: `Rejected(reason)`; no order exists.
    - ``REJECT_AFTER_ACCEPT``: `Accepted`, then the next `match()` rejects the order (Robinhood
      rejects some orders asynchronously).
    - ``TIMEOUT_BEFORE_ACCEPT``: `Unknown`; the request never arrived, no order exists.
    - ``TIMEOUT_AFTER_ACCEPT``: `Unknown` with the same words, but the order exists
      (`find_by_client_id` finds it); also hits a resubmission of a known client order id.
    - ``THROTTLE``: `Unknown` ("Request was throttled. Expected available in N seconds.");
      no order.
    - ``SERVER_ERROR``: `Unknown` (an HTTP 503); no order.

    Cancellation (`cancel` of a working order):

    - ``LOST_CANCEL``: `cancel()` returns, the order keeps working.
    - ``CANCEL_LOSES_RACE``: the rest of the order fills before the cancel lands (at the quote's
      price when marketable, else the limit); the cancel then fails silently.
    - ``LATE_FILL_AFTER_CANCEL``: the cancel lands, and the next `match()` books an execution for
      the quantity that was left onto the cancelled order (cumulative quantity grows, state
      stays cancelled).

    Delivery (the lists `match()` and `updated_since()` return):

    - ``DUPLICATE_SNAPSHOTS``: every snapshot appears twice in a row.
    - ``STALE_SNAPSHOTS``: every snapshot that has an older version is followed by that older
      version (the previous one in the order's history), i.e. the older view arrives last.
    """

    REJECT = "reject"
    REJECT_AFTER_ACCEPT = "reject_after_accept"
    TIMEOUT_BEFORE_ACCEPT = "timeout_before_accept"
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"
    LOST_CANCEL = "lost_cancel"
    CANCEL_LOSES_RACE = "cancel_loses_race"
    LATE_FILL_AFTER_CANCEL = "late_fill_after_cancel"
    DUPLICATE_SNAPSHOTS = "duplicate_snapshots"
    STALE_SNAPSHOTS = "stale_snapshots"


# The faults each step of a call may draw, as tuples, so the draws keep their order (and
# built once: on Python 3.11 reading an enum member goes through `EnumType.__getattr__`).
TRANSPORT_FAULTS: Final = (Fault.TIMEOUT_BEFORE_ACCEPT, Fault.THROTTLE, Fault.SERVER_ERROR)
REFUSAL_FAULTS: Final = (Fault.REJECT,)
LATER_REJECT_FAULTS: Final = (Fault.REJECT_AFTER_ACCEPT,)
LOST_ANSWER_FAULTS: Final = (Fault.TIMEOUT_AFTER_ACCEPT,)
CANCEL_FAULTS: Final = (Fault.LOST_CANCEL, Fault.CANCEL_LOSES_RACE, Fault.LATE_FILL_AFTER_CANCEL)

_MAY_EXIST: Final = (
    "Read timed out waiting for the paper broker (injected fault); "
    "the order may exist: look it up by client order id."
)
# Both timeouts read the same: a client cannot tell them apart, which is the point.
_MESSAGES: Final = {
    Fault.REJECT: "Order rejected by the paper broker (injected fault).",
    Fault.REJECT_AFTER_ACCEPT: "Order rejected by the paper broker after acceptance "
    "(injected fault).",
    Fault.TIMEOUT_BEFORE_ACCEPT: _MAY_EXIST,
    Fault.TIMEOUT_AFTER_ACCEPT: _MAY_EXIST,
    Fault.THROTTLE: "HTTP 429: Request was throttled. Expected available in 7 seconds. "
    "(injected fault)",
    Fault.SERVER_ERROR: "HTTP 503 Service Unavailable from the paper broker (injected fault).",
}


@attrs.define
class ArmedFault:
    """A fault waiting for its calls; `remaining` 0 marks a random one-off draw."""

    fault: Fault
    remaining: int
    symbol: str | None = None
    message: str | None = None

    def covers(self, symbol: str | None) -> bool:
        return self.symbol is None or self.symbol == symbol

    @property
    def text(self) -> str:
        return self.message if self.message is not None else _MESSAGES.get(self.fault, "")


def fault_rates(rates: Mapping[Fault | str, float | Decimal] | None) -> dict[Fault, float]:
    """The probability of each fault, checked; a rate of 0 is left out (it never draws)."""
    checked: dict[Fault, float] = {}
    for kind, rate in (rates or {}).items():
        fault = coerce_enum(Fault, kind, "fault_rates")
        if isinstance(rate, bool) or not isinstance(rate, int | float | Decimal):
            raise InvalidOrderError(f"fault_rates[{fault.value!r}]", rate, "must be 0 to 1")
        if not 0 <= rate <= 1:
            raise InvalidOrderError(f"fault_rates[{fault.value!r}]", rate, "must be 0 to 1")
        if rate > 0:
            checked[fault] = float(rate)  # a probability for the draws, not an amount
    return checked


class FaultPlan:
    """The faults armed by `inject`, in the order they were armed, and the random rates."""

    __slots__ = ("armed", "draws", "rates")

    def __init__(self, seed: int) -> None:
        self.armed: list[ArmedFault] = []
        self.rates: dict[Fault, float] = {}
        # Its own stream, so that turning faults on does not change the broker's ids.
        self.draws = random.Random(f"faults:{seed}")  # noqa: S311 (simulated faults)

    @property
    def idle(self) -> bool:
        """No fault can fire: the common case, which skips every look-up."""
        return not self.armed and not self.rates

    def arm(self, fault: ArmedFault) -> None:
        self.armed.append(fault)

    def take(self, kinds: tuple[Fault, ...], symbol: str | None) -> ArmedFault | None:
        """The fault a call about one order of `symbol` suffers, if any.

        Checks that no fault can fire before anything else (as `garble` does): every
        submission asks it up to four times, and almost every broker has no faults.
        """
        if not self.armed and not self.rates:
            return None
        return self._take(kinds, lambda a: a.covers(symbol))

    def _take(
        self, kinds: tuple[Fault, ...], applies: Callable[[ArmedFault], bool]
    ) -> ArmedFault | None:
        """The fault this call suffers, if any: an armed one first, else a random draw."""
        for armed in self.armed:
            if armed.fault in kinds and applies(armed):
                armed.remaining -= 1
                if armed.remaining == 0:
                    self.armed.remove(armed)
                return armed
        for kind in kinds:
            rate = self.rates.get(kind)
            if rate is not None and self.draws.random() < rate:
                return ArmedFault(kind, 0)
        return None

    def garble(self, books: Iterable[Book]) -> list[BrokerOrder]:
        """The current views of `books` as the delivery faults (if any) garble them."""
        if not self.armed and not self.rates:
            return [book.current for book in books]
        books = list(books)
        stale = self._take(
            (Fault.STALE_SNAPSHOTS,),
            lambda a: any(a.covers(b.symbol) and b.previous is not None for b in books),
        )
        twice = self._take(
            (Fault.DUPLICATE_SNAPSHOTS,), lambda a: any(a.covers(b.symbol) for b in books)
        )
        out: list[BrokerOrder] = []
        for book in books:
            views = _views(book, stale)
            if twice is not None and twice.covers(book.symbol):
                views = [view for view in views for _ in (1, 2)]
            out.extend(views)
        return out


def _views(book: Book, stale: ArmedFault | None) -> list[BrokerOrder]:
    """The current view, then the one before it when a STALE_SNAPSHOTS fault covers it."""
    previous = book.previous
    if stale is not None and stale.covers(book.symbol) and previous is not None:
        return [book.current, previous]
    return [book.current]
