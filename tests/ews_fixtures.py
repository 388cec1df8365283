"""Fixtures and helpers for tests that talk to the fake Exchange with the real exchangelib.

``fake_exchange`` is a started :class:`~mailkit.demo.ews.FakeExchange` on the session's test
certificate, reset for each test. :func:`ews_account` builds a real ``exchangelib.Account``
against it that trusts the test CA through its own protocol object, without touching
exchangelib's process-wide ``BaseProtocol.HTTP_ADAPTER_CLS``: every HTTP session exchangelib
opens comes from ``protocol.raw_session(...)``, looked up on the protocol *instance*, and
exchangelib hands out one cached protocol per (endpoint, credentials), so a protocol trusted
before the ``Account`` is built is the one the account uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters
from smtpd_servers import TLSMaterial

from mailkit.demo.ews import DEFAULT_USER, FakeExchange


class _TrustingAdapter(requests.adapters.HTTPAdapter):
    """Verifies against one CA file, whatever ``REQUESTS_CA_BUNDLE`` says."""

    def __init__(self, ca_file: Path | str, **options: Any) -> None:
        self.ca_file = str(ca_file)
        super().__init__(**options)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def trust(protocol: Any, ca_file: Path | str, *, timeout: float | None = None) -> Any:
    """Make this exchangelib protocol object (EWS or Autodiscover) trust ``ca_file`` only,
    and optionally time out sooner than exchangelib's 120 s. Returns the protocol."""
    cls = type(protocol)

    def raw_session(
        prefix: str,
        oauth2_client: Any = None,
        oauth2_session_params: Any = None,
        oauth2_token_endpoint: Any = None,
    ) -> Any:
        session = cls.raw_session(
            prefix, oauth2_client, oauth2_session_params, oauth2_token_endpoint
        )
        for where in filter(None, (prefix, oauth2_token_endpoint)):
            session.mount(
                where,
                _TrustingAdapter(
                    ca_file, pool_block=True, pool_connections=1, pool_maxsize=1, max_retries=0
                ),
            )
        return session

    protocol.raw_session = raw_session
    if timeout is not None:
        protocol.TIMEOUT = timeout
    return protocol


def ews_account(
    fake: FakeExchange,
    *,
    user: str = DEFAULT_USER,
    password: str | None = None,
    auth_type: str | None = None,
    mailbox: str | None = None,
    impersonate: bool = False,
    url: str | None = None,
    timeout: float | None = None,
) -> Any:
    """A real ``exchangelib.Account`` for ``mailbox`` (default: ``user``) on the fake's EWS
    URL (or ``url``), signing in as ``user``. The first call that needs the server (e.g.
    ``account.version`` or a send) probes it and guesses its version, as exchangelib always
    does; ``auth_type`` (``exchangelib.NTLM``/``BASIC``) skips the probe's choice."""
    from exchangelib import DELEGATE, IMPERSONATION, Account, Configuration, Credentials  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.protocol import FailFast, Protocol  # type: ignore[import-untyped, unused-ignore]

    credentials = Credentials(user, fake.password if password is None else password)
    config = Configuration(
        service_endpoint=url or fake.ews_url,
        credentials=credentials,
        auth_type=auth_type,
        retry_policy=FailFast(),
    )
    trust(Protocol(config=config), fake.ca_file, timeout=timeout)
    return Account(
        primary_smtp_address=mailbox or user,
        config=config,
        autodiscover=False,
        access_type=IMPERSONATION if impersonate else DELEGATE,
    )


def ews_account_by_autodiscover(
    fake: FakeExchange, *, user: str = DEFAULT_USER, password: str | None = None
) -> Any:
    """A real ``exchangelib.Account`` found through the fake's SOAP Autodiscover.

    exchangelib looks Autodiscover up by DNS; its documented shortcut is a pre-filled
    ``autodiscover_cache`` entry for (domain, credentials), which is what this does.
    """
    from exchangelib import DELEGATE, Account, Configuration, Credentials  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.autodiscover import AutodiscoverProtocol, autodiscover_cache  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.protocol import FailFast, Protocol  # type: ignore[import-untyped, unused-ignore]

    credentials = Credentials(user, fake.password if password is None else password)
    lookup = AutodiscoverProtocol(
        config=Configuration(
            service_endpoint=fake.autodiscover_svc_url,
            credentials=credentials,
            retry_policy=FailFast(),
        )
    )
    autodiscover_cache[(user.rpartition("@")[2], credentials)] = trust(lookup, fake.ca_file)
    # The EWS protocol exchangelib creates from the answer: trusted in advance (same key).
    trust(
        Protocol(config=Configuration(service_endpoint=fake.ews_url, credentials=credentials)),
        fake.ca_file,
    )
    return Account(
        primary_smtp_address=user, credentials=credentials, autodiscover=True, access_type=DELEGATE
    )


def forget_exchangelib_state() -> None:
    """Close and drop exchangelib's cached protocols and Autodiscover entries."""
    from exchangelib.autodiscover import clear_cache  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.protocol import Protocol  # type: ignore[import-untyped, unused-ignore]

    Protocol.clear_cache()
    clear_cache()


@pytest.fixture(scope="session")
def fake_exchange_session(tls_material: TLSMaterial) -> Iterator[FakeExchange]:
    fake = FakeExchange.from_files(
        tls_material.server.cert_file, tls_material.server.key_file, tls_material.ca_file
    )
    with fake:
        yield fake


@pytest.fixture
def fake_exchange(fake_exchange_session: FakeExchange) -> Iterator[FakeExchange]:
    """The session's fake Exchange with empty records and default settings; exchangelib's
    protocol and Autodiscover caches are emptied after the test."""
    fake = fake_exchange_session
    fake.reset()
    fake.stall_seconds = 30.0
    fake.bearer_tokens.clear()
    fake.on_send = None
    yield fake
    forget_exchangelib_state()
