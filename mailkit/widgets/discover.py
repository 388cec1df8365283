"""Find my settings: an email address in, the org form filled, each value saying where it came from.

The first step of onboarding. Discovery (:mod:`mailkit.discovery`) asks every source at once;
the probe then checks the best servers, and the proposal takes the server and the sign-in from
discovery and the port and security from what the server itself answered. The panel only
composes those and copies the proposal into the form's fields, with a note beside each field
naming its source and confidence. Nothing is saved: the person reviews and presses Save.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.discovery.candidates import DiscoveryReport, Proposal, propose, split_address
from mailkit.discovery.run import DEFAULT_TIMEOUT, discover_and_probe_async, discover_async
from mailkit.dnslookup import dns_server_from_env, parse_dns_server
from mailkit.runner import start
from mailkit.widgets.common import (
    DESCRIPTION_WIDTH,
    Field,
    Panel,
    error_html,
    note_html,
    ok_html,
    warning_html,
)

__all__ = ["DiscoverPanel"]


def _candidates_html(report: DiscoveryReport) -> str:
    if not report.candidates:
        return warning_html(
            f"Nothing found for {report.domain}: no preset, autoconfig, SRV or MX record "
            "named a server. Ask the mail administrator for the server name."
        )
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(c.mode.value)}</td>"
        f"<td>{html.escape(c.url or f'{c.host}:{c.port}')}</td>"
        f"<td>{html.escape(c.security.value)}</td>"
        f"<td>{html.escape(c.auth_advice)}</td>"
        f"<td>{html.escape(', '.join(c.sources))}</td>"
        f"<td>{c.confidence}</td>"
        "</tr>"
        for c in report.candidates
    )
    head = "".join(
        f"<th>{name}</th>"
        for name in ("Mode", "Server", "Security", "Sign-in", "Found by", "Confidence")
    )
    looked = ", ".join(f"{html.escape(s.source)}: {html.escape(s.outcome)}" for s in report.lookups)
    return f"<table class='mailkit-discovery'><tr>{head}</tr>{rows}</table>" + note_html(
        f"Looked at ({report.elapsed_ms / 1000:.1f} s): {looked}"
    )


def _proposal_html(proposal: Proposal | None) -> str:
    if proposal is None:
        return ""
    items = "".join(
        f"<li><b>{html.escape(name)}</b> = {html.escape(str(getattr(value, 'value', value)))}"
        f" <small>(from {html.escape(proposal.provenance.get(name, 'discovery'))})</small></li>"
        for name, value in proposal.settings().items()
    )
    probe = proposal.probe
    verdict = getattr(probe, "verdict", None)
    lines = ""
    if verdict is not None:
        said, warned = verdict.render("widget")  # in the form's words ("CA file")
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in said)
        warnings = "".join(f"<li>{html.escape(w)}</li>" for w in warned)
        lines = f"<ul>{reasons}</ul>" + (warning_html(f"<ul>{warnings}</ul>") if warnings else "")
    title = (
        ok_html("Filled the form, confirmed by a probe:")
        if verdict is not None and verdict.port is not None
        else warning_html("Filled the form from discovery alone (no probe confirmed a port):")
    )
    return f"{title}<ul>{items}</ul>{lines}"


class DiscoverPanel(Panel):
    """ "Find my settings": an address, then Find → Probe → fill the form's ``fields``.

    ``fields`` are the form's fields by setting name (``host``, ``port``, ``security``,
    ``auth``, ``username``, ``mode``, ``ews_url``); ``on_filled`` callbacks get the proposal
    after the fields were filled. ``dns_server``, ``ca_file`` and ``https_port`` are as in
    :func:`mailkit.discovery.run.discover` (the demo's DNS server and CA, for instance).
    Attributes tests use: ``email``, ``dns_server``, ``probe``, ``find_button``, ``status``,
    ``results``, ``report``, ``probes``, ``proposal``, and ``last_task`` (in a live kernel the
    lookups run as a task on its loop, so the notebook stays responsive; ``await`` it).
    """

    def __init__(
        self,
        fields: Mapping[str, Field] | None = None,
        *,
        dns_server: str | None = None,
        ca_file: str | None = None,
        https_port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        probe: bool = True,
        on_filled: Callable[[Proposal], None] | None = None,
    ) -> None:
        style = {"description_width": DESCRIPTION_WIDTH}
        self._fields = dict(fields or {})
        self._ca_file = ca_file
        self._https_port = https_port
        self._timeout = timeout
        self.on_filled: list[Callable[[Proposal], None]] = [on_filled] if on_filled else []
        self.email: Any = widgets.Text(
            description="Email address",
            placeholder="jane@example.com",
            style=style,
            layout={"width": "420px"},
        )
        self.dns_server: Any = widgets.Text(
            description="DNS server",
            value=dns_server or dns_server_from_env() or "",
            placeholder="(the system's resolvers)",
            style=style,
            layout={"width": "420px"},
        )
        self.probe: Any = widgets.Checkbox(
            description="Probe the servers found", value=probe, indent=False
        )
        self.find_button: Any = widgets.Button(
            description="Find my settings", icon="search", button_style="info"
        )
        self.find_button.on_click(lambda _button: self.find())
        self.status: Any = widgets.HTML()
        self.results: Any = widgets.HTML()
        self.report: DiscoveryReport | None = None
        self.probes: dict[str, Any] = {}
        self.proposal: Proposal | None = None
        self.last_task: asyncio.Task[None] | None = None
        self.widget: Any = widgets.VBox(
            [
                widgets.HBox([self.email, self.find_button]),
                self.dns_server,
                self.probe,
                self.status,
                self.results,
            ]
        )

    def _inputs(self) -> tuple[str, str | None] | None:
        """The address and DNS server, or None with the problem shown in the panel's words."""
        try:
            local, domain = split_address(self.email.value, field_name="Email address")
            server = self.dns_server.value.strip() or None
            if server is not None:
                parse_dns_server(server, flag="DNS server")
        except ValueError as exc:
            self.status.value = error_html(str(exc))
            return None
        return f"{local}@{domain}", server

    def find(self) -> None:
        """Discover (and probe, if ticked), show what was found, and fill the form: a task on
        the running loop if there is one (``last_task``), else to completion."""
        inputs = self._inputs()
        if inputs is None:
            return
        email, server = inputs
        self.status.value = note_html(f"Looking up {email}…")
        self.results.value = ""
        self.find_button.disabled = True
        work = self._find(email, server)
        self.last_task = start(work)

    async def _find(self, email: str, server: str | None) -> None:
        options: dict[str, Any] = {
            "dns_server": server,
            "timeout": self._timeout,
            "ca_file": self._ca_file,
            "https_port": self._https_port,
        }
        try:
            if self.probe.value:
                self.report, self.probes, self.proposal = await discover_and_probe_async(
                    email, **options
                )
            else:
                self.report, self.probes = await discover_async(email, **options), {}
                self.proposal = propose(self.report, {})
        except Exception as exc:  # shown, not lost in a task nobody awaits
            self.status.value = error_html(f"Discovery could not run: {exc}")
            return
        finally:
            self.find_button.disabled = False
        self.results.value = _candidates_html(self.report) + _proposal_html(self.proposal)
        self.status.value = ""
        if self.proposal is not None:
            self.fill(self.proposal)

    def fill(self, proposal: Proposal) -> None:
        """Copy the proposal into the form's fields, each with a note naming its source."""
        for name, value in proposal.settings().items():
            field = self._fields.get(name)
            if field is None:
                continue
            field.load(value)
            origin = proposal.provenance.get(name)
            field.set_note(f"found by {origin}" if origin else "")
        for callback in self.on_filled:
            callback(proposal)
