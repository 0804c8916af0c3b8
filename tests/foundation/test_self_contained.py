"""The repository explains itself: nothing in it points at documents kept outside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Spelled in pieces so that this file does not match itself.
OUTSIDE = ("../" + "shared", "INTERFACES" + ".md", "PROVIDERS" + ".md", "STYLE" + ".md")
# Recorded Temporal histories are data that is never edited (see tests/histories/).
EXEMPT = ("tests/histories/",)


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and not name.startswith(EXEMPT)]


def test_no_tracked_file_points_outside_the_repository() -> None:
    """Comments, README and docs point into docs/, never at the shared documents they came from."""
    offenders = []
    for name in _tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        offenders += [f"{name}: {word}" for word in OUTSIDE if word in text]
    assert offenders == [], "move these references into docs/: " + ", ".join(offenders)


def test_ci_lints_before_it_tests() -> None:
    """CI runs `make lint` (ruff, ruff format, mypy strict), then `make test`; either fails CI."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "set -euo pipefail" in lines
    commands = [line.split()[1] for line in lines if line.startswith("make ")]
    assert commands == ["lint", "test"]
