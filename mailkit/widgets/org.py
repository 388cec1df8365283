"""The org settings form ("General Settings"): mode, server, sender, priority, feature routes.

Bound to a :class:`~mailkit.store.Store`: it shows the stored org, and its Save button
validates the whole form as one :class:`~mailkit.settings.OrgSettings` and writes it in one
transaction — or writes nothing and shows each problem beside its field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.discovery.candidates import Proposal
from mailkit.errors import FieldProblem
from mailkit.settings import (
    ROUTE_SUBJECTS,
    SUBJECT_FIELDS,
    Edition,
    FeatureRoute,
    Mode,
    OrgSettings,
    Priority,
    Profile,
    check_route_name,
    validate,
)
from mailkit.store import Store
from mailkit.widgets.common import (
    Field,
    Form,
    checkbox_field,
    choice_field,
    error_html,
    list_field,
    note_html,
    text_field,
)
from mailkit.widgets.discover import DiscoverPanel
from mailkit.widgets.modes import ModeSections
from mailkit.widgets.presets import PresetChooser
from mailkit.widgets.probe import ProbePanel

__all__ = ["PRIORITY_NOTE", "OrgForm", "RoutesEditor"]

#: What priority really does, beside the field where it is chosen.
PRIORITY_NOTE = (
    "Leave it at normal. High only puts a flag next to the message in the recipient's inbox; "
    "some servers (Gmail) ignore low."
)


class RoutesEditor:
    """One block per feature route, plus "Add feature" for features beyond the built-in three.

    Fields are named ``routes.<feature>.<attribute>`` so that the model's problems
    (``routes.work_orders.recipients.1``) land on the right box.
    """

    def __init__(self, register: Callable[[Field], None]) -> None:
        self._register = register
        self.names: list[str] = []
        #: feature → attribute → field, e.g. ``fields["work_orders"]["recipients"]``.
        self.fields: dict[str, dict[str, Field]] = {}
        self.box: Any = widgets.VBox()
        self.new_name: Any = widgets.Text(
            description="New feature", placeholder="e.g. invoices", layout={"width": "320px"}
        )
        self.add_button: Any = widgets.Button(description="Add feature", icon="plus")
        self.add_button.on_click(lambda _button: self.add_typed())
        self.add_error: Any = widgets.HTML()
        self.widget: Any = widgets.VBox(
            [
                widgets.HTML("<h4>Feature routes</h4>"),
                widgets.HTML(
                    note_html(
                        "Which product features send mail, from which sender (org, or a "
                        "user code), to whom, with which subject. Subject placeholders: "
                        + ", ".join("{" + name + "}" for name in sorted(SUBJECT_FIELDS))
                    )
                ),
                self.box,
                widgets.HBox([self.new_name, self.add_button]),
                self.add_error,
            ]
        )

    def add(self, name: str) -> dict[str, Field]:
        """Add the block for feature ``name`` (already checked) and return its fields."""
        prefix = f"routes.{name}"
        fields = {
            "enabled": checkbox_field(f"{prefix}.enabled", "Enabled"),
            "sender": text_field(f"{prefix}.sender", "Sender", placeholder="org or a user code"),
            "recipients": list_field(
                f"{prefix}.recipients",
                "Recipients",
                placeholder="one address per line (or comma-separated)",
            ),
            "subject_template": text_field(f"{prefix}.subject_template", "Subject template"),
        }
        for field in fields.values():
            self._register(field)
        self.fields[name] = fields
        self.reset(name)
        title = name.replace("_", " ").capitalize()
        self.box.children = (
            *self.box.children,
            widgets.VBox(
                [widgets.HTML(f"<b>{title}</b> <small>({name})</small>")]
                + [field.widget for field in fields.values()],
                layout={"border": "1px solid #ddd", "padding": "4px", "margin": "4px 0"},
            ),
        )
        self.names.append(name)
        return fields

    def reset(self, name: str) -> None:
        """Show the model's defaults for feature ``name`` (a route the org has not saved)."""
        defaults = (
            FeatureRoute(subject_template=ROUTE_SUBJECTS[name])
            if name in ROUTE_SUBJECTS
            else FeatureRoute()
        )
        for attribute, field in self.fields[name].items():
            field.load(getattr(defaults, attribute))

    def add_typed(self) -> bool:
        """Add the feature named in the "New feature" box, checked by the model's own rule."""
        name = self.new_name.value.strip()
        self.add_error.value = ""
        try:
            check_route_name(name)
        except ValueError as exc:
            self.add_error.value = error_html(str(exc))
            return False
        if name in self.names:
            self.add_error.value = error_html(f"{name} is already listed")
            return False
        self.add(name)
        self.new_name.value = ""
        return True


