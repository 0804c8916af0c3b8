"""The inbox page shows each e-mail as its recipient would see it, safely."""

from __future__ import annotations

import pytest

from providers.clients import ProviderClients
from providers.resend import EmailMessage
from tests.support import SandboxHandle

pytestmark = pytest.mark.sandbox


def message(to: str, subject: str, html: str) -> EmailMessage:
    return EmailMessage(
        from_="Entrega <nao-responda@entrega.app>",
        to=to,
        subject=subject,
        html=html,
        text=f"texto de {subject}",
        tags={"kind": "credentials"},
    )


async def test_inbox_renders_each_email_sandboxed(
    clients: ProviderClients, sandbox: SandboxHandle
) -> None:
    """Subject, sender, text and the HTML body (in a sandboxed frame, escaped) are shown."""
    await clients.resend.send_email(
        message("ana@x.com", "Seu acesso <chegou>", "<p>Senha: <b>abc</b></p><script>x()</script>"),
        "k1",
    )
    page = (await sandbox.http.get("/_sandbox/inbox")).text
    assert "Seu acesso &lt;chegou&gt;" in page
    assert "texto de Seu acesso &lt;chegou&gt;" in page
    assert '<iframe sandbox srcdoc="&lt;p&gt;Senha: &lt;b&gt;abc' in page
    assert "<script>x()</script>" not in page
    assert "kind=credentials" in page


async def test_inbox_filters_by_recipient(clients: ProviderClients, sandbox: SandboxHandle) -> None:
    """?to= keeps only that recipient's e-mails; an empty inbox says so."""
    await clients.resend.send_email(message("ana@x.com", "Para Ana", "<p>a</p>"), "k1")
    await clients.resend.send_email(message("bia@x.com", "Para Bia", "<p>b</p>"), "k2")
    page = (await sandbox.http.get("/_sandbox/inbox", params={"to": "Bia@x.com"})).text
    assert "Para Bia" in page and "Para Ana" not in page
    await sandbox.reset()
    assert "Nenhum e-mail ainda" in (await sandbox.http.get("/_sandbox/inbox")).text
