"""What the scheduled reconciliation reads from the sandbox: Mercado Pago's payment search, and
dropped notifications (a payment that exists without its webhook)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from providers.clients import ProviderClients
from sandbox import asaas
from sandbox import core as sandbox_core
from tests.sandbox.conftest import Gateway
from tests.sandbox.test_webhooks import new_payment
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox


async def search(sandbox: SandboxHandle, **params: object) -> dict:
    answer = await sandbox.http.get(
        "/mercadopago/v1/payments/search",
        params=params,
        headers={"authorization": "Bearer test-mp-access-token"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_search_pages_filters_and_sorts(sandbox: SandboxHandle) -> None:
    """Status and date-range filters, sort + criteria and offset/limit, with `paging`."""
    approved = [await new_payment(sandbox) for _ in range(3)]
    pending = await new_payment(sandbox, status="pending")
    page = await search(
        sandbox, status="approved", sort="date_created", criteria="asc", offset=1, limit=1
    )
    assert page["paging"] == {"total": 3, "limit": 1, "offset": 1}
    assert [str(p["id"]) for p in page["results"]] == approved[1:2]
    newest_first = await search(sandbox, sort="date_created", criteria="desc")
    assert str(newest_first["results"][0]["id"]) == pending
    assert newest_first["paging"]["total"] == 4


async def test_search_date_range_absolute_and_relative(sandbox: SandboxHandle) -> None:
    """`range` with ISO 8601 or MP's relative NOW-2DAYS / NOW bounds; a status change moves a
    payment's date_last_updated into a later window."""
    payment_id = await new_payment(sandbox, status="pending")
    assert (
        await search(sandbox, range="date_last_updated", begin_date="NOW-2DAYS", end_date="NOW")
    )["paging"]["total"] == 1
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await search(sandbox, range="date_created", begin_date=later))["results"] == []
    await sandbox.http.post(
        f"/_sandbox/mercadopago/payments/{payment_id}/status", json={"status": "approved"}
    )
    found = await search(sandbox, range="date_approved", begin_date="NOW-1HOURS")
    assert [str(p["id"]) for p in found["results"]] == [payment_id]


async def test_search_refuses_bad_parameters(sandbox: SandboxHandle) -> None:
    """Unknown range, bad dates and oversized pages are MP-shaped 400s, not 500s."""
    for params in ({"range": "date_paid"}, {"begin_date": "yesterday"}, {"limit": 5000}):
        answer = await sandbox.http.get(
            "/mercadopago/v1/payments/search",
            params=params,
            headers={"authorization": "Bearer test-mp-access-token"},
        )
        assert answer.status_code == 400, params
        assert answer.json()["status"] == 400


async def test_client_reads_one_search_page(
    sandbox: SandboxHandle, clients: ProviderClients
) -> None:
    """The production client's search: oldest update first, one page with its paging."""
    ids = [await new_payment(sandbox) for _ in range(3)]
    now = datetime.now(UTC)
    page = await clients.mercadopago.search_payments(
        begin=now - timedelta(hours=1), end=now + timedelta(minutes=1), offset=0, limit=2
    )
    assert [p.id for p in page.results] == ids[:2]
    assert (page.paging.total, page.paging.limit) == (3, 2)


async def test_dropped_notification_never_reaches_the_gateway(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """A `webhooks` fault with drop: true loses MP notifications (twice here), then lets the
    next one through; the payment itself exists all along."""
    await sandbox.fault("webhooks", "mercadopago", drop=True, times=2)
    payment_id = await new_payment(sandbox)
    for _ in range(2):
        sent = await sandbox.http.post(f"/_sandbox/mercadopago/payments/{payment_id}/notify")
        assert sent.json()["dropped"] is True
    assert gateway.deliveries == []
    sent = await sandbox.http.post(f"/_sandbox/mercadopago/payments/{payment_id}/notify")
    assert sent.json()["status_code"] == 200
    assert len(gateway.deliveries) == 1


async def test_drop_applies_per_source_and_only_to_webhooks(
    sandbox: SandboxHandle, gateway: Gateway
) -> None:
    """Dropping Asaas events leaves AppMax's Apphooks alone; `drop` on a provider's API
    operation, or a webhooks fault without drop, is a 422."""
    await sandbox.fault("webhooks", "asaas", drop=True)
    sent = await sandbox.http.post(
        "/_sandbox/appmax/orders",
        json={"event": "OrderPaid", "customer": {"email": "bia@example.com"}},
    )
    assert sent.json()["status_code"] == 200
    for spec in (
        {"service": "mercadopago", "operation": "get_payment", "drop": True},
        {"service": "webhooks", "operation": "appmax", "status": 500},
    ):
        assert (await sandbox.http.post("/_sandbox/faults", json=spec)).status_code == 422


def test_asaas_dates_are_brasilia_calendar_days(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 01:00 UTC it is still the evening before in Brasília, and Asaas dates by Brasília's
    day: a charge received then is dated the day before (the reconciliation's paymentDate filter
    missed it when the sandbox dated by the machine's UTC day)."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return datetime(2026, 12, 2, 1, 0, tzinfo=UTC).astimezone(tz)

    monkeypatch.setattr(sandbox_core, "datetime", Clock)
    payment = {"status": "PENDING", "confirmedDate": None, "paymentDate": None}
    asaas._mark(payment, "RECEIVED")
    assert (payment["confirmedDate"], payment["paymentDate"]) == ("2026-12-01", "2026-12-01")
