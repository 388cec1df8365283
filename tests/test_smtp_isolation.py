"""mailkit records and pipelines on its own SMTP connections only; aiosmtplib stays as it is.

Another library in the same process (or the user's own code in a notebook) may use aiosmtplib:
it must get aiosmtplib's own protocol, unrecorded and unpipelined, before, during and after a
mailkit send.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import textwrap
from typing import Any

import aiosmtplib
import aiosmtplib.smtp
import pytest
from aiosmtplib.protocol import SMTPProtocol
from smtpd_servers import MailServer

from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.protocol import RecordingProtocol
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Security

pytestmark = pytest.mark.timeout(60)

#: The plain client's EHLO name: if mailkit's transcript shows it, mailkit recorded that client.
PLAIN_EHLO = "plain-client.invalid"


def _plan(server: MailServer) -> SmtpPlan:
    return SmtpPlan(
        host=server.host,
        port=server.starttls_port,
        security=Security.STARTTLS,
        auth=AuthType.AUTO,
        username=server.user,
        from_address="alice@example.com",
        ca_file=str(server.ca_file),
        connect_timeout=5,
        command_timeout=5,
    )


def _assert_unpatched() -> None:
    # The name aiosmtplib builds its protocol from, read as aiosmtplib itself reads it.
    assert vars(aiosmtplib.smtp)["SMTPProtocol"] is SMTPProtocol
    assert aiosmtplib.SMTP._create_connection.__module__ == "aiosmtplib.smtp"


async def _plain_send(server: MailServer, seen: dict[str, Any]) -> None:
    """aiosmtplib as anyone would use it, beside mailkit."""
    client = aiosmtplib.SMTP(
        hostname=server.host,
        port=server.starttls_port,
        start_tls=True,
        tls_context=ssl.create_default_context(cafile=str(server.ca_file)),
        local_hostname=PLAIN_EHLO,
        timeout=5,
    )
    await client.connect()
    transport = client.transport
    try:
        seen["protocol"] = type(client.protocol)
        await client.login(server.user, server.password)
        await client.sendmail(
            "plain@example.com", ["carol@example.org"], b"Subject: plain\r\n\r\nplain body\r\n"
        )
        await client.quit()
    finally:
        # aiosmtplib returns before a TLS connection is really closed; end it here, or its
        # socket is left to the garbage collector.
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        await asyncio.sleep(0.05)


def test_aiosmtplib_is_unpatched_and_a_plain_client_records_nothing(
    smtp_server: MailServer,
) -> None:
    _assert_unpatched()
    seen: dict[str, Any] = {}

    async def both() -> TestResult:
        mailkit_send = send_plan_async(
            _plan(smtp_server),
            to=["bob@example.org"],
            password=Secret(smtp_server.password),
        )
        result, _ = await asyncio.gather(mailkit_send, _plain_send(smtp_server, seen))
        return result

    result = run_sync(both())
    assert result.ok, result.diagnosis
    _assert_unpatched()
    # The plain client ran on aiosmtplib's own protocol, and mailkit's transcript holds only
    # mailkit's dialog.
    assert seen["protocol"] is SMTPProtocol
    assert not issubclass(seen["protocol"], RecordingProtocol)
    text = result.transcript.to_text()
    assert "EHLO mailkit.localhost" in text
    assert PLAIN_EHLO not in text
    assert "plain@example.com" not in text
    assert {m.mail_from for m in smtp_server.messages} >= {
        "alice@example.com",
        "plain@example.com",
    }

    # After the send too, a plain client is aiosmtplib's alone.
    seen.clear()
    run_sync(_plain_send(smtp_server, seen))
    assert seen["protocol"] is SMTPProtocol
    _assert_unpatched()


def test_importing_mailkit_and_sending_leaves_aiosmtplib_alone(smtp_server: MailServer) -> None:
    """In a fresh interpreter: import mailkit (and the SMTP sender), send, check aiosmtplib."""
    script = textwrap.dedent(
        """
        import os, sys
        import aiosmtplib.smtp
        from aiosmtplib.protocol import SMTPProtocol

        import mailkit
        from mailkit.runner import run_sync
        from mailkit.secret import Secret
        from mailkit.senders.smtp.plan import SmtpPlan
        from mailkit.senders.smtp.sender import send_plan_async
        from mailkit.settings import AuthType, Security

        assert aiosmtplib.smtp.SMTPProtocol is SMTPProtocol, "patched at import"
        plan = SmtpPlan(
            host=sys.argv[1], port=int(sys.argv[2]), security=Security.STARTTLS,
            auth=AuthType.AUTO, username=sys.argv[3], from_address="alice@example.com",
            ca_file=sys.argv[4], connect_timeout=5, command_timeout=5,
        )
        password = Secret(os.environ["MAILKIT_TEST_PASSWORD"])
        result = run_sync(send_plan_async(plan, to=["bob@example.org"], password=password))
        assert result.ok, result.diagnosis
        assert aiosmtplib.smtp.SMTPProtocol is SMTPProtocol, "patched by a send"
        print("unpatched")
        """
    )
    env = {**os.environ, "MAILKIT_TEST_PASSWORD": smtp_server.password}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            smtp_server.host,
            str(smtp_server.starttls_port),
            smtp_server.user,
            str(smtp_server.ca_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unpatched"
