"""SMTP test sends on aiosmtplib, recorded byte by byte, with a strict security policy.

One concept per module:

* :mod:`~mailkit.senders.smtp.protocol` — the wire: aiosmtplib's protocol recording both
  directions and pipelining (RFC 2920), built per connection by mailkit's own client;
* :mod:`~mailkit.senders.smtp.plan` — what one send will do: the settings it resolved to, the
  TLS context that verifies the server, and how long each step waits;
* :mod:`~mailkit.senders.smtp.failures` — what aiosmtplib, asyncio and ssl raise or a server
  replies, as the :class:`~mailkit.outcome.Failure` the diagnosis reads;
* :mod:`~mailkit.senders.smtp.sender` — the send itself, step by step, into a
  :class:`~mailkit.result.TestResult`.
"""
