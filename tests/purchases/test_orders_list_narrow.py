"""`entrega orders list` in an 80-column terminal prints every order id whole."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.db

ORDER_ID = "purchase:mercadopago:123456789012345"


@pytest.mark.parametrize("extra", [[], ["--stuck", "0s"]])
async def test_order_ids_are_never_cut_at_80_columns(database_url, pool, extra) -> None:
    """An operator copies the id from the listing into `orders show` or `retry`: the other
    columns shrink or fold, the id column never does (it used to print `purchase:m…`)."""
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO orders (order_id, provider, provider_order_id, stage, customer_email,"
            " attempts, last_error) VALUES (%s, 'mercadopago', '123456789012345',"
            " 'failed_at_email', 'uma.cliente.com.nome.longo@example.com.br', 3, %s)",
            (ORDER_ID, "Resend answered 503 Service Unavailable " * 3),
        )
    env = {**os.environ, "DATABASE_URL": database_url, "ENTREGA_ENV": "test", "COLUMNS": "80"}
    listed = subprocess.run(
        [sys.executable, "-m", "cli", "orders", "list", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert ORDER_ID in listed.stdout, listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
