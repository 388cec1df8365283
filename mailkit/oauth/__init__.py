"""OAuth for Google and Microsoft: client configuration, consent, tokens in the secret store.

Importing this package guards the loggers of the OAuth libraries (see :mod:`mailkit.logguard`)
before any of them runs, so DEBUG logging in a notebook cannot print a token.

A walkthrough is three calls::

    google = GoogleOAuth(GoogleClientConfig.load("client.json"), secrets=store)
    consent = google.start_paste([GMAIL_SEND_SCOPE])   # show consent.url
    consent.finish(pasted_address)                     # token now in the secret store
    send(..., token=google.credentials().token_provider())
"""

from mailkit import logguard

logguard.install()

from mailkit.oauth.google import (  # noqa: E402  # after the log guard, on purpose
    GMAIL_SEND_SCOPE,
    GMAIL_SMTP_SCOPE,
    GoogleClientConfig,
    GoogleConsent,
    GoogleCredentials,
    GoogleOAuth,
)
from mailkit.oauth.microsoft import (  # noqa: E402
    GRAPH_SEND_SCOPE,
    MICROSOFT_AUTHORITY_BASE,
    OUTLOOK_SMTP_SCOPE,
    DeviceCodeConsent,
    MicrosoftConsent,
    MicrosoftCredentials,
    MicrosoftOAuth,
)
from mailkit.oauth.tokens import REFRESH_MARGIN, OAuthCredentials, OAuthToken  # noqa: E402

logguard.install()  # again: importing the libraries above created their loggers

__all__ = [
    "GMAIL_SEND_SCOPE",
    "GMAIL_SMTP_SCOPE",
    "GRAPH_SEND_SCOPE",
    "MICROSOFT_AUTHORITY_BASE",
    "OUTLOOK_SMTP_SCOPE",
    "REFRESH_MARGIN",
    "DeviceCodeConsent",
    "GoogleClientConfig",
    "GoogleConsent",
    "GoogleCredentials",
    "GoogleOAuth",
    "MicrosoftConsent",
    "MicrosoftCredentials",
    "MicrosoftOAuth",
    "OAuthCredentials",
    "OAuthToken",
]
