"""Bad inputs: each gets its typed error, nothing reaches the gateway, the journal stays whole."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from orders import (
    AuditJournal,
    ConfigError,
    InvalidOrderError,
    Order,
    OrderError,
    OrderManagementConfig,
    OrderManager,
    OrderRequest,
    OrderState,
    PaperBroker,
    SafetyViolation,
    TradingBot,
    UnsupportedOrderTypeError,
)
from tests.factories import Desk, SpyGateway, guard_of, make_desk

D = Decimal

GOOD: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "quantity": "10", "reference_price": "100"}

NUMBERS_REFUSED: list[tuple[str, object]] = [
    ("nan string", "NaN"),
    ("nan decimal", D("NaN")),
    ("signalling nan", "sNaN"),
    ("infinity string", "Infinity"),
    ("minus infinity", "-Infinity"),
    ("infinity decimal", D("Infinity")),
    ("negative", "-1"),
    ("negative int", -5),
    ("zero", "0"),
    ("zero with decimals", "0.000"),
    ("zero int", 0),
    ("float", 1.5),
    ("float that looks exact", 10.0),
    ("bool", True),
    ("not a number", "ten"),
    ("empty", ""),
    ("none", None),
    ("list", [10]),
    ("huge exponent", "1e999999999"),  # multiplying it overflowed decimal arithmetic
    ("tiny exponent", "1e-999999999"),
    ("sixteen digits", "1234567890123456"),
]

SYMBOLS_REFUSED: list[tuple[str, object]] = [
    ("lowercase", "aapl"),
    ("empty", ""),
    ("eleven characters", "ABCDEFGHIJK"),
    ("inner space", "A APL"),
    ("leading space", " AAPL"),
    ("trailing newline", "AAPL\n"),
    ("leading digit", "1ABC"),
    ("leading dot", ".A"),
    ("non ascii", "ÄPPL"),
    ("lone surrogate", "AAPL\ud800"),
    ("slash", "BRK/B"),
    ("none", None),
    ("int", 123),
]

OTHER_FIELDS_REFUSED: list[tuple[str, str, object]] = [
    ("side uppercase", "side", "BUY"),
    ("side unknown", "side", "hold"),
    ("side none", "side", None),
    ("strategy empty", "strategy", ""),
    ("strategy none", "strategy", None),
    ("strategy not a string", "strategy", 5),
    ("strategy lone surrogate", "strategy", "momentum\udc80"),
    ("strategy control character", "strategy", "momentum\x00"),
    ("time in force unknown", "time_in_force", "day"),
    ("time in force uppercase", "time_in_force", "GTC"),
    ("order type unknown", "order_type", "trailing_stop"),
    ("order type uppercase", "order_type", "LIMIT"),
]


def request(**changes: Any) -> OrderRequest:
    fields = {**GOOD, **changes}
    return OrderRequest(
        fields.pop("symbol"),
        fields.pop("side"),
        fields.pop("quantity"),
        fields.pop("reference_price"),
        **fields,
    )


class Untouched:
    """What the desk looked like before a bad input: gateway calls, journal bytes, guards."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.calls = list(desk.spy.calls)
        self.journal = desk.journal_path.read_bytes()
        self.guards = guard_of(desk.manager).pending_orders()
        self.orders = desk.manager.orders()

    def check(self) -> None:
        desk = self.desk
        assert desk.spy.calls == self.calls
        assert desk.journal_path.read_bytes() == self.journal
        assert guard_of(desk.manager).pending_orders() == self.guards
        assert desk.manager.orders() == self.orders
        replayed = AuditJournal.replay(desk.journal_path)
        assert list(replayed) == [o.client_order_id for o in self.orders]


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    """A desk that already has one working order, so a bad input has something to disturb."""
    desk = make_desk(
        tmp_path,
        config={
            "strategy_overrides": {
                "patient": {"kind": "absolute", "value": "0.25"},
                "wide": {"kind": "absolute", "value": "5"},
            }
        },
    )
    desk.manager.submit(OrderRequest("MSFT", "sell", "1", "300"))
    return desk


def submit_refused(desk: Desk, make: Callable[[], OrderRequest], error: type[Exception]) -> Any:
    before = Untouched(desk)
    with pytest.raises(error) as caught:
        desk.manager.submit(make())
    before.check()
    return caught.value


