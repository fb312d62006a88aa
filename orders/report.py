"""A journal as one self-contained HTML page: what `orders report` writes.

The page carries everything inline (CSS, SVG charts drawn here in Python, a few lines of
JavaScript for filtering the timeline), so it opens from disk, mailed or archived, with no
network. It shows the headline figures of `orders.stats` (success rate, cancel reliability,
fill ratio, cancel latency) overall and per strategy, their distributions, a timeline of every
order (its states as coloured segments, its fills sized by quantity, its cancel request and the
broker's confirmation), and the lifecycle diagram drawn from `orders.diagram.arrows()`.

Every figure on the page comes from `compute_stats` / `stats_by_strategy`, so it equals what
`orders stats` prints; every text that comes from a journal (ids, strategy names, reasons) is
HTML-escaped.

This module reads the journal and writes the page; the page itself is drawn by the
`orders._report_*` modules, one part each.
"""

from __future__ import annotations

from pathlib import Path

from orders._files import write_atomically
from orders._report_diagram import lifecycle_svg
from orders._report_lines import intent_times
from orders._report_page import render_report
from orders._report_timeline import MAX_TIMELINE_ROWS
from orders.audit import AuditJournal
from orders.stats import OrderStats, compute_stats

__all__ = ["MAX_TIMELINE_ROWS", "lifecycle_svg", "render_report", "write_report"]


def write_report(journal: Path, out: Path) -> OrderStats:
    """Replay `journal` and write its report page to `out` (replaced whole, never half
    written). Returns the journal's figures, for a summary line. Raises `JournalError` for a
    journal that cannot be replayed, as `orders stats` does."""
    journal, out = Path(journal), Path(out)
    orders = AuditJournal.replay(journal)
    page = render_report(orders.values(), source=journal.name, created=intent_times(journal))
    out.parent.mkdir(parents=True, exist_ok=True)
    # A page to open and share, not a secret.
    write_atomically(out, page.encode("utf-8"), mode=0o644)
    return compute_stats(orders.values())
