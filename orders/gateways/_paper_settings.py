"""Where a simulated broker built by hand differs from the `paper` settings of a configuration.

Only settings the configuration moves away from their defaults count (as with a journal's
path): a broker built by hand for a test, with its own liquidity, stays usable under a default
configuration, but one that would silently ignore a configured CSV file, state file or fault
rate is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from orders.gateways._paper_faults import Fault
from orders.gateways._paper_state import same_file
from orders.gateways.quotes import CsvQuotes, QuoteSource, RobinhoodQuotes
from orders.model import DEFAULT_RETENTION_SECONDS

if TYPE_CHECKING:
    from orders.config import OrderManagementConfig, PaperConfig

__all__ = ["BrokerSettings", "disagreements"]

Disagreement = tuple[str, object, object]


@attrs.frozen
class BrokerSettings:
    """The settings of one broker that a configuration also names."""

    liquidity: Decimal | None
    allow_short: bool
    rates: Mapping[Fault, float]
    state_path: Path | None
    retention_seconds: float
    quote_source: QuoteSource | None


def disagreements(config: OrderManagementConfig, broker: BrokerSettings) -> Iterator[Disagreement]:
    """Each `(key path, the config's value, the broker's)` where the two differ."""
    from orders.config import PaperConfig  # noqa: PLC0415 (cattrs: only once a config is checked)

    paper, default = config.paper, PaperConfig()
    if paper.liquidity is not None and paper.liquidity != broker.liquidity:
        yield "paper.liquidity", paper.liquidity, broker.liquidity
    if paper.allow_short not in (default.allow_short, broker.allow_short):
        yield "paper.allow_short", paper.allow_short, broker.allow_short
    yield from _fault_rates(paper, broker)
    if paper.state_path != default.state_path:
        named = config.paper_state_path
        if broker.state_path is None or not same_file(named, broker.state_path):
            yield "paper.state_path", named, broker.state_path
    retention = config.retention_seconds
    if retention not in (DEFAULT_RETENTION_SECONDS, broker.retention_seconds):
        yield "retention_seconds", retention, broker.retention_seconds
    if not _same_quotes(paper, broker.quote_source):
        yield "paper.quotes", paper.quotes, broker.quote_source


def _fault_rates(paper: PaperConfig, broker: BrokerSettings) -> Iterator[Disagreement]:
    wanted = {Fault(name): float(rate) for name, rate in paper.fault_rates.items() if rate}
    if paper.fault_rates and wanted != broker.rates:
        rates = {fault.value: rate for fault, rate in broker.rates.items()}
        yield "paper.fault_rates", dict(paper.fault_rates), rates


def _same_quotes(paper: PaperConfig, source: QuoteSource | None) -> bool:
    """Whether `source` is the one `paper.quotes` names (any source will do for reference)."""
    quote_file = paper.quote_file
    if quote_file is not None:
        return isinstance(source, CsvQuotes) and same_file(source.path, quote_file)
    if paper.quotes == "robinhood":
        return isinstance(source, RobinhoodQuotes)
    return True
