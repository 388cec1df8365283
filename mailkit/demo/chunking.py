"""RFC 3030 CHUNKING (``BDAT``) for aiosmtpd, which implements only ``DATA``.

Real servers offer CHUNKING (Postfix does by default), and mailkit then sends the message as one
``BDAT <size> LAST`` pipelined with MAIL and RCPT. The demo server and the test servers gain the
command from :class:`ChunkingSMTP`, so what a user sees against them is what Postfix would do.

The rules kept (RFC 3030 sections 2 to 4):

* the chunk's octets are always read, whatever the reply, so message bytes are never taken for
  commands — also when MAIL or RCPT is missing, AUTH is required, or an earlier chunk failed;
* ``BDAT n`` answers each chunk; ``BDAT n LAST`` (``BDAT 0 LAST`` too) ends the message, which
  the handler's ``handle_DATA`` hook then accepts or refuses, exactly as after ``DATA``;
* no dot-stuffing: the octets are the message;
* ``DATA`` after a ``BDAT`` of the same transaction is 503, and so is every later chunk once one
  failed, until ``RSET`` (or a new EHLO) starts over;
* the server's ``data_size_limit`` holds across all chunks (552, the rest read and dropped).

CHUNKING is advertised only where BDAT can be accepted: with ``require_starttls``, aiosmtpd
refuses every command but a few before TLS in its own loop — BDAT included, whose octets would
then be read as commands — so a client is told of CHUNKING only after STARTTLS.
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, syntax

#: Octets read from the stream at a time (a large chunk is never held twice).
_READ_SIZE = 64 * 1024


class ChunkedEnvelope(Envelope):
    """aiosmtpd's envelope plus the transaction's chunks; a new one comes with every RSET."""

    def __init__(self) -> None:
        super().__init__()
        #: Sizes of the chunks received so far (a handler may record how the message came).
        self.chunks: list[int] = []
        self.body = bytearray()
        #: The reply that ended the chunking early (later chunks are read and refused).
        self.chunk_failure: str | None = None


class ChunkingSMTP(SMTP):
    """aiosmtpd's SMTP with RFC 3030 BDAT; ``chunking=False`` behaves as if it had none.

    aiosmtpd lets the handler's ``handle_EHLO`` hook own the EHLO reply, so the hook announces
    the extension with :meth:`with_chunking`.
    """

    def __init__(self, *args: Any, chunking: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chunking = chunking

    def _create_envelope(self) -> Envelope:
        return ChunkedEnvelope()

    @property
    def chunking_offered(self) -> bool:
        return self.chunking and (not self.require_starttls or self._tls_protocol is not None)

    def with_chunking(self, responses: list[str]) -> list[str]:
        """The EHLO reply lines with ``250-CHUNKING`` added where BDAT is accepted (for the
        handler's ``handle_EHLO`` hook, which owns the final list)."""
        if not self.chunking_offered:
            return responses
        return [*responses[:-1], "250-CHUNKING", responses[-1]]

    @syntax("BDAT chunk-size [LAST]")
    async def smtp_BDAT(self, arg: str | None) -> None:
        if not self.chunking:
            await self.push('500 Error: command "BDAT" not recognized')
            return
        words = (arg or "").split()
        last = len(words) == 2 and words[1].upper() == "LAST"
        if not words or not words[0].isdigit() or len(words) > 2 or (len(words) == 2 and not last):
            # Without a size nothing tells where the octets end: nothing more can be read.
            await self.push("501 5.5.4 Syntax: BDAT chunk-size [LAST]")
            return
        envelope = self.envelope
        assert isinstance(envelope, ChunkedEnvelope)
        size = int(words[0])
        limit = self.data_size_limit
        keep = envelope.chunk_failure is None and (not limit or len(envelope.body) + size <= limit)
        if not await self._read_chunk(size, envelope.body if keep else None):
            return  # the client left in the middle of the chunk
        refusal = await self._refusal(envelope)
        if refusal is None and not keep:
            refusal = "552 5.3.4 Error: message size exceeds fixed maximum message size"
            envelope.body.clear()
        if refusal is not None:
            if envelope.mail_from and envelope.rcpt_tos and envelope.chunk_failure is None:
                envelope.chunk_failure = refusal
            await self.push(refusal)
            return
        envelope.chunks.append(size)
        if not last:
            await self.push(f"250 2.0.0 Ok: {size} octets received")
            return
        await self._end_message(envelope)

    async def _read_chunk(self, size: int, into: bytearray | None) -> bool:
        """Read exactly ``size`` octets (kept in ``into`` unless None); false if the client
        left first."""
        remaining = size
        while remaining:
            piece = await self._reader.read(min(remaining, _READ_SIZE))
            if not piece:
                return False
            if into is not None:
                into += piece
            remaining -= len(piece)
        return True

    async def _refusal(self, envelope: ChunkedEnvelope) -> str | None:
        """Why this chunk cannot be taken (checked after its octets were read), or None."""
        assert self.session is not None
        if not self.session.host_name or not self.session.extended_smtp:
            return "503 5.5.1 Error: send EHLO first"
        if self._auth_required and not self.session.authenticated:
            return "530 5.7.0 Authentication required"
        if envelope.chunk_failure is not None:
            return "503 5.5.1 Error: an earlier BDAT chunk failed; send RSET"
        if not envelope.mail_from:
            return "503 5.5.1 Error: need MAIL command"
        if not envelope.rcpt_tos:
            return "503 5.5.1 Error: need RCPT command"
        return None

    async def _end_message(self, envelope: ChunkedEnvelope) -> None:
        """The last chunk: the message goes to the handler's DATA hook, as after DATA."""
        content = bytes(envelope.body)
        envelope.body = bytearray()
        envelope.original_content = content
        envelope.content = (
            content.decode("utf-8", errors="surrogateescape") if self._decode_data else content
        )
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        if isinstance(envelope, ChunkedEnvelope) and (envelope.chunks or envelope.chunk_failure):
            await self.push("503 5.5.1 Error: DATA after BDAT in one transaction; send RSET")
            return
        await super().smtp_DATA(arg)
