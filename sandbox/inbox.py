"""`/_sandbox/inbox`: each sent e-mail as its recipient would see it."""

from __future__ import annotations

from html import escape
from typing import Any

_PAGE = """<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Caixa de entrada — sandbox</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
article {{ border: 1px solid #ccc; border-radius: 6px; margin: 1.5rem 0; padding: 1rem; }}
dl {{ display: grid; grid-template-columns: 8rem 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }}
dt {{ color: #666; }} dd {{ margin: 0; }}
iframe {{ width: 100%; height: 28rem; border: 1px solid #eee; }}
pre {{ white-space: pre-wrap; background: #f7f7f7; padding: .8rem; }}
</style></head><body>
<h1>Caixa de entrada</h1>
<p>{summary}</p>
{articles}
</body></html>"""

_ARTICLE = """<article id="{id}">
<h2>{subject}</h2>
<dl><dt>De</dt><dd>{sender}</dd><dt>Para</dt><dd>{to}</dd><dt>Enviado em</dt><dd>{sent}</dd>
<dt>Tags</dt><dd>{tags}</dd><dt>Idempotency-Key</dt><dd><code>{key}</code></dd></dl>
{html}
<details{open_text}><summary>Versão em texto</summary><pre>{text}</pre></details>
</article>"""


def _article(email: dict[str, Any]) -> str:
    # The HTML body runs in a sandboxed frame: no scripts, no access to this page.
    html = (
        f'<iframe sandbox srcdoc="{escape(email["html"], quote=True)}" title="e-mail"></iframe>'
        if email.get("html")
        else ""
    )
    tags = ", ".join(f"{escape(k)}={escape(v)}" for k, v in email.get("tags", {}).items())
    return _ARTICLE.format(
        id=escape(email["id"]),
        subject=escape(email["subject"]),
        sender=escape(email["from"]),
        to=escape(", ".join(email["to"])),
        sent=escape(email["created_at"]),
        tags=tags or "—",
        key=escape(email.get("idempotency_key") or "—"),
        html=html,
        open_text="" if html else " open",
        text=escape(email.get("text") or ""),
    )


def render_inbox(emails: list[dict[str, Any]], to: str | None) -> str:
    who = f" para {escape(to)}" if to else ""
    summary = f"{len(emails)} e-mail(s){who}." if emails else f"Nenhum e-mail ainda{who}."
    return _PAGE.format(summary=summary, articles="\n".join(_article(e) for e in emails))
