"""The test-send panel: Mail To, Send, the dialog filling in live, then a result card.

Sending is :func:`mailkit.testsend.send_test_async`; this panel only shows it. Each transcript
row arrives through ``on_row`` while the dialog runs and is drawn at once, so a slow server is
seen being slow rather than as a frozen button. In a notebook the kernel's asyncio loop is
running, and the send becomes a task on that loop: the kernel keeps handling messages (and
drawing rows) while it runs. Without a running loop (a script, a headless test) the send
simply runs to completion before ``click()`` returns.

The password is fetched from the secret store inside the send and never passes through a
widget; the rows are redacted by the transcript recorder before they reach this panel. Above
the result the panel says whose settings and whose credentials it tests (:func:`whose_test`):
a user who inherits the org's user name signs in with the org's account and password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.cards import diagnosis_card, outcome_card, success_card
from mailkit.errors import MailkitError
from mailkit.faces import Face, Where
from mailkit.resolve import effective
from mailkit.result import TestResult
from mailkit.runner import start
from mailkit.secrets import SecretStore
from mailkit.settings import AuthType, Mode, OrgSettings, Provenance, UserSettings
from mailkit.store import Store
from mailkit.testsend import ORG_ACCOUNT, credential_account, send_test_async
from mailkit.transcript import Row, Transcript
from mailkit.widgets.common import (
    DESCRIPTION_WIDTH,
    Panel,
    error_html,
    note_html,
    split_addresses,
)

if TYPE_CHECKING:
    from mailkit.senders.desktop import Launcher

__all__ = ["TestSendPanel", "diagnosis_card", "success_card", "whose_test"]

OrgSource = OrgSettings | Callable[[], OrgSettings]
UserSource = UserSettings | Callable[[], UserSettings | None] | None

_API_MODES = frozenset({Mode.GMAIL_API, Mode.MICROSOFT_GRAPH})
_DESKTOP_MODES = frozenset({Mode.OUTLOOK, Mode.MAPI, Mode.LOTUS_NOTES})
#: The override fields as the user form labels them.
_OVERRIDE_WORDS = {
    "mode": "mode",
    "host": "SMTP server",
    "port": "port",
    "security": "security",
    "auth": "authorization",
    "username": "user name",
    "from_address": "From address",
}


def _who(user: UserSettings) -> str:
    name = user.display_name or user.user_code
    address = user.email or (user.user_code if "@" in user.user_code else "")
    return f"{name} ({address})" if address and address != name else name


def whose_test(org: OrgSettings, user: UserSettings | None) -> str:
    """Whose settings and whose credentials a test send of ``user`` (None: the org) uses.

    The same rules as the send: :func:`~mailkit.resolve.effective` for the settings and
    :func:`~mailkit.testsend.credential_account` for whose secret is fetched.
    """
    eff = effective(org, user)
    own = user is not None and credential_account(org, user) != ORG_ACCOUNT
    owner = "their own" if own else "the organisation's"
    if eff.mode in _DESKTOP_MODES:
        credentials = f"no credentials of mailkit's: {eff.mode.value} on the workstation sends"
    elif eff.mode in _API_MODES:
        credentials = f"{owner} OAuth sign-in ({eff.mode.value})"
    elif eff.auth is AuthType.NONE:
        credentials = "no sign-in (authorization none)"
    else:
        account = eff.username or "(no user name set)"
        credentials = f"{owner} account {account}"
    if user is None:
        return f"Testing the organisation's settings, signing in with {credentials}."
    mine = [
        label for name, label in _OVERRIDE_WORDS.items() if eff.provenance[name] is Provenance.USER
    ]
    if not user.override_enabled:
        settings = "the organisation's settings (no override)"
    elif mine:
        settings = f"their own {', '.join(mine)}; the organisation's settings for the rest"
    else:
        settings = "the organisation's settings (the override sets nothing)"
    return f"Testing {_who(user)}: {settings} — signing in with {credentials}."


class TestSendPanel(Panel):
    """Send the test message as the org (``user=None``) or as a user, and show how it went.

    ``org_or_getter`` and ``user`` may be callables, read at each click, so the panel follows
    a form being edited (e.g. ``store.get_org`` and ``lambda: users.selected``). Attributes:
    ``to`` (Mail To), ``send_button``, ``transcript`` (HTML, filled live), ``card`` (the result
    card), ``error``, ``rows`` (the rows so far), ``result`` (the last :class:`TestResult`,
    None until one finishes) and ``last_task`` (the asyncio task of the last send in a live
    kernel, None when it ran synchronously).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        org_or_getter: OrgSource,
        user: UserSource = None,
        *,
        secrets: SecretStore,
        profile: str = "default",
        store: Store | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self._org = org_or_getter
        #: Opens a desktop hand-off's .eml (default: the system's handler); tests pass their own.
        self.launcher = launcher
        self._user = user
        self.secrets = secrets
        self.profile = profile
        self.store = store
        self.rows: list[Row] = []
        self.result: TestResult | None = None
        self.last_task: asyncio.Task[None] | None = None
        self.to: Any = widgets.Text(
            description="Mail To",
            placeholder="recipient@example.com (several: separate with commas)",
            style={"description_width": DESCRIPTION_WIDTH},
            layout={"width": "520px"},
        )
        self.send_button: Any = widgets.Button(
            description="Send test", button_style="primary", icon="paper-plane"
        )
        self.send_button.on_click(lambda _button: self.send())
        #: Shown after a desktop mode's hand-off: opens the .eml in the mail client, which sends.
        self.open_button: Any = widgets.Button(
            description="Open it", icon="envelope-open", layout={"display": "none"}
        )
        self.open_button.on_click(lambda _button: self.open_eml())
        self.state: Any = widgets.HTML()
        self.transcript: Any = widgets.HTML()
        self.card: Any = widgets.HTML()
        self.error: Any = widgets.HTML()
        #: Whose settings and credentials the next (or last) send tests; see :func:`whose_test`.
        self.who: Any = widgets.HTML()
        self.widget: Any = widgets.VBox(
            [
                self.who,
                widgets.HBox([self.to, self.send_button, self.open_button, self.state]),
                self.error,
                self.card,
                self.transcript,
            ]
        )

        self.describe()

    @property
    def sending(self) -> bool:
        return self.last_task is not None and not self.last_task.done()

    def _subject(self) -> tuple[OrgSettings, UserSettings | None]:
        org = self._org() if callable(self._org) else self._org
        user = self._user() if callable(self._user) else self._user
        return org, user

    def describe(self) -> str:
        """Say (again) whose settings and credentials a send would test, e.g. after another
        user was picked; returns the sentence, or "" when the settings cannot be read."""
        try:
            org, user = self._subject()
        except MailkitError:
            self.who.value = ""
            return ""
        sentence = whose_test(org, user)
        self.who.value = note_html(sentence)
        return sentence

    def send(self) -> None:
        """Start a send: a task on the running loop if there is one, else to completion."""
        if self.sending:
            return
        self.rows = []
        self.result = None
        self.transcript.value = self.card.value = self.error.value = ""
        self.open_button.layout.display = "none"
        try:
            org, user = self._subject()
        except MailkitError as exc:  # e.g. a getter that validates an unsaved form
            self.error.value = error_html(str(exc))
            return
        self.who.value = note_html(whose_test(org, user))
        who = "the org" if user is None else f"user {user.user_code}"
        self.send_button.disabled = True
        self.state.value = note_html(f"sending as {who}…")
        dialog = self._dialog(org, user, split_addresses(self.to.value))
        self.last_task = start(dialog)

    async def _dialog(self, org: OrgSettings, user: UserSettings | None, to: list[str]) -> None:
        try:
            result = await send_test_async(
                org,
                user,
                to=to,
                secrets=self.secrets,
                profile=self.profile,
                store=self.store,
                on_row=self._add_row,
            )
        except Exception as exc:  # shown, not lost in a task nobody awaits
            self.error.value = error_html(f"The test could not run: {type(exc).__name__}: {exc}")
            self.state.value = ""
        else:
            self.result = result
            # In the form's words: the "CA file" field, the password fields of whose form.
            where = Where(profile=self.profile, account=credential_account(org, user))
            self.card.value = outcome_card(result, Face.WIDGET, where)
            self.rows = list(result.transcript.rows)
            self._draw(result.transcript)
            if result.eml_path is not None:
                self.open_button.layout.display = ""
            self.state.value = note_html(
                f"{len(result.transcript)} transcript rows, {result.duration_ms:.0f} ms"
            )
        finally:
            self.send_button.disabled = False

    def open_eml(self) -> str | None:
        """Open the last hand-off's .eml with the launcher; None when opened, else why not
        (also shown in the panel)."""
        from mailkit.senders.desktop import open_file

        path = self.result.eml_path if self.result is not None else None
        if path is None:
            return None
        problem = open_file(path, self.launcher)
        if problem is None:
            self.state.value = note_html(f"Opened {path} with the system's mail program.")
        else:
            self.state.value = error_html(f"Not opened: {problem}.")
        return problem

    def clear(self) -> None:
        """Forget the last result's card and transcript when what it tested has changed (a new
        sign-in, a revoked token): a stale card would contradict the status above it. A send
        under way is left alone; Mail To stays."""
        if self.sending:
            return
        self.rows = []
        self.result = None
        self.transcript.value = self.card.value = self.error.value = self.state.value = ""

    def _add_row(self, row: Row) -> None:
        self.rows.append(row)
        self._draw(Transcript(tuple(self.rows)))

    def _draw(self, transcript: Transcript) -> None:
        self.transcript.value = transcript.to_html()
