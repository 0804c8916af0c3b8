"""The history recorders are scripts no other test runs: each must at least import, or the next
new path cannot get its committed history (a moved contract once broke one unnoticed)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDERS = sorted(ROOT.glob("tests/*/record*.py"))


def test_there_are_recorders() -> None:
    assert len(RECORDERS) >= 5


@pytest.mark.parametrize("path", RECORDERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_recorder_imports(path: Path) -> None:
    importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
