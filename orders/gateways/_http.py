"""The one HTTP layer under the Robinhood gateway and the Robinhood login.

Both talk to the same API through robin_stocks' session and meet the same failures, so the
failures are classified here once, and retried by one loop with one backoff:

* no answer (connection error, timeout), a 5xx, an unreadable or redirecting answer: the
  request may or may not have been carried out, so it is `AmbiguousAttempt` and may be tried
  again;
* 429: Robinhood throttles; also `AmbiguousAttempt`, carrying the wait Robinhood states (the
  `Retry-After` header, or the "Expected available in N seconds" of its body). A stated wait
  longer than `max_throttle_wait` looks like an IP-level block: the loop gives up at once
  rather than sleep for hours;
* any other answer is a `Reply`: a 4xx is a refusal, and `Reply.reason` is the broker's own
  words for it.

`RetryPolicy` is built from the configuration's `retry` block, waits through an injected
`sleep` (tests and benchmarks never really wait) and jitters each wait so that several bots
restarted together do not retry in step.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs
import requests

from orders.config import Disagreement, RetryConfig
from orders.gateways._session import send_form
from orders.gateways.base import AmbiguousAttempt

__all__ = [
    "DEFAULT_TIMEOUT",
    "Reply",
    "RetriesExhausted",
    "RetryPolicy",
    "read_json",
    "send",
    "throttle_wait",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# (connect, read) seconds: robin_stocks sends GETs with no timeout at all.
DEFAULT_TIMEOUT: Final = (3.05, 16.0)
# The documented defaults of `order_management.retry`, defined once there.
_DEFAULTS: Final = RetryConfig()
# Robinhood states its throttle in the body rather than in a Retry-After header.
_STATED_WAIT: Final = re.compile(r"[Ee]xpected available in (\d+(?:\.\d+)?) second")


@attrs.frozen
class Reply:
    """An answer that says what happened: a 2xx, a 4xx refusal, or a 404 the caller may want."""

    status: int
    body: Any  # parsed JSON (numbers as Decimal); None when the body is not JSON
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """The broker's own words: its `detail` when that is all it said, else its text."""
        body = self.body
        if (
            isinstance(body, Mapping)
            and set(body) == {"detail"}
            and isinstance(body["detail"], str)
        ):
            return body["detail"]
        return self.text.strip()


def read_json(text: str) -> Any:
    """JSON with every number as a Decimal, or None when `text` is not JSON.

    Integers as Decimal too: int() refuses a literal of more than 4300 digits, which would
    make a whole page of orders unreadable for one bad number; the wire parser refuses it
    with its one order instead.
    """
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
        return None


def throttle_wait(response: requests.Response) -> float | None:
    """The seconds a 429 asks for: `Retry-After` in seconds, else Robinhood's body phrase."""
    header = response.headers.get("Retry-After", "").strip()
    try:
        stated = float(header)
    except ValueError:
        match = _STATED_WAIT.search(response.text)
        return float(match.group(1)) if match else None
    return stated if stated >= 0 else None


def send(
    method: str,
    url: str,
    *,
    where: str,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    login: bool = False,
) -> Reply:
    """One request, classified; `where` names it in messages (never with a secret in it).

    `login`: the request carries credentials. Its 429 text stays out of the message (the
    login endpoint's answers can name the user), and a redirect comes back as a reply to
    refuse rather than as an ambiguous attempt, so the password is not sent again.
    """
    try:
        response = send_form(method, url, params=params, data=data, timeout=timeout)
    except requests.Timeout:
        raise AmbiguousAttempt(f"{where}: no answer within {timeout[1]} s") from None
    except requests.RequestException as exc:
        raise AmbiguousAttempt(f"{where}: connection failed ({type(exc).__name__})") from None
    reply = Reply(response.status_code, read_json(response.text), response.text)
    if reply.status == 429:
        said = "" if login else f": {reply.reason}"
        raise AmbiguousAttempt(
            f"{where}: throttled (429){said}", retry_after=throttle_wait(response)
        )
    if reply.status >= 500:
        raise AmbiguousAttempt(f"{where}: server error {reply.status}")
    if 300 <= reply.status < 400 and not login:
        raise AmbiguousAttempt(f"{where}: unexpected redirect ({reply.status})")
    return reply


class RetriesExhausted(Exception):
    """Every attempt was ambiguous; `last` is the final one's failure."""

    def __init__(self, attempts: int, last: AmbiguousAttempt) -> None:
        super().__init__(f"{last} (after {attempts} attempt(s))")
        self.attempts = attempts
        self.last = last


@attrs.define
class RetryPolicy:
    """Capped exponential backoff with jitter, bounded attempts, and honoured 429 waits."""

    max_attempts: int = attrs.field(default=_DEFAULTS.max_attempts)
    backoff_base: float = _DEFAULTS.backoff_base_seconds
    backoff_cap: float = _DEFAULTS.backoff_max_seconds
    max_throttle_wait: float = 300.0
    sleep: Callable[[float], object] = time.sleep
    rng: random.Random = attrs.field(factory=random.Random)

    @max_attempts.validator
    def _at_least_one(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def from_config(cls, retry: RetryConfig, **options: Any) -> RetryPolicy:
        """The policy a configuration's `retry` block stands for."""
        return cls(
            max_attempts=retry.max_attempts,
            backoff_base=retry.backoff_base_seconds,
            backoff_cap=retry.backoff_max_seconds,
            **options,
        )

    def disagreements(self, retry: RetryConfig) -> Iterator[Disagreement]:
        """(key path under `order_management`, the config's value, this policy's) of every
        `retry` setting where this policy differs from the configuration's block."""
        for key, wanted, actual in (
            ("retry.max_attempts", retry.max_attempts, self.max_attempts),
            ("retry.backoff_base_seconds", retry.backoff_base_seconds, self.backoff_base),
            ("retry.backoff_max_seconds", retry.backoff_max_seconds, self.backoff_cap),
        ):
            if wanted != actual:
                yield key, wanted, actual

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed attempt number `attempt`; None: do not wait, give up."""
        backoff = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        wait = backoff * (0.5 + self.rng.random() / 2)
        if retry_after is None:
            return wait
        if retry_after > self.max_throttle_wait:
            _log.error(
                "Robinhood throttles this client for %s s (an IP-level block?); giving up",
                retry_after,
            )
            return None
        return max(wait, retry_after)

    def pause(
        self, attempt: int, failure: AmbiguousAttempt, *, last_attempt_waits: bool = False
    ) -> bool:
        """Sleep before the next attempt; False when there is none or the wait is hopeless.

        `last_attempt_waits`: sleep after the last attempt too, for a caller that still has
        something to do once the broker has had time (look an order up).
        """
        if attempt >= self.max_attempts and not last_attempt_waits:
            return False
        wait = self.delay(attempt, failure.retry_after)
        if wait is None:
            return False
        self.sleep(wait)
        return True

    def run(self, call: Callable[[], _T]) -> _T:
        """`call()` until it does not raise `AmbiguousAttempt`, or `RetriesExhausted`."""
        attempt = 1
        while True:
            try:
                return call()
            except AmbiguousAttempt as failure:
                if not self.pause(attempt, failure):
                    raise RetriesExhausted(attempt, failure) from None
            attempt += 1
