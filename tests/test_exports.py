"""The top-level package exports exactly the public surface, and every documented name is in it."""

from __future__ import annotations

import orders

# Every name the documentation promises from `from orders import X`.
API_NAMES = {
    "OrderState", "Side", "OrderType", "TimeInForce",
    "Execution", "LifecycleEvent", "BrokerOrder", "OrderRequest",
    "Order", "apply_snapshot",
    "OrderError", "IllegalTransition", "OverfillError", "UnsupportedOrderTypeError",
    "ConfigError", "SafetyViolation", "AuthenticationError", "BrokerError",
    "ensure_limit_order_type",
    "OrderManagementConfig", "PriceOffset", "compute_limit_price",
    "SafetyChecks", "AccountData", "AccountSource", "AuditJournal",
    "OrderGateway", "Accepted", "Rejected", "Unknown",
    "RobinhoodGateway", "PaperBroker", "parse_robinhood_order", "RobinhoodAuth",
    "OrderManager", "TradingBot", "TradeResult",
}  # fmt: skip


class TestExports:
    """`orders.__all__` is sorted, complete and importable."""

    def test_every_api_name_is_exported(self) -> None:
        assert set(orders.__all__) >= API_NAMES

    def test_all_is_exactly_what_the_package_defines_publicly(self) -> None:
        public = {
            name
            for name, value in vars(orders).items()
            if not name.startswith("_") and not isinstance(value, type(orders))
        }
        assert set(orders.__all__) == public | set(orders._LAZY)

    def test_all_is_sorted_and_unique(self) -> None:
        assert len(orders.__all__) == len(set(orders.__all__))
        assert orders.__all__ == sorted(orders.__all__, key=lambda n: (not n.isupper(), n))