class TestRequestFields:
    """Every malformed field of a request is refused with InvalidOrderError naming the field."""

    def test_a_subclass_that_skips_a_check_is_checked_by_the_order(self, desk: Desk) -> None:
        """The manager trusts the checks of `OrderRequest` itself, not a subclass's fields."""

        @attrs.frozen
        class Loose(OrderRequest):
            symbol: str = attrs.field(kw_only=True)  # redefined without its check

        error = submit_refused(
            desk, lambda: Loose("buy", "1", "10", symbol="not a symbol"), InvalidOrderError
        )
        assert error.field == "symbol"

    @pytest.mark.parametrize(
        ("label", "value"), NUMBERS_REFUSED, ids=[c[0] for c in NUMBERS_REFUSED]
    )
    @pytest.mark.parametrize("field", ["quantity", "reference_price"])
    def test_bad_numbers(self, desk: Desk, field: str, label: str, value: object) -> None:
        error = submit_refused(desk, lambda: request(**{field: value}), InvalidOrderError)
        assert error.field == field
        if isinstance(value, float):
            assert "float" in str(error)

    @pytest.mark.parametrize(
        ("label", "value"), SYMBOLS_REFUSED, ids=[c[0] for c in SYMBOLS_REFUSED]
    )
    def test_malformed_symbols(self, desk: Desk, label: str, value: object) -> None:
        error = submit_refused(desk, lambda: request(symbol=value), InvalidOrderError)
        assert error.field == "symbol"

    @pytest.mark.parametrize(
        ("label", "field", "value"), OTHER_FIELDS_REFUSED, ids=[c[0] for c in OTHER_FIELDS_REFUSED]
    )
    def test_other_fields(self, desk: Desk, label: str, field: str, value: object) -> None:
        error = submit_refused(desk, lambda: request(**{field: value}), InvalidOrderError)
        assert error.field == field

    @pytest.mark.parametrize(
        ("field", "value"),
        [("symbol", "AAPL\ud800"), ("action", "buy\ud800"), ("strategy", "m\ud800")],
    )
    def test_lone_surrogates_through_the_bot_are_a_typed_error(
        self, desk: Desk, field: str, value: str
    ) -> None:
        before = Untouched(desk)
        trade = {"symbol": "AAPL", "action": "buy", "strategy": "default", field: value}
        result = TradingBot(desk.manager).execute_trade(
            trade["symbol"], trade["action"], 10, "100", strategy=trade["strategy"]
        )
        assert result.status == "error"
        assert "unexpected" not in result.message
        before.check()

    def test_not_a_request(self, desk: Desk) -> None:
        before = Untouched(desk)
        with pytest.raises(TypeError, match="OrderRequest"):
            desk.manager.submit(GOOD)  # type: ignore[arg-type]
        before.check()

    @pytest.mark.parametrize("order_type", ["market", "stop", "stop_limit"])
    def test_unsupported_order_types(self, desk: Desk, order_type: str) -> None:
        error = submit_refused(
            desk, lambda: request(order_type=order_type), UnsupportedOrderTypeError
        )
        assert error.order_type == order_type

    def test_every_refusal_is_an_order_error(self) -> None:
        for _label, value in NUMBERS_REFUSED:
            with pytest.raises(OrderError):
                request(quantity=value)


