"""/metrics answers for every API process on the host when they share PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent

_COUNT = """
import sys
from telemetry import events
for _ in range(int(sys.argv[1])):
    events.webhook("mercadopago", "accepted", 200, None)
"""
_SCRAPE = """
from telemetry.metrics import api_metrics
print(api_metrics()[0].decode())
"""


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_two_api_processes_are_summed(tmp_path: Path) -> None:
    """Two processes count webhook outcomes; a third one's exposition has their sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    _python(_COUNT, "1", env=env)
    _python(_COUNT, "2", env=env)
    text = _python(_SCRAPE, env=env)
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("entrega_webhook_outcomes_total{")
        and 'provider="mercadopago"' in line
        and 'result="accepted"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) == 3.0
