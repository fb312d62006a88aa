"""The one way `orders` sends an HTTP request to Robinhood: through robin_stocks' session.

robin_stocks keeps the authenticated `requests.Session` (its bearer token, its headers); both
the gateway and the login use it, always as a form, always with a timeout, and never
following a redirect, so the token cannot be carried to another host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import requests
from robin_stocks.robinhood import helper as rh_helper

__all__ = ["send_form"]

_FORM: Final = "application/x-www-form-urlencoded; charset=utf-8"


def send_form(
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None,
    data: Mapping[str, str] | None,
    timeout: tuple[float, float],
) -> requests.Response:
    """Send one request; `requests` exceptions are the caller's to translate.

    Content-Type is set per request: robin_stocks leaves the shared session on
    application/json after a failed JSON post.
    """
    session: requests.Session = rh_helper.SESSION
    return session.request(
        method,
        url,
        params=params,
        data=data,
        headers={"Content-Type": _FORM},
        timeout=timeout,
        allow_redirects=False,
    )
