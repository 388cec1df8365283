"""Gmail API and Graph test sends against the fake provider: success, every failure, no leaks.

Tokens are minted through the fake's real endpoints (authorization code with PKCE, as a browser
sign-in would), so each token carries the account and scopes a real one would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import ssl
import threading
from collections.abc import Callable
from email import message_from_bytes
from email.policy import default as default_policy
from http.client import RemoteDisconnected
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import trustme
import urllib3
from smtpd_servers import MailServer

from mailkit.demo.oauth import (
    DEMO_TENANT,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    MICROSOFT_CLIENT_ID,
    FakeOAuthProvider,
    visit,
)
from mailkit.diagnose import diagnose
from mailkit.errors import OAuthError
from mailkit.outcome import Cause, Failure, Kind, Phase, SendContext, Signal
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore
from mailkit.senders.gmail_api import send_gmail_api, send_gmail_api_async
from mailkit.senders.graph import send_graph
from mailkit.senders.http import (
    ApiPlan,
    HttpRecorder,
    api_error,
    failure_from_request_error,
    request_went_out,
    retry_after_seconds,
)
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, OrgSettings, Security
from mailkit.store import Store
from mailkit.testsend import send_test

pytestmark = pytest.mark.timeout(60)

GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
GRAPH_SEND = "Mail.Send"
ACCOUNT = "demo@example.com"
TO = ["bob@example.org"]


def _http(fake: FakeOAuthProvider) -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the fake's CA
    http.verify = str(fake.ca_file)
    return http


def mint(fake: FakeOAuthProvider, provider: str, *scopes: str) -> str:
    """An access token from the fake's sign-in and token endpoints (auth code + PKCE)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    # Any loopback port for a Google Desktop app; Entra wants its registered http://localhost.
    redirect = "http://127.0.0.1:9/callback" if provider == "google" else "http://localhost:9"
    if provider == "google":
        auth, token = f"{fake.base_url}/o/oauth2/auth", f"{fake.base_url}/token"
        client = {"client_id": GOOGLE_CLIENT_ID, "client_secret": GOOGLE_CLIENT_SECRET}
    else:
        base = f"{fake.base_url}/{DEMO_TENANT}/oauth2/v2.0"
        auth, token = f"{base}/authorize", f"{base}/token"
        client = {"client_id": MICROSOFT_CLIENT_ID}
    query = {
        "client_id": client["client_id"],
        "redirect_uri": redirect,
        "response_type": "code",
        "scope": " ".join(scopes),
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    # The fake shows a consent page; visit() presses Approve and returns the redirect.
    location = visit(f"{auth}?{urlencode(query)}", fake.ca_file, follow=False)
    code = parse_qs(urlsplit(location).query)["code"][0]
    with _http(fake) as http:
        tokens = http.post(
            token,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
                **client,
            },
        )
    assert tokens.status_code == 200, tokens.text
    value = tokens.json()["access_token"]
    assert isinstance(value, str)
    return value


def provider_of(token: str) -> Callable[[], Secret]:
    return lambda: Secret(token)


def plan(fake: FakeOAuthProvider, **changes: object) -> ApiPlan:
    values: dict[str, object] = {
        "from_address": ACCOUNT,
        "from_name": "Demo",
        "username": ACCOUNT,
        "api_url": fake.base_url,
        "ca_file": str(fake.ca_file),
        "connect_timeout": 5.0,
        "command_timeout": 10.0,
    }
    values.update(changes)
    return ApiPlan(**values)  # type: ignore[arg-type]


SENDERS = {"gmail": (send_gmail_api, "google", GMAIL_SEND), "graph": (send_graph, "ms", GRAPH_SEND)}


def send(
    fake: FakeOAuthProvider, api: str, token: str | None = None, **changes: object
) -> TestResult:
    sender, provider, scope = SENDERS[api]
    value = token if token is not None else mint(fake, provider, scope)
    return sender(plan(fake, **changes), to=TO, token=provider_of(value))


def everything_shown(result: TestResult) -> str:
    """Every way a result is shown or serialised."""
    transcript = result.transcript
    return "\n".join(
        [
            transcript.to_text(),
            transcript.to_html(),
            transcript.to_dataframe().to_string(),
            json.dumps(transcript.to_records(), default=str),
            json.dumps(result.as_dict(), default=str),
            repr(result),
            result._repr_html_(),
        ]
    )


