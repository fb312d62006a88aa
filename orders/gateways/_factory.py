"""Which broker a live bot trades on: `order_management.broker` names it, and this module maps
the name to the function that builds its gateway.

Each builder is named by its module and function and imported only when its broker is chosen,
so `import orders`, a paper bot and a journal reader never load a broker's client library
(robin_stocks, requests and pyotp weigh about 470 modules). Adding a broker is one module with
a builder plus one line in `BROKERS`.
"""

from __future__ import annotations

import importlib
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
    "build_gateway",
    "gateway_builder",
    "is_known",
    "known_brokers",
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


def is_known(name: object) -> bool:
    """Whether `name` is a broker of `BROKERS` (read at each call, so a broker added to it
    is known at once)."""
    return isinstance(name, str) and name in BROKERS


def known_brokers() -> str:
    """The broker names, quoted, for a message that tells a user what to write instead."""
    return ", ".join(f'"{name}"' for name in sorted(BROKERS))


def gateway_builder(name: str) -> GatewayBuilder:
    """The builder of the broker called `name`, imported now; ConfigError for another name."""
    where = BROKERS.get(name)
    if where is None:
        raise ConfigError(
            BROKER_KEY, f"must be one of {known_brokers()}, not {name!r}; it names the live broker"
        )
    module, function = where.split(":")
    builder: GatewayBuilder = getattr(importlib.import_module(module), function)
    return builder


def build_gateway(
    config: OrderManagementConfig, env: Mapping[str, str] | None = None
) -> OrderGateway:
    """The live gateway of `config.broker`, logged in with the environment's credentials."""
    return gateway_builder(config.broker)(config, env)
