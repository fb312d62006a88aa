"""Every Python example in README.md and docs/ runs as written.

A page's blocks run in order in one namespace, as a reader would type them into one session,
from a scratch directory that holds what a fresh checkout holds at its root
(`config.example.json`). A block that needs Robinhood credentials says so in its first line
(`# needs Robinhood credentials`) and is the only kind skipped. Nothing may point a reader
outside the repository.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NEEDS_CREDENTIALS = "# needs Robinhood credentials"  # the first line of such a block
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_the_pages_python_blocks_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(REPO / "config.example.json", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROBINHOOD_USERNAME", raising=False)
    monkeypatch.delenv("ROBINHOOD_PASSWORD", raising=False)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    handlers = list(logging.getLogger("orders").handlers)
    try:
        for number, block in enumerate(python_blocks(page), start=1):
            if block.startswith(NEEDS_CREDENTIALS):
                continue
            code = compile(block, f"{page.name} block {number}", "exec")
            exec(code, namespace)  # noqa: S102 - the repository's own documentation
    finally:  # a page may show how to attach a handler; the next test starts clean
        for handler in logging.getLogger("orders").handlers:
            if handler not in handlers:
                logging.getLogger("orders").removeHandler(handler)
                handler.close()


def test_nothing_points_outside_the_repository() -> None:
    texts = [*PAGES, *(REPO / "orders").rglob("*.py"), *(REPO / "bench").glob("*.py")]
    offenders = [
        str(path.relative_to(REPO))
        for path in texts
        if "../shared" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