# ------------------------------------------------------------------ success


@pytest.mark.parametrize("api", ["gmail", "graph"])
def test_send_arrives_with_the_right_addresses(fake_oauth: FakeOAuthProvider, api: str) -> None:
    result = send(fake_oauth, api)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    [sent] = fake_oauth.sent
    assert sent.api == ("gmail_api" if api == "gmail" else "graph")
    assert sent.account == ACCOUNT
    message = message_from_bytes(sent.raw, policy=default_policy)
    assert message["From"].addresses[0].addr_spec == ACCOUNT
    assert message["To"] == "bob@example.org"
    assert message["Message-ID"] == result.message_id
    assert result.context.host == "127.0.0.1"
    assert (result.context.security, result.context.auth) == ("ssl", "oauth")
    frame = result.transcript.to_dataframe()
    assert set(frame["dir"]) == {"I", "C", "S"}
    assert set(frame["phase"]) <= {"token", "request", "tls"}
    request = frame[frame["dir"] == "C"]["text"].iloc[0]
    path = "/gmail/v1/users/me/messages/send" if api == "gmail" else "/v1.0/me/sendMail"
    assert request.startswith(f"POST {fake_oauth.base_url}{path}")
    assert "Authorization: Bearer <secret hidden>" in request
    assert "<message:" in request
    assert "bytes MIME" in request
    assert "Prueba" not in result.transcript.to_text()  # the MIME message is never shown
    status = 200 if api == "gmail" else 202
    assert list(frame[frame["dir"] == "S"]["code"]) == [status]
    assert result.server_reply is not None
    assert result.server_reply.startswith(str(status))
    assert result.duration_ms > 0


@pytest.mark.parametrize("api", ["gmail", "graph"])
def test_the_result_shows_the_tls_session_like_an_smtp_send(
    fake_oauth: FakeOAuthProvider, api: str
) -> None:
    token = mint(fake_oauth, *SENDERS[api][1:])
    fake_oauth.fail_next("/gmail/" if api == "gmail" else "/v1.0/", 503)
    for result in (send(fake_oauth, api, token), send(fake_oauth, api, token)):  # fails, then ok
        port = urlsplit(fake_oauth.base_url).port or 443
        der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))
        assert result.tls is not None
        assert result.tls.sha256 == hashlib.sha256(der).hexdigest()
        assert result.tls.version.startswith("TLSv1.")
        assert result.tls.cipher
        assert "127.0.0.1" in result.tls.san
        assert result.tls.verified_by == f"CA file {fake_oauth.ca_file}"
        rows = result.transcript.to_dataframe()
        [shown] = rows[rows["phase"] == "tls"]["text"]
        assert shown.startswith(f"over TLS: {result.tls.version}, {result.tls.cipher}")
        assert result.as_dict()["tls"]["sha256"] == result.tls.sha256
    assert result.ok


