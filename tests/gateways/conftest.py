"""Fixtures of the Robinhood gateway's test modules, over `responses` (no request leaves).

`logged_in` is not autouse here, since the login tests need a logged-out session: a module
that wants it says `pytestmark = pytest.mark.usefixtures("logged_in")`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from orders.gateways.robinhood import RobinhoodGateway
from tests.gateways.robinhood_fixtures import (
    FakeRobinhood,
    FakeTime,
    make_gateway,
    robin_stocks_state,
)


@pytest.fixture
def logged_in() -> Iterator[None]:
    with robin_stocks_state(logged_in=True):
        yield


@pytest.fixture
def logged_out() -> Iterator[None]:
    """robin_stocks' login flag down (and no bearer token), restored afterwards."""
    with robin_stocks_state(logged_in=False):
        yield


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def broker(rsps: responses.RequestsMock) -> FakeRobinhood:
    return FakeRobinhood(rsps)


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def gateway(clock: FakeTime) -> RobinhoodGateway:
    return make_gateway(clock)
