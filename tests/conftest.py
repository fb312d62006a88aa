"""Shared test setup: every test runs in its own empty working directory.

The library's defaults write relative paths (`logs/orders.jsonl`, `logs/paper-broker.json`);
a test that relies on a default must not leave files in the checkout or read another test's.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