def test_refused_before_tls_has_no_tls_session(fake_oauth: FakeOAuthProvider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = send(fake_oauth, "gmail", "fake-at-x", api_url=f"https://127.0.0.1:{port}")
    assert result.tls is None


def test_gmail_reply_names_the_gmail_message_id(fake_oauth: FakeOAuthProvider) -> None:
    result = send(fake_oauth, "gmail")
    assert result.server_reply is not None
    assert "Gmail message id" in result.server_reply
    answer = result.transcript.rows[-1].text
    assert "labelIds" in answer
    assert "id=" in answer


# ------------------------------------------------------------------ API refusals


@pytest.mark.parametrize("api", ["gmail", "graph"])
def test_expired_token(fake_oauth: FakeOAuthProvider, api: str) -> None:
    token = mint(fake_oauth, *SENDERS[api][1:])
    fake_oauth.expire_access_tokens()
    result = send(fake_oauth, api, token)
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (Phase.REQUEST, Cause.TOKEN_EXPIRED)
    assert result.diagnosis.code == 401
    assert "WWW-Authenticate:" in result.transcript.to_text()
    assert not fake_oauth.sent


@pytest.mark.parametrize("api", ["gmail", "graph"])
def test_revoked_token(fake_oauth: FakeOAuthProvider, api: str) -> None:
    token = mint(fake_oauth, *SENDERS[api][1:])
    fake_oauth.revoke()
    result = send(fake_oauth, api, token)
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.OAUTH_TOKEN_INVALID
    assert result.diagnosis.kind is Kind.PERMANENT
    expected = "gmail.send" if api == "gmail" else "Mail.Send"
    assert expected in " ".join(result.diagnosis.fix)


def test_unknown_token(fake_oauth: FakeOAuthProvider) -> None:
    result = send(fake_oauth, "graph", "fake-at-not-issued-by-anyone")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.OAUTH_TOKEN_INVALID
    assert result.diagnosis.provider == "microsoft365"  # told by the sender, not the host


@pytest.mark.parametrize(
    ("api", "cause"),
    [("gmail", Cause.INSUFFICIENT_SCOPE), ("graph", Cause.API_ACCESS_DENIED)],
)
def test_token_without_the_send_scope(
    fake_oauth: FakeOAuthProvider, api: str, cause: Cause
) -> None:
    """Gmail names the scope; Graph only says access is denied (its advice covers Mail.Send)."""
    provider = SENDERS[api][1]
    token = mint(fake_oauth, provider, "openid" if provider == "google" else "User.Read")
    result = send(fake_oauth, api, token)
    assert result.diagnosis is not None
    assert (result.diagnosis.cause, result.diagnosis.code) == (cause, 403)
    assert "Mail.Send" in " ".join(result.diagnosis.fix) or "gmail.send" in " ".join(
        result.diagnosis.fix
    )


@pytest.mark.parametrize("api", ["gmail", "graph"])
def test_throttled_with_retry_after(fake_oauth: FakeOAuthProvider, api: str) -> None:
    token = mint(fake_oauth, *SENDERS[api][1:])
    prefix = "/gmail/" if api == "gmail" else "/v1.0/"
    fake_oauth.fail_next(prefix, 429, headers={"Retry-After": "7"})
    result = send(fake_oauth, api, token)
    assert result.diagnosis is not None
    assert (result.diagnosis.cause, result.diagnosis.kind) == (Cause.RATE_LIMITED, Kind.TRANSIENT)
    assert "Wait 7 seconds" in result.diagnosis.fix[0]
    assert "Retry-After: 7" in result.transcript.to_text()
    retry = send(fake_oauth, api, token)  # fail_next is one-shot: the next send goes through
    assert retry.ok


@pytest.mark.parametrize(("api", "status"), [("gmail", 500), ("graph", 503)])
def test_server_errors_are_transient(fake_oauth: FakeOAuthProvider, api: str, status: int) -> None:
    token = mint(fake_oauth, *SENDERS[api][1:])
    fake_oauth.fail_next("/gmail/" if api == "gmail" else "/v1.0/", status)
    result = send(fake_oauth, api, token)
    assert result.diagnosis is not None
    assert (result.diagnosis.cause, result.diagnosis.kind) == (Cause.SERVER_ERROR, Kind.TRANSIENT)
    assert result.diagnosis.code == status


@pytest.mark.parametrize("api", ["gmail", "graph"])
@pytest.mark.parametrize("after", [0.0, 5.0])
def test_a_lost_answer_leaves_the_outcome_unknown(
    fake_oauth: FakeOAuthProvider, api: str, after: float
) -> None:
    """The API took the message, but its answer never came: not "failed", not "safe to resend"."""
    token = mint(fake_oauth, *SENDERS[api][1:])
    fake_oauth.hang_up_next("/gmail/" if api == "gmail" else "/v1.0/", after=after)
    result = send(fake_oauth, api, token, command_timeout=1.0)
    assert len(fake_oauth.sent) == 1  # it was delivered, which is why "unknown" is honest
    assert not result.ok
    assert result.diagnosis is not None
    assert (result.diagnosis.cause, result.diagnosis.kind) == (
        Cause.OUTCOME_UNKNOWN,
        Kind.OUTCOME_UNKNOWN,
    )
    assert result.diagnosis.phase is Phase.END_OF_DATA
    expected = "did not come in time" if after else "never came: the connection was closed"
    assert expected in result.diagnosis.explanation
    assert "before sending again" in " ".join(result.diagnosis.fix)


def test_a_request_cut_off_mid_body_is_a_plain_disconnect() -> None:
    """A reset while the body is still going out: the request was never whole."""
    cut = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    )
    failure = failure_from_request_error(cut, sent=request_went_out(cut))
    assert (failure.phase, failure.signal) == (Phase.REQUEST, Signal.DISCONNECTED)
    lost = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", RemoteDisconnected("closed"))
    )
    assert request_went_out(lost)


