"""`make bench`: every benchmark, one after another, each in its own process, then one table of
the performance targets (issue 15) read from what this run wrote to bench/results/."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS

BENCHMARKS = [
    "startup",
    "sandbox",
    "purchases",
    "emails",
    "sagas",
    "credits",
    "observe",
    "codec",
    "reconcile",
]


def _read(path: Path, since: float) -> Any:
    """A result this run wrote (older files are another run's, and say nothing of this one)."""
    if not path.exists() or path.stat().st_mtime < since:
        return None
    return json.loads(path.read_text())


def _latest_credits(since: float) -> Any:
    files = sorted(RESULTS.glob("credits-*.json"))
    return _read(files[-1], since) if files else None


def targets(since: float) -> list[str]:
    """The issue's rows: measure | this run | target."""
    rows: list[str] = []
    sagas = _read(RESULTS / "sagas.json", since)
    if sagas:
        by_operation = {r["operation"]: r for r in sagas.get("results", [])}
        if reg := by_operation.get("registration"):
            rows.append(
                f"registration p50 / p99, 10 concurrent clients | {reg['p50_ms']:.0f} / "
                f"{reg['p99_ms']:.0f} ms | ≤ 120 / ≤ 300 ms"
            )
        if pending := by_operation.get("rollback_pending"):
            rows.append(
                "a first checkout whose compensation keeps failing answers rollback_pending | "
                f"every answer ≤ {pending['max_ms']:.0f} ms ({pending['answers']}) | ≤ 2 s"
            )
    purchases = _read(RESULTS / "purchases.json", since)
    if purchases:
        rows.extend(purchases.get("targets", []))
    credits = _latest_credits(since)
    if credits:
        hot, spread = credits["hot"], credits["spread"]
        rows.append(
            "hot profile shipments/s ÷ pgbench single-row UPDATE, 32 clients | "
            f"{hot['ratio']} ({hot['shipments_per_s']}/s) | ≥ 0.8"
        )
        rows.append(
            "1,000 profiles shipments/s ÷ pgbench simple-update at scale | "
            f"{spread['ratio']} ({spread['shipments_per_s']}/s) | ≥ 0.8"
        )
    emails = _read(RESULTS / "emails.json", since)
    if emails:
        rows.append(
            "credentials e-mails/s under Resend's 2 requests/s limit | "
            f"{emails['credentials_emails_per_s']} "
            f"({emails['ratio_to_one_email_per_request']}× one e-mail per request) | ≥ 50/s"
        )
    return rows


def main() -> int:
    since = time.time()
    only = sys.argv[1:] or BENCHMARKS
    failed = []
    for name in only:
        if importlib.util.find_spec(f"bench.{name}") is None:
            continue
        print(f"== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    rows = targets(since)
    if rows:
        print("\n== targets (one run; 2 cores shared by the whole stack and the load generator)")
        print("measure | this run | target")
        for row in rows:
            print(row)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
