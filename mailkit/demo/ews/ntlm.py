"""The server side of NTLM over HTTP, one handshake per connection, as IIS does for EWS.

Built on pyspnego's NTLM message and crypto primitives rather than ``spnego.server(protocol=
"ntlm")``: pyspnego's acceptor reads the accounts only from the file named by the process-wide
``NTLM_USER_FILE`` variable, so two fakes (or a fake and a test of something else) in one process
would share one password list. Here each fake checks against its own password, nothing global
is set, and nothing is written to disk.

Only NTLMv2 responses are accepted (what Windows, requests_ntlm and pyspnego send; LmCompat 3+).
No token, hash or password is kept after the handshake or appears in a repr or a log.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Any

#: The computer and domain names the challenge announces.
SERVER_NAME = "EXCH01"


class NtlmFailed(Exception):
    """The client's NTLM message is malformed or its response does not match (-> HTTP 401)."""


@dataclass(frozen=True)
class NtlmIdentity:
    """Who completed the handshake: the user and domain fields of the AUTHENTICATE message."""

    user: str
    domain: str


@dataclass
class NtlmAcceptor:
    """One connection's NTLM handshake: NEGOTIATE -> CHALLENGE, then AUTHENTICATE checked.

    ``netbios_domain`` and ``dns_domain`` are announced in the challenge (clients may use them
    as the default domain). :meth:`authenticate` needs the password of the user the client
    names, supplied by a callback so that the acceptor never holds more than one at a time.
    """

    netbios_domain: str
    dns_domain: str
    _challenge: Any = field(default=None, repr=False)
    _negotiate: Any = field(default=None, repr=False)

    @property
    def waiting(self) -> bool:
        """A challenge was sent and the AUTHENTICATE message is due."""
        return self._challenge is not None

    def challenge(self, negotiate_token: bytes) -> bytes:
        """The CHALLENGE for a NEGOTIATE message (NtlmFailed if it is not one)."""
        from spnego._ntlm_raw.messages import (
            AvId,
            Challenge,
            FileTime,
            Negotiate,
            NegotiateFlags,
            TargetInfo,
            Version,
        )

        try:
            negotiate = Negotiate.unpack(negotiate_token)
        except Exception as exc:
            raise NtlmFailed(f"not an NTLM NEGOTIATE message ({type(exc).__name__})") from None
        flags = (
            negotiate.flags
            | NegotiateFlags.request_target
            | NegotiateFlags.ntlm
            | NegotiateFlags.always_sign
            | NegotiateFlags.target_info
            | NegotiateFlags.target_type_domain
        )
        if flags & NegotiateFlags.unicode:
            flags &= ~NegotiateFlags.oem
        elif not flags & NegotiateFlags.oem:
            raise NtlmFailed("the NEGOTIATE message asks for neither Unicode nor OEM text")
        if flags & NegotiateFlags.extended_session_security:
            flags &= ~NegotiateFlags.lm_key
        target_info = TargetInfo()
        target_info[AvId.nb_domain_name] = self.netbios_domain
        target_info[AvId.nb_computer_name] = SERVER_NAME
        target_info[AvId.dns_domain_name] = self.dns_domain
        target_info[AvId.dns_computer_name] = f"{SERVER_NAME.lower()}.{self.dns_domain}"
        target_info[AvId.timestamp] = FileTime.now()
        extra: dict[str, Any] = {}
        if flags & NegotiateFlags.version:
            extra["version"] = Version(10, 0, 17763, 15)  # Windows Server 2019, as Exchange 2019
        challenge = Challenge(
            flags, os.urandom(8), target_name=self.netbios_domain, target_info=target_info, **extra
        )
        self._negotiate, self._challenge = negotiate, challenge
        return bytes(challenge.pack())

    def peek_identity(self, authenticate_token: bytes) -> NtlmIdentity:
        """The user and domain an AUTHENTICATE message names (before checking its response)."""
        from spnego._ntlm_raw.messages import Authenticate

        try:
            message = Authenticate.unpack(authenticate_token)
        except Exception as exc:
            raise NtlmFailed(f"not an NTLM AUTHENTICATE message ({type(exc).__name__})") from None
        return NtlmIdentity(message.user_name or "", message.domain_name or "")

    def authenticate(self, authenticate_token: bytes, password: str) -> NtlmIdentity:
        """Check an AUTHENTICATE message against ``password``; NtlmFailed unless it matches.

        The handshake is over either way: a new NEGOTIATE must start the next attempt.
        """
        from spnego._ntlm_raw.crypto import compute_response_v2, ntowfv1, ntowfv2
        from spnego._ntlm_raw.messages import Authenticate, NTClientChallengeV2

        challenge, self._challenge, self._negotiate = self._challenge, None, None
        if challenge is None:
            raise NtlmFailed("AUTHENTICATE without a CHALLENGE on this connection")
        try:
            message = Authenticate.unpack(authenticate_token)
        except Exception as exc:
            raise NtlmFailed(f"not an NTLM AUTHENTICATE message ({type(exc).__name__})") from None
        response = message.nt_challenge_response or b""
        if not message.user_name or len(response) <= 24:
            raise NtlmFailed("anonymous or NTLMv1 sign-in (only NTLMv2 is accepted)")
        try:
            client = NTClientChallengeV2.unpack(response[16:])
        except Exception as exc:
            raise NtlmFailed(f"malformed NTLMv2 response ({type(exc).__name__})") from None
        key = ntowfv2(message.user_name, ntowfv1(password), message.domain_name)
        expected, _lm, _session = compute_response_v2(
            key,
            challenge.server_challenge,
            client.challenge_from_client,
            client.time_stamp,
            client.av_pairs,
        )
        if not hmac.compare_digest(bytes(expected), bytes(response)):
            raise NtlmFailed("the NTLMv2 response does not match the password")
        return NtlmIdentity(message.user_name, message.domain_name or "")
