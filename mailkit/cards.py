"""The result of a test send as HTML cards: green for accepted, red with the fix steps.

Pure rendering, shared by the notebook display of a result and the test-send widget, so both
show the same facts the same way.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from mailkit.outcome import Diagnosis

if TYPE_CHECKING:  # a result asks for its cards lazily; the value never imports rendering
    from mailkit.delivery import DeliveryReport
    from mailkit.faces import Face, Where
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


def outcome_card(result: TestResult, face: Face, where: Where) -> str:
    """A panel's card for one finished test: green, or the diagnosis in ``face``'s words for
    the form and account ``where`` names; a result with neither says the message was not sent."""
    if result.ok:
        return success_card(result)
    if result.diagnosis is not None:
        return diagnosis_card(result.diagnosis.for_face(face, where))
    return card_html(ERROR_COLOUR, "<b>The test message was not sent.</b>")


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
    """A result as a notebook shows it: its card, the delivery check's, then the transcript."""
    if result.ok or result.diagnosis is None:
        head = success_card(result)
    else:
        head = diagnosis_card(result.diagnosis)
    if result.delivery is not None:
        head += delivery_card(result.delivery)
    return head + result.transcript.to_html()


def delivery_card(report: DeliveryReport) -> str:
    """Where the message landed, when, by which path, and what the receiver's checks said."""
    e = html.escape
    colour = OK_COLOUR if report.delivered else ERROR_COLOUR
    facts = [f"Mailbox: {e(report.mailbox)}"]
    if report.folder:
        facts.append(f"Folder: {e(report.folder)} ({e(report.placement.value)})")
    if report.arrived is not None:
        latency = (
            f", {report.latency_s:.1f} s after the send" if report.latency_s is not None else ""
        )
        facts.append(f"Arrived: {e(report.arrived.isoformat())}{latency}")
    if report.auth:
        facts.append(
            "Authentication-Results: "
            + ", ".join(f"{e(a.method)}=<b>{e(a.result)}</b>" for a in report.auth)
        )
    if report.spam is not None:
        verdict = {True: "spam", False: "not spam", None: "no verdict"}[report.spam.flagged]
        score = f", score {report.spam.score:g}" if report.spam.score is not None else ""
        facts.append(f"Spam filter: {verdict}{score}")
    if report.bounce is not None:
        b = report.bounce
        facts.append(
            f"Bounce: {e(b.action)} {e(b.status)} for {e(b.final_recipient or '?')}: "
            f"<code>{e(b.diagnostic_code)}</code>"
        )
    if report.error:
        facts.append(f"Could not search: {e(report.error)}")
    items = "".join(f"<li>{fact}</li>" for fact in facts)
    hops = ""
    if report.hops:
        cells = "".join(
            f"<tr><td>{h.index}</td><td>{e(h.from_host)}</td><td>{e(h.by_host)}</td>"
            f"<td>{e(h.protocol)}</td><td>{e(h.tls)}</td>"
            f"<td>{'' if h.delay_s is None else f'{h.delay_s:+.1f} s'}</td></tr>"
            for h in report.hops
        )
        hops = (
            "<table><thead><tr><th>hop</th><th>from</th><th>by</th><th>with</th><th>TLS</th>"
            f"<th>delay</th></tr></thead><tbody>{cells}</tbody></table>"
        )
    mark = "✔" if report.delivered else "✘"
    title = f"{mark} Delivery check: {e(report.placement.value.replace('_', ' '))}"
    return card_html(colour, f'<b style="color:{colour}">{title}</b><ul>{items}</ul>{hops}')
