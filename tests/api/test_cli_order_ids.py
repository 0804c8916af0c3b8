"""The operator CLI refuses the order ids the API refuses, before touching the database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app as cli_app


@pytest.mark.parametrize(
    "args",
    [
        ["orders", "show", "abc\x00def"],
        ["orders", "retry", "purchase:appmax:1", "x;y"],
        ["orders", "retry", "--stage", "queued\x00"],
    ],
)
def test_bad_order_ids_and_stages_exit_2_without_a_traceback(args: list[str]) -> None:
    """A NUL or a character outside the order-id charset is a usage error (exit 2), not a
    database error; the database is never reached (its URL here leads nowhere)."""
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "ENTREGA_ENV": "test"}
    result = CliRunner().invoke(cli_app, args, env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
