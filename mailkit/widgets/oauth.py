"""The OAuth consent walkthroughs: client → purpose → how to sign in → sign-in → status → test.

One panel per provider, :class:`GoogleWalkthrough` and :class:`MicrosoftWalkthrough`, in the
order an admin works: load the OAuth client, say what the token is for (which fixes the scope
and the mode the test send uses), pick how to sign in (which depends on where the kernel runs),
sign in, read the status, send a test, revoke. The consent itself is :mod:`mailkit.oauth`; the
send is :class:`~mailkit.widgets.testsend.TestSendPanel`; a failure is the diagnosis card.

Waiting for a browser or a device code can take minutes, so the blocking ``wait`` runs in a
background thread that updates the widgets when it ends; the notebook stays responsive, and
:meth:`join` lets a notebook or a test wait for the outcome.

No widget ever holds a token, and the client secret only while it is being read: the pasted
client JSON and the pasted redirect address are cleared as soon as they are used, their boxes
never echo a typed value back to the browser, and the status shows who signed in, the scopes,
the expiry and where the token is stored — never the token.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import ipywidgets as widgets  # type: ignore[import-untyped]
from traitlets import Unicode

from mailkit.cards import diagnosis_card, link_html
from mailkit.errors import FieldProblem, OAuthConfigError, OAuthError
from mailkit.faces import Face
from mailkit.oauth import (
    GMAIL_SEND_SCOPE,
    GMAIL_SMTP_SCOPE,
    GRAPH_SEND_SCOPE,
    MICROSOFT_AUTHORITY_BASE,
    OUTLOOK_SMTP_SCOPE,
    DeviceCodeConsent,
    GoogleClientConfig,
    GoogleConsent,
    GoogleCredentials,
    GoogleOAuth,
    MicrosoftConsent,
    MicrosoftCredentials,
    MicrosoftOAuth,
    OAuthCredentials,
    OAuthToken,
)
from mailkit.oauth.tokens import ORG_OWNER
from mailkit.outcome import Cause, Diagnosis
from mailkit.secrets import SecretStore
from mailkit.settings import OrgSettings, UserSettings
from mailkit.widgets.common import (
    DESCRIPTION_WIDTH,
    Panel,
    error_html,
    note_html,
    ok_html,
)
from mailkit.widgets.testsend import TestSendPanel

__all__ = ["GoogleWalkthrough", "MicrosoftWalkthrough", "OneWayText", "SignInStatus"]

_STYLE: Final = {"description_width": DESCRIPTION_WIDTH}
_WIDE: Final = {"width": "620px"}
_HIDDEN: Final = "none"

OrgSource = OrgSettings | Callable[[], OrgSettings] | None


class OneWayText(widgets.Text):  # type: ignore[misc]  # ipywidgets is untyped
    """A text box whose typed value is not echoed back to the browser (see ``SecretInput``):
    the pasted redirect address carries an authorization code."""

    value = Unicode(help="Cleared as soon as it is used").tag(sync=True, echo_update=False)


class _OneWayTextarea(widgets.Textarea):  # type: ignore[misc]
    """The pasted client JSON holds the client secret: one way, and cleared after reading."""

    value = Unicode(help="Cleared as soon as it is read").tag(sync=True, echo_update=False)


@dataclass(frozen=True)
class SignInStatus:
    """What the walkthrough shows about a stored consent: everything but the token."""

    provider: str
    #: Who signed in, when the provider said so.
    account: str | None
    scopes: tuple[str, ...]
    #: When the access token in the store expires (it is refreshed before a send).
    expires_at: datetime
    #: The secret store's name and the key the token is stored under.
    stored_in: str
    key: str

    @classmethod
    def of(cls, token: OAuthToken, credentials: OAuthCredentials) -> SignInStatus:
        return cls(
            provider=token.provider,
            account=token.account,
            scopes=token.scopes,
            expires_at=token.expires_at,
            stored_in=credentials.secrets.name,
            key=credentials.key,
        )

    def to_text(self) -> str:
        who = self.account or "an account the provider did not name"
        expires = self.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"Signed in as {who}.\n"
            f"Scopes: {', '.join(self.scopes)}.\n"
            f"The access token is valid until {expires}; it is refreshed before a send.\n"
            f"Stored in {self.stored_in} under {self.key} (the token itself is never shown)."
        )


def _heading(text: str) -> Any:
    return widgets.HTML(f"<h4 style='margin:10px 0 2px 0'>{html.escape(text)}</h4>")


def _radio(options: Sequence[tuple[str, str]], value: str) -> Any:
    return widgets.RadioButtons(options=list(options), value=value, layout={"width": "auto"})


def _show(widget: Any, visible: bool) -> None:
    widget.layout.display = None if visible else _HIDDEN


def _time(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")


class _Walkthrough(Panel):
    """What both providers share: purpose, method, status, the background wait, test, revoke.

    Subclasses fill in the client step, the options and :meth:`_start`.
    """

    provider_name: str
    _credential_type: type[GoogleCredentials] | type[MicrosoftCredentials]
    #: purpose value → (scopes, test-send mode, note)
    _purposes: Mapping[str, tuple[tuple[str, ...], str, str]]
    #: The SMTP server the provider's XOAUTH2 goes to, when the org names none.
    _smtp_host: str

    def __init__(
        self,
        *,
        secrets: SecretStore,
        profile: str,
        owner: str,
        ca_file: Path | str | None,
        org: OrgSource,
        timeout: float,
        purpose_options: Sequence[tuple[str, str]],
        purpose: str,
        method_options: Sequence[tuple[str, str]],
        method: str,
        method_notes: Mapping[str, str],
    ) -> None:
        self.secrets = secrets
        self.profile = profile
        self.owner = owner
        self.ca_file = ca_file
        self.timeout = timeout
        self._org = org
        self._method_notes = method_notes
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: Bumped by every start and cancel: a background wait reports only if still current.
        self._generation = 0
        #: The last failure's diagnosis, None after a success.
        self.diagnosis: Diagnosis | None = None
        #: The stored consent as shown (never the token), None when none is stored.
        self.signed_in: SignInStatus | None = None

        self.purpose: Any = _radio(purpose_options, purpose)
        self.purpose_note: Any = widgets.HTML()
        self.method: Any = _radio(method_options, method)
        self.method_note: Any = widgets.HTML()
        self.start_button: Any = widgets.Button(
            description="Sign in", button_style="primary", icon="sign-in"
        )
        self.cancel_button: Any = widgets.Button(description="Cancel", icon="times")
        self.start_button.on_click(lambda _b: self.start())
        self.cancel_button.on_click(lambda _b: self.cancel())
        #: The sign-in link or the device code, while a sign-in is under way.
        self.sign_in: Any = widgets.HTML()
        self.status: Any = widgets.HTML()
        #: The diagnosis card of the last failure.
        self.card: Any = widgets.HTML()
        self.test = TestSendPanel(self.test_org, self._test_user, secrets=secrets, profile=profile)
        self.revoke_button: Any = widgets.Button(
            description="Revoke", button_style="danger", icon="ban"
        )
        self.revoke_button.on_click(lambda _b: self.revoke())
        self.revoke_status: Any = widgets.HTML()
        self.purpose.observe(lambda _c: self._describe_purpose(), names="value")
        self.method.observe(lambda _c: self._describe_method(), names="value")
        self._describe_purpose()
        self._describe_method()
        _show(self.cancel_button, False)

    # -- the layout

    def _assemble(self, client_step: list[Any], extra_sign_in: list[Any]) -> None:
        self.widget: Any = widgets.VBox(
            [
                _heading(f"1. The {self.provider_name} OAuth client"),
                *client_step,
                _heading("2. What the token is for"),
                self.purpose,
                self.purpose_note,
                _heading("3. How to sign in"),
                self.method,
                self.method_note,
                _heading("4. Sign in"),
                widgets.HBox([self.start_button, self.cancel_button]),
                self.sign_in,
                *extra_sign_in,
                _heading("5. Status"),
                self.status,
                self.card,
                _heading("6. A test send with the token"),
                self.test.widget,
                _heading("7. Revoke"),
                widgets.HTML(
                    note_html(
                        "Ends the grant where the provider allows it and deletes the stored "
                        "token; the next send needs a new sign-in."
                    )
                ),
                widgets.HBox([self.revoke_button, self.revoke_status]),
            ]
        )

    def _describe_purpose(self) -> None:
        scopes, _mode, note = self._purposes[self.purpose.value]
        self.purpose_note.value = note_html(f"Scope: {' '.join(scopes)}. {note}")

    def _describe_method(self) -> None:
        self.method_note.value = note_html(self._method_notes[self.method.value])

    # -- the stored consent

    def credentials(self) -> OAuthCredentials:
        """Where this walkthrough's token is stored (read by the test send, too)."""
        return self._credential_type(
            self.secrets, profile=self.profile, owner=self.owner, ca_file=self.ca_file
        )

    def refresh_status(self) -> SignInStatus | None:
        """Show the stored consent, if any (no network call)."""
        try:
            token = self.credentials().token()
        except OAuthError:
            self.signed_in = None
            self.status.value = note_html("Not signed in yet.")
            return None
        self._show_signed_in(token)
        return self.signed_in

    def _show_signed_in(self, token: OAuthToken) -> None:
        self.signed_in = SignInStatus.of(token, self.credentials())
        lines = self.signed_in.to_text().splitlines()
        self.status.value = ok_html(lines[0]) + "".join(
            "<br>" + note_html(line) for line in lines[1:]
        )

    @property
    def scopes(self) -> tuple[str, ...]:
        return self._purposes[self.purpose.value][0]

    # -- signing in

    def start(self) -> None:
        """Begin a sign-in the way chosen in step 3 (a running one is cancelled first)."""
        self.cancel()
        self.diagnosis = None
        self.card.value = self.sign_in.value = self.revoke_status.value = ""
        try:
            self._start()
        except OAuthError as exc:
            self._failed(exc.diagnosis)
        except OAuthConfigError as exc:
            self._config_problems(exc)

    def _start(self) -> None:
        raise NotImplementedError

    def _config_problems(self, exc: OAuthConfigError) -> None:
        raise NotImplementedError

    def _close_consent(self) -> None:
        raise NotImplementedError

    def _wait_in_background(self, wait: Callable[[], OAuthToken]) -> None:
        """Run ``wait`` in a thread; its outcome updates the widgets when it comes.

        A cancelled or superseded sign-in's thread may still be blocked for a while; its
        generation no longer matches, so whatever it ends with is dropped, not shown.
        """
        generation = self._generation

        def run() -> None:
            token: OAuthToken | None = None
            failure: Diagnosis | None = None
            broken: Exception | None = None
            try:
                token = wait()
            except OAuthError as exc:
                failure = exc.diagnosis
            except Exception as exc:  # shown, not lost in a thread nobody joins
                broken = exc
            with self._lock:
                if generation != self._generation:
                    return
                if token is not None:
                    self._succeeded(token)
                elif failure is not None:
                    self._failed(failure)
                elif broken is not None:
                    self._broken(broken)
                _show(self.cancel_button, False)

        _show(self.cancel_button, True)
        thread = threading.Thread(target=run, name=f"mailkit-{self.provider_name}-sign-in")
        thread.daemon = True
        with self._lock:
            self._thread = thread
        thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for a sign-in under way; whether a consent is now stored."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        return self.signed_in is not None

    @property
    def waiting(self) -> bool:
        """Whether a sign-in is waiting for the browser or the device code."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        """Stop a sign-in under way; its link or code no longer leads anywhere."""
        with self._lock:
            was_waiting = self._thread is not None and self._thread.is_alive()
            self._generation += 1
            self._thread = None
        self._close_consent()
        _show(self.cancel_button, False)
        if was_waiting:
            self._show_cancelled()

    def _succeeded(self, token: OAuthToken) -> None:
        self.sign_in.value = ""
        self.diagnosis = None
        self.card.value = ""
        self.test.clear()
        self._show_signed_in(token)
        self._after_sign_in()

    def _after_sign_in(self) -> None:
        """Hook: forget what the finished sign-in needed."""

    def _failed(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis
        self.sign_in.value = ""
        self.status.value = error_html(f"Not signed in: {diagnosis.title}.")
        self.card.value = diagnosis_card(diagnosis.for_face(Face.WIDGET))

    def _show_cancelled(self) -> None:
        self.sign_in.value = ""
        self.status.value = note_html("Sign-in cancelled; nothing was stored.")

    def _broken(self, exc: Exception) -> None:
        self.sign_in.value = ""
        self.status.value = error_html(f"The sign-in could not run: {type(exc).__name__}: {exc}")

    # -- the test send and revoke

    def test_org(self) -> OrgSettings:
        """The org settings the test send uses: the given org, in the mode of step 2.

        SMTP gets XOAUTH2 (and the provider's server when the org names none); an API mode
        keeps the org's ``api_url`` (the demo's stand-in for the real API).
        """
        base = self._org() if callable(self._org) else self._org
        data: dict[str, Any] = base.model_dump(exclude_none=True) if base else {}
        data.setdefault("name", f"{self.provider_name} OAuth walkthrough")
        mode = self._purposes[self.purpose.value][1]
        data["mode"] = mode
        if mode == "smtp":
            data["auth"] = "xoauth2"
            if not data.get("host"):
                data.update(host=self._smtp_host, port=587, security="starttls")
        account = self.signed_in.account if self.signed_in else None
        if account:
            data.setdefault("username", account)
            data.setdefault("from_address", account)
        return OrgSettings.model_validate(data)

    def _test_user(self) -> UserSettings | None:
        """A user's token is the user's: send as that user, signing in with their account."""
        if self.owner == ORG_OWNER:
            return None
        account = self.signed_in.account if self.signed_in else None
        return UserSettings(
            user_code=self.owner,
            override_enabled=True,
            username=account or self.owner,
            from_address=account,
        )

    def revoke(self) -> str | None:
        """Revoke the stored consent and show what was done (None if that failed)."""
        self.cancel()
        self.revoke_status.value = ""
        try:
            message = self.credentials().revoke()
        except OAuthError as exc:
            self.diagnosis = exc.diagnosis
            self.card.value = diagnosis_card(exc.diagnosis.for_face(Face.WIDGET))
            self.revoke_status.value = error_html("Not revoked; see the card above.")
            return None
        self.signed_in = None
        self.status.value = note_html("Not signed in (the consent was revoked).")
        self.card.value = ""
        self.test.clear()
        self.revoke_status.value = ok_html(message)
        return message


# --------------------------------------------------------------------------- Google

_GOOGLE_PURPOSES: Final = {
    "gmail_api": (
        (GMAIL_SEND_SCOPE,),
        "gmail_api",
        "Send-only access through the Gmail API (mode gmail_api): the recommended choice. "
        "The token can send mail as the account and do nothing else.",
    ),
    "smtp": (
        (GMAIL_SMTP_SCOPE,),
        "smtp",
        "XOAUTH2 over SMTP (smtp.gmail.com:587) needs this scope, the only one Gmail's SMTP "
        "server takes: full access to the mailbox (read, send, delete). Google calls it a "
        "restricted scope: an app used by accounts outside its own Google Workspace "
        "organisation must pass Google's verification and a yearly security assessment "
        "(not needed for an Internal app, or for the test users of an app in Testing). "
        "Prefer the Gmail API unless the software can only speak SMTP.",
    ),
}

_GOOGLE_METHODS: Final = {
    "paste": "Works wherever the kernel runs (a server, Binder). After you approve, the browser "
    "goes to http://localhost and shows that it cannot connect: that is expected. Copy the "
    "whole address from the address bar, paste it below and press Finish.",
    "loopback": "Only when this notebook's kernel runs on the computer your browser runs on: "
    "after you approve, the browser returns to a short-lived listener on 127.0.0.1 and the "
    "walkthrough finishes by itself.",
}


class GoogleWalkthrough(_Walkthrough):
    """Google consent for Gmail: the client JSON, the scope, the sign-in, a test, revoke.

    ``client_config`` (a path, JSON text, a dict or a :class:`GoogleClientConfig`) skips the
    upload — the notebook's configuration cell, or the demo's fake client. ``org`` is what
    the test send starts from (e.g. the demo server's settings), and its user name the
    account preselected at sign-in unless ``login_hint`` says otherwise; ``ca_file`` is the only CA
    the OAuth calls trust (the demo's). ``timeout`` bounds a loopback sign-in, in seconds.

    Attributes for notebooks and tests: ``upload`` (FileUpload), ``paste_config`` and
    ``use_button`` (paste the JSON instead), ``config_errors``, ``login_hint``, ``purpose``,
    ``method``, ``start_button``, :attr:`sign_in_url`, ``redirected`` and ``finish_button``
    (paste-back), ``status``, ``card``, ``test`` (a :class:`TestSendPanel`),
    ``revoke_button``, ``revoke_status``.
    """

    provider_name = "Google"
    _credential_type = GoogleCredentials
    _purposes = _GOOGLE_PURPOSES
    _smtp_host = "smtp.gmail.com"

    def __init__(
        self,
        secrets: SecretStore,
        *,
        client_config: GoogleClientConfig | Mapping[str, Any] | str | Path | None = None,
        org: OrgSource = None,
        profile: str = "default",
        owner: str = ORG_OWNER,
        ca_file: Path | str | None = None,
        login_hint: str | None = None,
        timeout: float = 300.0,
    ) -> None:
        super().__init__(
            secrets=secrets,
            profile=profile,
            owner=owner,
            ca_file=ca_file,
            org=org,
            timeout=timeout,
            purpose_options=[
                ("Gmail API: gmail.send (recommended)", "gmail_api"),
                ("SMTP with XOAUTH2: https://mail.google.com/ (restricted scope)", "smtp"),
            ],
            purpose="gmail_api",
            method_options=[
                ("Remote kernel or Binder: paste the address back", "paste"),
                ("This computer: the browser comes back to the notebook (loopback)", "loopback"),
            ],
            method="paste",
            method_notes=_GOOGLE_METHODS,
        )
        self.config: GoogleClientConfig | None = None
        given = org() if callable(org) else org
        if login_hint is None and given is not None:
            login_hint = given.username or given.from_address  # the account that sends
        self._consent: GoogleConsent | None = None
        self.upload: Any = widgets.FileUpload(
            accept=".json,application/json", multiple=False, description="Client JSON"
        )
        self.paste_config: Any = _OneWayTextarea(
            placeholder="…or paste the client JSON here and press Use",
            layout={**_WIDE, "height": "5em"},
        )
        self.use_button: Any = widgets.Button(description="Use", icon="check")
        self.config_errors: Any = widgets.HTML()
        self.config_status: Any = widgets.HTML()
        self.login_hint: Any = widgets.Text(
            description="Account (optional)",
            value=login_hint or "",
            placeholder="the Gmail address that sends, to preselect it",
            style=_STYLE,
            layout=_WIDE,
        )
        self.redirected: Any = OneWayText(
            description="Address after sign-in",
            placeholder="http://localhost/?state=…&code=…",
            style=_STYLE,
            layout=_WIDE,
        )
        self.finish_button: Any = widgets.Button(description="Finish", button_style="primary")
        self.paste_error: Any = widgets.HTML()
        self.paste_box: Any = widgets.VBox(
            [widgets.HBox([self.redirected, self.finish_button]), self.paste_error]
        )
        _show(self.paste_box, False)
        self.upload.observe(lambda _c: self._uploaded(), names="value")
        self.use_button.on_click(lambda _b: self.use_pasted_config())
        self.finish_button.on_click(lambda _b: self._finish_pasted())
        self._assemble(
            [
                widgets.HTML(
                    note_html(
                        "Google Cloud Console → APIs & Services → Credentials → Create "
                        "credentials → OAuth client ID → Desktop app, then download its JSON. "
                        "The client secret in it goes to the secret store, never into the "
                        "notebook."
                    )
                ),
                self.upload,
                widgets.HBox([self.paste_config, self.use_button]),
                self.config_errors,
                self.config_status,
                self.login_hint,
            ],
            [self.paste_box],
        )
        if client_config is not None:
            self.load_config(client_config, origin="given by the notebook")
        self.refresh_status()

    # -- the client

    def load_config(
        self,
        source: GoogleClientConfig | Mapping[str, Any] | str | Path,
        *,
        origin: str = "loaded",
    ) -> bool:
        """Take a client JSON; show each problem with its field, or which client is in use."""
        self.config_errors.value = ""
        try:
            config = (
                source
                if isinstance(source, GoogleClientConfig)
                else GoogleClientConfig.load(source)
            )
        except OAuthConfigError as exc:
            self.config = None
            self.config_status.value = ""
            self._config_problems(exc)
            return False
        self.config = config
        project = f", project {config.project_id}" if config.project_id else ""
        self.config_status.value = ok_html(
            f"Client {config.client_id}{project} ({config.client_type}), {origin}."
        )
        return True

    def _config_problems(self, exc: OAuthConfigError) -> None:
        lines = [error_html(str(exc).splitlines()[0] + ":")]
        lines += [error_html(f"• {p.field}: {p.message}") for p in exc.problems]
        self.config_errors.value = "<br>".join(lines)

    def _uploaded(self) -> None:
        files = self.upload.value
        if not files:
            return
        first = files[0]
        try:
            text = bytes(first["content"]).decode("utf-8")
        except UnicodeDecodeError:
            self.upload.value = ()
            self._config_problems(
                OAuthConfigError(
                    "the Google OAuth client JSON cannot be read",
                    [FieldProblem("file", f"{first.get('name')} is not a UTF-8 text file")],
                )
            )
            return
        self.upload.value = ()  # the content holds the client secret
        self.load_config(text, origin=f"from {first.get('name') or 'the upload'}")

    def use_pasted_config(self) -> bool:
        """Read the pasted JSON and empty the box, whatever it held."""
        text = self.paste_config.value
        self.paste_config.value = ""
        if not text.strip():
            self._config_problems(
                OAuthConfigError(
                    "no client JSON yet",
                    [FieldProblem("client JSON", "upload the downloaded file or paste it")],
                )
            )
            return False
        return self.load_config(text, origin="from the pasted JSON")

    # -- signing in

    @property
    def sign_in_url(self) -> str | None:
        """The sign-in link of the sign-in under way (for a browser, or the demo's visit())."""
        return self._consent.url if self._consent is not None else None

    def _start(self) -> None:
        if self.config is None:
            self._config_problems(
                OAuthConfigError(
                    "load the OAuth client first",
                    [FieldProblem("client JSON", "upload the downloaded file or paste it")],
                )
            )
            return
        oauth = GoogleOAuth(
            self.config,
            secrets=self.secrets,
            profile=self.profile,
            owner=self.owner,
            ca_file=self.ca_file,
        )
        hint = self.login_hint.value.strip() or None
        link = "Open Google's sign-in page"
        if self.method.value == "loopback":
            consent = oauth.start_loopback(self.scopes, login_hint=hint, timeout=self.timeout)
            self._consent = consent
            self._show_link(consent.url, link)
            until = datetime.now(UTC).timestamp() + self.timeout
            self.status.value = note_html(
                "Waiting for the browser to come back (until "
                f"{_time(datetime.fromtimestamp(until, UTC))})…"
            )
            self._wait_in_background(lambda: consent.wait(self.timeout))
        else:
            self._consent = oauth.start_paste(self.scopes, login_hint=hint)
            self._show_link(self._consent.url, link)
            _show(self.paste_box, True)
            self.status.value = note_html(
                "Waiting: approve in the browser, then paste the address it ended at below."
            )

    def _show_link(self, url: str, label: str) -> None:
        self.sign_in.value = link_html(url, f"{label} ↗", style="font-size:1.1em")

    def _finish_pasted(self) -> None:
        text = self.redirected.value
        self.redirected.value = ""  # it carries a one-time code
        self.finish(text)

    def finish(self, redirected_url: str) -> bool:
        """Finish a paste-back sign-in with the address the browser ended at."""
        self.paste_error.value = ""
        consent = self._consent
        if consent is None or consent.mode != "paste":
            self.paste_error.value = error_html("Press Sign in first (paste-back chosen).")
            return False
        try:
            token = consent.finish(redirected_url)
        except OAuthConfigError as exc:
            self.paste_error.value = "<br>".join(
                error_html(f"{p.field}: {p.message}") for p in exc.problems
            ) or error_html(str(exc))
            return False
        except OAuthError as exc:
            self._consent = None
            _show(self.paste_box, False)
            self._failed(exc.diagnosis)
            return False
        except RuntimeError as exc:  # finished already
            self.paste_error.value = error_html(str(exc))
            return False
        self._succeeded(token)
        return True

    def _after_sign_in(self) -> None:
        self._consent = None
        _show(self.paste_box, False)

    def _failed(self, diagnosis: Diagnosis) -> None:
        super()._failed(diagnosis)
        self._consent = None
        _show(self.paste_box, False)

    def _close_consent(self) -> None:
        consent, self._consent = self._consent, None
        _show(self.paste_box, False)
        if consent is not None:
            consent.close()


# --------------------------------------------------------------------------- Microsoft

_MICROSOFT_PURPOSES: Final = {
    "microsoft_graph": (
        (GRAPH_SEND_SCOPE,),
        "microsoft_graph",
        "Microsoft Graph sendMail as the signed-in user (mode microsoft_graph): no SMTP AUTH "
        "needed, the recommended choice for Microsoft 365.",
    ),
    "smtp": (
        (OUTLOOK_SMTP_SCOPE,),
        "smtp",
        "XOAUTH2 over SMTP to smtp.office365.com:587 (STARTTLS). Microsoft is switching off "
        "basic (password) SMTP AUTH; OAuth keeps working, but SMTP AUTH must still be enabled "
        "for the mailbox (Exchange admin center → the mailbox → Manage email apps → "
        "Authenticated SMTP).",
    ),
}

_MICROSOFT_METHODS: Final = {
    "device_code": "Works anywhere, remote kernels and Binder included: open the link on any "
    "device, enter the code shown and sign in. The app registration needs Authentication → "
    "Allow public client flows = Yes. Some tenants block device codes with Conditional Access; "
    "then use the browser sign-in.",
    "loopback": "Only when this notebook's kernel runs on the computer your browser runs on: "
    "the answer is posted back to a short-lived listener on 127.0.0.1. The app registration "
    "needs the redirect URI http://localhost under Mobile and desktop applications.",
}


class MicrosoftWalkthrough(_Walkthrough):
    """Microsoft consent with MSAL: app id and tenant, the scope, device code or browser.

    ``client_id`` and ``tenant`` default to ``org.oauth_client_id`` / ``org.oauth_tenant``
    (tenant ``organizations`` without either). ``authority_base`` is Microsoft's sign-in host,
    or the demo's fake; ``ca_file`` is the only CA the OAuth calls trust. ``timeout`` bounds
    the wait for a sign-in, in seconds (a device code also ends when it expires).

    Attributes for notebooks and tests: ``client_id``, ``tenant`` (with ``client_id_error``,
    ``tenant_error``, ``config_errors``), ``purpose``, ``method``, ``start_button``,
    :attr:`sign_in_url`, :attr:`user_code`, ``use_browser_button`` (offered when the tenant
    blocks device codes), ``status``, ``card``, ``test``, ``revoke_button``, ``revoke_status``.
    """

    provider_name = "Microsoft"
    _credential_type = MicrosoftCredentials
    _purposes = _MICROSOFT_PURPOSES
    _smtp_host = "smtp.office365.com"

    def __init__(
        self,
        secrets: SecretStore,
        *,
        client_id: str | None = None,
        tenant: str | None = None,
        org: OrgSource = None,
        authority_base: str = MICROSOFT_AUTHORITY_BASE,
        profile: str = "default",
        owner: str = ORG_OWNER,
        ca_file: Path | str | None = None,
        timeout: float = 900.0,
    ) -> None:
        super().__init__(
            secrets=secrets,
            profile=profile,
            owner=owner,
            ca_file=ca_file,
            org=org,
            timeout=timeout,
            purpose_options=[
                ("Microsoft Graph: Mail.Send (recommended)", "microsoft_graph"),
                ("SMTP with XOAUTH2: SMTP.Send for smtp.office365.com", "smtp"),
            ],
            purpose="microsoft_graph",
            method_options=[
                ("Device code: works anywhere, remote kernels and Binder too", "device_code"),
                ("Browser on this computer (loopback)", "loopback"),
            ],
            method="device_code",
            method_notes=_MICROSOFT_METHODS,
        )
        given = org() if callable(org) else org
        self.authority_base = authority_base
        self._consent: DeviceCodeConsent | MicrosoftConsent | None = None
        self.client_id: Any = widgets.Text(
            description="Application (client) id",
            value=client_id or (given.oauth_client_id if given else None) or "",
            placeholder="00000000-0000-0000-0000-000000000000",
            style=_STYLE,
            layout=_WIDE,
        )
        self.tenant: Any = widgets.Text(
            description="Tenant",
            value=tenant or (given.oauth_tenant if given else None) or "organizations",
            placeholder="tenant id or domain, organizations, consumers",
            style=_STYLE,
            layout=_WIDE,
        )
        self.client_id_error: Any = widgets.HTML()
        self.tenant_error: Any = widgets.HTML()
        self.config_errors: Any = widgets.HTML()
        self.use_browser_button: Any = widgets.Button(
            description="Sign in with the browser instead", icon="globe", layout={"width": "auto"}
        )
        self.use_browser_button.on_click(lambda _b: self.use_browser())
        _show(self.use_browser_button, False)
        self._assemble(
            [
                widgets.HTML(
                    note_html(
                        "Microsoft Entra admin center → App registrations → New registration; "
                        "copy the Application (client) id and the Directory (tenant) id from "
                        "its Overview. A public client: no client secret is used."
                    )
                ),
                self.client_id,
                self.client_id_error,
                self.tenant,
                self.tenant_error,
                self.config_errors,
            ],
            [self.use_browser_button],
        )
        self.refresh_status()

    @property
    def sign_in_url(self) -> str | None:
        """The browser sign-in link (loopback) or the device-login page (device code)."""
        consent = self._consent
        if isinstance(consent, MicrosoftConsent):
            return consent.url
        if isinstance(consent, DeviceCodeConsent):
            return consent.verification_uri
        return None

    @property
    def user_code(self) -> str | None:
        """The device code to enter, while a device-code sign-in waits."""
        consent = self._consent
        return consent.user_code if isinstance(consent, DeviceCodeConsent) else None

    def _oauth(self) -> MicrosoftOAuth:
        return MicrosoftOAuth(
            self.client_id.value.strip(),
            secrets=self.secrets,
            tenant=self.tenant.value.strip(),
            authority_base=self.authority_base,
            profile=self.profile,
            owner=self.owner,
            ca_file=self.ca_file,
        )

    def _config_problems(self, exc: OAuthConfigError) -> None:
        places = {"client_id": self.client_id_error, "tenant": self.tenant_error}
        general: list[str] = []
        for problem in exc.problems:
            place = places.get(problem.field)
            if place is None:
                general.append(error_html(str(problem)))
            else:
                place.value = error_html(problem.message)
        if not exc.problems:
            general.append(error_html(str(exc)))
        self.config_errors.value = "<br>".join(general)
        self.status.value = error_html("Not signed in: fix the OAuth settings above.")

    def _start(self) -> None:
        self.client_id_error.value = self.tenant_error.value = self.config_errors.value = ""
        _show(self.use_browser_button, False)
        oauth = self._oauth()
        if self.method.value == "device_code":
            device = oauth.start_device_code(self.scopes)
            self._consent = device
            self._show_device_code(device)
            remaining = (device.expires_at - datetime.now(UTC)).total_seconds()
            timeout = max(1.0, min(self.timeout, remaining))
            self._wait_in_background(lambda: device.wait(timeout))
        else:
            browser = oauth.start_loopback(self.scopes, timeout=self.timeout)
            self._consent = browser
            self.sign_in.value = link_html(
                browser.url, "Open Microsoft's sign-in page ↗", style="font-size:1.1em"
            )
            self.status.value = note_html("Waiting for the browser to come back…")
            self._wait_in_background(lambda: browser.wait(self.timeout))

    def _show_device_code(self, device: DeviceCodeConsent) -> None:
        e = html.escape
        self.sign_in.value = (
            f"<div>Open {link_html(device.verification_uri, device.verification_uri)} "
            "and enter the code</div>"
            f"<div style='font-size:1.6em;font-family:monospace;letter-spacing:0.15em;"
            f"margin:4px 0'><b>{e(device.user_code)}</b></div>"
            f"{note_html(device.message)}"
        )
        self.status.value = note_html(
            f"Waiting for the code to be entered (it expires at {_time(device.expires_at)})…"
        )

    def _failed(self, diagnosis: Diagnosis) -> None:
        super()._failed(diagnosis)
        self._consent = None
        if diagnosis.cause is Cause.DEVICE_CODE_BLOCKED:
            _show(self.use_browser_button, True)

    def use_browser(self) -> None:
        """The way out of a tenant that blocks device codes: the loopback sign-in."""
        self.method.value = "loopback"
        self.start()

    def _after_sign_in(self) -> None:
        self._consent = None
        _show(self.use_browser_button, False)

    def _close_consent(self) -> None:
        consent, self._consent = self._consent, None
        if consent is not None:
            consent.close()
