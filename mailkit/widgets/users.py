"""The user list and the user-override form ("User-Specific Email Configuration").

An empty override field inherits. The form shows what would be inherited — greyed, as the
placeholder of each box (or the "inherit" choice of each drop-down), with its source — and,
beside each field, the effective value and where it comes from. Both come from
:func:`mailkit.resolve.effective`, the same rule a send uses, so the form cannot drift from it.

The cloud edition's rules are the model's (:func:`mailkit.settings.user_problems`, checked by
:meth:`Store.put_user`); the form only makes them visible: the From address box is locked,
because there it is always the user code.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.errors import SettingsError, UnsafeSettingWarning
from mailkit.resolve import Effective, effective
from mailkit.settings import (
    OVERRIDE_FIELDS,
    Edition,
    Mode,
    OrgSettings,
    Provenance,
    UserSettings,
    validate,
)
from mailkit.store import Store
from mailkit.widgets.common import (
    Field,
    Form,
    Panel,
    checkbox_field,
    choice_field,
    note_html,
    relabel_blank,
    text_field,
)
from mailkit.widgets.modes import SmtpSection

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


class UserForm(Form):
    """Edit one user of ``store`` (``user=None``: a new user) and save it with Save.

    Attributes: ``fields``, ``save_button``, ``status``, ``general``, ``user`` (the user as
    last loaded or saved, None for a new one), ``org`` (the org the inherited values come
    from; :meth:`refresh` re-reads it) and ``on_saved`` (callbacks given the saved user).
    """

    def __init__(self, store: Store, user: UserSettings | None = None) -> None:
        super().__init__()
        self.store = store
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
        self.widget: Any = widgets.VBox(
            [
                self.title,
                *(field.widget for field in identity),
                self.cloud_note,
                self.override.widget,
                *(self.override_fields[name].widget for name in OVERRIDE_FIELDS),
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
        if user is None:
            for field in self.fields.values():
                field.load(None)
        else:
            self.load_model(user)
        # A stored user keeps its code: saving under another code would add a second user.
        self.fields["user_code"].disabled = user is not None
        self.title.value = (
            "<h4>New user</h4>" if user is None else f"<h4>User {html.escape(user.user_code)}</h4>"
        )
        self._show_inherited()

    def refresh(self) -> None:
        """Re-read the org (edition, inherited values) from the store."""
        self.org = self.store.get_org()
        self._show_inherited()

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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnsafeSettingWarning)
            try:
                candidate: UserSettings = validate(UserSettings, self.values())
            except SettingsError:
                return effective(self.org, None)
        return effective(self.org, candidate)

    def _show_effective(self) -> None:
        preview = self._preview()
        for name, field in self.override_fields.items():
            source = preview.provenance[name]
            value = _shown(getattr(preview, name))
            if name == "from_address" and self.org.edition is Edition.CLOUD:
                field.set_note(f"→ {value}: {_CLOUD_FROM}")
            else:
                field.set_note(f"→ {value}: {_SOURCE_WORDS[source]}")

    @property
    def effective(self) -> Effective:
        """What a send for the user as typed would use, field by field with its source."""
        return self._preview()

    # ------------------------------------------------------------------ saving

    def save(self) -> bool:
        """Validate the form as UserSettings, check it against the org, and store it."""

        def write() -> str:
            user: UserSettings = validate(UserSettings, self.values(), context="the user")
            self.store.put_user(user)  # the org-dependent rules (cloud edition) are checked here
            self.user = user
            return f"Saved user {user.user_code} at {datetime.now():%H:%M:%S}."

        self.org = self.store.get_org()
        saved = self.attempt(write)
        if saved and self.user is not None:
            self.fields["user_code"].disabled = True
            self.title.value = f"<h4>User {html.escape(self.user.user_code)}</h4>"
            self._show_inherited()
            for callback in self.on_saved:
                callback(self.user)
        return saved


class UsersPanel(Panel):
    """The users of ``store`` in a list; picking one opens it in the :class:`UserForm` below.

    Attributes: ``list`` (the Select; its value is a user code), ``new_button``, ``form``.
    """

    def __init__(self, store: Store) -> None:
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
        self.form = UserForm(store)
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
