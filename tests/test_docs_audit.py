"""docs/audit.md against the journal the code really writes, so the page cannot drift."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from orders import AuditJournal, Execution, Order, OrderHooks, inferred_execution_id
from tests.factories import Ticker

DOC = Path(__file__).resolve().parent.parent / "docs" / "audit.md"
T0 = datetime(2025, 1, 6, 14, 30, tzinfo=UTC)


@pytest.fixture
def records(tmp_path: Path) -> list[dict[str, Any]]:
    """Every record of a journal holding an intent, a submit, fills, a correction, a note, a
    checkpoint (the cancel opens a second segment) and a cancel."""
    path = tmp_path / "orders.jsonl"
    clock = Ticker(T0)
    with AuditJournal(path, clock=clock) as journal:
        order = Order(
            "AAPL",
            "buy",
            "10",
            "187.59",
            strategy="momentum",
            clock=clock,
            hooks=OrderHooks(on_event=(journal.record_event,)),
        )
        journal.record_intent(order)
        order.submit("rh-1")
        order.fill("exec-1", "4", "187.55", T0)
        order.fill(inferred_execution_id(order.client_order_id, Decimal(4), Decimal(6)), 2, "187.5")
        order.correct_fill([Execution("exec-2", Decimal(2), Decimal("187.52"), T0)])
        order.request_cancel()
        journal.record_note(order, "anomaly", "a note, to cover the note shape")
    with AuditJournal(path, clock=clock, segment_bytes=1) as journal:  # the next record rotates
        order.attach_hooks(OrderHooks(on_event=(journal.record_event,)))
        order.cancel("user asked")
        second = journal.segment
    assert second != path
    return [orjson.loads(line) for f in (path, second) for line in f.read_bytes().splitlines()]


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"docs/audit.md has no '## {heading}' section"
    return match.group(1)


def documented_fields() -> set[str]:
    """The first-cell `names` of the table rows in the Fields section."""
    rows = _section(DOC.read_text(encoding="utf-8"), "Fields").splitlines()
    return {m.group(1) for row in rows if (m := re.match(r"\| `([a-z_.]+)` \|", row))}


def written_fields(records: list[dict[str, Any]]) -> set[str]:
    """Every key written, nested ones as `parent.child`."""
    keys: set[str] = set()
    for record in records:
        for key, value in record.items():
            keys.add(key)
            if isinstance(value, dict):
                keys.update(f"{key}.{sub}" for sub in value)
    return keys


class TestAuditDoc:
    """Every field the journal writes is documented, and every documented field is written."""

    def test_the_journal_wrote_every_record_kind(self, records: list[dict[str, Any]]) -> None:
        events = [r["event"] for r in records]
        assert events == [
            "intent",
            "submit",
            "fill",
            "fill",
            "correct_fill",
            "request_cancel",
            "anomaly",
            "checkpoint",
            "checkpoint_end",
            "cancel",
        ]

    def test_every_written_key_is_documented(self, records: list[dict[str, Any]]) -> None:
        missing = written_fields(records) - documented_fields()
        assert not missing, f"add these fields to docs/audit.md: {sorted(missing)}"

    def test_every_documented_key_is_written(self, records: list[dict[str, Any]]) -> None:
        stale = documented_fields() - written_fields(records)
        assert not stale, f"docs/audit.md documents fields the journal no longer writes: {stale}"

    def test_every_event_name_is_documented(self, records: list[dict[str, Any]]) -> None:
        kinds = _section(DOC.read_text(encoding="utf-8"), "Record kinds")
        for record in records:
            assert f"| `{record['event']}` |" in kinds, record["event"]

    def test_examples_have_the_real_key_order(self, records: list[dict[str, Any]]) -> None:
        text = _section(DOC.read_text(encoding="utf-8"), "Examples")
        block = re.search(r"```jsonl\n(.*?)```", text, re.S)
        assert block is not None, "the Examples section needs a ```jsonl block"
        examples = [orjson.loads(line) for line in block.group(1).splitlines()]
        real = {r["event"]: r for r in records}
        assert [e["event"] for e in examples] == ["intent", "fill"]
        for example in examples:
            actual = real[example["event"]]
            assert list(example) == list(actual), example["event"]
            for key, value in example.items():
                if isinstance(value, dict):
                    assert list(value) == list(actual[key]), key

    def test_the_checkpoint_example_has_the_real_key_order(
        self, records: list[dict[str, Any]]
    ) -> None:
        text = _section(DOC.read_text(encoding="utf-8"), "Segments and checkpoints")
        block = re.search(r"```jsonl\n(.*?)```", text, re.S)
        assert block is not None, "Segments and checkpoints needs a ```jsonl block"
        examples = [orjson.loads(line) for line in block.group(1).splitlines()]
        real = {r["event"]: r for r in records}
        assert [e["event"] for e in examples] == ["checkpoint", "checkpoint_end"]
        for example in examples:
            assert list(example) == list(real[example["event"]]), example["event"]
        entries = {e["event"]: e for e in real["checkpoint"]["history"]}
        for entry in examples[0]["history"]:
            assert list(entry) == list(entries[entry["event"]]), entry["event"]

    def test_every_history_entry_field_is_documented(self, records: list[dict[str, Any]]) -> None:
        text = _section(DOC.read_text(encoding="utf-8"), "Segments and checkpoints")
        documented = {
            name
            for row in re.findall(r"^\| (`[^|]+) \|", text, re.M)
            for name in re.findall(r"`([a-z_]+)`", row)
        }
        (checkpoint,) = [r for r in records if r["event"] == "checkpoint"]
        written = {key for entry in checkpoint["history"] for key in entry}
        assert written <= documented, sorted(written - documented)
