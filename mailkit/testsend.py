"""A test send (an application's "Email Test Utility"): one call for the org or a user.

It resolves the effective settings, finds the credentials in the secret store (the password
belongs to whoever's user name is used: a user who inherits the org's account uses the org's
password), sends the test message the way the effective mode says — SMTP, the Gmail API or
Microsoft Graph — and appends the outcome to the profile's history.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from mailkit.errors import SecretStoreError
from mailkit.fields import AuthType, Mode, Provenance
from mailkit.message import MESSAGE_SUBJECT
from mailkit.providers import provider_for_host
from mailkit.resolve import Effective, effective
from mailkit.result import TestResult, TokenProvider
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.secrets import GOOGLE_TOKEN_KIND, MICROSOFT_TOKEN_KIND, SecretStore, secret_key
from mailkit.senders.smtp.plan import SmtpPlan, TlsContexts
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.transcript import Row

if TYPE_CHECKING:  # the store (SQLite, pandas) is the caller's: a send without one never loads it
    from mailkit.delivery import VerifySpec
    from mailkit.diagnose.desktop import DesktopFacts
    from mailkit.senders.desktop import Launcher
    from mailkit.senders.http import ApiSender
    from mailkit.settings import OrgSettings, UserSettings  # read, never built: see send_resolved
    from mailkit.store import Store

ORG_ACCOUNT = "org"


def credential_account(org: OrgSettings, user: UserSettings | None) -> str:
    """Whose secret to use: the account the effective user name comes from."""
    return account_of(effective(org, user)) if user is not None else ORG_ACCOUNT


def account_of(eff: Effective) -> str:
    """Whose secret a send with ``eff`` uses: the user's when their override sets the user
    name, else the org's."""
    if eff.user_code is not None and eff.provenance["username"] is Provenance.USER:
        return eff.user_code
    return ORG_ACCOUNT


async def send_test_async(
    org: OrgSettings, user: UserSettings | None = None, **kwargs: Any
) -> TestResult:
    """Send the test message as the org (``user=None``) or as ``user`` with their effective
    settings; never raises for a failed send. See :func:`send_resolved_async`."""
    return await send_resolved_async(effective(org, user), **kwargs)


async def send_resolved_async(
    eff: Effective,
    *,
    to: Sequence[str],
    secrets: SecretStore | None = None,
    profile: str = "default",
    password: Secret | None = None,
    token: TokenProvider | None = None,
    store: Store | None = None,
    plan: SmtpPlan | None = None,
    on_row: Callable[[Row], None] | None = None,
    timeout: float | None = None,
    tls_contexts: TlsContexts | None = None,
    verify: VerifySpec | None = None,
    eml_folder: str | os.PathLike[str] | None = None,
    open_eml: bool = False,
    launcher: Launcher | None = None,
    desktop_facts: DesktopFacts | None = None,
) -> TestResult:
    """Send the test message with the effective settings ``eff``; never raises for a failed
    send. (:func:`send_test_async` resolves them from the models; the command line's flags
    alone give them without a model, see :func:`mailkit.resolve.effective_from_flags`.)
    Without ``token``, a consented OAuth token in ``secrets`` is used (see
    :func:`stored_token`); ``plan`` applies to SMTP only. ``timeout`` (``--timeout``) replaces
    every phase's own wait for each reply, and caps the connect wait. ``tls_contexts``: the
    SMTP TLS contexts shared by the sends of one run (a bulk test). ``verify``: after an
    accepted send, search that mailbox for the message (see :mod:`mailkit.roundtrip`).

    In a desktop mode (outlook, mapi, lotus_notes) the test is a hand-off: the message is
    written as an .eml draft into ``eml_folder`` (default: the org's ``eml_folder``) and,
    with ``open_eml``, opened by ``launcher`` (default: the system's handler); see
    :func:`mailkit.senders.desktop.hand_off`."""
    account = account_of(eff)
    if eff.mode.is_desktop_client:
        from mailkit.senders.desktop import hand_off  # file and desktop probes: these modes only

        result = hand_off(
            eff,
            to=to,
            folder=eml_folder if eml_folder is not None else eff.eml_folder,
            facts=desktop_facts,
            launcher=launcher,
            open_it=open_eml,
            on_row=on_row,
        )
        return _recorded(result, store, eff)
    # A password given for this send is the credential to use over SMTP: no stored consent is
    # looked up (nor the secret store opened for it).
    given_password = password is not None and eff.mode in (Mode.SMTP, Mode.EXCHANGE_EWS)
    if token is None and secrets is not None and not given_password:
        token = resolved_token(eff, secrets=secrets, profile=profile)
    if eff.mode is Mode.EXCHANGE_EWS:
        result = await _send_ews(
            eff,
            account,
            to=to,
            secrets=secrets,
            profile=profile,
            password=password,
            token=token,
            timeout=timeout,
            on_row=on_row,
        )
    elif eff.mode in _API_MODES:
        from mailkit.senders.http import ApiPlan  # requests and google-auth: API modes only

        api_plan = ApiPlan.from_effective(eff)
        if timeout is not None:
            api_plan = replace(
                api_plan,
                connect_timeout=min(timeout, api_plan.connect_timeout),
                command_timeout=timeout,
            )
        result = await _api_sender(eff.mode).send_async(
            api_plan, to=to, token=token, priority=eff.priority, on_row=on_row
        )
    else:
        plan = plan or SmtpPlan.from_effective(eff)
        if timeout is not None:
            connect = min(timeout, plan.waits.connect)
            plan = replace(plan, connect_timeout=connect, command_timeout=timeout)
        secrets_problem: str | None = None
        if password is None and secrets is not None:
            try:
                password = secrets.get(secret_key(profile, account))
            except SecretStoreError as exc:  # unknown, not absent: diagnosed as such
                secrets_problem = str(exc)
        result = await send_plan_async(
            plan,
            to=to,
            password=password,
            token=token,
            priority=eff.priority,
            on_row=on_row,
            tls_contexts=tls_contexts,
            secrets_problem=secrets_problem,
        )
    if verify is not None:
        from mailkit.roundtrip import check_delivery, mailbox_consent  # only when asked

        if secrets is not None and verify.mailbox.kind != "imap":
            # A Gmail or Graph mailbox is read with that provider's stored consent, whatever
            # the send used (an SMTP send has none; an API send the same one).
            token = mailbox_consent(verify, secrets, profile, account, eff.ca_file) or token
        result = await check_delivery(result, verify, token=token, password=password)
    return _recorded(result, store, eff)


