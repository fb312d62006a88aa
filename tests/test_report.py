"""`orders report`'s page: self-contained, complete, faithful to `compute_stats`, and safe with
whatever text a journal holds."""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from orders.audit import AuditJournal
from orders.bot import TradingBot
from orders.config import OrderManagementConfig
from orders.demo import run_demo
from orders.diagram import arrows
from orders.gateways.paper import Fault, PaperBroker
from orders.lifecycle import LIFECYCLE, Order
from orders.manager import OrderManager
from orders.model import OrderState
from orders.report import MAX_TIMELINE_ROWS, lifecycle_svg, render_report, write_report
from orders.stats import OrderStats, compute_stats, stats_by_strategy

HOSTILE_STRATEGY = '<script>alert("strategy")</script>'
HOSTILE_REASON = "\"><img src=x onerror=alert('reason')> & </table>"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A demo session's journal (fills, partial fills, cancels, a rejection) and its page."""
    journal = tmp_path_factory.mktemp("report") / "demo.jsonl"
    run_demo(journal, seed=7, ticks=90, delay=0, out=io.StringIO())
    out = journal.with_name("report.html")
    write_report(journal, out)
    return journal, out.read_text(encoding="utf-8")


def section(page: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}">(.*?)</section>', page, re.S)
    assert match, ident
    return match[1]


def visible_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def figures(fragment: str) -> dict[str, tuple[str, str]]:
    """Each `data-figure` in `fragment`: its exact value and the text a person reads."""
    found = re.findall(
        r'<span class="fig" data-figure="([^"]+)" data-value="([^"]*)">([^<]*)</span>', fragment
    )
    return {name: (html.unescape(value), html.unescape(text)) for name, value, text in found}


def timeline_row(page: str, client_order_id: str) -> str:
    """The timeline row of one order, up to the next row or the end of its group."""
    start = page.index(f'data-order="{html.escape(client_order_id)}"')
    ends = [i for i in (page.find("tl-row", start), page.find("</details>", start)) if i >= 0]
    return page[start : min(ends)]


def pct(value: float | Decimal | None) -> str:
    return "\u2013" if value is None else f"{float(value):.1%}"


def expect_ratio(shown: tuple[str, str], value: float | Decimal | None) -> None:
    assert shown == (str(value), pct(value))


def test_demo_journal_shows_every_kind_of_outcome(demo: tuple[Path, str]) -> None:
    """The other tests lean on this: the demo's journal has each kind of order in it."""
    stats = compute_stats(AuditJournal.replay(demo[0]).values())
    assert stats.by_state.get("filled", 0) > 0
    assert stats.by_state.get("cancelled", 0) > 0
    assert stats.by_state.get("rejected", 0) > 0
    assert stats.cancels.confirmed > 0
    assert len(stats_by_strategy(AuditJournal.replay(demo[0]).values())) > 1


class TestSelfContained:
    """The page opens from disk with no network: nothing in it points outside the file."""

    @pytest.mark.parametrize(
        "pattern",
        [
            r"""\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""",
            r"@import",
            r"""url\(\s*["']?\s*(?!#)""",  # only url(#local-id) references
            r"<link\b",
            r"<img\b",
            r"<iframe\b",
            r"<script\b[^>]*\bsrc\s*=",
            r"https?://",
        ],
    )
    def test_no_external_reference(self, demo: tuple[Path, str], pattern: str) -> None:
        assert re.search(pattern, demo[1], re.I) is None

    def test_every_local_reference_resolves(self, demo: tuple[Path, str]) -> None:
        page = demo[1]
        ids = set(re.findall(r'\bid="([^"]+)"', page))
        refs = set(re.findall(r'href="#([^"]+)"', page)) | set(re.findall(r"url\(#([^)]+)\)", page))
        assert refs and refs <= ids

    def test_styles_and_scripts_are_inline(self, demo: tuple[Path, str]) -> None:
        page = demo[1]
        assert page.count("<style>") == 1
        assert page.count("<script>") == 1 and page.count("<script") == 1


