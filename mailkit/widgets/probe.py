"""The probe panel: what a mail server offers on each port, the verdict, and "Apply to form".

It composes :func:`mailkit.probe` and the form's fields and holds no logic of its own: the
table is the report's rows, the reasons and warnings are the verdict's in the form's words
(“CA file”, not ``ca_file``). "Apply to form" copies the verdict's server, port and security
into the form's fields and notes beside each where it came from. Nothing is saved: the person
reviews and presses Save.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.errors import SettingsError
from mailkit.faces import Face
from mailkit.probereport import DEFAULT_PORTS, ProbeReport
from mailkit.smtpprobe import IMPLICIT_TLS_PORTS, probe
from mailkit.widgets.common import (
    DESCRIPTION_WIDTH,
    INPUT_WIDTH,
    Field,
    Panel,
    error_html,
    note_html,
    ok_html,
    warning_html,
)

__all__ = ["LABELS", "ProbePanel"]

#: The panel's labels for the probe's arguments (a problem is shown under its label).
LABELS = {
    "host": "SMTP server",
    "ports": "Ports",
    "tls_ports": "Implicit TLS ports",
    "ca_file": "CA file",
    "timeout": "Timeout (s)",
    "silent_after": "Silent after (s)",
}

#: The form's labels of the settings "Apply to form" fills.
_FORM_LABELS = {"host": "SMTP server", "port": "Port", "security": "Security"}

#: The report's columns the panel's table shows, with their headings.
_COLUMNS = {
    "port": "Port",
    "outcome": "Outcome",
    "security": "Security",
    "greeting": "Greeting",
    "auth_before_tls": "AUTH before TLS",
    "auth_after_tls": "AUTH after TLS",
    "extensions": "Extensions",
    "tls_version": "TLS",
    "cert_subject": "Certificate",
    "cert_expires": "Expires",
    "cert_verified": "Verified",
    "total_ms": "ms",
    "detail": "Notes",
}


def _cell(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if column == "cert_verified" and str(value).startswith("yes"):
        value = "yes"  # against what is said once, under the table
    return html.escape("" if value is None else str(value))


def report_html(report: ProbeReport) -> str:
    """The verdict with its reasons and warnings first, then one table row per port."""
    verdict = report.verdict
    reasons, warnings = verdict.render(Face.WIDGET)
    if verdict.port is None:
        title = warning_html(f"No usable port on {report.host}.")
    elif verdict.trusted:
        title = ok_html(f"Use {verdict.summary}.")
    else:
        title = warning_html(f"Best found: {verdict.summary}, but its TLS is not trusted yet.")
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    warned = "".join(f"<li>{warning_html(w)}</li>" for w in warnings)
    head = "".join(f"<th>{html.escape(title)}</th>" for title in _COLUMNS.values())
    rows = []
    for row in report.rows():
        style = " style='font-weight:bold'" if row["recommended"] else ""
        cells = "".join(f"<td>{_cell(row, c)}</td>" for c in _COLUMNS)
        rows.append(f"<tr{style}>{cells}</tr>")
    table = (
        "<div style='overflow-x:auto'><table class='mailkit-probe' "
        "style='font-size:85%;line-height:1.3'>"
        f"<tr>{head}</tr>{''.join(rows)}</table></div>"
    )
    timing = note_html(
        f"Probed {len(report.ports)} port(s) of {report.host} at once in "
        f"{report.elapsed_ms / 1000:.2f} s; certificates checked against the {report.trust}."
    )
    return title + f"<ul>{items}</ul>" + (f"<ul>{warned}</ul>" if warned else "") + table + timing


class ProbePanel(Panel):
    """Probe a server and fill the form's ``host``, ``port`` and ``security`` from the verdict.

    ``fields`` are the form's fields by setting name; an empty "SMTP server" or "CA file" box
    here uses the form's. ``on_applied`` callbacks get the report after the fields were filled.
    Attributes tests use: ``host``, ``ports``, ``tls_ports``, ``ca_file``, ``probe_button``,
    ``apply_button``, ``status``, ``results``, ``report``, ``applied`` (setting -> where from).
    """

    def __init__(
        self,
        fields: Mapping[str, Field] | None = None,
        *,
        ca_file: str | None = None,
        timeout: float = 10.0,
        on_applied: Callable[[ProbeReport], None] | None = None,
    ) -> None:
        style = {"description_width": DESCRIPTION_WIDTH}
        layout = {"width": INPUT_WIDTH}
        self._fields = dict(fields or {})
        self._timeout = timeout
        self.on_applied: list[Callable[[ProbeReport], None]] = [on_applied] if on_applied else []
        self.host: Any = widgets.Text(
            description=LABELS["host"],
            placeholder="(the form's SMTP server)",
            style=style,
            layout=layout,
        )
        self.ports: Any = widgets.Text(
            description=LABELS["ports"],
            value=",".join(str(p) for p in DEFAULT_PORTS),
            style=style,
            layout=layout,
        )
        self.tls_ports: Any = widgets.Text(
            description=LABELS["tls_ports"],
            value=",".join(str(p) for p in IMPLICIT_TLS_PORTS),
            placeholder="(none)",
            style=style,
            layout=layout,
        )
        self.ca_file: Any = widgets.Text(
            description=LABELS["ca_file"],
            value=ca_file or "",
            placeholder="(the form's CA file, else the system's CA store)",
            style=style,
            layout=layout,
        )
        self.probe_button: Any = widgets.Button(
            description="Probe", icon="plug", button_style="info"
        )
        self.probe_button.on_click(lambda _button: self.run())
        self.apply_button: Any = widgets.Button(
            description="Apply to form", icon="check", disabled=True
        )
        self.apply_button.on_click(lambda _button: self.apply())
        self.status: Any = widgets.HTML()
        self.results: Any = widgets.HTML()
        self.report: ProbeReport | None = None
        self.applied: dict[str, str] = {}
        self.widget: Any = widgets.VBox(
            [
                self.host,
                self.ports,
                self.tls_ports,
                self.ca_file,
                widgets.HBox([self.probe_button, self.apply_button]),
                self.status,
                self.results,
            ]
        )

    def _form_value(self, name: str) -> str:
        field = self._fields.get(name)
        return str(field.input.value).strip() if field is not None else ""

    def run(self) -> ProbeReport | None:
        """Probe the ports and show the report; None (and the problem shown) on bad input."""
        host = self.host.value.strip() or self._form_value("host")
        ca_file = self.ca_file.value.strip() or self._form_value("ca_file") or None
        self.apply_button.disabled = True
        self.results.value = ""
        self.status.value = note_html(f"Probing {host}…")
        try:
            report = probe(
                host,
                self.ports.value,
                tls_ports=self.tls_ports.value,
                ca_file=ca_file,
                timeout=self._timeout,
            )
        except SettingsError as exc:
            self.status.value = "<br>".join(
                error_html(f"{LABELS.get(p.field, p.field)}: {p.message}") for p in exc.problems
            )
            return None
        self.report = report
        self.status.value = ""
        self.results.value = report_html(report)
        self.apply_button.disabled = report.verdict.port is None
        return report

    def apply(self) -> dict[str, str]:
        """Fill the form's server, port and security from the verdict; each notes its source.

        Returns what was filled (setting -> where it came from); nothing without a verdict.
        """
        report = self.report
        if report is None:
            return {}
        verdict = report.verdict
        port, security = verdict.port, verdict.security
        if port is None or security is None:
            return {}
        chosen = report.port(port)
        when = f"{report.started.astimezone():%H:%M}"
        trust = "certificate verified" if verdict.trusted else "certificate NOT verified"
        if chosen is not None and chosen.tls is None:
            trust = "no TLS"
        source = f"the probe of {report.host} at {when}"
        values = {
            "host": (report.host, source),
            "port": (port, f"{source}: the recommended port"),
            "security": (
                security,
                f"{source}: port {port} answered with {security.value} ({trust})",
            ),
        }
        self.applied = {}
        for name, (value, origin) in values.items():
            field = self._fields.get(name)
            if field is None:
                continue
            field.load(value)
            field.set_note(f"from {origin}")
            self.applied[name] = origin
        filled = ", ".join(_FORM_LABELS[name] for name in self.applied)
        self.status.value = (
            ok_html(
                f"Filled {filled} from the probe at {datetime.now():%H:%M:%S}; review and "
                "press Save."
            )
            if filled
            else note_html("This panel is not attached to a form: nothing to fill.")
        )
        for callback in self.on_applied:
            callback(report)
        return self.applied
