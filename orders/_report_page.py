"""The report page assembled: header, figures, distributions, timeline and lifecycle.

`render_report` is pure (orders in, text out, the same text for the same orders), so that a
page can be compared byte for byte and written atomically by `orders.report.write_report`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from orders._report_charts import activity_chart, fill_ratio_chart, seconds_histogram, time_to_fill
from orders._report_diagram import lifecycle_svg
from orders._report_figures import cancel_outcomes, kpis, reasons_html, strategy_table
from orders._report_style import CSS, DEFS, JS
from orders._report_text import STATES, clock, duration, esc
from orders._report_timeline import timeline_html
from orders.lifecycle import Order
from orders.stats import OrderStats, compute_stats

__all__ = ["render_report"]


def render_report(
    orders: Iterable[Order],
    *,
    source: str | None = None,
    created: Mapping[str, datetime] | None = None,
) -> str:
    """The report page for `orders` (e.g. `AuditJournal.replay(path).values()`).

    `source` names the journal in the page's title; `created` maps a client order id to when
    its intent was journalled (before its first lifecycle event), so that a timeline starts
    there. Deterministic: the same orders give the same page.
    """
    found = sorted(orders, key=lambda o: (o.first_event_at or _EPOCH, o.client_order_id))
    created = dict(created or {})
    stats = compute_stats(found)
    title = "Order report" + (f" — {source}" if source else "")
    times = [e.at for o in found for e in o.history] + [
        created[o.client_order_id] for o in found if o.client_order_id in created
    ]
    if times:
        first, last = min(times), max(times)
        span = (
            f"{clock(first, True)} → {clock(last, first.date() != last.date())} UTC "
            f"({duration((last - first).total_seconds())})"
        )
    else:
        span = "no events"
    strategies = len({o.strategy for o in found})
    intro = (
        f"{stats.orders} order{'s' if stats.orders != 1 else ''} · {strategies} "
        f"strateg{'ies' if strategies != 1 else 'y'} · {span}"
    )
    if found:
        content = _content(found, stats, created, max(times, default=_EPOCH))
    else:
        content = (
            '<section class="card"><p class="empty" id="no-orders">This journal holds no '
            "orders: nothing to chart yet. Run the bot (or <code>orders demo</code>) and "
            "report again.</p></section>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{DEFS}<main>"
        f"<header><h1>{esc(title)}</h1><p>{esc(intro)}</p>"
        + (
            '<nav><a href="#figures">Figures</a><a href="#strategies">Strategies</a>'
            '<a href="#distributions">Distributions</a><a href="#timeline">Timeline</a>'
            '<a href="#lifecycle-section">Lifecycle</a></nav>'
            if found
            else ""
        )
        + f"</header>{content}"
        '<section id="lifecycle-section"><h2>Lifecycle</h2><div class="card diagram">'
        f"{lifecycle_svg()}"
        '<div class="legend"><span>Arrows move an order to another state. Inside a box: '
        'the transitions that keep it there</span><span><svg width="16" height="14">'
        '<circle cx="8" cy="7" r="5" fill="none" stroke="currentColor"/></svg>re-enters '
        '(on_enter hooks run)</span><span><svg width="16" height="14"><circle cx="8" cy="7" '
        'r="5" fill="none" stroke="currentColor" stroke-dasharray="2 1.5"/></svg>stays '
        "(internal)</span><span>double border: terminal state</span></div></div></section>"
        f"</main><script>{JS}</script></body></html>\n"
    )


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _content(
    found: Sequence[Order],
    stats: OrderStats,
    created: Mapping[str, datetime],
    journal_end: datetime,
) -> str:
    latencies = list(stats.cancels.latencies_seconds)
    cards = [
        _card(
            "Orders over time",
            "Orders created in each stretch of the journal, by how they ended.",
            activity_chart(found, created),
        ),
        _card(
            "Fill ratio per order",
            "Filled quantity over ordered quantity, each order coloured by its state.",
            fill_ratio_chart(found),
        ),
        _card(
            "Cancel latency",
            "From the cancel request to the broker's confirmation, per confirmed cancel.",
            seconds_histogram(
                latencies, "c-latency", "confirmed cancels", "request to confirmation"
            ),
        ),
        _card(
            "Time to fill",
            "From creation to the last fill, per filled order.",
            seconds_histogram(
                time_to_fill(found, created), "c-fill", "filled orders", "creation to last fill"
            ),
        ),
        _card("Cancel requests", "", cancel_outcomes(stats)),
        _card("Reject reasons", "", reasons_html(stats)),
    ]
    return (
        f'<section id="figures">{kpis(stats)}</section>'
        '<section id="strategies"><h2>By strategy</h2><div class="card">'
        f"{strategy_table(found)}"
        '<div class="legend small">'
        + "".join(f'<span><i class="sw s-{s}"></i>{s}</span>' for s in STATES)
        + "</div></div></section>"
        f'<section id="distributions"><h2>Distributions</h2><div class="grid2">{"".join(cards)}'
        "</div></section>"
        '<section id="timeline"><h2>Timeline</h2>'
        f"{timeline_html(found, created, journal_end)}</section>"
    )


def _card(title: str, note: str, body: str) -> str:
    text = f'<p class="note">{esc(note)}</p>' if note else ""
    return f'<div class="card"><h3>{esc(title)}</h3>{text}{body}</div>'