class TestCompleteness:
    def test_every_order_of_the_journal_has_a_timeline_row(self, demo: tuple[Path, str]) -> None:
        journal, page = demo
        orders = AuditJournal.replay(journal)
        rows = re.findall(r'<div class="tl-row" data-q="[^"]*" data-order="([^"]+)">', page)

        assert sorted(html.unescape(r) for r in rows) == sorted(orders)

    def test_every_strategy_has_a_row_and_a_timeline_group(self, demo: tuple[Path, str]) -> None:
        journal, page = demo
        names = {o.strategy for o in AuditJournal.replay(journal).values()}
        rows = re.findall(r'<tr data-strategy="([^"]+)">', section(page, "strategies"))

        assert sorted(rows) == sorted(names)
        assert section(page, "timeline").count('<details class="tl-group"') == len(names)

    def test_every_transition_label_is_drawn_in_the_diagram(self) -> None:
        svg = lifecycle_svg()
        drawn = Counter(
            visible_text(text)
            for text in re.findall(r'<text class="tr[^"]*"[^>]*>(.*?)</text>', svg, re.S)
        )
        expected = Counter(label for arrow in arrows() for label in arrow.labels)

        assert drawn == expected
        assert sum(drawn.values()) == len(LIFECYCLE) == 20
        assert drawn["correct_fill (stays)"] == 3  # on partially_filled, filled and cancelled
        assert Counter(label.split()[0] for label in drawn.elements()) == Counter(
            move.trigger for move in LIFECYCLE
        )

    def test_every_state_and_every_arrow_between_states_is_drawn(self) -> None:
        svg = lifecycle_svg()
        between = [a for a in arrows() if a.source != a.dest]
        titles = re.findall(r'<path class="edge[^"]*" d="[^"]+" [^>]*><title>([^<]+)</title>', svg)

        assert sorted(html.unescape(t) for t in titles) == sorted(
            f"{a.source} → {a.dest}" for a in between
        )
        for state in OrderState:
            assert re.search(rf'<text class="sname" [^>]*>{state}</text>', svg)

    def test_diagram_is_well_formed_svg(self) -> None:
        root = ET.fromstring(lifecycle_svg())  # noqa: S314 - our own output, not untrusted
        assert root.tag == "svg"

    def test_the_page_embeds_the_diagram(self, demo: tuple[Path, str]) -> None:
        assert lifecycle_svg() in demo[1]


class TestFigures:
    """What the page shows equals what `compute_stats` computes (and `orders stats` prints)."""

    def test_headline_figures(self, demo: tuple[Path, str]) -> None:
        journal, page = demo
        stats = compute_stats(AuditJournal.replay(journal).values())
        shown = figures(section(page, "figures"))

        assert shown["orders"] == (str(stats.orders), str(stats.orders))
        assert shown["finished"] == (str(stats.finished), str(stats.finished))
        expect_ratio(shown["success_rate"], stats.success_rate)
        expect_ratio(shown["cancel_reliability"], stats.cancels.reliability)
        expect_ratio(shown["fill_ratio"], stats.fill_ratio)
        assert shown["cancels_requested"][0] == str(stats.cancels.requested)
        assert shown["cancels_confirmed"][0] == str(stats.cancels.confirmed)
        assert shown["filled"][0] == str(stats.by_state["filled"])
        assert shown["rejected"][0] == str(stats.by_state["rejected"])
        for name, fraction in [("p50", 0.5), ("p90", 0.9), ("max", 1.0)]:
            assert float(shown[f"cancel_latency_{name}"][0]) == stats.cancels.latency(fraction)

    def test_figures_per_strategy(self, demo: tuple[Path, str]) -> None:
        journal, page = demo
        rows = dict(
            re.findall(r'<tr data-strategy="([^"]+)">(.*?)</tr>', section(page, "strategies"))
        )
        for name, stats in stats_by_strategy(AuditJournal.replay(journal).values()).items():
            shown = figures(rows[html.escape(name)])
            assert shown["orders"][0] == str(stats.orders)
            expect_ratio(shown["success_rate"], stats.success_rate)
            expect_ratio(shown["cancel_reliability"], stats.cancels.reliability)
            expect_ratio(shown["fill_ratio"], stats.fill_ratio)

    def test_reject_reasons_and_counts(self, demo: tuple[Path, str]) -> None:
        journal, page = demo
        stats = compute_stats(AuditJournal.replay(journal).values())
        text = visible_text(section(page, "distributions"))
        for reason in stats.reject_reasons:
            assert reason in text

    def test_fill_ratio_histogram_counts_every_order(self, demo: tuple[Path, str]) -> None:
        journal, page = demo
        orders = AuditJournal.replay(journal).values()
        chart = section(page, "distributions").split("<h3>Fill ratio per order</h3>")[1]
        chart = chart.split("</svg>")[0]
        counts = [int(c) for c in re.findall(r'<text class="count"[^>]*>(\d+)</text>', chart)]

        assert sum(counts) == len(orders)


