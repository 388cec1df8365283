"""The routes panel: each feature route with what its mail looks like, and a Test button.

Seed 000 asks admins to review the Requests, Purchase Orders and Work Orders emails after
setup. Each line shows a route's sender, recipients and its subject filled with sample values
(or, beside the route, why it cannot be filled); its Test button sends that message through the
route's sender (:func:`mailkit.testsend.send_route_test_async`) and shows the same result card
and transcript as the test-send panel. Problems are named by the routes editor's field labels.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.cards import outcome_card
from mailkit.errors import FieldProblem, MailkitError, SettingsError
from mailkit.faces import Face, Where
from mailkit.result import TestResult
from mailkit.routes import RouteTest, route_test
from mailkit.runner import start
from mailkit.secrets import SecretStore
from mailkit.settings import OrgSettings, UserSettings
from mailkit.testsend import credential_account, send_route_test_async
from mailkit.transcript import Row, Transcript
from mailkit.widgets.common import Panel, error_html, note_html

if TYPE_CHECKING:
    from mailkit.senders.desktop import Launcher
    from mailkit.store import Store

__all__ = ["RoutesPanel"]

OrgSource = OrgSettings | Callable[[], OrgSettings]
UsersSource = Iterable[UserSettings] | Callable[[], Iterable[UserSettings]]

#: A route's fields as the routes editor of the org form labels them.
_LABELS = {
    "enabled": "Enabled",
    "sender": "Sender",
    "recipients": "Recipients",
    "subject_template": "Subject template",
}


def _in_form_words(problem: FieldProblem) -> str:
    """``routes.work_orders.recipients: is empty`` as “Recipients” of the work_orders route."""
    parts = problem.field.split(".")
    if len(parts) >= 3 and parts[0] == "routes" and parts[2] in _LABELS:
        return f"“{_LABELS[parts[2]]}” of the {parts[1]} route {problem.message}"
    if problem.field == "route":
        return f"The route {problem.message}"
    return f"{problem.field}: {problem.message}"


class RoutesPanel(Panel):
    """Every feature route of the org, each with a Test button.

    ``org_or_getter`` and ``users`` may be callables, read at each refresh and click, so the
    panel follows the stored settings (e.g. ``store.get_org`` and ``store.users``). Attributes
    tests and notebooks use: ``buttons`` (route → its Test button), ``lines`` (route → its
    HTML line), ``card``, ``transcript``, ``error``, ``state``, ``result`` (the last
    :class:`TestResult`), ``route`` (the last :class:`RouteTest`) and ``last_task``.
    """

    def __init__(
        self,
        org_or_getter: OrgSource,
        users: UsersSource = (),
        *,
        secrets: SecretStore,
        profile: str = "default",
        store: Store | None = None,
        launcher: Launcher | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self._org = org_or_getter
        self._users = users
        self.secrets = secrets
        self.profile = profile
        self.store = store
        self.launcher = launcher
        self._today = today
        self.buttons: dict[str, Any] = {}
        self.lines: dict[str, Any] = {}
        self.rows: list[Row] = []
        self.result: TestResult | None = None
        self.route: RouteTest | None = None
        self.last_task: asyncio.Task[None] | None = None
        self.box: Any = widgets.VBox()
        self.refresh_button: Any = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.state: Any = widgets.HTML()
        self.error: Any = widgets.HTML()
        self.card: Any = widgets.HTML()
        self.transcript: Any = widgets.HTML()
        self.widget: Any = widgets.VBox(
            [
                widgets.HTML("<h4>Feature routes</h4>"),
                widgets.HTML(
                    note_html(
                        "Each route's mail as its test sends it: the subject template filled with "
                        "sample values, from the route's sender to its recipients. Test sends "
                        "it through that sender's own settings."
                    )
                ),
                self.box,
                widgets.HBox([self.refresh_button, self.state]),
                self.error,
                self.card,
                self.transcript,
            ]
        )
        self.refresh()

    def _settings(self) -> tuple[OrgSettings, list[UserSettings]]:
        org = self._org() if callable(self._org) else self._org
        users = self._users() if callable(self._users) else self._users
        return org, list(users)

    @property
    def sending(self) -> bool:
        return self.last_task is not None and not self.last_task.done()

    def refresh(self) -> None:
        """Show every route again as the settings are now (after a save, say)."""
        try:
            org, users = self._settings()
        except MailkitError as exc:
            self.error.value = error_html(str(exc))
            return
        self.buttons, self.lines, children = {}, {}, []
        for name, route in org.routes.items():
            line = widgets.HTML(self._describe(org, name, users))
            button = widgets.Button(
                description="Test", icon="paper-plane", tooltip=f"Send the {name} route's test"
            )
            button.on_click(lambda _button, name=name: self.test(name))
            self.lines[name], self.buttons[name] = line, button
            title = widgets.HTML(
                f"<b>{html.escape(name)}</b> "
                f"<small>({'enabled' if route.enabled else 'disabled'})</small>"
            )
            children.append(widgets.HBox([button, widgets.VBox([title, line])]))
        self.box.children = tuple(children)

    def _describe(self, org: OrgSettings, name: str, users: list[UserSettings]) -> str:
        """The route's line (escaped by the note and error helpers): what its test sends."""
        try:
            test = route_test(org, name, users, today=self._today())
        except SettingsError as exc:
            return error_html("; ".join(_in_form_words(p) for p in exc.problems))
        return note_html(
            f"as {test.sender} to {', '.join(test.recipients)} — subject: {test.subject}"
        )

    def test(self, name: str) -> None:
        """Send route ``name``'s test: a task on the running loop if there is one, else at once."""
        if self.sending:
            return
        self.rows, self.result, self.route = [], None, None
        self.card.value = self.transcript.value = self.error.value = ""
        try:
            org, users = self._settings()
            self.route = route_test(org, name, users, today=self._today())
        except SettingsError as exc:
            self.error.value = error_html(
                "This route cannot be tested yet: "
                + "; ".join(_in_form_words(p) for p in exc.problems)
            )
            return
        except MailkitError as exc:
            self.error.value = error_html(str(exc))
            return
        for button in self.buttons.values():
            button.disabled = True
        self.state.value = note_html(f"testing the {name} route as {self.route.sender}…")
        dialog = self._dialog(org, users, self.route)
        self.last_task = start(dialog)

    async def _dialog(self, org: OrgSettings, users: list[UserSettings], test: RouteTest) -> None:
        try:
            result = await send_route_test_async(
                org,
                test.feature,
                users,
                today=self._today(),
                secrets=self.secrets,
                profile=self.profile,
                store=self.store,
                on_row=self._add_row,
                launcher=self.launcher,
            )
        except Exception as exc:  # shown, not lost in a task nobody awaits
            self.error.value = error_html(f"The test could not run: {type(exc).__name__}: {exc}")
            self.state.value = ""
        else:
            self.result = result
            where = Where(profile=self.profile, account=credential_account(org, test.user))
            self.card.value = outcome_card(result, Face.WIDGET, where)
            self.rows = list(result.transcript.rows)
            self.transcript.value = result.transcript.to_html()
            self.state.value = note_html(
                f"{test.feature}: {len(result.transcript)} transcript rows, "
                f"{result.duration_ms:.0f} ms"
            )
        finally:
            for button in self.buttons.values():
                button.disabled = False

    def _add_row(self, row: Row) -> None:
        self.rows.append(row)
        self.transcript.value = Transcript(tuple(self.rows)).to_html()
