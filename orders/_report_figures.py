"""The report's headline figures, overall and per strategy, as `orders stats` prints them.

Each figure carries its exact value beside its text (`data-value`), so that the page can be
checked against `compute_stats` and never tell a different story from the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from orders._report_charts import meter, state_bar
from orders._report_text import breakable, duration, esc, num, pct, qty
from orders.lifecycle import Order
from orders.model import OrderState
from orders.stats import OrderStats, stats_by_strategy

__all__ = ["cancel_outcomes", "kpis", "reasons_html", "strategy_table"]


def _figure(name: str, value: object, text: str) -> str:
    """A figure the tests compare with `compute_stats`: its exact value rides along."""
    return (
        f'<span class="fig" data-figure="{esc(name)}" data-value="{esc(value)}">{esc(text)}</span>'
    )


def _count(name: str, value: int) -> str:
    return _figure(name, value, str(value))


def _ratio(name: str, value: float | Decimal | None) -> str:
    return _figure(name, value, pct(value))


def _latency(name: str, stats: OrderStats, fraction: float) -> str:
    value = stats.cancels.latency(fraction)
    return _figure(name, value, duration(value))


def _ratio_card(
    title: str, name: str, value: float | Decimal | None, detail: str, css: str
) -> tuple[str, str, str, str]:
    """A card whose figure is a ratio, drawn again as a meter under it."""
    return title, _ratio(name, value), detail, meter(value, css)


def kpis(stats: OrderStats) -> str:
    cancels = stats.cancels
    working = stats.orders - stats.finished
    settled = cancels.requested - cancels.outstanding
    filled = _count("filled", stats.by_state.get(OrderState.FILLED, 0))
    success = f"{filled} filled of {stats.finished} finished"
    reliability = (
        f"{_count('cancels_confirmed', cancels.confirmed)} confirmed of {settled} settled; "
        f"{_count('cancels_requested', cancels.requested)} requested, "
        f"{cancels.filled_first} filled first, {cancels.rejected} rejected, "
        f"{cancels.outstanding} outstanding"
    )
    shares = (
        f"{esc(qty(stats.filled_quantity))} of {esc(qty(stats.ordered_quantity))} shares ordered"
    )
    cards = [
        (
            "Orders",
            _count("orders", stats.orders),
            f"{_count('finished', stats.finished)} finished · {working} still working",
            state_bar(stats.by_state, stats.orders, height=8, cls="kbar"),
        ),
        _ratio_card("Success rate", "success_rate", stats.success_rate, success, "s-filled"),
        _ratio_card(
            "Cancel reliability",
            "cancel_reliability",
            cancels.reliability,
            reliability,
            "s-cancelled",
        ),
        _ratio_card("Fill ratio", "fill_ratio", stats.fill_ratio, shares, "s-partially_filled"),
        (
            "Cancel latency p50",
            _latency("cancel_latency_p50", stats, 0.5),
            f"p90 {_latency('cancel_latency_p90', stats, 0.9)} · "
            f"max {_latency('cancel_latency_max', stats, 1.0)}",
            "",
        ),
        (
            "Rejected",
            _count("rejected", stats.by_state.get(OrderState.REJECTED, 0)),
            esc(_top_reason(stats)),
            "",
        ),
    ]
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><div class="kname">{esc(name)}</div><div class="kval">{value}</div>'
            f'<div class="ksub">{sub}</div>{extra}</div>'
            for name, value, sub, extra in cards
        )
        + "</div>"
    )


def _top_reason(stats: OrderStats) -> str:
    if not stats.reject_reasons:
        return "no rejection"
    reason, count = max(stats.reject_reasons.items(), key=lambda kv: (kv[1], kv[0]))
    return f"most often: {reason} ({count})"


def strategy_table(orders: Sequence[Order]) -> str:
    rows = []
    for name, stats in stats_by_strategy(orders).items():
        cancels = stats.cancels
        settled = cancels.requested - cancels.outstanding
        cells = [
            _count("orders", stats.orders),
            state_bar(stats.by_state, stats.orders, height=12, cls="sbar"),
            _ratio("success_rate", stats.success_rate) + meter(stats.success_rate, "s-filled"),
            _ratio("cancel_reliability", cancels.reliability)
            + meter(cancels.reliability, "s-cancelled")
            + f'<div class="tiny">{cancels.confirmed} of {settled}</div>',
            _ratio("fill_ratio", stats.fill_ratio) + meter(stats.fill_ratio, "s-partially_filled"),
            _latency("cancel_latency_p50", stats, 0.5),
            _count("rejected", stats.by_state.get(OrderState.REJECTED, 0)),
        ]
        classes = ["num", "barcell", "num", "num", "num", "num", "num"]
        rows.append(
            f'<tr data-strategy="{esc(name)}"><th scope="row">{breakable(name)}</th>'
            + "".join(
                f'<td class="{c}">{cell}</td>' for c, cell in zip(classes, cells, strict=True)
            )
            + "</tr>"
        )
    return (
        '<div class="tablewrap"><table class="strategies"><thead><tr><th scope="col">strategy'
        '</th><th scope="col" class="num">orders</th><th scope="col">final states</th>'
        '<th scope="col" class="num">success rate</th><th scope="col" class="num">cancel '
        'reliability</th><th scope="col" class="num">fill ratio</th><th scope="col" '
        'class="num">cancel p50</th><th scope="col" class="num">rejected</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def reasons_html(stats: OrderStats) -> str:
    if not stats.reject_reasons:
        return '<p class="empty">No order was rejected.</p>'
    items = sorted(stats.reject_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    top = items[0][1]
    rows = "".join(
        f'<tr><td class="num">{count}</td><td class="reason">{esc(reason)}'
        f'<svg width="100%" height="5"><rect class="s-rejected" width="{num(100 * count / top)}%"'
        ' height="5" rx="2"/></svg></td></tr>'
        for reason, count in items
    )
    return f'<table class="reasons"><tbody>{rows}</tbody></table>'


def cancel_outcomes(stats: OrderStats) -> str:
    cancels = stats.cancels
    if cancels.requested == 0:
        return '<p class="empty">No cancel was requested.</p>'
    parts = [
        ("confirmed", cancels.confirmed, "s-cancelled"),
        ("filled first", cancels.filled_first, "s-filled"),
        ("rejected", cancels.rejected, "s-rejected"),
        ("outstanding", cancels.outstanding, "s-submitted"),
    ]
    rects, x = [], 0.0
    for name, count, cls in parts:
        if not count:
            continue
        width = 100.0 * count / cancels.requested
        rects.append(
            f'<rect class="{cls}" x="{num(x)}%" width="{num(width)}%" height="14">'
            f"<title>{name}: {count}</title></rect>"
        )
        x += width
    legend = "".join(
        f'<span><i class="sw {cls}"></i>{name} {count}</span>' for name, count, cls in parts
    )
    return (
        f'<p class="note">How the {cancels.requested} cancel '
        f"request{'s' if cancels.requested != 1 else ''} ended:</p>"
        f'<svg width="100%" height="14">{"".join(rects)}</svg>'
        f'<div class="legend small">{legend}</div>'
    )
