"""`make bench`: every benchmark, one after another, each in its own process."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

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


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        if importlib.util.find_spec(f"bench.{name}") is None:
            continue
        print(f"== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