def test_graph_request_ids_are_shown(fake_oauth: FakeOAuthProvider) -> None:
    fake_oauth.fail_next(
        "/v1.0/", 503, headers={"request-id": "rid-123", "client-request-id": "crid-456"}
    )
    result = send(fake_oauth, "graph")
    text = result.transcript.to_text()
    assert "request-id: rid-123" in text
    assert "client-request-id: crid-456" in text


# ------------------------------------------------------------------ connection and TLS


@pytest.mark.parametrize("api", ["gmail", "graph"])
def test_wrong_ca_is_an_untrusted_certificate(
    fake_oauth: FakeOAuthProvider, api: str, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    token = mint(fake_oauth, *SENDERS[api][1:])
    result = send(fake_oauth, api, token, ca_file=str(other))
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (
        Phase.TLS,
        Cause.CERTIFICATE_UNTRUSTED,
    )
    assert not fake_oauth.sent


@pytest.mark.parametrize("api", ["gmail", "graph"])
def test_connection_refused(fake_oauth: FakeOAuthProvider, api: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = send(fake_oauth, api, "fake-at-x", api_url=f"https://127.0.0.1:{port}")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.CONNECTION_REFUSED
    assert result.context.port == port
    assert "api_url" in " ".join(result.diagnosis.fix)


# ------------------------------------------------------------------ tokens


def test_a_token_provider_that_raises_oauth_error_ends_with_its_diagnosis(
    fake_oauth: FakeOAuthProvider,
) -> None:
    context = SendContext(host="127.0.0.1", port=443, security="ssl", auth="oauth")
    failure = Failure(
        Phase.TOKEN,
        Signal.OAUTH,
        code=400,
        enhanced="invalid_grant",
        text="Token has been expired or revoked.",
        detail="refresh",
    )
    diagnosis = diagnose(failure, context)

    def refused() -> Secret:
        raise OAuthError(diagnosis)

    for sender in (send_gmail_api, send_graph):
        result = sender(plan(fake_oauth), to=TO, token=refused)
        assert not result.ok
        assert result.diagnosis == diagnosis
        assert result.diagnosis.phase is Phase.TOKEN
        assert result.diagnosis.cause is Cause.TOKEN_REVOKED
    assert not fake_oauth.sent


def test_async_token_providers_work(fake_oauth: FakeOAuthProvider) -> None:
    token = mint(fake_oauth, "google", GMAIL_SEND)

    async def provide() -> Secret:
        return Secret(token)

    assert send_gmail_api(plan(fake_oauth), to=TO, token=provide).ok


def test_no_token_provider_is_token_missing(fake_oauth: FakeOAuthProvider) -> None:
    result = send_graph(plan(fake_oauth), to=TO, token=None)
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (Phase.SETUP, Cause.TOKEN_MISSING)
    assert "Microsoft Graph" in result.diagnosis.explanation


def test_no_from_address(fake_oauth: FakeOAuthProvider) -> None:
    result = send(fake_oauth, "gmail", "fake-at-x", from_address=None)
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.SETTING_INVALID


@pytest.mark.parametrize("api", ["gmail", "graph"])
@pytest.mark.parametrize("outcome", ["ok", "refused"])
def test_the_token_never_appears(fake_oauth: FakeOAuthProvider, api: str, outcome: str) -> None:
    token = mint(fake_oauth, *SENDERS[api][1:])
    if outcome == "refused":
        # A server that echoes the token back (in every encoding) must not leak it either.
        echoed = {
            "error": {
                "code": "Echo",
                "message": f"bad token {token} / {base64.b64encode(token.encode()).decode()}"
                f" / {json.dumps(token)}",
            }
        }
        fake_oauth.fail_next("/", 400, json_body=echoed, headers={"WWW-Authenticate": token})
    result = send(fake_oauth, api, token)
    assert result.ok is (outcome == "ok")
    shown = everything_shown(result)
    assert token not in shown
    assert base64.b64encode(token.encode()).decode() not in shown
    assert token[8:] not in shown  # the token without its fake-at- prefix


# ------------------------------------------------------------------ pure parts


def test_recorder_summarises_token_forms_and_answers() -> None:
    recorder = HttpRecorder(secrets=[Secret("rt-canary-Zq9!k7")])
    recorder.request(
        "POST",
        "https://oauth2.googleapis.com/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"grant_type=refresh_token&client_id=abc&refresh_token=rt-canary-Zq9%21k7&client_secret=s",
        phase=Phase.TOKEN,
    )
    recorder.response(
        200,
        "OK",
        {"Content-Type": "application/json"},
        json.dumps(
            {"access_token": "at-fresh", "expires_in": 3599, "token_type": "Bearer"}
        ).encode(),
        phase=Phase.TOKEN,
    )
    text = recorder.transcript().to_text()
    assert "grant_type=refresh_token" in text
    assert "client_id=abc" in text
    assert "refresh_token=<hidden>" in text
    assert "client_secret=<hidden>" in text
    assert "rt-canary" not in text
    assert "at-fresh" not in text
    assert "expires_in=3599" in text
    assert "1 more field(s) hidden" in text
    assert {r.phase for r in recorder.rows} == {Phase.TOKEN}


def test_api_error_shapes() -> None:
    gmail = {
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials.",
            "status": "UNAUTHENTICATED",
            "errors": [{"reason": "authError"}],
            "details": [{"reason": "ACCESS_TOKEN_EXPIRED"}],
        }
    }
    assert api_error(json.dumps(gmail).encode()) == (
        "ACCESS_TOKEN_EXPIRED",
        "Request had invalid authentication credentials.",
    )
    del gmail["error"]["details"]
    assert api_error(json.dumps(gmail).encode())[0] == "authError"
    graph = {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}
    assert api_error(json.dumps(graph).encode()) == ("ErrorAccessDenied", "Access is denied.")
    oauth = {"error": "invalid_grant", "error_description": "Bad Request"}
    assert api_error(json.dumps(oauth).encode()) == ("invalid_grant", "Bad Request")
    assert api_error(b"<html>") == (None, "")


def test_retry_after_seconds() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    # Whole seconds, rounded up; a date in the past means now.
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.4) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412600.0) == 0.0
    assert retry_after_seconds("²") is None  # str.isdigit() says yes; float() says no


