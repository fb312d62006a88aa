"""What one sync of a manager changed, gathered as it runs and reported at its end."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Final

import attrs

from orders._words import plural
from orders.model import LifecycleEvent, unfrozen

__all__ = ["SyncReport", "SyncWork", "UnknownSubmit", "events_report"]


@attrs.frozen
class SyncReport:
    """What one `sync` changed, and what it could not do."""

    events: tuple[tuple[str, LifecycleEvent], ...] = ()
    errors: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    never_placed: tuple[str, ...] = ()
    auto_cancelled: tuple[str, ...] = ()
    cancels_resent: tuple[str, ...] = ()
    untracked: int = 0

    @property
    def changed_orders(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(cid for cid, _ in self.events))

    def __str__(self) -> str:
        """One line a person reads after `print(bot.sync())` (the repr keeps every field):
        what moved, what was resolved, and every error in full."""
        triggers = Counter(event.trigger for _, event in self.events)
        moved = (
            f"{plural(len(self.events), 'event')} on {plural(len(self.changed_orders), 'order')}"
        )
        if triggers:
            moved += f" ({', '.join(f'{n} {t}' for t, n in triggers.items())})"
        parts = [moved]
        for label, ids in (
            ("resolved", self.resolved),
            ("never placed", self.never_placed),
            ("cancels sent for age", self.auto_cancelled),
            ("cancels sent again", self.cancels_resent),
        ):
            if ids:
                parts.append(f"{len(ids)} {label}")
        if self.untracked:
            parts.append(f"{self.untracked} untracked")
        parts.append(f"errors: {' | '.join(self.errors)}" if self.errors else "no errors")
        return "; ".join(parts)


# Built by plain attribute stores, then made a `SyncReport` (see `orders.model.unfrozen`).
_UNFROZEN_REPORT: Final = unfrozen(SyncReport)


def events_report(events: tuple[tuple[str, LifecycleEvent], ...]) -> SyncReport:
    """`SyncReport(events=events)`, its other fields empty, built without the frozen class's
    constructor: a paper bot's `ingest` reports this way three times an order. Every field
    is set here; a test compares the result with the class's own."""
    report: Any = object.__new__(_UNFROZEN_REPORT)
    report.events = events
    report.errors = ()
    report.resolved = ()
    report.never_placed = ()
    report.auto_cancelled = ()
    report.cancels_resent = ()
    report.untracked = 0
    report.__class__ = SyncReport
    built: SyncReport = report
    return built


@attrs.define
class UnknownSubmit:
    """A submission whose outcome is not known yet, and the evidence gathered about it."""

    since: datetime
    not_found: int = 0


class SyncWork:
    """Mutable accumulator of one sync; frozen into a SyncReport at the end.

    A plain class: one is made for every `ingest`, and attrs' factories cost twice these
    literals."""

    __slots__ = (
        "auto_cancelled",
        "cancels_resent",
        "errors",
        "events",
        "never_placed",
        "resolved",
        "untracked",
    )

    def __init__(self) -> None:
        self.events: list[tuple[str, LifecycleEvent]] = []
        self.errors: list[str] = []
        self.resolved: list[str] = []
        self.never_placed: list[str] = []
        self.auto_cancelled: list[str] = []
        self.cancels_resent: list[str] = []
        self.untracked = 0

    def report(self) -> SyncReport:
        return SyncReport(
            events=tuple(self.events),
            errors=tuple(self.errors),
            resolved=tuple(self.resolved),
            never_placed=tuple(self.never_placed),
            auto_cancelled=tuple(self.auto_cancelled),
            cancels_resent=tuple(self.cancels_resent),
            untracked=self.untracked,
        )