async def send_route_test_async(
    org: OrgSettings,
    feature: str,
    users: Iterable[UserSettings],
    *,
    today: date | None = None,
    **kwargs: Any,
) -> TestResult:
    """Test the feature route ``feature``: the test message with the route's subject template
    rendered with sample values, sent by the route's sender (the org, or that user with their
    own mode and credentials) to the route's recipients; the same result and diagnosis as any
    test send. ``kwargs`` go to :func:`send_test_async` (``secrets``, ``store``, ``on_row``,
    ``eml_folder``, ...). Raises :class:`~mailkit.errors.SettingsError` naming the field when
    the route cannot be tested (see :func:`mailkit.routes.route_test`)."""
    from mailkit.routes import route_test

    test = route_test(org, feature, users, today=today or date.today())
    token = MESSAGE_SUBJECT.set(test.subject)
    try:
        return await send_test_async(org, test.user, to=test.recipients, **kwargs)
    finally:
        MESSAGE_SUBJECT.reset(token)


def send_route_test(
    org: OrgSettings, feature: str, users: Iterable[UserSettings], **kwargs: Any
) -> TestResult:
    """Blocking :func:`send_route_test_async`; works inside a notebook's running event loop."""
    return run_sync(send_route_test_async(org, feature, users, **kwargs))


def stored_token(
    org: OrgSettings,
    user: UserSettings | None,
    *,
    secrets: SecretStore,
    profile: str = "default",
) -> TokenProvider | None:
    """The token provider of the OAuth consent stored for whoever sends, or None.

    The provider follows the mode: the Gmail API uses Google's token, Graph Microsoft's. Over
    SMTP (auth ``xoauth2`` or ``auto``) the server's provider decides when it is known
    (smtp.gmail.com, smtp.office365.com); for any other server — the demo, a relay — whichever
    consent is stored. Only presence is checked here: the token is read, and refreshed when due,
    when the sender asks for it, so a refusal becomes the send's diagnosis.
    """
    return resolved_token(effective(org, user), secrets=secrets, profile=profile)


