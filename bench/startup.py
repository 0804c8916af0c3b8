"""Time from `make dev` to a ready stack on a warm venv, on free ports and a fresh home.

Two runs: the first initialises PostgreSQL and Temporal's SQLite file (a newcomer's first start),
the second reuses them (every later start). Each ends with SIGINT, and the stop is timed too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import free_port, write_result

ROOT = Path(__file__).parents[1]
READY = "Press Ctrl-C to stop everything."


def _one_run(home: Path, ports: dict[str, int]) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env |= {f"{name}_PORT": str(port) for name, port in ports.items()}
    env["ENTREGA_HOME"] = str(home)
    started = time.perf_counter()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "dev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if READY in line:
            break
    else:
        raise RuntimeError("make dev exited before it was ready")
    ready = time.perf_counter() - started
    stop_started = time.perf_counter()
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=60)
    return ready, time.perf_counter() - stop_started


def main() -> None:
    ports = {
        name: free_port()
        for name in ("API", "SANDBOX", "TEMPORAL", "TEMPORAL_UI", "WORKER_METRICS", "CODEC_SERVER")
    }
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        first_ready, first_stop = _one_run(home, ports)
        warm_ready, warm_stop = _one_run(home, ports)
    write_result(
        "startup",
        {
            "make_dev_to_ready_first_start_s": round(first_ready, 2),
            "make_dev_to_ready_warm_s": round(warm_ready, 2),
            "ctrl_c_to_stopped_s": round(max(first_stop, warm_stop), 2),
        },
    )


if __name__ == "__main__":
    main()
