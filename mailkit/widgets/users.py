"""The user list and the user-override form ("User-Specific Email Configuration").

An empty override field inherits. The form shows what would be inherited — greyed, as the
placeholder of each box (or the "inherit" choice of each drop-down), with its source — and,
beside each field, the effective value and where it comes from. Both come from
:func:`mailkit.resolve.effective`, the same rule a send uses, so the form cannot drift from it.

The cloud edition's rules are the model's (:func:`mailkit.settings.user_problems`, checked by
:meth:`Store.put_user`); the form only makes them visible: the From address box is locked,
because there it is always the user code.

Given a secret store, the form also takes the user's own password (typed twice), stored under
the user's account — ``secret_key(profile, user_code)`` — by the same Save, and says whose
password a send would use: the user's, or the organisation's when the user signs in with the
org's user name (:func:`mailkit.testsend.credential_account` decides, as it does for a send).
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.errors import (
    FieldProblem,
    MailkitError,
    SecretStoreError,
    SettingsError,
    UnsafeSettingWarning,
)
from mailkit.resolve import Effective, effective
from mailkit.secrets import SecretStore, secret_key
from mailkit.settings import (
    OVERRIDE_FIELDS,
    AuthType,
    Edition,
    Mode,
    OrgSettings,
    Provenance,
    UserSettings,
    user_problems,
    validate,
)
from mailkit.store import Store
from mailkit.testsend import ORG_ACCOUNT, credential_account
from mailkit.widgets.common import (
    Field,
    Form,
    Panel,
    checkbox_field,
    choice_field,
    error_html,
    note_html,
    relabel_blank,
    text_field,
    warning_html,
)
from mailkit.widgets.modes import SmtpSection
from mailkit.widgets.password import PasswordFields

__all__ = ["UserForm", "UsersPanel"]

_SOURCE_WORDS = {
    Provenance.ORG: "from the org settings",
    Provenance.DEFAULT: "mailkit's default",
    Provenance.USER: "this user's override",
}
_CLOUD_FROM = "the user code (cloud edition)"


def _shown(value: Any) -> str:
    if value is None:
        return "not set"
    return str(getattr(value, "value", value))


_NO_KEY = (
    "No password can be stored under this user code ({problem}): rename the user, or leave "
    "the password empty."
)
#: The modes in which mailkit signs in with a password (the others use OAuth or a desktop app).
_PASSWORD_MODES = frozenset({Mode.SMTP, Mode.EXCHANGE_EWS})


class UserForm(Form):
    """Edit one user of ``store`` (``user=None``: a new user) and save it with Save.

    With ``secrets``, the form has the user's password and its confirmation (``passwords``, a
    :class:`~mailkit.widgets.password.PasswordFields`), saved by the same button under
    ``secret_key(profile, user_code)``; ``profile`` defaults to the store's profile name. Left
    empty, the stored password stays as it is.

    Attributes: ``fields``, ``save_button``, ``status``, ``general``, ``user`` (the user as
    last loaded or saved, None for a new one), ``org`` (the org the inherited values come
    from; :meth:`refresh` re-reads it), ``passwords`` and ``password_note`` (None and empty
    without a secret store) and ``on_saved`` (callbacks given the saved user).
    """

    def __init__(
        self,
        store: Store,
        user: UserSettings | None = None,
        *,
        secrets: SecretStore | None = None,
        profile: str | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.secrets = secrets
        self.profile = profile or store.profile_name
        self.passwords: PasswordFields | None = None
        self.password_note: Any = widgets.HTML()
        #: Whether a password is stored for the open user (None: unknown, or no store).
        self.has_password: bool | None = None
        self.on_saved: list[Callable[[UserSettings], None]] = []
        self.org: OrgSettings = store.get_org()
        self.user: UserSettings | None = None
        identity = [
            text_field("user_code", "User code", placeholder="e.g. alice@example.com"),
            text_field("display_name", "Display name"),
            text_field("email", "Email", placeholder="alice@example.com"),
        ]
        self.override = checkbox_field(
            "override_enabled", "Use user-specific email settings (override the org)"
        )
        smtp = SmtpSection(advanced=False, blank="inherit")
        self.override_fields: dict[str, Field] = {
            "mode": choice_field("mode", "Mode", Mode, blank="inherit"),
            **smtp.fields,
            "from_address": text_field("from_address", "From address"),
        }
        assert set(self.override_fields) == set(OVERRIDE_FIELDS)
        self.add(*identity, self.override, *self.override_fields.values())
        self.cloud_note: Any = widgets.HTML()
        self.save_button: Any = widgets.Button(
            description="Save user", button_style="primary", icon="save"
        )
        self.save_button.on_click(lambda _button: self.save())
        self.title: Any = widgets.HTML()
        password_section: list[Any] = []
        if secrets is not None:
            self.passwords = PasswordFields(label="Password")
            for box in (self.passwords.password, self.passwords.confirmation):
                self.watch(box)
            password_section = [
                widgets.HTML("<b>This user's password</b>"),
                self.password_note,
                self.passwords.widget,
            ]
        self.widget: Any = widgets.VBox(
            [
                self.title,
                *(field.widget for field in identity),
                self.cloud_note,
                self.override.widget,
                *(self.override_fields[name].widget for name in OVERRIDE_FIELDS),
                *password_section,
                self.general,
                widgets.HBox([self.save_button, self.status]),
            ]
        )
        for field in self.fields.values():
            refresh = self._show_inherited if field is self.override else self._show_effective
            field.input.observe(lambda _change, refresh=refresh: refresh(), names="value")
        self.load(user)

    # ------------------------------------------------------------------ showing

    def load(self, user: UserSettings | None) -> None:
        """Show ``user``, or an empty form for a new user (None)."""
        self.clear_problems()
        self.user = user
        with self.quietly():
            if self.passwords is not None and self.passwords.typed:
                self.passwords.take()  # a password typed for another user is not theirs
            if user is None:
                for field in self.fields.values():
                    field.load(None)
            else:
                self.load_model(user)
            # A stored user keeps its code: saving under another code would add a second user.
            self.fields["user_code"].disabled = user is not None
            self.title.value = (
                "<h4>New user</h4>"
                if user is None
                else f"<h4>User {html.escape(user.user_code)}</h4>"
            )
            self._look_up_password()
            self._show_inherited()
        self.dirty = False

    def refresh(self) -> None:
        """Re-read the org (edition, inherited values) from the store."""
        self.org = self.store.get_org()
        with self.quietly():
            self._show_inherited()

    def _look_up_password(self) -> None:
        """Whether the open user has a password stored; asked on load and save, not per key."""
        self.has_password = None
        if self.secrets is None or self.user is None:
            return
        try:
            stored = self.secrets.get(secret_key(self.profile, self.user.user_code))
        except (SecretStoreError, ValueError):
            return
        self.has_password = stored is not None

    def _show_inherited(self) -> None:
        """Placeholders, locked boxes and notes for the current org and override switch."""
        inherited = effective(self.org, None)
        cloud = self.org.edition is Edition.CLOUD
        overriding = bool(self.override.input.value)
        for name, field in self.override_fields.items():
            if name == "from_address" and cloud:
                hint = _CLOUD_FROM
            else:
                source = inherited.provenance[name]
                hint = f"inherit: {_shown(getattr(inherited, name))} ({source.value})"
            if isinstance(field.input, widgets.Dropdown):
                relabel_blank(field, hint)
            else:
                field.input.placeholder = hint
            field.disabled = not overriding or (name == "from_address" and cloud)
        self.cloud_note.value = (
            note_html(
                "Cloud edition: the user code is the user's email address, the From address "
                "is always the user code, and mail goes out through SMTP only."
            )
            if cloud
            else ""
        )
        self._show_effective()

    def _preview(self) -> Effective:
        """The effective settings the form's values would give, or the org's if not valid."""
        return effective(self.org, self._candidate())

    def _show_effective(self) -> None:
        candidate = self._candidate()
        preview = effective(self.org, candidate)
        self._show_password_note(candidate, preview)
        for name, field in self.override_fields.items():
            source = preview.provenance[name]
            value = _shown(getattr(preview, name))
            if name == "from_address" and self.org.edition is Edition.CLOUD:
                field.set_note(f"→ {value}: {_CLOUD_FROM}")
            else:
                field.set_note(f"→ {value}: {_SOURCE_WORDS[source]}")

    def _candidate(self) -> UserSettings | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnsafeSettingWarning)
            try:
                candidate: UserSettings = validate(UserSettings, self.values())
            except SettingsError:
                return None
        return candidate

    def _show_password_note(self, candidate: UserSettings | None, preview: Effective) -> None:
        """Whose password a send for this user would use, and where this form stores one."""
        if self.secrets is None:
            return
        code = candidate.user_code if candidate is not None else ""
        if candidate is None or not code:
            self.password_note.value = note_html(
                "Stored under the user code when you press Save user; type it twice."
            )
            return
        try:
            key = secret_key(self.profile, code)
        except ValueError as exc:
            self.password_note.value = warning_html(_NO_KEY.format(problem=exc))
            return
        stored = ""
        if self.user is not None and self.user.user_code == code and self.has_password is not None:
            stored = (
                " A password is stored." if self.has_password else " No password is stored yet."
            )
        if preview.mode not in _PASSWORD_MODES:
            words = f"In the {preview.mode.value} mode mailkit signs in without a password."
        elif preview.auth is AuthType.NONE:
            words = "Authorization is none: no password is sent."
        elif credential_account(self.org, candidate) == ORG_ACCOUNT:
            username = _shown(preview.username)
            words = (
                f"This user signs in with the organisation's account ({username}) and its "
                "password. A password saved here is kept for the user and used once they sign "
                "in with their own user name (tick the override and fill User name)."
            )
        else:
            words = (
                f"This user signs in with their own account ({_shown(preview.username)}): "
                f"the password saved here, kept in {self.secrets.name} under {key}."
            )
        self.password_note.value = note_html(words + stored)

    @property
    def effective(self) -> Effective:
        """What a send for the user as typed would use, field by field with its source."""
        return self._preview()

    # ------------------------------------------------------------------ saving

    def _validated(self) -> UserSettings:
        user: UserSettings = validate(UserSettings, self.values(), context="the user")
        problems = user_problems(self.org, user)  # what put_user would refuse
        if problems:
            raise SettingsError(problems, f"the settings of user {user.user_code}")
        return user

    def check(self) -> list[FieldProblem]:
        return self.problems_of(self._validated)

    def save(self) -> bool:
        """Validate the form as UserSettings, check it against the org, and store it.

        A typed password is taken out of its boxes first (they are empty whatever happens),
        stored once the settings are known to be valid, and the settings written only if the
        store took it: either both are saved, or neither and the form says why.
        """
        passwords, secrets = self.passwords, self.secrets
        typed = passwords is not None and passwords.typed
        taken = passwords.take() if passwords is not None else None

        def write() -> str:
            user = self._validated()
            stored = ""
            if typed and passwords is not None and secrets is not None and taken is not None:
                try:
                    key = secret_key(self.profile, user.user_code)
                except ValueError as exc:
                    unusable = FieldProblem("user_code", _NO_KEY.format(problem=exc))
                    raise SettingsError([unusable], "the user's password") from None
                refused = passwords.store(secrets, key, *taken)
                if refused is not None:
                    raise MailkitError(f"the password was not stored: {refused}")
                stored = " and the password"  # where: the note above the boxes says
            self.store.put_user(user)  # the org-dependent rules (cloud edition) are checked here
            self.user = user
            return f"Saved user {user.user_code}{stored} at {datetime.now():%H:%M:%S}."

        self.org = self.store.get_org()
        saved = self.attempt(write)
        if (
            not saved
            and typed
            and passwords is not None
            and not (passwords.password_error.value or passwords.confirmation_error.value)
        ):
            passwords.password_error.value = error_html(
                "Type the password again in both boxes: it is not kept while the form has problems."
            )
        if saved and self.user is not None:
            with self.quietly():
                self.fields["user_code"].disabled = True
                self.title.value = f"<h4>User {html.escape(self.user.user_code)}</h4>"
                self._look_up_password()
                self._show_inherited()
            for callback in self.on_saved:
                callback(self.user)
        return saved


class UsersPanel(Panel):
    """The users of ``store`` in a list; picking one opens it in the :class:`UserForm` below.

    With ``secrets`` the form takes each user's own password too (see :class:`UserForm`).
    Attributes: ``list`` (the Select; its value is a user code), ``new_button``, ``form``.
    """

    def __init__(self, store: Store, *, secrets: SecretStore | None = None) -> None:
        self.store = store
        self.list: Any = widgets.Select(
            description="Users",
            rows=8,
            layout={"width": "520px"},
            style={"description_width": "60px"},
        )
        self.new_button: Any = widgets.Button(description="New user", icon="user-plus")
        self.refresh_button: Any = widgets.Button(description="Reload", icon="refresh")
        self.summary: Any = widgets.HTML()
        self.form = UserForm(store, secrets=secrets)
        self._quiet = False
        self.list.observe(self._picked, names="value")
        self.new_button.on_click(lambda _button: self.new())
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.form.on_saved.append(
            lambda user: self.refresh(select=user.user_code, reload_form=False)
        )
        self.widget: Any = widgets.VBox(
            [
                widgets.HTML("<h3>Users</h3>"),
                widgets.HBox([self.list, widgets.VBox([self.new_button, self.refresh_button])]),
                self.summary,
                self.form.widget,
            ]
        )
        self.refresh()

    @property
    def selected(self) -> UserSettings | None:
        """The user open in the form (None for a new, unsaved one)."""
        return self.form.user

    def refresh(self, select: str | None = None, *, reload_form: bool = True) -> None:
        """Re-read users and org from the store; keep (or move to) the selected user.

        ``reload_form`` also re-reads the open user, dropping unsaved edits.
        """
        users = self.store.users()
        keep = select if select is not None else self.list.value
        self._quiet = True  # replacing the options moves the selection; that is no pick
        try:
            self.list.options = [
                (
                    f"{u.user_code}"
                    + (f" — {u.display_name}" if u.display_name else "")
                    + (" (override)" if u.override_enabled else ""),
                    u.user_code,
                )
                for u in users
            ]
            self.list.value = keep if keep in [u.user_code for u in users] else None
        finally:
            self._quiet = False
        overriding = sum(u.override_enabled for u in users)
        self.summary.value = note_html(
            f"{len(users)} user(s), {overriding} with their own email settings."
        )
        self.form.refresh()
        if reload_form and self.list.value is not None:
            self.form.load(self.store.get_user(self.list.value))

    def new(self) -> None:
        """An empty form for a new user."""
        self.list.value = None
        self.form.load(None)

    def _picked(self, change: dict[str, Any]) -> None:
        code = change["new"]
        if not self._quiet and code is not None:
            self.form.load(self.store.get_user(code))
