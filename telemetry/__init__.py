"""What operators see of a running Entrega: logs, metrics and traces (issue 14).

One set-up per process (API, worker, CLI, sandbox): `logs.configure`, `tracing.configure`, and the
worker's `metrics.worker_runtime`. Nothing here decides anything; it only reports.
"""