def test_an_authorization_header_without_a_scheme_is_hidden_whole() -> None:
    recorder = HttpRecorder()
    recorder.request("POST", "https://api.example/send", {"Authorization": "ya29.bare-tok"}, None)
    recorder.request("POST", "https://api.example/send", {"authorization": "Bearer x.y"}, None)
    first, second = (row.text for row in recorder.rows)
    assert "ya29" not in first
    assert "Authorization: <secret hidden>" in first
    assert "Authorization: Bearer <secret hidden>" in second


def test_a_missing_ca_file_names_the_setting(fake_oauth: FakeOAuthProvider, tmp_path: Path) -> None:
    result = send(fake_oauth, "graph", "fake-at-x", ca_file=str(tmp_path / "gone.pem"))
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (Phase.SETUP, Cause.SETTING_INVALID)
    assert "ca_file" in " ".join(result.diagnosis.fix)


def test_a_blocking_token_provider_and_the_rows_leave_the_loop_free(
    fake_oauth: FakeOAuthProvider,
) -> None:
    """In a notebook the send runs on the kernel's loop: a refresh must not block it, and
    rows (drawn by a widget) must arrive on the loop's thread, not the POST's worker."""
    token = mint(fake_oauth, "google", GMAIL_SEND)
    threads: dict[str, set[int]] = {"provider": set(), "rows": set()}

    def provide() -> Secret:
        threads["provider"].add(threading.get_ident())
        return Secret(token)

    async def main() -> tuple[TestResult, int]:
        result = await send_gmail_api_async(
            plan(fake_oauth),
            to=TO,
            token=provide,
            on_row=lambda _row: threads["rows"].add(threading.get_ident()),
        )
        return result, threading.get_ident()

    result, loop_thread = asyncio.run(main())
    assert result.ok, result.diagnosis
    assert threads["provider"]
    assert loop_thread not in threads["provider"]
    assert threads["rows"] == {loop_thread}


# ------------------------------------------------------------------ send_test dispatch


