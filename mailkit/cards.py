"""The result of a test send as HTML cards: green for accepted, red with the fix steps.

Pure rendering, shared by the notebook display of a result and the test-send widget, so both
show the same facts the same way.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from mailkit.outcome import Diagnosis

if TYPE_CHECKING:  # a result asks for its cards lazily; the value never imports rendering
    from mailkit.result import TestResult

ERROR_COLOUR = "#c62828"
OK_COLOUR = "#2e7d32"
LINK_COLOUR = "#1565c0"


def link_html(url: str, text: str, *, style: str = "") -> str:
    """A link that looks like one in a widget too: JupyterLab styles links only in rendered
    output, so inside an ipywidgets HTML one would be body text with a pointer cursor."""
    e = html.escape
    return (
        f'<a href="{e(url)}" target="_blank" rel="noopener" '
        f'style="color:{LINK_COLOUR};text-decoration:underline;{style}">{e(text)}</a>'
    )


def card_html(colour: str, body: str) -> str:
    return (
        f'<div class="mailkit-card" style="border-left:6px solid {colour};padding:6px 12px;'
        f'margin:6px 0;background:{colour}0f;line-height:1.4">{body}</div>'
    )


def handoff_card(result: TestResult) -> str:
    """The green card of a desktop hand-off: where the .eml is, and that the client sends it."""
    e = html.escape
    client = _CLIENTS.get(result.context.desktop_client or "", "the desktop mail client")
    facts = [
        f"File: <code>{e(result.eml_path or '')}</code>",
        f"{e(client[0].upper() + client[1:])}, not mailkit, sends it: open the file there and "
        "press Send. mailkit will see no delivery result; check the recipient's inbox.",
    ]
    facts += [e(note) for note in result.notes]
    items = "".join(f"<li>{fact}</li>" for fact in facts)
    return card_html(
        OK_COLOUR,
        f'<b style="color:{OK_COLOUR}">✔ Test message written for {e(client)}</b><ul>{items}</ul>',
    )


_CLIENTS = {
    "outlook": "Outlook",
    "mapi": "the default mail program (MAPI)",
    "lotus_notes": "HCL Notes (Lotus Notes)",
}


def success_card(result: TestResult) -> str:
    """The green card: who accepted the message, how the connection was secured."""
    e = html.escape
    context = result.context
    if context.desktop_client is not None:
        return handoff_card(result)
    facts = [f"Server: {e(context.host)}:{context.port} ({e(context.security)})"]
    if result.tls is not None:
        facts.append(
            f"TLS: {e(result.tls.version)}, certificate verified by {e(result.tls.verified_by)}"
        )
    if result.auth_mechanism:
        facts.append(f"Signed in with AUTH {e(result.auth_mechanism)}")
    if result.message_id:
        facts.append(f"Message-ID: {e(result.message_id)}")
    if result.server_reply:
        facts.append(f"Server reply: {e(result.server_reply)}")
    facts.append(f"Took {result.duration_ms:.0f} ms")
    items = "".join(f"<li>{fact}</li>" for fact in facts)
    return card_html(
        OK_COLOUR,
        f'<b style="color:{OK_COLOUR}">✔ Test message accepted</b><ul>{items}</ul>',
    )


def diagnosis_card(diagnosis: Diagnosis) -> str:
    """The red card: what failed, where, whether to retry, and the numbered fix steps."""
    e = html.escape
    said = ""
    if diagnosis.code is not None:
        reply = " ".join(
            part
            for part in (str(diagnosis.code), diagnosis.enhanced, diagnosis.server_text)
            if part
        )
        said = f"<p>Server said: <code>{e(reply)}</code></p>"
    steps = "".join(f"<li>{e(step)}</li>" for step in diagnosis.fix)
    refs = "".join(f"<li>{link_html(ref, ref)}</li>" for ref in diagnosis.references)
    return card_html(
        ERROR_COLOUR,
        f'<b style="color:{ERROR_COLOUR}">✘ {e(diagnosis.title)}</b> '
        f"<small>(phase {e(diagnosis.phase.value)}, {e(diagnosis.kind.value)}, cause "
        f"{e(diagnosis.cause.value)})</small>{said}<p>{e(diagnosis.explanation)}</p>"
        f"<b>How to fix it</b><ol>{steps}</ol>"
        + (f"<small>References<ul>{refs}</ul></small>" if refs else ""),
    )


def result_html(result: TestResult) -> str:
    """A result as a notebook shows it: its card, then the whole transcript."""
    if result.ok or result.diagnosis is None:
        head = success_card(result)
    else:
        head = diagnosis_card(result.diagnosis)
    return head + result.transcript.to_html()