class TestTimeline:
    def test_fills_sized_by_quantity_and_cancel_latency_marked(self) -> None:
        start = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
        order = Order("AAPL", "buy", 100, "187.40", client_order_id="late-cancel")
        order.submit("b-1", at=start)
        order.fill("e-1", 10, "187.40", at=start + timedelta(seconds=2))
        order.fill("e-2", 60, "187.40", at=start + timedelta(seconds=5))
        order.request_cancel(at=start + timedelta(seconds=20))
        order.cancel("stale", at=start + timedelta(seconds=23, milliseconds=500))

        page = render_report([order])
        row = timeline_row(page, "late-cancel")
        radii = [float(r) for r in re.findall(r'<circle cx="0" cy="[\d.]+" r="([\d.]+)"', row)]

        assert len(radii) == 2 and radii[0] < radii[1]  # 10 shares, then 60
        assert 'class="m-ask"' in row and 'class="m-cancel"' in row
        assert ">3.5 s<" in row  # the cancel latency, written on its bracket
        assert "cancel confirmed 3.5 s after it was requested" in row

    def test_an_order_still_working_runs_to_the_end_of_the_journal(self) -> None:
        start = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
        working = Order("MSFT", "sell", 10, "400", client_order_id="working")
        working.submit("b-1", at=start)
        working.request_cancel(at=start + timedelta(seconds=5))
        done = Order("MSFT", "buy", 10, "400", client_order_id="done")
        done.submit("b-2", at=start)
        done.fill("e-1", 10, "400", at=start + timedelta(seconds=40))

        page = render_report([working, done])
        row = timeline_row(page, "working")
        assert "still working when the journal ends" in row
        assert "unconfirmed" in row

    def test_a_long_strategy_draws_its_most_recent_rows_and_says_so(self) -> None:
        start = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
        orders = []
        for n in range(MAX_TIMELINE_ROWS + 2):
            order = Order("AAPL", "buy", 1, "1", client_order_id=f"o-{n:04d}")
            order.reject("halted", at=start + timedelta(seconds=n))
            orders.append(order)

        page = render_report(orders)

        drawn = re.findall(r'data-order="(o-\d+)"', section(page, "timeline"))
        assert drawn == [o.client_order_id for o in orders[2:]]  # the oldest two left out
        assert "2 earlier orders of this strategy are not drawn" in page
        assert f"{MAX_TIMELINE_ROWS + 2} orders" in visible_text(section(page, "timeline"))

    def test_the_page_is_deterministic(self, demo: tuple[Path, str]) -> None:
        orders = AuditJournal.replay(demo[0]).values()
        assert render_report(orders) == render_report(list(orders)[::-1])


def hostile_journal(tmp_path: Path) -> Path:
    """A journal whose strategy name and reject reason are markup."""
    journal = tmp_path / "hostile.jsonl"
    broker = PaperBroker(quotes={"AAPL": "187.43", "MSFT": "415.10"})
    manager = OrderManager(
        broker,
        config=OrderManagementConfig.from_dict({"audit_log_path": str(journal)}),
        journal=AuditJournal(journal),
    )
    bot = TradingBot(manager)
    assert bot.execute_trade("AAPL", "buy", 10, "187.43", strategy=HOSTILE_STRATEGY).ok
    broker.inject(Fault.REJECT, message=HOSTILE_REASON)
    bot.execute_trade("MSFT", "buy", 5, "415.10", strategy=HOSTILE_STRATEGY)
    broker.match()
    bot.sync()
    manager.journal.close()
    states = {o.state for o in AuditJournal.replay(journal).values()}
    assert states == {OrderState.FILLED, OrderState.REJECTED}
    return journal


class TestEscaping:
    def test_hostile_strategy_and_reason_are_escaped(self, tmp_path: Path) -> None:
        journal = hostile_journal(tmp_path)
        out = tmp_path / "report.html"
        write_report(journal, out)
        page = out.read_text(encoding="utf-8")

        assert HOSTILE_STRATEGY not in page
        assert HOSTILE_REASON not in page
        assert "<img" not in page and page.count("<script") == 1
        assert "&lt;script&gt;alert(&quot;strategy&quot;)&lt;/script&gt;" in page
        assert html.escape(HOSTILE_REASON) in page
        # ... and a person reads them as they were written.
        assert HOSTILE_STRATEGY in visible_text(section(page, "strategies"))
        assert HOSTILE_REASON in visible_text(section(page, "distributions"))

    def test_hostile_client_order_id_is_escaped(self) -> None:
        hostile_id = "<b onmouseover='x'>\"id\"</b>"
        order = Order("AAPL", "buy", 1, "1", client_order_id=hostile_id)
        order.reject("no", at=datetime(2026, 1, 5, tzinfo=UTC))

        page = render_report([order])

        assert hostile_id not in page
        assert f'data-order="{html.escape(hostile_id)}"' in page


class TestEmptyJournal:
    def test_an_empty_journal_gives_a_page_that_says_so(self, tmp_path: Path) -> None:
        journal = tmp_path / "empty.jsonl"
        journal.write_text("", encoding="utf-8")
        out = tmp_path / "out" / "report.html"

        stats = write_report(journal, out)

        page = out.read_text(encoding="utf-8")
        assert stats.orders == 0
        assert "This journal holds no orders" in visible_text(page)
        assert 'id="timeline"' not in page
        assert lifecycle_svg() in page  # the lifecycle is still worth a look
        assert re.search(r"https?://|@import", page) is None


class TestWriteReport:
    def test_returns_the_journals_figures_and_replaces_the_file(
        self, demo: tuple[Path, str], tmp_path: Path
    ) -> None:
        out = tmp_path / "report.html"
        out.write_text("old", encoding="utf-8")

        stats = write_report(demo[0], out)

        assert isinstance(stats, OrderStats)
        assert stats == compute_stats(AuditJournal.replay(demo[0]).values())
        assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        assert out.stat().st_mode & 0o444 == 0o444  # readable by whoever it is shared with
        assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left

    def test_the_title_names_the_journal(self, demo: tuple[Path, str]) -> None:
        assert f"<title>Order report — {demo[0].name}</title>" in demo[1]