class OrgForm(Form):
    """Edit and save the org settings of ``store``.

    Attributes tests and notebooks use: ``fields`` (name → :class:`Field`), ``save_button``,
    ``status``, ``general``, ``sections`` (:class:`ModeSections`), ``presets``
    (:class:`PresetChooser`), ``routes`` (:class:`RoutesEditor`), ``org`` (the last org loaded
    or saved), ``on_saved`` (callbacks given the saved org), ``discover`` (the "Find my
    settings" step, :class:`DiscoverPanel`; ``dns_server`` and ``ca_file`` go to it) and
    ``probe`` (what the server offers, :class:`ProbePanel`, whose "Apply to form" fills the
    server, port and security; ``ca_file`` goes to it too).
    """

    def __init__(
        self, store: Store, *, dns_server: str | None = None, ca_file: str | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.on_saved: list[Callable[[OrgSettings], None]] = []
        general = [
            text_field("name", "Organisation"),
            choice_field(
                "edition",
                "Edition",
                Edition,
                blank=None,
                note="cloud: SMTP only, user codes are email addresses",
            ),
            choice_field("mode", "Mode", Mode, blank="(not set: smtp)"),
            text_field("from_address", "From address", placeholder="it@example.com"),
            text_field("from_name", "From name", placeholder="e.g. Maintenance"),
            choice_field(
                "priority",
                "Priority",
                Priority,
                blank="(not set: normal)",
                note=PRIORITY_NOTE,
            ),
        ]
        self.add(*general)
        self.sections = ModeSections()
        self.add(*self.sections.fields.values())
        self.fields["mode"].input.observe(
            lambda change: self.sections.show(change["new"]), names="value"
        )
        self.presets = PresetChooser(self.sections.smtp, from_field=self.fields["from_address"])
        self.discover = DiscoverPanel(
            self.fields, dns_server=dns_server, ca_file=ca_file, on_filled=self._discovered
        )
        self.probe = ProbePanel(
            self.fields, ca_file=ca_file, on_applied=lambda _report: self.sections.show(Mode.SMTP)
        )
        self.routes = RoutesEditor(self.add)
        self.save_button: Any = widgets.Button(
            description="Save", button_style="primary", icon="save"
        )
        self.save_button.on_click(lambda _button: self.save())
        self.org: OrgSettings = store.get_org()
        self.widget: Any = widgets.VBox(
            [
                widgets.HTML("<h3>Organisation settings</h3>"),
                widgets.HTML("<h4>Find my settings</h4>"),
                self.discover.widget,
                widgets.HTML("<h4>Check what the server offers</h4>"),
                self.probe.widget,
                widgets.HTML("<h4>Suggest settings from an email address</h4>"),
                self.presets.widget,
                widgets.HTML("<h4>General</h4>"),
                *(field.widget for field in general),
                self.sections.widget,
                self.routes.widget,
                self.general,
                widgets.HBox([self.save_button, self.status]),
            ]
        )
        self.load(self.org)

    def load(self, org: OrgSettings) -> None:
        """Show ``org``: every field, every route (adding blocks for its extra features).

        What is loaded counts as filled in, not typed: a later "Suggest settings" replaces it.
        """
        with self.quietly():
            for name in org.routes:
                if name not in self.routes.names:
                    self.routes.add(name)
            self.load_model(org)
            for name in self.routes.names:
                if name not in org.routes:  # added here but never saved
                    self.routes.reset(name)
            self.sections.show(org.mode)
        self.org = org
        self.presets.remember()
        self.dirty = False

    def _discovered(self, proposal: Proposal) -> None:
        """Show the section of the mode found; a later preset suggestion may replace it."""
        self.sections.show(proposal.candidate.mode)
        self.presets.remember()

    def reload(self) -> None:
        """Show what the store holds now, dropping unsaved edits."""
        self.clear_problems()
        self.load(self.store.get_org())

    def _candidate(self) -> OrgSettings:
        # Start from the stored org so that a setting this form does not show survives.
        data = {**self.store.get_org().model_dump(), **self.values()}
        org: OrgSettings = validate(OrgSettings, data, context="the org settings")
        return org

    def check(self) -> list[FieldProblem]:
        """What saving would refuse now: the org's own rules, then those it makes with the users."""

        def run() -> None:
            org = self._candidate()
            validate(Profile, {"org": org, "users": self.store.users()}, context="the profile")

        return self.problems_of(run)

    def save(self) -> bool:
        """Validate the form as OrgSettings and store it; False (nothing stored) if invalid."""

        def write() -> str:
            org = self._candidate()
            self.store.set_org(org)
            self.org = org
            return f"Saved the org settings at {datetime.now():%H:%M:%S}."

        saved = self.attempt(write)
        if saved:
            for callback in self.on_saved:
                callback(self.org)
        return saved
