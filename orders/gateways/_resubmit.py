"""The one rule for sending an order again: after an ambiguous attempt, look before resending.

A submission that timed out, lost its connection or was throttled may have created the order
at the broker. Sending it again blindly could place it twice where the broker does not
deduplicate, and even where it does (Robinhood refuses a second `ref_id`) the refusal of the
resend says nothing about the first attempt. So, whatever the broker:

* an ambiguous attempt is followed by a wait, then a lookup by client order id; only when the
  lookup finds nothing is the order sent again;
* once any attempt was ambiguous, nothing that follows can make the outcome `Rejected`: a
  refusal of a resend, or an error raised by it, becomes `Unknown` (the first may exist);
* when the attempts run out, the outcome is `Unknown`, for the caller to resolve by client
  order id later (`OrderManager.sync` does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orders.errors import OrderError
from orders.gateways.base import Accepted, AmbiguousAttempt, Rejected, SubmitOutcome, Unknown
from orders.model import BrokerOrder

__all__ = ["submit_with_lookup"]

_log = logging.getLogger(__name__)


def submit_with_lookup(
    send: Callable[[], SubmitOutcome],
    find: Callable[[], BrokerOrder | None],
    *,
    attempts: int,
    pause: Callable[[int, AmbiguousAttempt], bool],
    client_order_id: str,
) -> SubmitOutcome:
    """Send the order at most `attempts` times, looking it up after every ambiguous one.

    `send` raises `AmbiguousAttempt` when it cannot tell; `pause(attempt, failure)` waits
    before the lookup and returns False to give up; `find` looks the order up by client order
    id (None: not found, or the lookup failed: the resend is then still the safe move only
    where the broker deduplicates client ids).
    """
    last: AmbiguousAttempt | None = None
    for attempt in range(1, attempts + 1):
        try:
            outcome = send()
        except AmbiguousAttempt as failure:
            last = failure
            _log.warning("order %s: attempt %d is ambiguous: %s", client_order_id, attempt, failure)
        except OrderError as exc:
            if last is None:
                raise  # refused before anything could have created the order
            return _may_exist(client_order_id, f"{type(exc).__name__} {exc}", last)
        else:
            if isinstance(outcome, Rejected) and last is not None:
                # The resend may lack what the first attempt reserved (its cash, its ref_id).
                return _may_exist(
                    client_order_id, f"the resend was refused ({outcome.reason})", last
                )
            return outcome
        if not pause(attempt, last):
            break
        found = find()
        if found is not None:
            return Accepted(found)
    return Unknown(
        f"no definite answer from the broker: {last}; the order may exist: look it up by "
        f"client order id {client_order_id} before sending it again"
    )


def _may_exist(client_order_id: str, what: str, earlier: AmbiguousAttempt) -> Unknown:
    return Unknown(
        f"{what} after an ambiguous attempt ({earlier}); the order may exist: look it up by "
        f"client order id {client_order_id}"
    )
