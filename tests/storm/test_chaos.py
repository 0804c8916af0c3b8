"""The storm's small configuration: one crash of each kind, faults and outages, then every
invariant of issue 10 holds (`make chaos` runs the big one)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

ROOT = Path(__file__).resolve().parents[2]
# One crash of each kind within a 30-second fault phase, every outage in turn, Resend's real
# 2/s limit. About 2.5 minutes on the 2-core machine under other engineers' load (stack start
# 40 s, load 65 s, settle 20 s, checks 20 s); capped at 160 s, then stopped, within the issue's
# 3 minutes.
SMALL = [
    "--purchases",
    "30",
    "--signups",
    "10",
    "--spends",
    "120",
    "--minutes",
    "0.5",
    "--resend-rate",
    "2",
]


@pytest.mark.timeout(180)
def test_small_storm_has_no_violation() -> None:
    """`python -m bench.chaos` with a small load exits 0: no invariant is violated."""
    storm = subprocess.Popen(
        [sys.executable, "-m", "bench.chaos", *SMALL, "--seed", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = storm.communicate(timeout=160)
    except subprocess.TimeoutExpired:
        # Interrupted, it stops its stack (a killed one would leave PostgreSQL running).
        storm.send_signal(signal.SIGINT)
        try:
            out, err = storm.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            storm.kill()
            out, err = storm.communicate()
        pytest.fail("the small storm took over 160 s:\n" + out[-4000:] + err[-2000:])
    assert storm.returncode == 0, out[-6000:] + err[-3000:]
