"""`entrega credits`: balances, grants and the legacy backfill."""

from __future__ import annotations

import re
import uuid
from typing import Any

import typer
from psycopg import AsyncConnection
from rich.table import Table

from cli.common import console, err_console, fail, print_json, record_cli_action, run_db

app = typer.Typer(help="The credit ledger: balances, grants and the legacy backfill.")

_EXPIRY_MESSAGES = {
    "format": "use YYYY-MM-DD or an ISO 8601 datetime with its time zone",
    "no_zone": "a datetime needs its time zone (e.g. 2026-12-31T23:59:59-03:00 or ...Z)",
    "past": "the expiry is in the past",
}


def _profile_id(text: str, as_json: bool) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise fail(as_json, "invalid_profile_id", f"not a profile id: {text!r}", 2) from None


@app.command("show")
def credits_show(
    profile: str = typer.Argument(..., metavar="PROFILE_ID"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """A profile's balance and each of its purchases."""
    from db import credits

    profile_id = _profile_id(profile, as_json)

    async def _show(
        conn: AsyncConnection[Any],
    ) -> tuple[credits.Balance | None, list[credits.PurchaseBalance]]:
        return await credits.balance(conn, profile_id), await credits.purchases(conn, profile_id)

    balance, purchases = run_db(_show)
    if balance is None:
        raise fail(as_json, "profile_not_found", f"no profile {profile_id}")
    if as_json:
        print_json(
            {
                "profile_id": str(profile_id),
                **balance.model_dump(mode="json"),
                "purchases": [p.model_dump(mode="json") for p in purchases],
            }
        )
        return
    m = balance.monthly
    period = (
        f"{m.period_start:%Y-%m-%d} → {m.period_end:%Y-%m-%d}"
        if m.period_start and m.period_end
        else "no period"
    )
    console.print(f"profile {profile_id}", soft_wrap=True)
    console.print(
        f"  monthly  {m.used}/{m.limit} used, {m.remaining} left ({period})", soft_wrap=True
    )
    console.print(f"  extra    {balance.extra.remaining} left", soft_wrap=True)
    console.print(f"  total    {balance.total_remaining} left", soft_wrap=True)
    table = Table("purchase", "credits", "used", "left", "expires", "created", "spendable")
    for p in purchases:
        table.add_row(
            str(p.purchase_id),
            str(p.credits_amount),
            str(p.used),
            str(p.remaining),
            f"{p.expires_at:%Y-%m-%d %H:%M}" if p.expires_at else "never",
            f"{p.created_at:%Y-%m-%d %H:%M}",
            "yes" if p.spendable else "no",
        )
    if purchases:
        console.print(table, soft_wrap=True)


@app.command("grant")
def credits_grant(
    profile: str = typer.Argument(..., metavar="PROFILE_ID"),
    credits_amount: int = typer.Argument(..., min=1, metavar="N"),
    expires: str | None = typer.Option(
        None,
        "--expires",
        help="YYYY-MM-DD (valid through that day, UTC) or an ISO datetime with its time zone.",
    ),
    idempotency_key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="Grant at most once per key: a replay prints the first grant; the key with "
        "another grant is refused (the same keys as the API's Idempotency-Key).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (errors too)."),
) -> None:
    """Grant N purchased credits to a profile that has a subscription."""
    from db import credits

    profile_id = _profile_id(profile, as_json)
    expires_at = None
    if expires is not None:
        try:
            expires_at = credits.parse_expiry(expires)
        except credits.InvalidExpiry as invalid:
            message = f"--expires: {_EXPIRY_MESSAGES[invalid.reason]}"
            raise fail(as_json, "invalid_expiry", message, 2) from None

    if idempotency_key is not None and not re.fullmatch(r"[!-~]{1,200}", idempotency_key):
        message = "--idempotency-key: 1 to 200 visible ASCII characters"
        raise fail(as_json, "invalid_idempotency_key", message, 2)

    async def _grant(conn: AsyncConnection[Any]) -> credits.CreditPurchase:
        if idempotency_key is not None:
            granted, fresh = await credits.grant_credits_once(
                conn,
                idempotency_key=idempotency_key,
                profile_id=profile_id,
                credits_amount=credits_amount,
                expires_at=expires_at,
            )
            if not fresh:
                return granted  # a replay: the first grant is already on the record
        else:
            granted = await credits.grant_credits(
                conn, profile_id=profile_id, credits_amount=credits_amount, expires_at=expires_at
            )
        await record_cli_action(
            conn,
            "grant",
            str(profile_id),
            None,
            purchase_id=str(granted.purchase_id),
            credits_amount=credits_amount,
        )
        return granted

    try:
        purchase = run_db(_grant)
    except credits.IdempotencyKeyReused:
        message = f"idempotency key {idempotency_key!r} was used for another grant"
        raise fail(as_json, "idempotency_key_reused", message) from None
    except credits.ProfileNotFound:
        raise fail(as_json, "profile_not_found", f"no profile {profile_id}") from None
    except credits.NoSubscription:
        message = (
            f"profile {profile_id} has no subscription yet: grant after its first checkout "
            "completes (a failed first checkout deletes the profile)"
        )
        raise fail(as_json, "profile_without_subscription", message) from None
    except credits.CheckoutInProgress:
        message = f"a checkout of profile {profile_id} is running: try again in a moment"
        raise fail(as_json, "checkout_in_progress", message) from None
    if as_json:
        print_json(purchase.model_dump(mode="json"))
        return
    until = f", expires {purchase.expires_at:%Y-%m-%d %H:%M %Z}" if purchase.expires_at else ""
    console.print(
        f"granted {purchase.credits_amount} credits to {profile_id} "
        f"(purchase {purchase.purchase_id}{until})",
        soft_wrap=True,
    )


@app.command("backfill")
def credits_backfill(
    dry_run: bool = typer.Option(False, "--dry-run", help="Reconcile and report, write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write the credit_usage rows that legacy shipments and consumed_credits counters imply.

    Idempotent. Refuses (exit 1, nothing written) when a profile's counters cannot be reconciled
    with its shipments, naming the profiles. Run it before `entrega migrate` applies 0032.
    """
    from db.credits_backfill import BackfillRefused, backfill

    try:
        report = run_db(lambda conn: backfill(conn, dry_run=dry_run))
    except BackfillRefused as refused:
        if as_json:
            problems = {str(k): v for k, v in refused.problems.items()}
            print_json({"refused": True, "problems": problems})
        else:
            err_console.print(
                f"[red]refused:[/red] {len(refused.problems)} profile(s) cannot be reconciled; "
                "nothing was written",
                soft_wrap=True,
            )
            for profile_id, issues in refused.problems.items():
                err_console.print(f"profile {profile_id}", soft_wrap=True)
                for issue in issues:
                    err_console.print(f"  {issue}", soft_wrap=True)
        raise typer.Exit(1) from None
    written = {
        str(k): {"monthly": v["monthly"], "purchase": v["purchase"]}
        for k, v in report.written.items()
    }
    if as_json:
        print_json(
            {
                "refused": False,
                "counters_present": report.counters_present,
                "dry_run": dry_run,
                "written": written,
            }
        )
        return
    if not report.counters_present:
        console.print(
            "nothing to backfill: the legacy counters are gone (migration 0032 applied)",
            soft_wrap=True,
        )
        return
    if not written:
        console.print(
            "nothing to backfill: every shipment already has its credit_usage row", soft_wrap=True
        )
        return
    verb = "would write" if dry_run else "wrote"
    for profile_key, counts in written.items():
        console.print(
            f"profile {profile_key}: {verb} {counts['monthly']} monthly + "
            f"{counts['purchase']} purchase usage rows",
            soft_wrap=True,
        )
    total = sum(c["monthly"] + c["purchase"] for c in written.values())
    console.print(f"{verb} {total} credit_usage rows for {len(written)} profile(s)", soft_wrap=True)
    if not dry_run:
        console.print(
            "next: `entrega migrate` drops credit_purchases.consumed_credits", soft_wrap=True
        )
