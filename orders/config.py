"""`OrderManagementConfig`: the `order_management` block of the bot's JSON configuration.

Every key has a default (docs/configuration.md lists them), so an empty block is a valid,
conservative paper-trading setup. Loading is strict because a typo in a live-money config must
not fall back to a default silently: an unknown key, a wrong type or an out-of-range value
raises `ConfigError` naming the dotted key path (`order_management.retry.max_attempts`).

Numbers are read exactly: `from_file` parses JSON numbers as `Decimal`, and `from_dict` refuses
Python floats (write `"0.5"`), because an offset or a cap that went through a binary float is
not the number that was written. Money-like values (offsets, the slippage cap, the notional
cap) stay `Decimal`; durations become `float` seconds because they feed clocks and sleeps.

Structuring is cattrs with detailed validation; its error tree is flattened here into key
paths, so the attrs classes only need to say what is wrong with a value, never where it is.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from orders.errors import ConfigError, InvalidOrderError
from orders.gateways._factory import DEFAULT_BROKER, broker_problem
from orders.gateways._paper_changes import changes_path
from orders.gateways._paper_faults import Fault
from orders.gateways._paper_state import same_file
from orders.model import (
    DEFAULT_RETENTION_SECONDS,
    Side,
    TimeInForce,
    coerce_enum,
    positive_decimal,
)
from orders.pricing import OffsetKind, PriceOffset, limit_price_of_checked

__all__ = [
    "CircuitBreakerConfig",
    "ConfiguredPart",
    "FsyncPolicy",
    "Mode",
    "OrderManagementConfig",
    "PaperConfig",
    "RateLimitConfig",
    "RetryConfig",
]

ROOT_KEY = "order_management"

_E = TypeVar("_E", bound=StrEnum)


class FsyncPolicy(StrEnum):
    """When the journal forces a record to disk, beyond the flush every record gets."""

    ALWAYS = "always"
    INTENT_AND_TERMINAL = "intent_and_terminal"
    NEVER = "never"


class Mode(StrEnum):
    """Paper trades against the in-memory `PaperBroker`; live sends real orders to the broker
    that `broker` names (Robinhood by default)."""

    PAPER = "paper"
    LIVE = "live"


# -- validators: they say what is wrong; the loader adds where ----------------------------------


def _problem(attribute: attrs.Attribute[Any], problem: str) -> ConfigError:
    return ConfigError(attribute.name, problem)


def _int_at_least(low: int) -> Callable[[Any, attrs.Attribute[Any], object], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _problem(attribute, f"must be a whole number, not {value!r}")
        if value < low:
            raise _problem(attribute, f"must be at least {low}, not {value}")

    return check


def _seconds(*, positive: bool, optional: bool = False) -> Callable[[Any, Any, object], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _problem(attribute, f"must be a number of seconds, not {value!r}")
        if not math.isfinite(value):
            raise _problem(attribute, "must be a finite number of seconds")
        if value < 0 or (positive and value == 0):
            bound = "greater than 0" if positive else "0 or more"
            raise _problem(attribute, f"must be {bound} seconds, not {value}")

    return check


def _decimal_between(
    low: Decimal, high: Decimal | None = None, *, allow_low: bool, optional: bool = False
) -> Callable[[Any, Any, object], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, Decimal) or not value.is_finite():
            raise _problem(attribute, f"must be a finite Decimal, not {value!r}")
        if value < low or (value == low and not allow_low):
            raise _problem(
                attribute, f"must be {'at least' if allow_low else 'more than'} {low}, not {value}"
            )
        if high is not None and value > high:
            raise _problem(attribute, f"must be at most {high}, not {value}")

    return check


def _enum(enum_cls: type[StrEnum]) -> Callable[[Any, Any, object], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, enum_cls):
            allowed = ", ".join(repr(m.value) for m in enum_cls)
            raise _problem(attribute, f"must be one of {allowed}, not {value!r}")

    return check


def _check_broker(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    problem = broker_problem(value)
    if problem is not None:
        raise _problem(attribute, problem)


def _frozen_overrides(value: Mapping[str, PriceOffset]) -> Mapping[str, PriceOffset]:
    # Read-only so that a frozen config cannot be changed through its mapping either.
    return MappingProxyType(dict(value))


def _check_overrides(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    items = value.items() if isinstance(value, Mapping) else ()
    for name, offset in items:
        if not isinstance(name, str) or not name.strip():
            raise _problem(attribute, f"strategy names are non-empty strings, not {name!r}")
        if not isinstance(offset, PriceOffset):
            raise ConfigError(_join(attribute.name, name), "must be a PriceOffset")


# -- the configuration ---------------------------------------------------------------------------


@attrs.frozen
class RetryConfig:
    """How the live gateway retries a request that failed in a way that may succeed later."""

    max_attempts: int = attrs.field(default=3, validator=_int_at_least(1))
    backoff_base_seconds: float = attrs.field(default=0.5, validator=_seconds(positive=False))
    backoff_max_seconds: float = attrs.field(default=8.0, validator=_seconds(positive=False))

    def __attrs_post_init__(self) -> None:
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ConfigError(
                "backoff_max_seconds",
                f"{self.backoff_max_seconds} is below backoff_base_seconds="
                f"{self.backoff_base_seconds}; the longest wait cannot be shorter than the first",
            )


@attrs.frozen
class RateLimitConfig:
    """The request budget towards the broker, so the bot slows down before Robinhood says 429."""

    requests_per_minute: int = attrs.field(default=60, validator=_int_at_least(1))
    burst: int = attrs.field(default=5, validator=_int_at_least(1))
    # Robinhood was seen to throttle order POSTs at about 8 in 15 s, below the request budget.
    orders_per_window: int = attrs.field(default=6, validator=_int_at_least(1))
    order_window_seconds: float = attrs.field(default=15.0, validator=_seconds(positive=True))


@attrs.frozen
class CircuitBreakerConfig:
    """Limits that stop all new orders when the bot or the broker misbehaves."""

    max_consecutive_rejects: int = attrs.field(default=5, validator=_int_at_least(1))
    max_consecutive_failures: int = attrs.field(default=3, validator=_int_at_least(1))
    max_orders_per_minute: int = attrs.field(default=60, validator=_int_at_least(1))
    max_notional_per_order: Decimal | None = attrs.field(
        default=None, validator=_decimal_between(Decimal(0), allow_low=False, optional=True)
    )
    cooldown_seconds: float | None = attrs.field(
        default=300.0, validator=_seconds(positive=True, optional=True)
    )


# The quote sources named by a word; any other value of `paper.quotes` is a CSV file's path.
REFERENCE_QUOTES = "reference"
ROBINHOOD_QUOTES = "robinhood"
DEFAULT_PAPER_STATE_PATH = Path("logs/paper-broker.json")


def _check_path(attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Path) or not str(value).strip() or str(value) == ".":
        raise _problem(attribute, f"must be a file path, not {value!r}")
    if "\x00" in str(value):
        raise _problem(attribute, "must not contain a NUL character; no file system accepts it")


def _check_quotes(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value in (REFERENCE_QUOTES, ROBINHOOD_QUOTES):
        return
    # A typo of "reference" must not become a file that is missing at the first sync.
    if not isinstance(value, str) or not value.lower().endswith(".csv") or "\x00" in value:
        raise _problem(
            attribute,
            f'must be "{REFERENCE_QUOTES}", "{ROBINHOOD_QUOTES}" or the path of a .csv file '
            f"(header timestamp,symbol,price), not {value!r}",
        )


def _check_fault_rates(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    items = value.items() if isinstance(value, Mapping) else ()
    for name, rate in items:
        if name not in _FAULT_NAMES:
            raise ConfigError(
                _join(attribute.name, name),
                f"is not a fault of the paper broker; the faults are: {', '.join(_FAULT_NAMES)}",
            )
        if not isinstance(rate, Decimal) or not Decimal(0) <= rate <= 1:
            raise ConfigError(
                _join(attribute.name, name), f"must be a probability from 0 to 1, not {rate}"
            )


_FAULT_NAMES = tuple(f.value for f in Fault)


def _frozen_rates(value: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    return MappingProxyType(dict(value))


@attrs.frozen
class PaperConfig:
    """The simulated market of paper mode: where its prices come from, where the simulated
    broker keeps its state between runs, and how it misbehaves (never, by default).

    The settings that also exist on `PaperBroker` (liquidity, short selling, fault rates)
    mean the same there; docs/configuration.md describes each.
    """

    quotes: str = attrs.field(default=REFERENCE_QUOTES, validator=_check_quotes)
    state_path: Path = attrs.field(default=DEFAULT_PAPER_STATE_PATH)
    liquidity: Decimal | None = attrs.field(
        default=None, validator=_decimal_between(Decimal(0), allow_low=False, optional=True)
    )
    allow_short: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    fault_rates: Mapping[str, Decimal] = attrs.field(
        factory=dict,
        converter=_frozen_rates,
        validator=_check_fault_rates,
        hash=False,
    )

    @state_path.validator
    def _check_state_path(self, attribute: attrs.Attribute[Any], value: object) -> None:
        _check_path(attribute, value)

    @property
    def quote_file(self) -> Path | None:
        """The CSV file of prices, when `quotes` names one."""
        if self.quotes in (REFERENCE_QUOTES, ROBINHOOD_QUOTES):
            return None
        return Path(self.quotes)


_DEFAULT_OFFSET = PriceOffset(OffsetKind.BPS, Decimal(5))


@attrs.frozen
class OrderManagementConfig:
    """Everything the order manager, its safety checks and its gateways are tuned by."""

    mode: Mode = attrs.field(default=Mode.PAPER, validator=_enum(Mode))
    # The live broker; paper mode trades on the simulated one whatever this names.
    broker: str = attrs.field(default=DEFAULT_BROKER, validator=_check_broker)
    default_offset: PriceOffset = attrs.field(
        default=_DEFAULT_OFFSET, validator=attrs.validators.instance_of(PriceOffset)
    )
    strategy_overrides: Mapping[str, PriceOffset] = attrs.field(
        factory=dict,
        converter=_frozen_overrides,
        validator=_check_overrides,
        hash=False,  # a mapping is not hashable; equal configs still hash equal
    )
    max_slippage_bps: Decimal = attrs.field(
        default=Decimal(50),
        validator=_decimal_between(Decimal(0), Decimal(10_000), allow_low=True),
    )
    time_in_force: TimeInForce = attrs.field(default=TimeInForce.GFD, validator=_enum(TimeInForce))
    audit_log_path: Path = attrs.field(default=Path("logs/orders.jsonl"))
    # A restart reads the working orders plus about one segment of this size (audit.py).
    journal_segment_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_int_at_least(1))
    fsync: FsyncPolicy = attrs.field(
        default=FsyncPolicy.INTENT_AND_TERMINAL, validator=_enum(FsyncPolicy)
    )
    sync_interval_seconds: float = attrs.field(default=5.0, validator=_seconds(positive=True))
    cancel_after_seconds: float | None = attrs.field(
        default=None, validator=_seconds(positive=True, optional=True)
    )
    account_ttl_seconds: float = attrs.field(default=30.0, validator=_seconds(positive=False))
    unknown_order_grace_seconds: float = attrs.field(
        default=60.0, validator=_seconds(positive=False)
    )
    unknown_order_lookups: int = attrs.field(default=3, validator=_int_at_least(1))
    retention_seconds: float = attrs.field(
        default=DEFAULT_RETENTION_SECONDS, validator=_seconds(positive=False)
    )
    retry: RetryConfig = attrs.field(factory=RetryConfig)
    rate_limit: RateLimitConfig = attrs.field(factory=RateLimitConfig)
    circuit_breakers: CircuitBreakerConfig = attrs.field(factory=CircuitBreakerConfig)
    paper: PaperConfig = attrs.field(factory=PaperConfig)

    @audit_log_path.validator
    def _check_audit_log_path(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, Path) or not str(value).strip() or str(value) == ".":
            raise _problem(attribute, f"must be a file path, not {value!r}")
        if "\x00" in str(value):
            raise _problem(attribute, "must not contain a NUL character; no file system accepts it")

    def __attrs_post_init__(self) -> None:
        # A bps offset wider than the cap would have every order of that strategy refused;
        # say so at load time, not at the first order. Dollar offsets depend on the price.
        named = [("default_offset", self.default_offset)] + [
            (_join("strategy_overrides", name), offset)
            for name, offset in self.strategy_overrides.items()
        ]
        for key, offset in named:
            if offset.kind is OffsetKind.BPS and offset.value > self.max_slippage_bps:
                raise ConfigError(
                    f"{key}.value",
                    f"{offset.value} bps is beyond max_slippage_bps={self.max_slippage_bps}, so "
                    "every order priced with it would be refused; lower it or raise the cap",
                )
        # The simulated broker rewrites its state file whole and empties its change file: were
        # either the journal, the journal would be lost.
        state = self.paper_state_path
        for own in (state, changes_path(state)):
            if same_file(own, self.audit_log_path):
                raise ConfigError(
                    "paper.state_path",
                    f"{own} is the journal's path ({self.audit_log_path}); the simulated "
                    "broker's state needs files of its own, e.g. logs/paper-broker.json",
                )

    @property
    def paper_state_path(self) -> Path:
        """The file the paper broker of this configuration resumes from and saves to.

        `paper.state_path` as written; left at its default while `audit_log_path` names
        another directory, it follows the journal there (`paper-broker.json` beside it), so
        a bot whose journal lives elsewhere keeps its simulated account next to it and not
        in the working directory.
        """
        state = self.paper.state_path
        if state == DEFAULT_PAPER_STATE_PATH and self.audit_log_path.parent != state.parent:
            return self.audit_log_path.parent / DEFAULT_PAPER_STATE_PATH.name
        return state

    def offset_for(self, strategy: str) -> PriceOffset:
        """The strategy's override, or the default offset for a strategy without one."""
        return self.strategy_overrides.get(strategy, self.default_offset)

    def limit_price_for(
        self, side: Side | str, reference_price: Decimal | int | str, *, strategy: str = "default"
    ) -> Decimal:
        """`compute_limit_price` with this strategy's offset and the configured cap (both
        checked when this configuration was made, so only the side and reference are)."""
        return limit_price_of_checked(
            coerce_enum(Side, side, "side"),
            positive_decimal(reference_price, "reference_price"),
            self.offset_for(strategy),
            self.max_slippage_bps,
        )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> OrderManagementConfig:
        """The configuration from the contents of an `order_management` block."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(ROOT_KEY, f"must be a JSON object, not {_kind(mapping)}")
        try:
            return _CONVERTER.structure(mapping, cls)
        except BaseValidationError as exc:
            raise _config_error(exc, ROOT_KEY) from exc

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> OrderManagementConfig:
        """The configuration from the `order_management` block of a JSON file.

        Other top-level keys are left alone: the file may configure the rest of the bot too.
        """
        where = os.fspath(path)
        try:
            text = Path(where).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                where, f"cannot read the configuration file ({exc.strerror or exc}); check the path"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(where, "is not UTF-8 text; save the file as UTF-8 JSON") from None
        try:
            document = json.loads(
                text,
                parse_float=Decimal,
                parse_constant=Decimal,  # NaN and Infinity reach the key's own check
                object_pairs_hook=_no_duplicate_keys,
            )
        except json.JSONDecodeError as exc:
            raise ConfigError(
                where,
                f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            ) from None
        except _DuplicateKeyError as exc:
            raise ConfigError(
                where,
                f"key {exc.key!r} appears twice in one JSON object; keep one, since which one "
                "wins is not obvious to a reader",
            ) from None
        if not isinstance(document, dict):
            raise ConfigError(where, f"must hold a JSON object, not {_kind(document)}")
        if ROOT_KEY not in document:
            raise ConfigError(
                ROOT_KEY,
                f'missing from {where}; add an "{ROOT_KEY}": {{}} block (every key inside it '
                "has a default, see docs/configuration.md)",
            )
        try:
            return cls.from_dict(document[ROOT_KEY])
        except ConfigError as error:
            raise ConfigError(error.key_path, f"{error.problem} (in {where})") from None


# -- a config and the collaborators built without it must agree ---------------------------------

# A setting that differs: (key path under order_management, the config's value, the part's).
Disagreement = tuple[str, object, object]


@runtime_checkable
class ConfiguredPart(Protocol):
    """A collaborator with settings of its own that a configuration also names."""

    def config_disagreements(self, config: OrderManagementConfig) -> Iterable[Disagreement]:
        """Every setting where this object differs from `config`."""
        ...


def check_agreement(config: OrderManagementConfig, parts: Iterable[object]) -> None:
    """`ConfigError` naming the first setting where a part and `config` differ.

    A bot that passes both a config and a collaborator it built itself would otherwise run
    with one of the two silently ignored (a notional cap in the file, no cap in the checks).
    """
    for part in parts:
        if not isinstance(part, ConfiguredPart):
            continue
        for key, wanted, actual in part.config_disagreements(config):
            raise ConfigError(
                f"{ROOT_KEY}.{key}",
                f"is {wanted} in the configuration, but the {type(part).__name__} passed in "
                f"has {actual}; give both the same value, or leave the {type(part).__name__} "
                "out and let the configuration build it",
            )


# -- loading: cattrs hooks that read JSON values exactly ------------------------------------------


class _BadValue(ValueError):
    """A value of the wrong type or spelling, raised by a structure hook."""


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), f"{type(value).__name__} {value!r}")


def _exact_number(value: object) -> Decimal:
    if isinstance(value, bool):
        raise _BadValue(f"must be a number, not the boolean {json.dumps(value)}")
    if isinstance(value, float):
        raise _BadValue(
            f"got the Python float {value!r}, which cannot hold a decimal exactly; "
            f'write it as a string, e.g. "{value!r}"'
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _BadValue(f"{value!r} is not a number") from None
    else:
        raise _BadValue(f"must be a number (or a string holding one), not {_kind(value)}")
    if not result.is_finite():
        raise _BadValue(f"must be a finite number, not {value}")
    return result


def _structure_decimal(value: object, _type: object) -> Decimal:
    return _exact_number(value)


def _structure_int(value: object, _type: object) -> int:
    number = _exact_number(value)
    if number != number.to_integral_value():
        raise _BadValue(f"must be a whole number, not {value}")
    if number.adjusted() > 18:  # no count is that large; int() of 1e999999 would be slow
        raise _BadValue(f"{value} is too large")
    return int(number)


def _structure_float(value: object, _type: object) -> float:
    result = float(_exact_number(value))
    if not math.isfinite(result):
        raise _BadValue(f"{value} is too large")
    return result


def _structure_path(value: object, _type: object) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _BadValue(f"must be a non-empty path string, not {_kind(value)}")
    return Path(value)


def _structure_str(value: object, _type: object) -> str:
    if not isinstance(value, str):
        raise _BadValue(f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise _BadValue("must not be empty or blank")
    return value


def _structure_enum(value: object, enum_cls: type[_E]) -> _E:
    allowed = ", ".join(f'"{m.value}"' for m in enum_cls)
    if not isinstance(value, str):
        raise _BadValue(f"must be one of {allowed}, not {_kind(value)}")
    try:
        return enum_cls(value)
    except ValueError:
        raise _BadValue(f"must be one of {allowed}, not {json.dumps(value)}") from None


def _attrs_hook_factory(
    type_: type[Any], converter: cattrs.Converter
) -> Callable[[object, object], Any]:
    inner = cattrs.gen.make_dict_structure_fn(type_, converter)

    def structure(value: object, _type: object) -> Any:
        if not isinstance(value, Mapping):
            raise _BadValue(f"must be a JSON object, not {_kind(value)}")
        return inner(value, type_)

    return structure


def _structure_bool(value: object, _type: object) -> bool:
    if not isinstance(value, bool):
        raise _BadValue(f"must be true or false, not {_kind(value)}")
    return value


def _structure_fault_rates(value: object, _type: object) -> dict[str, Decimal]:
    if not isinstance(value, Mapping):
        raise _BadValue(f"must be a JSON object of fault name to probability, not {_kind(value)}")
    result: dict[str, Decimal] = {}
    for name, raw in value.items():
        try:
            result[_structure_str(name, str)] = _exact_number(raw)
        except _BadValue as exc:
            raise ConfigError(_join("", name), str(exc)) from None
    return result


def _structure_overrides(value: object, _type: object) -> dict[str, PriceOffset]:
    if not isinstance(value, Mapping):
        raise _BadValue(f"must be a JSON object of strategy name to offset, not {_kind(value)}")
    result: dict[str, PriceOffset] = {}
    errors: list[Exception] = []
    for name, raw in value.items():
        try:
            key = _structure_str(name, str)
            result[key] = _CONVERTER.structure(raw, PriceOffset)
        except Exception as exc:  # as cattrs does: collected, then raised as one group
            note = IterableValidationNote(f"strategy {name!r}", name, PriceOffset)
            exc.__notes__ = [*getattr(exc, "__notes__", []), note]
            errors.append(exc)
    if errors:
        raise IterableValidationError("While structuring strategy_overrides", errors, dict)
    return result


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    # A predicate, not a class hook: a class hook for str would also catch every StrEnum.
    converter.register_structure_hook_func(lambda t: t is str, _structure_str)
    converter.register_structure_hook(Path, _structure_path)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook_func(
        lambda t: t == Mapping[str, Decimal], _structure_fault_rates
    )
    for enum_cls in (Mode, FsyncPolicy, TimeInForce, OffsetKind):
        converter.register_structure_hook(enum_cls, _structure_enum)
    converter.register_structure_hook_func(
        lambda t: t == Mapping[str, PriceOffset], _structure_overrides
    )
    converter.register_structure_hook_factory(attrs.has, _attrs_hook_factory)
    return converter


_CONVERTER = _make_converter()


# -- turning cattrs' error tree into key paths ----------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def _join(path: str, key: object) -> str:
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key) if isinstance(key, str) else repr(key)}]"


def _known_keys(cl: type[Any]) -> list[str]:
    return [a.name for a in attrs.fields(cl)]


def _problems(exc: BaseException, path: str) -> Iterator[tuple[str, str]]:
    """Every (key path, problem) in a structuring failure, in the order of the keys."""
    if isinstance(exc, BaseValidationError):
        for sub in exc.exceptions:
            key: object = None
            for note in getattr(sub, "__notes__", []):
                if isinstance(note, AttributeValidationNote):
                    key = note.name
                elif isinstance(note, IterableValidationNote):
                    key = note.index
            yield from _problems(sub, path if key is None else _join(path, key))
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = ", ".join(_known_keys(exc.cl))
        for extra in sorted(exc.extra_fields):
            yield _join(path, extra), f"is not a known key; the keys here are: {known}"
    elif isinstance(exc, KeyError):
        # Only an offset has keys without a default.
        yield path, 'is required: an offset names both its "kind" and its "value"'
    elif isinstance(exc, ConfigError):
        yield f"{path}.{exc.key_path}", exc.problem
    elif isinstance(exc, InvalidOrderError):
        yield _join(path, exc.field), f"{exc.problem} (got {exc.value})"
    else:
        yield path, str(exc)


def _config_error(exc: BaseException, path: str) -> ConfigError:
    found = list(_problems(exc, path))
    if not found:
        return ConfigError(path, str(exc))
    (first_path, problem), others = found[0], found[1:]
    if others:
        problem += f" (also check: {', '.join(p for p, _ in others)})"
    return ConfigError(first_path, problem)
