"""A private mail stack on loopback: real Postfix delivering over LMTP into real Dovecot,
whose mailboxes are read over IMAPS — the peer for the delivery round-trip tests.

Built on :class:`postfix_server.PostfixServer` (same private directory, process handling,
reaping and availability policy), with these differences:

- Postfix hands every accepted message to Dovecot's LMTP (``virtual_transport``), so delivery
  goes through a real local delivery agent that knows which mailboxes exist: a recipient it
  does not know is refused with ``550 5.1.1`` and Postfix bounces the message (a real RFC 3464
  DSN) to the envelope sender's mailbox, in the same Dovecot.
- Mail to the domain ``void.test`` is accepted and then dropped by the ``discard`` transport:
  the "accepted but never delivered" case.
- Dovecot serves IMAPS (and only that) on 127.0.0.1 with the stack's private CA, with a
  ``Junk`` folder flagged SPECIAL-USE ``\\Junk``; a Sieve script that runs before every
  delivery files mail for :data:`JUNK_USER` (and anything flagged ``X-Spam-Flag: YES``) there.

Accounts (:data:`ACCOUNTS`): the sender :data:`SENDER` (who signs in to submit, and receives
bounces), the recipient :data:`RECIPIENT`, and :data:`JUNK_USER`. Their passwords are canaries.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import ssl
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from postfix_server import DIR_PREFIX, PostfixServer, reap_stale, require_postfix

__all__ = [
    "ACCOUNTS",
    "JUNK_PASSWORD",
    "JUNK_USER",
    "RECIPIENT",
    "RECIPIENT_PASSWORD",
    "SENDER",
    "SENDER_PASSWORD",
    "UNICODE_PASSWORD",
    "UNICODE_USER",
    "UNKNOWN_USER",
    "VOID_RECIPIENT",
    "MailStack",
    "require_mailstack",
    "running_mailstack",
]

SENDER = "alice@example.test"
SENDER_PASSWORD = "canary-Sender-4k!Q"
RECIPIENT = "bob@example.test"
RECIPIENT_PASSWORD = "canary-Imap-9z#Wv"
JUNK_USER = "carol@example.test"
JUNK_PASSWORD = "canary-Junk-2m$Px"
#: Accepted by Postfix, unknown to Dovecot: LMTP refuses it and Postfix bounces to the sender.
UNKNOWN_USER = "nobody-here@example.test"
#: Accepted by Postfix and dropped by its discard transport: never delivered, never bounced.
VOID_RECIPIENT = "bob@void.test"
#: A mailbox whose password IMAP LOGIN cannot carry (non-ASCII): AUTHENTICATE PLAIN is used.
UNICODE_USER = "dora@example.test"
UNICODE_PASSWORD = "canary-Pässwörd-Ü8"
ACCOUNTS = {
    SENDER: SENDER_PASSWORD,
    RECIPIENT: RECIPIENT_PASSWORD,
    JUNK_USER: JUNK_PASSWORD,
    UNICODE_USER: UNICODE_PASSWORD,
}

_SIEVE = """\
require ["fileinto", "mailbox"];
if anyof (header :is "X-Spam-Flag" "YES", address :is "to" "{junk}") {{
  fileinto :create "Junk";
  stop;
}}
"""


class MailStack(PostfixServer):
    """Postfix (submission + SMTPS, SASL through Dovecot) delivering to Dovecot (LMTP, IMAPS)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, user=SENDER, password=SENDER_PASSWORD)
        self.vmail = self.directory / "vmail"
        self.sieve_dir = self.directory / "sieve"
        self._imaps_port: int | None = None

    def __repr__(self) -> str:
        return f"MailStack({str(self.directory)!r}, ports={self._ports}, imaps={self._imaps_port})"

    @property
    def imaps_port(self) -> int:
        if self._imaps_port is None:
            raise RuntimeError("MailStack.start() has not been called")
        return self._imaps_port

    def imap_url(self, user: str) -> str:
        return f"imaps://{user}@{self.host}:{self.imaps_port}"

    # -- configuration -------------------------------------------------------------------------

    def _write_files(self) -> None:
        with socket.socket() as probe:
            probe.bind((self.host, 0))
            self._imaps_port = probe.getsockname()[1]
        nobody = pwd.getpwnam("nobody")
        super()._write_files()
        users = self._dovecot_conf.parent / "users"
        lines = "".join(
            f"{user}:{{PLAIN}}{password}::::::\n" for user, password in ACCOUNTS.items()
        )
        users.write_text(lines, encoding="utf-8")
        for path in (self.vmail, self.sieve_dir):
            path.mkdir(mode=0o700)
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        script = self.sieve_dir / "before.sieve"
        script.write_text(_SIEVE.format(junk=JUNK_USER))
        os.chown(script, nobody.pw_uid, nobody.pw_gid)

    def _main_cf(self, chain: Path, uid: int, gid: int) -> str:
        # Delivery by Dovecot's LMTP instead of virtual(8); void.test goes to discard.
        base = super()._main_cf(chain, uid, gid)
        base = "\n".join(
            line for line in base.splitlines() if not line.startswith("virtual_mailbox_maps")
        )
        return base + textwrap.dedent("""
            virtual_transport = lmtp:unix:private/dovecot-lmtp
            virtual_mailbox_maps = static:accept-all
            transport_maps = inline:{void.test=discard:}
            """)

    def _master_cf(self) -> str:
        return super()._master_cf() + "lmtp      unix       - - n -   - lmtp\n"

    def _dovecot_config(self, users: Path) -> str:
        chain = self.ca_file.parent / "server.pem"
        queue_private = self._queue_dir / "private"
        base = super()._dovecot_config(users)
        # The SASL-only configuration, with IMAPS and LMTP on top: the same users are mailboxes.
        base = base.replace("protocols = none\nssl = no\n", "")
        base = base.replace(
            "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n",
            "",
        )
        return base + textwrap.dedent(f"""\
            protocols = imap lmtp
            listen = {self.host}
            ssl = required
            ssl_cert = <{chain}
            ssl_key = <{chain}
            ssl_min_protocol = TLSv1.2
            disable_plaintext_auth = yes
            mail_location = maildir:~/Maildir
            first_valid_uid = 1
            userdb {{
              driver = passwd-file
              args = username_format=%u {users}
              default_fields = uid=nobody gid=nogroup home={self.vmail}/%u
            }}
            namespace inbox {{
              inbox = yes
              separator = /
              mailbox Junk {{
                special_use = \\Junk
                auto = subscribe
              }}
              mailbox Sent {{
                special_use = \\Sent
                auto = subscribe
              }}
            }}
            service imap-login {{
              inet_listener imap {{
                port = 0
              }}
              inet_listener imaps {{
                address = {self.host}
                port = {self.imaps_port}
                ssl = yes
              }}
            }}
            service lmtp {{
              unix_listener {queue_private / "dovecot-lmtp"} {{
                mode = 0600
                user = postfix
                group = postfix
              }}
            }}
            protocol lmtp {{
              mail_plugins = $mail_plugins sieve
              postmaster_address = postmaster@example.test
            }}
            plugin {{
              sieve_before = {self.sieve_dir / "before.sieve"}
            }}
            """)

    def _wait_until_ready(self, deadline: float) -> None:
        super()._wait_until_ready(deadline)
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self._probe_imaps()
                return
            except (OSError, ssl.SSLError) as error:
                last = error
                time.sleep(0.05)
        raise TimeoutError(f"IMAPS not ready on {self.imaps_port}: {last!r}")

    def _probe_imaps(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        raw = socket.create_connection((self.host, self.imaps_port), timeout=5)
        with context.wrap_socket(raw, server_hostname=self.host) as tls:
            greeting = tls.recv(200)
        if not greeting.startswith(b"* OK"):
            raise OSError(f"unexpected IMAP greeting {greeting!r}")

    # -- reading mail as the test (root) ----------------------------------------------------------

    def mail_files(self, user: str, folder: str = "INBOX") -> list[Path]:
        """Delivered message files of ``user``'s ``folder`` (Maildir++: ``.Junk`` for Junk)."""
        root = self.vmail / user / "Maildir"
        box = root if folder == "INBOX" else root / f".{folder}"
        return sorted(
            path for sub in ("new", "cur") if (box / sub).is_dir() for path in (box / sub).iterdir()
        )


#: What the stack needs beyond Postfix and Dovecot's core, by Debian package.
_PARTS = {
    "dovecot-imapd": Path("/usr/lib/dovecot/imap"),
    "dovecot-lmtpd": Path("/usr/lib/dovecot/lmtp"),
    "dovecot-sieve": Path("/usr/lib/dovecot/modules/lib90_sieve_plugin.so"),
}


def require_mailstack() -> None:
    """As :func:`postfix_server.require_postfix` (fail under ``CI=true``, else skip), and
    Dovecot's IMAP, LMTP and Sieve parts installed too."""
    require_postfix()
    missing = [package for package, path in _PARTS.items() if not path.exists()]
    if not missing:
        return
    reason = (
        f"{', '.join(missing)} not installed: `make test` installs them (as root on Debian, "
        "from .ci/system-packages.txt)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"real-server tests cannot run: {reason} (CI=true never skips)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def running_mailstack(parent: Path | None = None) -> Iterator[MailStack]:
    """A started stack in a fresh directory, stopped and removed afterwards (see
    :func:`postfix_server.running_postfix`, whose policy and reaping it shares)."""
    require_mailstack()
    reap_stale(parent)
    directory = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=parent))
    stack = MailStack(directory)
    try:
        stack.start(timeout=45.0)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(directory, ignore_errors=True)
