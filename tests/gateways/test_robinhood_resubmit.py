"""The broker-neutral resubmit rule: after an ambiguous attempt, look before sending again."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orders.errors import InvalidOrderError
from orders.gateways._resubmit import submit_with_lookup
from orders.gateways._robinhood_wire import parse_robinhood_order
from orders.gateways.base import Accepted, AmbiguousAttempt, Rejected, SubmitOutcome, Unknown
from orders.model import BrokerOrder
from tests.gateways.robinhood_fixtures import order_json


class Script:
    """A broker scripted by the answers of its sends and lookups, recording the order of both."""

    def __init__(self, sends: list[object], finds: list[BrokerOrder | None] | None = None):
        self.sends = list(sends)
        self.finds = list(finds or [])
        self.log: list[str] = []
        self.pauses = 0

    def send(self) -> SubmitOutcome:
        self.log.append("send")
        answer = self.sends.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, Accepted | Rejected | Unknown)
        return answer

    def find(self) -> BrokerOrder | None:
        self.log.append("find")
        return self.finds.pop(0) if self.finds else None

    def pause(self, attempt: int, failure: AmbiguousAttempt) -> bool:
        self.pauses += 1
        return True

    def run(
        self, attempts: int = 3, pause: Callable[[int, AmbiguousAttempt], bool] | None = None
    ) -> SubmitOutcome:
        return submit_with_lookup(
            self.send,
            self.find,
            attempts=attempts,
            pause=pause or self.pause,
            client_order_id="cid-1",
        )


def broker_order() -> BrokerOrder:
    return parse_robinhood_order(order_json(ref_id="cid-1"))


def lost() -> AmbiguousAttempt:
    return AmbiguousAttempt("POST /orders/: no answer within 16.0 s")


class TestResubmitRule:
    """No order is sent a second time before a lookup by client order id."""

    def test_a_definite_first_answer_is_final(self) -> None:
        script = Script([Rejected("Not enough buying power.")])

        assert script.run() == Rejected("Not enough buying power.")
        assert script.log == ["send"]

    def test_every_resend_follows_a_lookup(self) -> None:
        snapshot = broker_order()
        script = Script([lost(), lost(), Accepted(snapshot)])

        assert script.run() == Accepted(snapshot)
        assert script.log == ["send", "find", "send", "find", "send"]

    def test_an_order_found_by_the_lookup_is_accepted_without_a_resend(self) -> None:
        snapshot = broker_order()
        script = Script([lost()], finds=[snapshot])

        assert script.run() == Accepted(snapshot)
        assert script.log == ["send", "find"]

    def test_the_last_ambiguous_attempt_is_still_looked_up(self) -> None:
        snapshot = broker_order()
        script = Script([lost(), lost()], finds=[None, snapshot])

        assert script.run(attempts=2) == Accepted(snapshot)
        assert script.log == ["send", "find", "send", "find"]

    def test_a_refused_resend_is_unknown_not_rejected(self) -> None:
        script = Script([lost(), Rejected("Not enough buying power.")])

        outcome = script.run()

        assert isinstance(outcome, Unknown)
        assert "Not enough buying power." in outcome.error and "may exist" in outcome.error

    def test_an_error_raised_by_a_resend_is_unknown(self) -> None:
        script = Script([lost(), InvalidOrderError("limit_price", 1, "off tick")])

        outcome = script.run()

        assert isinstance(outcome, Unknown) and "cid-1" in outcome.error

    def test_an_error_before_anything_was_sent_is_raised(self) -> None:
        script = Script([InvalidOrderError("limit_price", 1, "off tick")])

        with pytest.raises(InvalidOrderError):
            script.run()

    def test_attempts_running_out_is_unknown_naming_the_client_id(self) -> None:
        script = Script([lost(), lost(), lost()])

        outcome = script.run(attempts=3)

        assert isinstance(outcome, Unknown)
        assert "cid-1" in outcome.error and "no answer" in outcome.error
        assert script.log.count("send") == 3

    def test_a_pause_that_gives_up_stops_before_the_lookup(self) -> None:
        script = Script([lost(), lost()])

        outcome = script.run(pause=lambda attempt, failure: False)

        assert isinstance(outcome, Unknown)
        assert script.log == ["send"]
