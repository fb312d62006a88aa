"""`OrderManagementConfig`: defaults, exact numbers, strict key paths, the example and the docs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from orders.config import (
    CircuitBreakerConfig,
    FsyncPolicy,
    Mode,
    OrderManagementConfig,
    RateLimitConfig,
    RetryConfig,
)
from orders.errors import ConfigError, SafetyViolation
from orders.model import TimeInForce
from orders.pricing import OffsetKind, PriceOffset

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.json"
DOC = ROOT / "docs" / "configuration.md"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def dotted_keys(cls: type[Any] = OrderManagementConfig, prefix: str = "") -> Iterator[str]:
    """Every key of the block, nested blocks as `retry.max_attempts`, read off the attrs classes."""
    for field in attrs.fields(attrs.resolve_types(cls)):
        name = prefix + field.name
        yield name
        if attrs.has(field.type) and field.type is not PriceOffset:
            yield from dotted_keys(field.type, name + ".")


class TestDefaults:
    """An empty block is a complete, conservative paper-trading configuration."""

    def test_empty_block_gives_documented_defaults(self) -> None:
        config = OrderManagementConfig.from_dict({})
        assert config == OrderManagementConfig()
        assert config.mode is Mode.PAPER
        assert config.default_offset == PriceOffset(OffsetKind.BPS, D(5))
        assert dict(config.strategy_overrides) == {}
        assert config.max_slippage_bps == D(50)
        assert config.time_in_force is TimeInForce.GFD
        assert config.audit_log_path == Path("logs/orders.jsonl")
        assert config.fsync is FsyncPolicy.INTENT_AND_TERMINAL
        assert config.sync_interval_seconds == 5
        assert config.cancel_after_seconds is None
        assert config.account_ttl_seconds == 30
        assert config.unknown_order_grace_seconds == 60
        assert config.unknown_order_lookups == 3
        assert config.retry == RetryConfig(max_attempts=3, backoff_base_seconds=0.5)
        assert config.rate_limit == RateLimitConfig(requests_per_minute=60, burst=5)
        assert config.circuit_breakers.max_notional_per_order is None
        assert config.circuit_breakers == CircuitBreakerConfig()

    def test_file_with_an_empty_block_and_other_sections(self, tmp_path: Path) -> None:
        path = write(tmp_path, '{"order_management": {}, "strategies": {"anything": [1, 2]}}')
        assert OrderManagementConfig.from_file(path) == OrderManagementConfig()
        assert OrderManagementConfig.from_file(str(path)) == OrderManagementConfig()

    def test_config_is_frozen_and_hashable(self) -> None:
        config = OrderManagementConfig.from_dict(
            {"strategy_overrides": {"momentum": {"kind": "bps", "value": "10"}}}
        )
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            config.mode = Mode.LIVE  # type: ignore[misc]
        with pytest.raises(TypeError):
            config.strategy_overrides["x"] = PriceOffset.bps(1)  # type: ignore[index]
        assert hash(config) == hash(OrderManagementConfig.from_dict({}))


class TestOffsets:
    """A strategy gets its override, and any other strategy the default offset."""

    config = OrderManagementConfig.from_dict(
        {
            "default_offset": {"kind": "bps", "value": "4"},
            "strategy_overrides": {
                "momentum": {"kind": "bps", "value": "15"},
                "mean_reversion": {"kind": "absolute", "value": "0.02"},
            },
        }
    )

    def test_override(self) -> None:
        assert self.config.offset_for("momentum") == PriceOffset.bps(15)
        assert self.config.offset_for("mean_reversion") == PriceOffset.absolute("0.02")

    def test_unknown_strategy_falls_back_to_the_default(self) -> None:
        assert self.config.offset_for("default") == PriceOffset.bps(4)
        assert self.config.offset_for("never_configured") == PriceOffset.bps(4)

    def test_limit_price_uses_the_strategy_offset_and_the_cap(self) -> None:
        assert self.config.limit_price_for("buy", "100", strategy="momentum") == D("100.15")
        assert self.config.limit_price_for("sell", "100") == D("99.96")
        assert self.config.limit_price_for("sell", "10", strategy="mean_reversion") == D("9.98")
        with pytest.raises(SafetyViolation):
            # $0.02 on a $1 stock is 200 bps, beyond the 50 bps cap
            self.config.limit_price_for("buy", "1", strategy="mean_reversion")


class TestExactNumbers:
    """Numbers are read exactly, as JSON numbers or strings, never through a binary float."""

    def test_json_numbers_become_exact_decimals(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            '{"order_management": {"max_slippage_bps": 12.345,'
            ' "default_offset": {"kind": "absolute", "value": 0.1},'
            ' "circuit_breakers": {"max_notional_per_order": 1234.56}}}',
        )
        config = OrderManagementConfig.from_file(path)
        assert config.max_slippage_bps == D("12.345")
        assert str(config.default_offset.value) == "0.1"
        assert config.circuit_breakers.max_notional_per_order == D("1234.56")

    def test_strings_ints_and_decimals_are_accepted(self) -> None:
        config = OrderManagementConfig.from_dict(
            {
                "max_slippage_bps": "20.5",
                "default_offset": {"kind": "bps", "value": D("2.5")},
                "unknown_order_lookups": "4",
                "retry": {"max_attempts": D("5.0"), "backoff_base_seconds": "0.25"},
                "sync_interval_seconds": 2,
            }
        )
        assert config.max_slippage_bps == D("20.5")
        assert config.default_offset.value == D("2.5")
        assert config.unknown_order_lookups == 4
        assert config.retry.max_attempts == 5
        assert config.retry.backoff_base_seconds == 0.25
        assert config.sync_interval_seconds == 2.0

    def test_null_where_allowed(self) -> None:
        config = OrderManagementConfig.from_dict(
            {
                "cancel_after_seconds": "90",
                "circuit_breakers": {"max_notional_per_order": None, "cooldown_seconds": None},
            }
        )
        assert config.cancel_after_seconds == 90
        assert config.circuit_breakers.cooldown_seconds is None


class TestExampleFile:
    """config.example.json uses every key and keeps the documented defaults where it says so."""

    def test_example_uses_every_key(self) -> None:
        block = json.loads(EXAMPLE.read_text(encoding="utf-8"))["order_management"]

        def present(mapping: dict[str, Any], prefix: str = "") -> Iterator[str]:
            for key, value in mapping.items():
                yield prefix + key
                if isinstance(value, dict) and key not in ("default_offset", "strategy_overrides"):
                    yield from present(value, prefix + key + ".")

        assert set(present(block)) == set(dotted_keys())
        assert set(block["strategy_overrides"]) == {"momentum", "mean_reversion"}

    def test_example_equals_defaults_apart_from_overrides_and_notional_cap(self) -> None:
        config = OrderManagementConfig.from_file(EXAMPLE)
        defaults = OrderManagementConfig()
        expected = attrs.evolve(
            defaults,
            strategy_overrides={
                "momentum": PriceOffset.bps(15),
                "mean_reversion": PriceOffset.absolute("0.02"),
            },
            circuit_breakers=attrs.evolve(
                defaults.circuit_breakers, max_notional_per_order=D(5000)
            ),
        )
        assert config == expected


class TestDocumentation:
    """docs/configuration.md describes every key with its real default."""

    text = DOC.read_text(encoding="utf-8")

    def test_every_key_is_documented(self) -> None:
        missing = [k for k in dotted_keys() if f"| `{k}` |" not in self.text]
        missing += [f.name for f in attrs.fields(PriceOffset) if f"| `{f.name}` |" not in self.text]
        assert missing == []

    def test_documented_defaults_are_the_real_defaults(self) -> None:
        rows = re.findall(r"^\| `([\w.]+)` \| [^|]+ \| `([^`]+)` \|", self.text, re.MULTILINE)
        documented = dict(rows)
        keys = set(dotted_keys())
        blocks = {k.rsplit(".", 1)[0] for k in keys if "." in k}  # their rows say "see below"
        assert set(documented) == keys - blocks
        for key, default in documented.items():
            *blocks, leaf = key.split(".")
            mapping: dict[str, Any] = {leaf: json.loads(default, parse_float=D)}
            for block in reversed(blocks):
                mapping = {block: mapping}
            assert OrderManagementConfig.from_dict(mapping) == OrderManagementConfig(), key


# (block contents, key path named by the error, a fragment of what the message says)
BAD_BLOCKS: list[tuple[dict[str, Any], str, str]] = [
    # unknown keys, at every depth
    ({"mdoe": "live"}, "order_management.mdoe", "not a known key"),
    ({"default_offset": {"kind": "bps", "value": "5", "side": "buy"}},
     "order_management.default_offset.side", "not a known key"),
    ({"strategy_overrides": {"momentum": {"kind": "bps", "value": "5", "x": 1}}},
     "order_management.strategy_overrides.momentum.x", "not a known key"),
    ({"retry": {"max_atempts": 2}}, "order_management.retry.max_atempts", "max_attempts"),
    ({"rate_limit": {"rpm": 10}}, "order_management.rate_limit.rpm", "not a known key"),
    ({"circuit_breakers": {"max_rejects": 1}},
     "order_management.circuit_breakers.max_rejects", "not a known key"),
    # wrong types
    ({"mode": "demo"}, "order_management.mode", '"paper", "live"'),
    ({"mode": 1}, "order_management.mode", '"paper", "live"'),
    ({"broker": "alpaca"}, "order_management.broker", '"robinhood"'),
    ({"broker": 1}, "order_management.broker", '"robinhood"'),
    ({"time_in_force": "GTC"}, "order_management.time_in_force", '"gfd", "gtc"'),
    ({"fsync": True}, "order_management.fsync", "intent_and_terminal"),
    ({"default_offset": "5"}, "order_management.default_offset", "JSON object"),
    ({"default_offset": {"kind": "pct", "value": "5"}},
     "order_management.default_offset.kind", '"bps", "absolute"'),
    ({"strategy_overrides": ["momentum"]}, "order_management.strategy_overrides", "JSON object"),
    ({"strategy_overrides": {"momentum": None}},
     "order_management.strategy_overrides.momentum", "JSON object"),
    ({"strategy_overrides": {"": {"kind": "bps", "value": "1"}}},
     'order_management.strategy_overrides[""]', "empty"),
    ({"retry": 3}, "order_management.retry", "JSON object"),
    ({"audit_log_path": ""}, "order_management.audit_log_path", "non-empty path"),
    ({"audit_log_path": ["logs"]}, "order_management.audit_log_path", "path string"),
    ({"audit_log_path": "logs/a\u0000b.jsonl"}, "order_management.audit_log_path", "NUL"),
    ({"max_slippage_bps": None}, "order_management.max_slippage_bps", "not null"),
    ({"max_slippage_bps": True}, "order_management.max_slippage_bps", "boolean"),
    ({"max_slippage_bps": "fifty"}, "order_management.max_slippage_bps", "not a number"),
    ({"unknown_order_lookups": "2.5"}, "order_management.unknown_order_lookups", "whole number"),
    # floats: write them as strings
    ({"max_slippage_bps": 50.0}, "order_management.max_slippage_bps", "write it as a string"),
    ({"strategy_overrides": {"momentum": {"kind": "bps", "value": 0.5}}},
     "order_management.strategy_overrides.momentum.value", "write it as a string"),
    ({"retry": {"backoff_base_seconds": 0.5}},
     "order_management.retry.backoff_base_seconds", "write it as a string"),
    # NaN, infinities, too large
    ({"max_slippage_bps": "NaN"}, "order_management.max_slippage_bps", "finite"),
    ({"default_offset": {"kind": "bps", "value": "Infinity"}},
     "order_management.default_offset.value", "finite"),
    ({"circuit_breakers": {"max_notional_per_order": "-Infinity"}},
     "order_management.circuit_breakers.max_notional_per_order", "finite"),
    ({"sync_interval_seconds": "1e400"}, "order_management.sync_interval_seconds", "too large"),
    # negative, zero, out of range
    ({"max_slippage_bps": "-1"}, "order_management.max_slippage_bps", "at least 0"),
    ({"max_slippage_bps": "10001"}, "order_management.max_slippage_bps", "at most 10000"),
    ({"default_offset": {"kind": "absolute", "value": "-0.01"}},
     "order_management.default_offset.value", "must not be negative"),
    ({"retry": {"max_attempts": 0}}, "order_management.retry.max_attempts", "at least 1"),
    ({"retry": {"backoff_base_seconds": "-1"}},
     "order_management.retry.backoff_base_seconds", "0 or more"),
    ({"rate_limit": {"burst": "0"}}, "order_management.rate_limit.burst", "at least 1"),
    ({"sync_interval_seconds": 0}, "order_management.sync_interval_seconds", "greater than 0"),
    ({"cancel_after_seconds": 0}, "order_management.cancel_after_seconds", "greater than 0"),
    ({"account_ttl_seconds": "-5"}, "order_management.account_ttl_seconds", "0 or more"),
    ({"circuit_breakers": {"max_notional_per_order": "0"}},
     "order_management.circuit_breakers.max_notional_per_order", "more than 0"),
    ({"circuit_breakers": {"max_orders_per_minute": -3}},
     "order_management.circuit_breakers.max_orders_per_minute", "at least 1"),
    # over-precise where it matters, and values that contradict each other
    ({"strategy_overrides": {"scalper": {"kind": "absolute", "value": "0.00005"}}},
     "order_management.strategy_overrides.scalper.value", "at most 4 decimals"),
    ({"default_offset": {"kind": "bps", "value": "60"}},
     "order_management.default_offset.value", "beyond max_slippage_bps=50"),
    ({"max_slippage_bps": "10", "strategy_overrides": {"momentum": {"kind": "bps", "value": "11"}}},
     "order_management.strategy_overrides.momentum.value", "beyond max_slippage_bps=10"),
    ({"retry": {"backoff_base_seconds": "10", "backoff_max_seconds": "5"}},
     "order_management.retry.backoff_max_seconds", "below backoff_base_seconds"),
    # incomplete offsets
    ({"default_offset": {"kind": "bps"}}, "order_management.default_offset.value", "required"),
    ({"strategy_overrides": {"momentum": {"value": "5"}}},
     "order_management.strategy_overrides.momentum.kind", "required"),
]  # fmt: skip


class TestBadBlocks:
    """Every bad key or value raises ConfigError naming its dotted key path."""

    @pytest.mark.parametrize(
        ("block", "key_path", "fragment"), BAD_BLOCKS, ids=[b[1] for b in BAD_BLOCKS]
    )
    def test_bad_block(self, block: dict[str, Any], key_path: str, fragment: str) -> None:
        with pytest.raises(ConfigError) as caught:
            OrderManagementConfig.from_dict(block)
        assert caught.value.key_path == key_path
        assert fragment in caught.value.problem
        assert key_path in str(caught.value)

    @pytest.mark.parametrize(("block", "key_path", "fragment"), BAD_BLOCKS[:8])
    def test_same_errors_from_a_file(
        self, tmp_path: Path, block: dict[str, Any], key_path: str, fragment: str
    ) -> None:
        path = write(tmp_path, json.dumps({"order_management": block}))
        with pytest.raises(ConfigError) as caught:
            OrderManagementConfig.from_file(path)
        assert caught.value.key_path == key_path

    def test_block_must_be_a_mapping(self) -> None:
        with pytest.raises(ConfigError) as caught:
            OrderManagementConfig.from_dict(["mode", "paper"])  # type: ignore[arg-type]
        assert caught.value.key_path == "order_management"

    def test_all_problems_are_listed(self) -> None:
        with pytest.raises(ConfigError) as caught:
            OrderManagementConfig.from_dict(
                {"mode": "demo", "retry": {"max_attempts": "x"}, "zzz": 1}
            )
        assert caught.value.key_path == "order_management.mode"
        assert "order_management.retry.max_attempts" in str(caught.value)
        assert "order_management.zzz" in str(caught.value)

    def test_unknown_key_message_lists_the_known_keys(self) -> None:
        with pytest.raises(ConfigError, match="max_attempts, backoff_base_seconds"):
            OrderManagementConfig.from_dict({"retry": {"attempts": 3}})


class TestBadFiles:
    """A file that cannot be read as a config raises ConfigError naming the file or the block."""

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.json"
        with pytest.raises(ConfigError, match="cannot read") as caught:
            OrderManagementConfig.from_file(path)
        assert caught.value.key_path == str(path)

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read"):
            OrderManagementConfig.from_file(tmp_path)

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ('{"order_management": {', "not valid JSON"),
            ('{"order_management": {"mode": "paper",}}', "line 1"),
            ("", "not valid JSON"),
            ('{"order_management": {"mode": "paper", "mode": "live"}}', "'mode' appears twice"),
            ('["order_management"]', "JSON object"),
            (b'{"order_management": {"audit_log_path": "\xff"}}', "UTF-8"),
        ],
    )
    def test_malformed_file(self, tmp_path: Path, text: str | bytes, fragment: str) -> None:
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as caught:
            OrderManagementConfig.from_file(path)
        assert caught.value.key_path == str(path)
        assert fragment in caught.value.problem

    def test_missing_block(self, tmp_path: Path) -> None:
        path = write(tmp_path, '{"orders": {}}')
        with pytest.raises(ConfigError, match="add an") as caught:
            OrderManagementConfig.from_file(path)
        assert caught.value.key_path == "order_management"

    @pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
    def test_json_nan_and_infinity_name_their_key(self, tmp_path: Path, literal: str) -> None:
        path = write(tmp_path, f'{{"order_management": {{"max_slippage_bps": {literal}}}}}')
        with pytest.raises(ConfigError, match="finite") as caught:
            OrderManagementConfig.from_file(path)
        assert caught.value.key_path == "order_management.max_slippage_bps"
