"""The gateway's way to Robinhood: login check, request budget, one cure for a 401, retries.

The one place where a robin_stocks or requests failure becomes an outcome for the gateway:
`_http` classifies the answer, this module adds what only the gateway needs (the client-side
rate limits, a re-login on 401, an answer that must be JSON), and `get` retries a read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, Protocol

from robin_stocks.robinhood import helper as rh_helper

from orders.errors import AuthenticationError, BrokerError
from orders.gateways import _http
from orders.gateways._http import Reply, RetriesExhausted, RetryPolicy
from orders.gateways._ratelimit import RateLimiter
from orders.gateways.base import AmbiguousAttempt

__all__ = ["API", "Refused", "RobinhoodTransport", "SessionRenewer", "path"]

_log = logging.getLogger(__name__)

API: Final = "https://api.robinhood.com/"


class Refused(BrokerError):
    """Robinhood answered a GET with a definitive refusal (a 4xx other than 401)."""


class _Unauthorized(Exception):
    """Robinhood answered 401: the bearer token is missing, expired or revoked."""


class SessionRenewer(Protocol):
    """What the gateway needs to cure a 401: `RobinhoodAuth` implements it."""

    def relogin(self) -> None: ...


def path(url: str) -> str:
    """A URL as messages show it: the API path, without host or query (which may name ids)."""
    return url.removeprefix(API.rstrip("/")).split("?", 1)[0]


def require_login() -> None:
    """`AuthenticationError` before anything is sent when robin_stocks has no session."""
    if not rh_helper.LOGGED_IN:
        raise AuthenticationError(
            "no Robinhood session: call RobinhoodAuth(...).login() first (nothing was sent)"
        )


class RobinhoodTransport:
    """Requests to Robinhood's API within the request budget, retried by `retry`."""

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        requests: RateLimiter,
        orders: RateLimiter,
        timeout: tuple[float, float],
        auth: SessionRenewer | None,
    ) -> None:
        self.retry = retry
        self._requests = requests
        self._orders = orders
        self._timeout = timeout
        self._auth = auth

    def get(self, url: str, params: Mapping[str, str] | None, *, allow_404: bool = False) -> Reply:
        """A GET with bounded retries; anything but a readable 2xx raises BrokerError."""
        try:
            reply = self.retry.run(lambda: self.request("GET", url, params=params))
        except RetriesExhausted as exc:
            raise BrokerError(
                f"GET {path(url)} failed after {exc.attempts} attempt(s): {exc.last}; "
                "try again later"
            ) from None
        if reply.ok or (reply.status == 404 and allow_404):
            return reply
        raise Refused(f"Robinhood refused GET {path(url)}: {reply.status} {reply.reason}")

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        is_order: bool = False,
        empty_ok: bool = False,
    ) -> Reply:
        """One attempt (two after a 401 cured by a fresh login); `AmbiguousAttempt` when its
        effect is unknown. `empty_ok`: a 2xx without a JSON body is an answer, not a puzzle
        (a cancel's, whose body nothing reads)."""
        try:
            return self._send(method, url, params, data, is_order=is_order, empty_ok=empty_ok)
        except _Unauthorized:
            if self._auth is None:
                raise AuthenticationError(
                    "Robinhood answered 401: the session expired; log in again with "
                    "RobinhoodAuth.login() (the request was not carried out)"
                ) from None
            _log.warning("Robinhood answered 401; logging in again")
            self._auth.relogin()
        try:
            return self._send(method, url, params, data, is_order=is_order, empty_ok=empty_ok)
        except _Unauthorized:
            raise AuthenticationError(
                "Robinhood answered 401 even after a fresh login; check the account in the "
                "Robinhood app (the request was not carried out)"
            ) from None

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        *,
        is_order: bool,
        empty_ok: bool,
    ) -> Reply:
        require_login()
        if is_order:
            self._orders.acquire()
        self._requests.acquire()
        where = f"{method} {path(url)}"
        reply = _http.send(
            method, url, where=where, params=params, data=data, timeout=self._timeout
        )
        if reply.status == 401:
            raise _Unauthorized
        if (
            reply.body is None
            and not (reply.status == 404 and method == "GET")
            and not (empty_ok and reply.ok)
        ):
            raise AmbiguousAttempt(f"{where}: unreadable answer ({reply.status}, not JSON)")
        return reply