def resolved_token(
    eff: Effective, *, secrets: SecretStore, profile: str = "default"
) -> TokenProvider | None:
    """:func:`stored_token` for the effective settings ``eff``."""
    if eff.mode in (Mode.SMTP, Mode.EXCHANGE_EWS) and eff.auth not in (
        AuthType.XOAUTH2,
        AuthType.AUTO,
    ):
        return None
    kinds: tuple[str, ...] = (GOOGLE_TOKEN_KIND, MICROSOFT_TOKEN_KIND)
    if eff.mode is Mode.GMAIL_API:
        kinds = (GOOGLE_TOKEN_KIND,)
    elif eff.mode in (Mode.MICROSOFT_GRAPH, Mode.EXCHANGE_EWS):
        kinds = (MICROSOFT_TOKEN_KIND,)
    elif eff.mode is Mode.SMTP and eff.host:
        known = provider_for_host(eff.host)
        if known is not None and known.id == "gmail":
            kinds = (GOOGLE_TOKEN_KIND,)
        elif known is not None and known.id == "microsoft365":
            kinds = (MICROSOFT_TOKEN_KIND,)
    account = account_of(eff)
    unreadable: SecretStoreError | None = None
    for kind in kinds:
        try:
            if secrets.get(secret_key(profile, account, kind)) is None:
                continue
        except SecretStoreError as exc:
            unreadable = exc
            continue
        # The OAuth libraries load only now that a consent is known to be stored.
        from mailkit.oauth import GoogleCredentials, MicrosoftCredentials

        credentials = GoogleCredentials if kind == GOOGLE_TOKEN_KIND else MicrosoftCredentials
        return credentials(
            secrets, profile=profile, owner=account, ca_file=eff.ca_file
        ).token_provider()
    if unreadable is not None and eff.mode is not Mode.SMTP:
        # An API send has no other way to sign in: a provider that raises the store's error
        # makes the sender say the store could not be read, not that no consent is stored.
        error = unreadable

        def unreadable_store() -> Secret:
            raise error

        return unreadable_store
    return None


def send_test(
    org: OrgSettings,
    user: UserSettings | None = None,
    **kwargs: Any,
) -> TestResult:
    """Blocking :func:`send_test_async`; works inside a notebook's running event loop too."""
    return run_sync(send_test_async(org, user, **kwargs))


def send_resolved(eff: Effective, **kwargs: Any) -> TestResult:
    """Blocking :func:`send_resolved_async`."""
    return run_sync(send_resolved_async(eff, **kwargs))


_API_MODES = frozenset({Mode.GMAIL_API, Mode.MICROSOFT_GRAPH})


async def _send_ews(
    eff: Effective,
    account: str,
    *,
    to: Sequence[str],
    secrets: SecretStore | None,
    profile: str,
    password: Secret | None,
    token: TokenProvider | None,
    timeout: float | None,
    on_row: Callable[[Row], None] | None,
) -> TestResult:
    """The EWS send: a password from the store as for SMTP (NTLM and Basic), or the token."""
    from mailkit.senders.ews import EwsPlan, EwsSender  # exchangelib: this mode only

    ews_plan = EwsPlan.from_effective(eff)
    if timeout is not None:
        ews_plan = replace(
            ews_plan,
            connect_timeout=min(timeout, ews_plan.connect_timeout),
            command_timeout=timeout,
        )
    secrets_problem: str | None = None
    if password is None and secrets is not None and ews_plan.auth is not AuthType.XOAUTH2:
        try:
            password = secrets.get(secret_key(profile, account))
        except SecretStoreError as exc:  # unknown, not absent: diagnosed as such
            secrets_problem = str(exc)
    return await EwsSender.send_async(
        ews_plan,
        to=to,
        password=password,
        token=token,
        priority=eff.priority,
        on_row=on_row,
        secrets_problem=secrets_problem,
    )


def _api_sender(mode: Mode) -> type[ApiSender]:
    """The mode's API sender, imported on first use so SMTP-only work never loads google-auth."""
    if mode is Mode.GMAIL_API:
        from mailkit.senders.gmail_api import GmailApiSender

        return GmailApiSender
    from mailkit.senders.graph import GraphSender

    return GraphSender


def record(
    store: Store, result: TestResult, *, user_code: str | None, mode: str | None = None
) -> int:
    """Append one outcome to the profile's test history (later audits read it).

    ``mode`` defaults to what the result shows: an API send (auth ``oauth``) names its API by
    the provider it used, anything else was SMTP.
    """
    diagnosis = result.diagnosis
    return store.record_test(
        user_code=user_code,
        ok=result.ok,
        mode=mode or _mode_of(result),
        host=result.context.host or None,
        port=result.context.port,
        phase=diagnosis.phase.value if diagnosis else None,
        kind=diagnosis.kind.value if diagnosis else None,
        cause=diagnosis.cause.value if diagnosis else None,
        message_id=result.message_id,
        duration_ms=result.duration_ms,
        detail=diagnosis.title if diagnosis else result.server_reply,
    )


def _recorded(result: TestResult, store: Store | None, eff: Effective) -> TestResult:
    """``result``, appended first to the test history in ``store`` when there is one."""
    if store is not None:
        record(store, result, user_code=eff.user_code, mode=eff.mode.value)
    return result


def _mode_of(result: TestResult) -> str:
    if result.context.service == "ews":
        return Mode.EXCHANGE_EWS.value
    if result.context.auth == "oauth":
        provider = result.context.oauth_provider
        if provider == "google":
            return Mode.GMAIL_API.value
        if provider == "microsoft":
            return Mode.MICROSOFT_GRAPH.value
    return Mode.SMTP.value
