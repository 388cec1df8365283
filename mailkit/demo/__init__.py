"""The embedded demo mail server, so a newcomer sees every feature work without a mail account.

Notebooks start with ``demo = ensure_running()``; ``mailkit demo-server`` runs the same server in
the foreground. See :mod:`mailkit.demo.server`; the fake OAuth provider and mail APIs that run
alongside are in :mod:`mailkit.demo.oauth`. The refusals of the failure accounts, and how the
server signs clients in, are :mod:`mailkit.demo.scenarios`, which the test suite's misbehaving
servers share.
"""

from mailkit.demo.oauth import (
    DEMO_TENANT,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    MICROSOFT_CLIENT_ID,
    FakeOAuthProvider,
    SentMessage,
    SignInError,
    TokenRejected,
    visit,
)
from mailkit.demo.server import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    DEMO_TOKEN,
    DEMO_USER,
    DIRECTORY_ENV,
    MAILBOX_COLUMNS,
    PASSWORD_ENV,
    DemoAccount,
    DemoHandle,
    DemoServer,
    DemoServerError,
    DemoSettings,
    accounts_table,
    default_directory,
    ensure_running,
    message_text,
    read_mailbox,
    read_message,
    settings,
)

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_PASSWORD",
    "DEMO_TENANT",
    "DEMO_TOKEN",
    "DEMO_USER",
    "DIRECTORY_ENV",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "MAILBOX_COLUMNS",
    "MICROSOFT_CLIENT_ID",
    "PASSWORD_ENV",
    "DemoAccount",
    "DemoHandle",
    "DemoServer",
    "DemoServerError",
    "DemoSettings",
    "FakeOAuthProvider",
    "SentMessage",
    "SignInError",
    "TokenRejected",
    "accounts_table",
    "default_directory",
    "ensure_running",
    "message_text",
    "read_mailbox",
    "read_message",
    "settings",
    "visit",
]
