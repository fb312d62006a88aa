"""Order ids are real UUID4s: what `uuid` itself would print, and never repeated."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from orders import Order
from orders.model import new_uuid4, uuid4_text


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_uuid4_text_prints_what_uuid_prints(bits: int) -> None:
    assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))


def test_fresh_ids_are_version_4_and_distinct() -> None:
    ids = [new_uuid4() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:50]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_an_order_without_an_id_gets_a_uuid4() -> None:
    order = Order("AAPL", "buy", 1, "10")
    assert uuid.UUID(order.client_order_id).version == 4
