"""The storm lane's patched paths have committed histories (replayed by the purchase and saga
replay tests, which pick up every file under tests/histories/)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

HISTORIES = Path(__file__).parent.parent / "histories"


def _patches(name: str) -> set[str]:
    """The patch ids a committed history recorded."""
    found = set()
    for event in json.loads((HISTORIES / f"{name}.json").read_text(encoding="utf-8"))["events"]:
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") != "core_patch":
            continue
        for payload in marker["details"]["patch-data"]["payloads"]:
            found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


@pytest.mark.parametrize(
    ("name", "patches"),
    [
        ("purchase_storm_completed", {"storm-bounded-local-activities"}),
        ("purchase_storm_fetch_fell_back", {"storm-bounded-local-activities"}),
        (
            "purchase_storm_rate_limited",
            {"storm-bounded-local-activities", "storm-rate-limit-free"},
        ),
        ("registration_storm_journal_fell_back", {"storm-bounded-journal"}),
    ],
)
def test_patched_paths_have_histories(name: str, patches: set[str]) -> None:
    """Each patched path has a committed history that went through its patch."""
    assert _patches(name) >= patches