@pytest.mark.parametrize(
    ("mode", "api"), [("gmail_api", "gmail_api"), ("microsoft_graph", "graph")]
)
def test_send_test_dispatches_by_mode_and_records_it(
    fake_oauth: FakeOAuthProvider, mode: str, api: str, tmp_path: Path
) -> None:
    org = OrgSettings(
        mode=mode,
        from_address=ACCOUNT,
        api_url=fake_oauth.base_url,
        ca_file=str(fake_oauth.ca_file),
    )
    provider, scope = ("google", GMAIL_SEND) if api == "gmail_api" else ("ms", GRAPH_SEND)
    token = mint(fake_oauth, provider, scope)
    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        result = send_test(
            org, to=TO, token=provider_of(token), secrets=MemorySecretStore(), store=store
        )
        missing = send_test(org, to=TO, store=store)
        history = store.history_frame(None)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert [m.api for m in fake_oauth.sent] == [api]
    assert missing.diagnosis is not None
    assert missing.diagnosis.cause is Cause.TOKEN_MISSING
    assert list(history["mode"]) == [mode, mode]
    assert list(history["ok"]) == [True, False]


def test_smtp_xoauth2_token_provider_raising_oauth_error(smtp_server: MailServer) -> None:
    """The SMTP sender ends the send with the token provider's diagnosis; it never crashes."""
    context = SendContext(host="oauth2.googleapis.com", port=443, security="ssl", auth="xoauth2")
    diagnosis = diagnose(
        Failure(
            Phase.TOKEN,
            Signal.OAUTH,
            400,
            "invalid_grant",
            "Token has been expired or revoked.",
            detail="refresh",
        ),
        context,
    )

    def refused() -> Secret:
        raise OAuthError(diagnosis)

    smtp_plan = SmtpPlan(
        host=smtp_server.host,
        port=smtp_server.starttls_port,
        security=Security.STARTTLS,
        auth=AuthType.XOAUTH2,
        username=smtp_server.user,
        from_address="it@example.com",
        ca_file=str(smtp_server.ca_file),
        connect_timeout=5,
        command_timeout=5,
    )
    result = run_sync(send_plan_async(smtp_plan, to=TO, token=refused))
    assert not result.ok
    assert result.diagnosis == diagnosis
    assert result.diagnosis.cause is Cause.TOKEN_REVOKED
    assert not smtp_server.messages
    assert "token provider could not get one" in result.transcript.to_text()


@pytest.mark.parametrize(("mode", "status"), [("gmail_api", 200), ("microsoft_graph", 202)])
def test_an_accepting_answer_that_echoes_the_token_reaches_no_reply_or_history(
    fake_oauth: FakeOAuthProvider, mode: str, status: int, tmp_path: Path
) -> None:
    """A 2xx body quoting the token (as an id, in base64, JSON-escaped) is scrubbed at the
    source: the reply, the history in SQLite and every rendering hold none of it."""
    provider, scope = ("google", GMAIL_SEND) if mode == "gmail_api" else ("ms", GRAPH_SEND)
    token = mint(fake_oauth, provider, scope)
    echoed = {
        "id": token,
        "threadId": base64.b64encode(b"\0\0" + token.encode()).decode(),
        "labelIds": [json.dumps(token), token.encode().hex()],
    }
    fake_oauth.fail_next("/", status, json_body=echoed, headers={"request-id": token})
    org = OrgSettings(
        mode=mode,
        from_address=ACCOUNT,
        api_url=fake_oauth.base_url,
        ca_file=str(fake_oauth.ca_file),
    )
    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        result = send_test(org, to=TO, token=provider_of(token), store=store)
        history = store.history_frame(None).to_string()
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    if mode == "gmail_api":
        assert result.server_reply == f"{status} OK: Gmail message id <secret hidden>"
    shown = everything_shown(result) + history + (result.server_reply or "")
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for form in (token, token[8:], base64.b64encode(b"\0\0" + token.encode()).decode()[4:]):
        assert form not in shown
        assert form.encode() not in files
    assert token.encode().hex() not in shown


@pytest.mark.parametrize("offset", [190, 195, 198, 390, 395, 398])
def test_the_http_recorder_scrubs_before_it_cuts(offset: int) -> None:
    token = "tok-canary-Qx7!pL2"
    recorder = HttpRecorder(secrets=[Secret(token)])
    padded = "x" * offset + token + " tail"
    recorder.response(400, "Bad", {"Content-Type": "text/plain"}, padded.encode())
    recorder.response(
        401,
        "Unauthorized",
        {"Content-Type": "application/json", "WWW-Authenticate": padded},
        json.dumps({"error": {"code": "Echo", "message": padded}}).encode(),
    )
    shown = "\n".join(row.text for row in recorder.rows)
    assert token[:6] not in shown
    assert "<secret hidden>" in shown or "more characters" in shown
