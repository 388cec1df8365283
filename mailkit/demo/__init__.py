"""The embedded demo mail server, so a newcomer sees every feature work without a mail account.

Notebooks start with ``demo = ensure_running()``; ``mailkit demo-server`` runs the same server in
the foreground. See :mod:`mailkit.demo.server`.
"""

from mailkit.demo.server import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    DEMO_TOKEN,
    DEMO_USER,
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
    "DEMO_TOKEN",
    "DEMO_USER",
    "MAILBOX_COLUMNS",
    "PASSWORD_ENV",
    "DemoAccount",
    "DemoHandle",
    "DemoServer",
    "DemoServerError",
    "DemoSettings",
    "accounts_table",
    "default_directory",
    "ensure_running",
    "message_text",
    "read_mailbox",
    "read_message",
    "settings",
]
