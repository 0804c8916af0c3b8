"""`entrega`: run the processes, and let operators inspect and fix what the system did.

One module per command group; `cli.common` holds what they share."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from cli import credits, orders, processes, products, reconcile, sagas

app = typer.Typer(help="Entrega: durable purchase provisioning, signup sagas and a credit ledger.")
# dev, api, worker, sandbox, codec-server, migrate, setup and reconcile are top-level commands.
app.registered_commands += processes.app.registered_commands + reconcile.app.registered_commands
app.add_typer(orders.app, name="orders")
app.add_typer(sagas.app, name="sagas")
app.add_typer(credits.app, name="credits")
app.add_typer(products.app, name="products")


def main() -> NoReturn:
    """The `entrega` entry point. It exits without interpreter finalization: the Temporal client's
    Rust runtime can abort a short-lived process while Python finalizes ("PyGILState_Release",
    temporalio/sdk-python#300), turning a clean exit into a crash (134). Every command closes what
    it opened itself (pools, servers, child processes) before returning, so nothing is skipped."""
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
