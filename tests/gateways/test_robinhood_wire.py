"""The wire module reads Robinhood's JSON without loading the HTTP stack."""

from __future__ import annotations

import subprocess
import sys

from orders.gateways import _robinhood_wire, robinhood


class TestWireModule:
    """Reading a captured payload costs no network library."""

    def test_importing_the_parser_loads_neither_requests_nor_robin_stocks(self) -> None:
        code = (
            "import sys; from orders.gateways._robinhood_wire import parse_robinhood_order; "
            "print(sorted(m for m in ('requests', 'robin_stocks') if m in sys.modules))"
        )
        done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]"

    def test_the_gateway_module_serves_the_same_parser_and_states(self) -> None:
        assert robinhood.parse_robinhood_order is _robinhood_wire.parse_robinhood_order
        assert robinhood.ROBINHOOD_STATES is _robinhood_wire.ROBINHOOD_STATES