class TestPricing:
    """Over-precise or unpriceable references are priced to a tick or refused, never sent raw."""

    def test_over_precise_reference_is_rounded_to_a_tick(self, desk: Desk) -> None:
        buy = desk.manager.submit(request(reference_price="10.123456789"))
        assert buy.limit_price == D("10.12")  # 10.1285... rounded toward the reference
        sell = desk.manager.submit(request(side="sell", reference_price="0.123456789"))
        assert sell.limit_price == D("0.1234")  # below $1: 4 decimals, rounded up for a sell
        for order in (buy, sell):
            sent = desk.broker.find_by_client_id(order.client_order_id)
            assert sent is not None
            assert sent.limit_price == order.limit_price

    def test_reference_with_too_many_digits_is_refused(self, desk: Desk) -> None:
        error = submit_refused(
            desk, lambda: request(reference_price="1." + "1" * 120), InvalidOrderError
        )
        assert "too many digits" in str(error)

    def test_buy_priced_past_the_largest_amount_is_refused(self, desk: Desk) -> None:
        """The largest reference a request takes, plus the offset, is a price no order holds:
        refused before it is journaled (a journal holding it could not be recovered)."""
        make = lambda: request(reference_price="999999999999999.99")  # noqa: E731
        error = submit_refused(desk, make, InvalidOrderError)
        assert error.field == "limit_price"

    def test_buy_priced_below_the_smallest_tick_is_refused(self, desk: Desk) -> None:
        error = submit_refused(desk, lambda: request(reference_price="0.00001"), InvalidOrderError)
        assert error.field == "limit_price"

    def test_offset_beyond_the_slippage_cap_is_refused(self, desk: Desk) -> None:
        error = submit_refused(desk, lambda: request(strategy="wide"), SafetyViolation)
        assert "slippage cap" in error.reasons[0]

    def test_unknown_strategy_falls_back_to_the_default_offset(self, desk: Desk) -> None:
        order = desk.manager.submit(request(strategy="no-such-strategy"))
        assert order.limit_price == D("100.05")  # the default 5 bps
        assert order.strategy == "no-such-strategy"
        record = desk.records()[-1]
        assert record["strategy"] == "no-such-strategy"

    def test_a_known_strategy_uses_its_override(self, desk: Desk) -> None:
        order = desk.manager.submit(request(strategy="patient"))
        assert order.limit_price == D("100.25")


class TestOverPreciseQuantity:
    """A quantity with many decimals is not rounded: paper trades it exactly, an edge may refuse."""

    def test_paper_trades_the_exact_quantity(self, desk: Desk) -> None:
        order = desk.manager.submit(request(quantity="1.123456789"))
        assert order.quantity == D("1.123456789")
        sent = desk.broker.find_by_client_id(order.client_order_id)
        assert sent is not None
        assert sent.quantity == D("1.123456789")
        assert desk.records()[-1]["quantity"] == "1.123456789"
        desk.broker.set_quote("AAPL", "100")
        desk.broker.match()
        desk.manager.sync()
        assert order.state is OrderState.FILLED
        assert order.filled_quantity == D("1.123456789")
        replayed = AuditJournal.replay(desk.journal_path)[order.client_order_id]
        assert replayed.filled_quantity == D("1.123456789")

    def test_a_gateway_refusal_at_the_edge_is_raised_and_the_order_rejected(
        self, tmp_path: Path
    ) -> None:
        class WholeSharesOnly(SpyGateway):
            """Like RobinhoodGateway: a fractional quantity is refused before any request."""

            def submit_limit(self, order: Order) -> Any:
                self.calls.append(("submit_limit", order.client_order_id))
                if order.quantity != order.quantity.to_integral_value():
                    raise InvalidOrderError("quantity", order.quantity, "whole shares only")
                return self.broker.submit_limit(order)

        desk = make_desk(tmp_path)
        desk.manager.gateway = WholeSharesOnly(desk.broker)
        with pytest.raises(InvalidOrderError, match="whole shares only"):
            desk.manager.submit(request(quantity="1.123456789"))
        (order,) = desk.manager.orders()
        assert order.state is OrderState.REJECTED
        assert order.reason is not None
        assert "refused before sending" in order.reason
        assert not guard_of(desk.manager).has_pending("AAPL", "buy")
        assert desk.broker_orders() == []
        assert [r["event"] for r in desk.records()] == ["intent", "reject"]
        assert AuditJournal.replay(desk.journal_path)[order.client_order_id].state is (
            OrderState.REJECTED
        )


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def block(**om: Any) -> str:
    return json.dumps({"order_management": om})


