"""Limit prices: offsets, legal ticks, the slippage cap, and the limit-only rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.errors import InvalidOrderError, SafetyViolation, UnsupportedOrderTypeError
from orders.model import OrderType, Side
from orders.pricing import (
    OffsetKind,
    PriceOffset,
    compute_limit_price,
    ensure_limit_order_type,
    is_on_tick,
    round_to_tick,
    tick_size,
)

D = Decimal


def price(side: str, reference: object, offset: PriceOffset, cap: object = "50") -> Decimal:
    return compute_limit_price(side, reference, offset, max_slippage_bps=cap)  # type: ignore[arg-type]


class TestPriceOffset:
    """An offset is a non-negative exact amount in basis points or dollars."""

    def test_kind_accepts_its_string_value(self) -> None:
        offset = PriceOffset("bps", "5")
        assert offset.kind is OffsetKind.BPS
        kind: str = offset.kind
        assert kind == "bps"
        assert offset.value == D(5)

    def test_named_constructors_and_equality(self) -> None:
        assert PriceOffset.bps(5) == PriceOffset(OffsetKind.BPS, D("5.0"))
        assert PriceOffset.absolute("0.02") == PriceOffset("absolute", D("0.02"))
        assert hash(PriceOffset.bps(5)) == hash(PriceOffset.bps("5.00"))
        assert str(PriceOffset.bps("7.5")) == "7.5 bps"
        assert str(PriceOffset.absolute("0.02")) == "$0.02"

    def test_zero_is_allowed(self) -> None:
        assert PriceOffset.bps(0).value == 0

    def test_sub_tick_precision_is_fine_for_bps(self) -> None:
        assert PriceOffset.bps("0.125").value == D("0.125")

    @pytest.mark.parametrize(
        ("kind", "value", "fragment"),
        [
            ("bps", 0.5, "binary float"),
            ("bps", "-1", "must not be negative"),
            ("absolute", D("-0.01"), "must not be negative"),
            ("bps", "NaN", "finite"),
            ("bps", "Infinity", "finite"),
            ("bps", D("-Infinity"), "finite"),
            ("bps", True, "bool"),
            ("bps", "five", "not a decimal"),
            ("bps", None, "expected a Decimal"),
            ("absolute", "0.00001", "at most 4 decimals"),
            ("pct", "5", "must be one of"),
        ],
    )
    def test_bad_offsets_are_refused(self, kind: str, value: object, fragment: str) -> None:
        with pytest.raises(InvalidOrderError, match=fragment):
            PriceOffset(kind, value)


class TestTicks:
    """A tick is $0.01 at or above $1 and $0.0001 below it."""

    @pytest.mark.parametrize(
        ("value", "tick"),
        [("1", "0.01"), ("1.00", "0.01"), ("250.5", "0.01"), ("0.9999", "0.0001"), (5, "0.01")],
    )
    def test_tick_size(self, value: object, tick: str) -> None:
        assert tick_size(value) == D(tick)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [0, "-1", 1.5, "NaN"])
    def test_tick_size_needs_a_positive_exact_price(self, bad: object) -> None:
        with pytest.raises(InvalidOrderError):
            tick_size(bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("value", "direction", "expected"),
        [
            ("10.019", "down", "10.01"),
            ("10.011", "up", "10.02"),
            ("10.01", "down", "10.01"),
            ("0.12345", "down", "0.1234"),
            ("0.12341", "up", "0.1235"),
            ("0.99995", "up", "1.00"),
            ("1.00001", "down", "1.00"),
            ("10", "down", "10.00"),
        ],
    )
    def test_round_to_tick(self, value: str, direction: str, expected: str) -> None:
        result = round_to_tick(value, direction)  # type: ignore[arg-type]
        assert str(result) == expected  # the exact string the broker is sent

    def test_round_to_tick_refuses_an_unknown_direction(self) -> None:
        with pytest.raises(InvalidOrderError, match="'down' or 'up'"):
            round_to_tick("10", "nearest")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("value", "legal"),
        [
            ("10.01", True),
            ("10.010", True),
            ("10.011", False),
            ("0.1234", True),
            ("0.12345", False),
        ],
    )
    def test_is_on_tick(self, value: str, legal: bool) -> None:
        assert is_on_tick(value) is legal


class TestComputeLimitPrice:
    """Buy at reference plus offset, sell at reference minus it, rounded toward the reference."""

    def test_buy_adds_a_bps_offset(self) -> None:
        assert price("buy", "100", PriceOffset.bps(5)) == D("100.05")

    def test_sell_subtracts_a_bps_offset(self) -> None:
        assert price("sell", "100", PriceOffset.bps(5)) == D("99.95")

    def test_absolute_offset(self) -> None:
        assert price(Side.BUY, 150, PriceOffset.absolute("0.05")) == D("150.05")
        assert price(Side.SELL, D(150), PriceOffset.absolute("0.05")) == D("149.95")

    def test_buy_rounds_down_toward_the_reference(self) -> None:
        # 10.005 + 5 bps = 10.0100025: never pay more than the strategy asked.
        assert str(price("buy", "10.005", PriceOffset.bps(5))) == "10.01"
        assert price("buy", "10.019", PriceOffset.bps(0)) == D("10.01")

    def test_sell_rounds_up_toward_the_reference(self) -> None:
        assert price("sell", "10.011", PriceOffset.bps(0)) == D("10.02")
        assert str(price("sell", "0.99995", PriceOffset.bps(0))) == "1.00"

    def test_sub_dollar_prices_keep_four_decimals(self) -> None:
        assert str(price("buy", "0.5", PriceOffset.bps(10))) == "0.5005"
        assert str(price("sell", "0.5", PriceOffset.absolute("0.0003"))) == "0.4997"

    def test_result_is_exact_decimal(self) -> None:
        result = price("buy", "12.34", PriceOffset.absolute("0.01"))
        assert type(result) is Decimal
        assert result == D("12.35")

    def test_offset_exactly_at_the_cap_is_allowed(self) -> None:
        assert price("buy", "10", PriceOffset.bps(50), cap=50) == D("10.05")
        assert price("sell", "10", PriceOffset.absolute("0.05"), cap=50) == D("9.95")

    def test_zero_cap_allows_only_a_zero_offset(self) -> None:
        assert price("buy", "10", PriceOffset.bps(0), cap=0) == D("10.00")
        with pytest.raises(SafetyViolation):
            price("buy", "10", PriceOffset.absolute("0.01"), cap=0)

    @pytest.mark.parametrize(
        ("side", "offset", "cap_text"),
        [
            ("buy", PriceOffset.bps("50.01"), "10.05"),
            ("sell", PriceOffset.bps(60), "9.95"),
            ("buy", PriceOffset.absolute("0.06"), "10.05"),
            ("sell", PriceOffset.absolute("0.0501"), "9.95"),
        ],
    )
    def test_offset_beyond_the_cap_is_a_safety_violation(
        self, side: str, offset: PriceOffset, cap_text: str
    ) -> None:
        with pytest.raises(SafetyViolation) as caught:
            price(side, "10", offset, cap=50)
        (reason,) = caught.value.reasons
        assert str(offset) in reason
        assert "50 bps" in reason
        assert cap_text in reason
        assert "reference price 10" in reason
        assert "max_slippage_bps" in reason  # says what to change

    def test_sell_at_or_below_zero_is_refused(self) -> None:
        with pytest.raises(InvalidOrderError, match="no positive price"):
            price("sell", "1", PriceOffset.absolute(1), cap=10_000)

    def test_buy_that_rounds_to_zero_is_refused(self) -> None:
        with pytest.raises(InvalidOrderError, match="rounds down to zero"):
            price("buy", "0.00005", PriceOffset.bps(0))

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"reference_price": 10.5}, "reference_price"),
            ({"reference_price": "NaN"}, "reference_price"),
            ({"reference_price": "Infinity"}, "reference_price"),
            ({"reference_price": "-10"}, "reference_price"),
            ({"reference_price": 0}, "reference_price"),
            ({"reference_price": True}, "reference_price"),
            ({"side": "hold"}, "side"),
            ({"side": "BUY"}, "side"),
            ({"offset": {"kind": "bps", "value": "5"}}, "offset"),
            ({"max_slippage_bps": 50.0}, "max_slippage_bps"),
            ({"max_slippage_bps": "-1"}, "max_slippage_bps"),
            ({"max_slippage_bps": "NaN"}, "max_slippage_bps"),
        ],
    )
    def test_bad_inputs_raise_invalid_order_error_naming_the_field(
        self, kwargs: dict[str, object], field: str
    ) -> None:
        args: dict[str, object] = {
            "side": "buy",
            "reference_price": "10",
            "offset": PriceOffset.bps(5),
            "max_slippage_bps": "50",
        }
        args.update(kwargs)
        with pytest.raises(InvalidOrderError) as caught:
            compute_limit_price(**args)  # type: ignore[arg-type]
        assert caught.value.field == field

    def test_absurdly_long_inputs_are_refused_not_rounded(self) -> None:
        with pytest.raises(InvalidOrderError, match="out of range"):
            price("buy", "1" * 99 + ".5", PriceOffset.bps("1.23456789"))


class TestEnsureLimitOrderType:
    """Only limit orders pass; everything else is unsupported before any I/O."""

    @pytest.mark.parametrize("value", [OrderType.LIMIT, "limit"])
    def test_limit_passes(self, value: object) -> None:
        assert ensure_limit_order_type(value) is OrderType.LIMIT  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            (OrderType.MARKET, "market"),
            (OrderType.STOP, "stop"),
            ("stop_limit", "stop_limit"),
            ("market", "market"),
            ("trailing_stop", "trailing_stop"),
            ("LIMIT", "LIMIT"),
            (None, "None"),
        ],
    )
    def test_anything_else_is_unsupported(self, value: object, shown: str) -> None:
        with pytest.raises(UnsupportedOrderTypeError, match="use a limit order") as caught:
            ensure_limit_order_type(value)  # type: ignore[arg-type]
        assert caught.value.order_type == shown


# -- properties ------------------------------------------------------------------------------

references = st.one_of(
    st.decimals(min_value=D("0.0001"), max_value=D(1), places=6),
    st.decimals(min_value=D(1), max_value=D(100_000), places=6),
)
caps = st.decimals(min_value=D(0), max_value=D(1000), places=2)
offsets = st.one_of(
    st.decimals(min_value=D(0), max_value=D(1200), places=3).map(PriceOffset.bps),
    st.decimals(min_value=D(0), max_value=D(50), places=4).map(PriceOffset.absolute),
)


def raw_and_cap(
    side: str, reference: Decimal, offset: PriceOffset, cap: Decimal
) -> tuple[Decimal, Decimal, bool]:
    amount = (
        offset.value if offset.kind is OffsetKind.ABSOLUTE else reference * offset.value / 10_000
    )
    allowed = reference * cap / 10_000
    sign = 1 if side == "buy" else -1
    return reference + sign * amount, reference + sign * allowed, amount > allowed


class TestPricingProperties:
    """Whatever the inputs, a price is on a tick, inside the cap, and at most a tick off."""

    @settings(max_examples=300, deadline=None)
    @given(side=st.sampled_from(["buy", "sell"]), reference=references, offset=offsets, cap=caps)
    def test_price_is_legal_capped_and_toward_the_reference(
        self, side: str, reference: Decimal, offset: PriceOffset, cap: Decimal
    ) -> None:
        raw, cap_price, beyond = raw_and_cap(side, reference, offset, cap)
        if beyond:
            with pytest.raises(SafetyViolation):
                price(side, reference, offset, cap)
            return
        try:
            result = price(side, reference, offset, cap)
        except InvalidOrderError:
            # only a price that cannot be positive on a tick is refused
            assert (raw <= 0) if side == "sell" else (raw < D("0.0001"))
            return
        assert type(result) is Decimal
        assert result > 0
        assert is_on_tick(result)
        assert -result.as_tuple().exponent == (2 if result >= 1 else 4)  # type: ignore[operator]
        if side == "buy":
            assert result <= raw <= cap_price
            assert raw - result < tick_size(raw)
        else:
            assert result >= raw >= cap_price
            assert result - raw < tick_size(raw)

    @settings(max_examples=200, deadline=None)
    @given(
        side=st.sampled_from(["buy", "sell"]),
        reference=references,
        small=st.decimals(min_value=D(0), max_value=D(500), places=2),
        extra=st.decimals(min_value=D(0), max_value=D(500), places=2),
    )
    def test_a_larger_offset_never_makes_a_less_aggressive_price(
        self, side: str, reference: Decimal, small: Decimal, extra: Decimal
    ) -> None:
        cap = D(1000)
        try:
            near = price(side, reference, PriceOffset.bps(small), cap)
            far = price(side, reference, PriceOffset.bps(small + extra), cap)
        except InvalidOrderError:
            return  # a sub-tick buy; covered above
        assert (far >= near) if side == "buy" else (far <= near)

    @settings(max_examples=200, deadline=None)
    @given(reference=references)
    def test_zero_offset_on_a_tick_gives_back_the_reference(self, reference: Decimal) -> None:
        on_tick = round_to_tick(reference, "down")
        if on_tick == 0:
            return
        assert price("buy", on_tick, PriceOffset.bps(0), 0) == on_tick
        assert price("sell", on_tick, PriceOffset.bps(0), 0) == on_tick
