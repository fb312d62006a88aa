"""Which broker a live bot trades on: `order_management.broker` names it, and this module maps
the name to the function that builds its gateway.

Each builder is named by its module and function and imported only when its broker is chosen,
so `import orders`, a paper bot and a journal reader never load a broker's client library
(robin_stocks, requests and pyotp weigh about 470 modules). Adding a broker is one module with
a builder plus one line in `BROKERS`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from orders.errors import ConfigError

if TYPE_CHECKING:
    from orders.config import OrderManagementConfig
    from orders.gateways.base import OrderGateway

__all__ = [
    "BROKERS",
    "BROKER_KEY",
    "DEFAULT_BROKER",
    "GatewayBuilder",
    "broker_problem",
    "build_gateway",
    "gateway_builder",
]

BROKER_KEY: Final = "order_management.broker"
DEFAULT_BROKER: Final = "robinhood"

# A gateway from the configuration and the environment (None: the process's own); it raises
# AuthenticationError, before anything is sent, when the broker's credentials are missing.
GatewayBuilder = Callable[["OrderManagementConfig", Mapping[str, str] | None], "OrderGateway"]

# Broker name -> "module:function" of its GatewayBuilder.
BROKERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "robinhood": "orders.gateways.robinhood:build_robinhood_gateway",
    }
)


def broker_problem(name: object) -> str | None:
    """What is wrong with `name` as `order_management.broker`, said the one way both the
    config and the factory say it; None when it names a broker of `BROKERS` (read at each
    call, so a broker added to the map is known at once)."""
    if isinstance(name, str) and name in BROKERS:
        return None
    known = ", ".join(f'"{broker}"' for broker in sorted(BROKERS))
    return f"must be one of {known}, not {json.dumps(name, default=str)}"


def gateway_builder(name: str) -> GatewayBuilder:
    """The builder of the broker called `name`, imported now; ConfigError for another name."""
    problem = broker_problem(name)
    if problem is not None:
        raise ConfigError(BROKER_KEY, problem)
    module, function = BROKERS[name].split(":")
    builder: GatewayBuilder = getattr(importlib.import_module(module), function)
    return builder


def build_gateway(
    config: OrderManagementConfig, env: Mapping[str, str] | None = None
) -> OrderGateway:
    """The live gateway of `config.broker`, logged in with the environment's credentials."""
    return gateway_builder(config.broker)(config, env)