BAD_FILES: list[tuple[str, str | bytes, str]] = [
    ("not json", "{", "<file>"),
    ("empty file", "", "<file>"),
    ("trailing comma", '{"order_management": {},}', "<file>"),
    ("top-level array", "[]", "<file>"),
    ("not utf-8", b'{"order_management": {"mode": "\xff"}}', "<file>"),
    ("duplicate key", '{"order_management": {"mode": "paper", "mode": "live"}}', "<file>"),
    ("no block", '{"bot": {}}', "order_management"),
    ("block not an object", '{"order_management": "paper"}', "order_management"),
    ("unknown key", block(modee="paper"), "order_management.modee"),
    ("unknown mode", block(mode="demo"), "order_management.mode"),
    (
        "offset without value",
        block(default_offset={"kind": "bps"}),
        "order_management.default_offset.value",
    ),
    (
        "offset without kind",
        block(default_offset={"value": "5"}),
        "order_management.default_offset.kind",
    ),
    (
        "offset unknown kind",
        block(default_offset={"kind": "pct", "value": "5"}),
        "order_management.default_offset.kind",
    ),
    (
        "offset NaN",
        '{"order_management": {"default_offset": {"kind": "bps", "value": NaN}}}',
        "order_management.default_offset.value",
    ),
    (
        "offset negative",
        block(default_offset={"kind": "absolute", "value": "-0.01"}),
        "order_management.default_offset.value",
    ),
    (
        "offset beyond the cap",
        block(default_offset={"kind": "bps", "value": "60"}),
        "order_management.default_offset.value",
    ),
    (
        "override without value",
        block(strategy_overrides={"momentum": {"kind": "bps"}}),
        "order_management.strategy_overrides.momentum.value",
    ),
    ("slippage infinite", block(max_slippage_bps="Infinity"), "order_management.max_slippage_bps"),
    (
        "slippage huge",
        '{"order_management": {"max_slippage_bps": 1e999}}',
        "order_management.max_slippage_bps",
    ),
    ("slippage negative", block(max_slippage_bps="-1"), "order_management.max_slippage_bps"),
    (
        "breaker zero",
        block(circuit_breakers={"max_consecutive_rejects": 0}),
        "order_management.circuit_breakers.max_consecutive_rejects",
    ),
    (
        "breaker fractional",
        '{"order_management": {"circuit_breakers": {"max_consecutive_failures": 2.5}}}',
        "order_management.circuit_breakers.max_consecutive_failures",
    ),
    (
        "grace negative",
        block(unknown_order_grace_seconds=-1),
        "order_management.unknown_order_grace_seconds",
    ),
    ("lookups zero", block(unknown_order_lookups=0), "order_management.unknown_order_lookups"),
    ("time in force", block(time_in_force="day"), "order_management.time_in_force"),
    ("empty log path", block(audit_log_path=""), "order_management.audit_log_path"),
    ("mode not a string", block(mode=1), "order_management.mode"),
]


class TestConfigFiles:
    """Malformed and incomplete configuration files raise ConfigError naming the key path."""

    @pytest.mark.parametrize(("label", "text", "key"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
    def test_bad_file(self, tmp_path: Path, label: str, text: str | bytes, key: str) -> None:
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as caught:
            OrderManagementConfig.from_file(path)
        expected = str(path) if key == "<file>" else key
        assert caught.value.key_path == expected
        assert expected in str(caught.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.json"
        with pytest.raises(ConfigError) as caught:
            OrderManagementConfig.from_file(path)
        assert caught.value.key_path == str(path)

    @pytest.mark.parametrize(
        ("block_", "key"),
        [
            ({"max_slippage_bps": 50.0}, "order_management.max_slippage_bps"),
            (
                {"default_offset": {"kind": "bps", "value": 0.5}},
                "order_management.default_offset.value",
            ),
            ({"circuit_breakers": {"max_notional_per_order": 1e4}}, None),
        ],
    )
    def test_python_floats_are_refused(self, block_: dict[str, Any], key: str | None) -> None:
        with pytest.raises(ConfigError, match="float") as caught:
            OrderManagementConfig.from_dict(block_)
        if key is not None:
            assert caught.value.key_path == key

    def test_numbers_in_json_files_are_read_exactly(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            '{"order_management": {"default_offset": {"kind": "absolute", "value": 0.07}}}',
        )
        config = OrderManagementConfig.from_file(path)
        assert config.default_offset.value == D("0.07")

    def test_a_good_file_drives_a_manager(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            block(
                default_offset={"kind": "absolute", "value": "0.10"},
                audit_log_path=str(tmp_path / "j.jsonl"),
                unknown_order_grace_seconds=0,
            ),
        )
        config = OrderManagementConfig.from_file(path)
        manager = OrderManager(PaperBroker(), config=config)
        order = manager.submit(request())
        assert order.limit_price == D("100.10")
        assert (tmp_path / "j.jsonl").exists()
