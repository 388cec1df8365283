"""The fake Exchange against the real exchangelib (and raw HTTP where exchangelib cannot show
what is on the wire): sign-in with NTLM and Basic, version discovery, CreateItem recorded,
every fault of the one table raised as exchangelib raises it, Autodiscover in its three
flavours, and no secret in anything the fake keeps or logs."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import selectors
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import pytest
import requests
from ews_fixtures import (
    ews_account,
    ews_account_by_autodiscover,
    forget_exchangelib_state,
    trust,
)
from smtpd_servers import TLSMaterial

from mailkit.demo.ews import (
    AUTODISCOVER_FAULTS,
    DEFAULT_USER,
    EWS_FAULTS,
    EwsFault,
    FakeExchange,
)
from mailkit.demo.ews.scenarios import BACK_OFF_MILLISECONDS, REDIRECT_TARGET


def _send(account: Any, to: str = "someone@example.org", **fields: Any) -> Any:
    from exchangelib import HTMLBody, Message  # type: ignore[import-untyped, unused-ignore]

    message = Message(
        account=account,
        subject=fields.pop("subject", "mailkit test"),
        body=fields.pop("body", HTMLBody("<p>Hello</p>")),
        to_recipients=[to],
        **fields,
    )
    return message.send_and_save()


def _raw(fake: FakeExchange) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(fake.ca_file))
    return http.client.HTTPSConnection("127.0.0.1", fake.port, context=context, timeout=10)


def _post(
    connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> http.client.HTTPResponse:
    connection.request("POST", path, body, {"Content-Type": "text/xml; charset=utf-8", **headers})
    response = connection.getresponse()
    response.read()
    return response


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _session(fake: FakeExchange) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE must not override the fake's CA
    session.verify = str(fake.ca_file)
    return session


# --------------------------------------------------------------------------- sending


def test_ntlm_send_is_recorded_with_its_fields(fake_exchange: FakeExchange) -> None:
    from exchangelib import HTMLBody  # type: ignore[import-untyped, unused-ignore]

    account = ews_account(fake_exchange)
    assert (
        _send(
            account,
            to="first@example.org",
            subject="Réunion ✓",
            body=HTMLBody("<p>Bonjour — 你好</p>"),
            cc_recipients=["copy@example.org"],
            bcc_recipients=["hidden@example.org"],
            importance="High",
        )
        is True
    )

    [message] = fake_exchange.sent
    assert message.disposition == "SendAndSaveCopy"
    assert message.subject == "Réunion ✓"
    assert message.body == "<p>Bonjour — 你好</p>"
    assert message.body_type == "HTML"
    assert (message.to, message.cc, message.bcc) == (
        ("first@example.org",),
        ("copy@example.org",),
        ("hidden@example.org",),
    )
    assert message.importance == "High"
    assert message.user == message.mailbox == DEFAULT_USER

    requests_seen = fake_exchange.requests
    # The probe: no credentials, a 401 naming both schemes.
    assert requests_seen[0].status == 401
    assert requests_seen[0].user is None
    create = [r for r in requests_seen if r.operation == "CreateItem"]
    assert [(r.auth_scheme, r.user, r.response_code) for r in create] == [
        ("NTLM", DEFAULT_USER, "NoError")
    ]
    # NTLM signs the connection in: everything after the handshake rides on that connection.
    signed_in = [r for r in requests_seen if r.user is not None]
    assert len({r.connection for r in signed_in}) == 1


def test_basic_send(fake_exchange: FakeExchange) -> None:
    from exchangelib import BASIC  # type: ignore[import-untyped, unused-ignore]

    account = ews_account(fake_exchange, auth_type=BASIC)
    _send(account, importance="Low")
    assert [m.importance for m in fake_exchange.sent] == ["Low"]
    schemes = {r.auth_scheme for r in fake_exchange.requests if r.user}
    assert schemes == {"Basic"}


@pytest.mark.parametrize("login", ["EXAMPLE\\ews", "ews@example.com", "ews"])
def test_sign_in_name_forms(fake_exchange: FakeExchange, login: str) -> None:
    from exchangelib import NTLM  # type: ignore[import-untyped, unused-ignore]

    account = ews_account(fake_exchange, user=login, mailbox=DEFAULT_USER, auth_type=NTLM)
    _send(account)
    assert fake_exchange.sent[0].user == DEFAULT_USER


@pytest.mark.parametrize(("version", "minor"), [("Exchange2016", 1), ("Exchange2019", 2)])
def test_version_discovery(tls_material: TLSMaterial, version: str, minor: int) -> None:
    fake = FakeExchange.from_files(
        tls_material.server.cert_file,
        tls_material.server.key_file,
        tls_material.ca_file,
        version=version,
    )
    with fake:
        try:
            account = ews_account(fake)
            build = account.version.build
            assert (build.major_version, build.minor_version) == (15, minor)
            assert account.version.api_version == "Exchange2016"
        finally:
            forget_exchangelib_state()
    # exchangelib asked with ConvertId, as it always does, and read the answer's header.
    assert "ConvertId" in [r.operation for r in fake.requests]


def test_on_send_sees_each_accepted_message(fake_exchange: FakeExchange) -> None:
    seen: list[str | None] = []
    fake_exchange.on_send = lambda message: seen.append(message.subject)
    _send(ews_account(fake_exchange), subject="one")
    assert seen == ["one"]


def test_bearer_token_signs_in(fake_exchange: FakeExchange) -> None:
    fake_exchange.bearer_tokens["token-123"] = DEFAULT_USER
    with closing(_raw(fake_exchange)) as connection:
        good = _post(
            connection, "/EWS/Exchange.asmx", b"<x/>", {"Authorization": "Bearer token-123"}
        )
        bad = _post(connection, "/EWS/Exchange.asmx", b"<x/>", {"Authorization": "Bearer nope"})
    assert good.status == 500  # signed in; the body is no SOAP envelope: a schema fault
    assert bad.status == 401
    assert [r.auth_scheme for r in fake_exchange.requests] == ["Bearer", None]


# --------------------------------------------------------------------------- the wire


def test_probe_offers_each_scheme_in_its_own_header(fake_exchange: FakeExchange) -> None:
    paths = {
        "/EWS/Exchange.asmx": ["NTLM", 'Basic realm="127.0.0.1"'],
        "/basic-only/EWS/Exchange.asmx": ['Basic realm="127.0.0.1"'],
        "/ntlm-only/EWS/Exchange.asmx": ["NTLM"],
    }
    retired = "/retired/EWS/Exchange.asmx"  # Exchange Online: OAuth, and Basic still named
    with closing(_raw(fake_exchange)) as connection:
        for path, offered in paths.items():
            response = _post(connection, path, b"", {})
            assert response.status == 401
            assert response.headers.get_all("WWW-Authenticate") == offered
            assert response.headers["Server"] == "Microsoft-IIS/10.0"
        online = _post(connection, retired, b"", {}).headers.get_all("WWW-Authenticate") or []
    assert [value.split(" ")[0] for value in online] == ["Bearer", "Basic"]
    assert 'client_id="00000002-0000-0ff1-ce00-000000000000"' in online[0]


def test_ntlm_handshake_is_bound_to_its_connection(fake_exchange: FakeExchange) -> None:
    """A CHALLENGE answered on another connection does not sign anyone in (as IIS)."""
    import spnego

    client = spnego.client(
        DEFAULT_USER,
        fake_exchange.password,
        hostname="127.0.0.1",
        service="http",
        protocol="ntlm",
    )
    negotiate = base64.b64encode(client.step() or b"").decode()
    with closing(_raw(fake_exchange)) as first:
        challenged = _post(first, "/EWS/Exchange.asmx", b"", {"Authorization": f"NTLM {negotiate}"})
    assert challenged.status == 401
    token = challenged.headers["WWW-Authenticate"].split(" ", 1)[1]
    authenticate = base64.b64encode(client.step(base64.b64decode(token)) or b"").decode()
    with closing(_raw(fake_exchange)) as second:
        elsewhere = _post(
            second, "/EWS/Exchange.asmx", b"", {"Authorization": f"NTLM {authenticate}"}
        )
    assert elsewhere.status == 401
    assert all(r.user is None for r in fake_exchange.requests)


def test_malformed_soap_is_a_schema_fault(fake_exchange: FakeExchange) -> None:
    with closing(_raw(fake_exchange)) as connection:
        header = {"Authorization": _basic(DEFAULT_USER, fake_exchange.password)}
        response = _post(connection, "/EWS/Exchange.asmx", b"<not-closed", header)
    assert response.status == 500
    assert fake_exchange.requests[-1].response_code == "ErrorSchemaValidation"


# --------------------------------------------------------------------------- faults


def test_fault_table_covers_what_the_sender_must_diagnose() -> None:
    assert set(EWS_FAULTS) == {
        "bad-credentials",
        "account-locked",
        "ntlm-not-offered",
        "ews-disabled",
        "ews-retired",
        "access-denied",
        "send-as-denied",
        "impersonate-denied",
        "quota-exceeded",
        "server-busy",
        "invalid-recipients",
        "stall",
        "cut",
    }
    triggers = [(f.where, f.trigger) for f in EWS_FAULTS.values()]
    assert len(triggers) == len(set(triggers))


def _provoke(fake: FakeExchange, fault: EwsFault) -> Any:
    """Run the exchangelib call that meets ``fault``; return what it raised."""
    from exchangelib import NTLM  # type: ignore[import-untyped, unused-ignore]

    options: dict[str, Any] = {}
    to = "someone@example.org"
    if fault.key == "bad-credentials":
        options["password"] = "not-the-password"
    elif fault.where == "login":
        options["user"] = fake.address(fault.trigger)
    elif fault.key == "ntlm-not-offered":
        options.update(url=fake.ews_url_basic_only, auth_type=NTLM)
    elif fault.key == "ews-retired":
        options["url"] = fake.ews_url_retired
    elif fault.where == "mailbox":
        options["mailbox"] = fake.address(fault.trigger)
        options["impersonate"] = fault.key == "impersonate-denied"
    elif fault.where == "recipient":
        to = fake.address(fault.trigger)
    account = ews_account(fake, **options)
    if fault.key == "stall":
        # Sign in, guess the version and find the folders at the usual pace; then the client
        # gives CreateItem 1.5 s while the server holds its answer back for 20.
        assert account.sent is not None
        fake.stall_seconds = 20.0
        account.protocol.TIMEOUT = 1.5
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the caller checks which class
        _send(account, to=to)
    return raised.value


@pytest.mark.parametrize("key", sorted(EWS_FAULTS))
def test_each_fault_as_exchangelib_raises_it(fake_exchange: FakeExchange, key: str) -> None:
    fault = EWS_FAULTS[key]
    error = _provoke(fake_exchange, fault)
    assert type(error).__name__ == fault.raises, repr(error)
    if fault.response_code:
        assert fake_exchange.requests[-1].response_code == fault.response_code
    if fault.http_status is None:
        assert fake_exchange.requests[-1].status is None  # never answered
    elif fault.where != "url" or fault.key == "ews-retired":
        assert fake_exchange.requests[-1].status == fault.http_status
    if fault.key == "cut":
        # The server got the message: whether it went is unknown to the client.
        assert [m.to for m in fake_exchange.sent] == [(fake_exchange.address("cut"),)]
    else:
        assert fake_exchange.sent == []


def test_faults_keep_their_words(fake_exchange: FakeExchange) -> None:
    from exchangelib.errors import ErrorServerBusy, MalformedResponseError, UnauthorizedError  # type: ignore[import-untyped, unused-ignore]

    busy = _provoke(fake_exchange, EWS_FAULTS["server-busy"])
    assert isinstance(busy, ErrorServerBusy)
    assert busy.back_off == BACK_OFF_MILLISECONDS / 1000
    locked = _provoke(fake_exchange, EWS_FAULTS["account-locked"])
    assert isinstance(locked, UnauthorizedError)
    assert "locked out" in str(locked)
    retired = _provoke(fake_exchange, EWS_FAULTS["ews-retired"])
    assert isinstance(retired, MalformedResponseError)
    assert "prod.outlook.com" in str(retired)
    assert "Microsoft Graph" in str(retired)


def test_basic_only_url_lets_a_client_that_asks_sign_in_with_basic(
    fake_exchange: FakeExchange,
) -> None:
    """Without a forced scheme exchangelib takes what the probe offers: Basic."""
    _send(ews_account(fake_exchange, url=fake_exchange.ews_url_basic_only))
    assert {r.auth_scheme for r in fake_exchange.requests if r.user} == {"Basic"}


def test_wrong_password_with_basic(fake_exchange: FakeExchange) -> None:
    from exchangelib import BASIC  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.errors import UnauthorizedError  # type: ignore[import-untyped, unused-ignore]

    with pytest.raises(UnauthorizedError):
        _send(ews_account(fake_exchange, auth_type=BASIC, password="wrong"))


# --------------------------------------------------------------------------- Autodiscover


@pytest.fixture
def private_autodiscover_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """exchangelib persists Autodiscover results per domain in one file in the system temp
    folder, shared by every process: give this test its own."""
    from exchangelib.autodiscover.cache import AutodiscoverCache  # type: ignore[import-untyped, unused-ignore]

    monkeypatch.setattr(
        AutodiscoverCache, "_storage_file", property(lambda _self: tmp_path / "ad-cache")
    )
    yield
    forget_exchangelib_state()


@pytest.mark.usefixtures("private_autodiscover_cache")
def test_exchangelib_autodiscover_finds_the_ews_url(fake_exchange: FakeExchange) -> None:
    account = ews_account_by_autodiscover(fake_exchange)
    assert account.protocol.service_endpoint == fake_exchange.ews_url
    _send(account)
    assert len(fake_exchange.sent) == 1
    assert "GetUserSettingsRequestMessage" in [r.operation for r in fake_exchange.requests]


@pytest.mark.usefixtures("private_autodiscover_cache")
def test_exchangelib_autodiscover_follows_a_redirect_address(fake_exchange: FakeExchange) -> None:
    account = ews_account_by_autodiscover(fake_exchange, user=fake_exchange.address("ad-redirect"))
    assert account.primary_smtp_address == fake_exchange.address(REDIRECT_TARGET)


@pytest.mark.usefixtures("private_autodiscover_cache")
@pytest.mark.parametrize(
    ("trigger", "raises"),
    [("ad-401", "UnauthorizedError"), ("ad-no-ews", "AttributeError")],
)
def test_exchangelib_autodiscover_failures(
    fake_exchange: FakeExchange, trigger: str, raises: str
) -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the class is checked below
        ews_account_by_autodiscover(fake_exchange, user=fake_exchange.address(trigger))
    assert type(raised.value).__name__ == raises


def _pox_request(address: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/'
        'exchange/autodiscover/outlook/requestschema/2006"><Request>'
        f"<EMailAddress>{address}</EMailAddress><AcceptableResponseSchema>http://schemas."
        "microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>"
    ).encode()


def _pox_ews_urls(body: bytes) -> list[str]:
    from defusedxml import ElementTree  # type: ignore[import-untyped, unused-ignore]

    namespace = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    root = ElementTree.fromstring(body)
    return [e.text or "" for e in root.iter(f"{namespace}EwsUrl")]


def test_pox_autodiscover(fake_exchange: FakeExchange) -> None:
    session = _session(fake_exchange)
    url = fake_exchange.autodiscover_xml_url
    anonymous = session.post(url, data=_pox_request(DEFAULT_USER), timeout=10)
    assert anonymous.status_code == 401

    auth = (DEFAULT_USER, fake_exchange.password)
    found = session.post(url, data=_pox_request(DEFAULT_USER), auth=auth, timeout=10)
    assert found.status_code == 200
    assert _pox_ews_urls(found.content) == [fake_exchange.ews_url] * 2

    outcomes = {}
    for fault in AUTODISCOVER_FAULTS:
        answer = session.post(
            url, data=_pox_request(fault.address("example.com")), auth=auth, timeout=10
        )
        outcomes[fault.failure] = answer
    assert outcomes["404"].status_code == 404
    assert outcomes["401"].status_code == 401
    assert outcomes["malformed"].status_code == 200
    with pytest.raises(ParseError):
        _pox_ews_urls(outcomes["malformed"].content)
    assert b"<Action>redirectAddr</Action>" in outcomes["redirect"].content
    assert f"{REDIRECT_TARGET}@example.com".encode() in outcomes["redirect"].content
    assert outcomes["no-ews"].status_code == 200
    assert _pox_ews_urls(outcomes["no-ews"].content) == []
    unknown = session.post(url, data=_pox_request("who@else.org"), auth=auth, timeout=10)
    assert b"<ErrorCode>500</ErrorCode>" in unknown.content


def test_json_autodiscover(fake_exchange: FakeExchange) -> None:
    session = _session(fake_exchange)
    found = session.get(fake_exchange.autodiscover_json_url(DEFAULT_USER), timeout=10)
    assert found.json() == {"Protocol": "EWS", "Url": fake_exchange.ews_url}

    def get(trigger: str) -> requests.Response:
        address = f"{trigger}@example.com"
        return session.get(
            fake_exchange.autodiscover_json_url(address), allow_redirects=False, timeout=10
        )

    assert get("ad-404").status_code == 404
    assert get("ad-401").status_code == 401
    with pytest.raises(json.JSONDecodeError):
        json.loads(get("ad-malformed").content)
    redirect = get("ad-redirect")
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == fake_exchange.autodiscover_json_url(
        f"{REDIRECT_TARGET}@example.com"
    )
    assert get("ad-no-ews").json() == {"Protocol": "EWS"}
    wrong = session.get(fake_exchange.autodiscover_json_url(DEFAULT_USER, "Foo"), timeout=10)
    assert wrong.status_code == 400
    assert wrong.json()["ErrorCode"] == "InvalidProtocol"


# --------------------------------------------------------------------------- secrets


def test_no_secret_in_what_the_fake_keeps_or_logs(
    tls_material: TLSMaterial, caplog: pytest.LogCaptureFixture
) -> None:
    from exchangelib import BASIC, NTLM  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.errors import UnauthorizedError  # type: ignore[import-untyped, unused-ignore]

    canary = "Canary-Pa55-7f3e9c"
    fake = FakeExchange.from_files(
        tls_material.server.cert_file,
        tls_material.server.key_file,
        tls_material.ca_file,
        password=canary,
    )
    caplog.set_level(logging.DEBUG, logger="mailkit")
    with fake:
        try:
            for auth_type in (NTLM, BASIC):
                _send(ews_account(fake, auth_type=auth_type))
            with pytest.raises(UnauthorizedError):
                _send(ews_account(fake, password=canary + "-wrong", auth_type=NTLM))
        finally:
            forget_exchangelib_state()
    logged = "\n".join(
        record.getMessage() + repr(record.args)
        for record in caplog.records
        if record.name.startswith("mailkit")
    )
    kept = repr(fake.requests) + repr(fake.sent) + repr(fake) + logged
    basic = base64.b64encode(f"{DEFAULT_USER}:{canary}".encode()).decode()
    for secret in (canary, basic, base64.b64encode(canary.encode()).decode()):
        assert secret not in kept
    assert "TlRMTVNT" not in kept  # base64 of "NTLMSSP": no NTLM message anywhere
    assert "Authorization" not in repr(fake.requests)


# --------------------------------------------------------------------------- the demo


def test_demo_server_serves_exchange_into_its_mailbox(tmp_path: Path) -> None:
    from exchangelib import BASIC  # type: ignore[import-untyped, unused-ignore]

    from mailkit.demo import DEMO_USER, DemoServer, DemoSettings, read_mailbox

    with DemoServer(tmp_path / "demo") as server:
        demo = server.settings
        assert demo.ews_url == server.ews.ews_url
        assert demo.ews_autodiscover_url == server.ews.autodiscover_xml_url
        assert DemoSettings.from_dict(demo.as_dict()) == demo
        written = json.loads((tmp_path / "demo" / "demo.json").read_text())
        assert written["ews_url"] == demo.ews_url
        try:
            for auth_type in (None, BASIC):
                _send(
                    ews_account(server.ews, user=DEMO_USER, auth_type=auth_type),
                    to="bob@example.org",
                    subject=f"via EWS {auth_type}",
                    importance="High",
                )
        finally:
            forget_exchangelib_state()
        mailbox = read_mailbox(demo.directory)
    assert sorted(mailbox["subject"]) == ["via EWS None", "via EWS basic"]
    assert set(mailbox["to"]) == {"bob@example.org"}


def test_demo_exchange_takes_the_private_password(tmp_path: Path) -> None:
    from exchangelib.errors import UnauthorizedError  # type: ignore[import-untyped, unused-ignore]

    from mailkit.demo import DEMO_PASSWORD, DEMO_USER, DemoServer

    canary = "canary-Ews-Pw-77"
    with DemoServer(tmp_path / "demo", password=canary) as server:
        try:
            _send(ews_account(server.ews, user=DEMO_USER, password=canary))
            with pytest.raises(UnauthorizedError):
                _send(ews_account(server.ews, user=DEMO_USER, password=DEMO_PASSWORD))
        finally:
            forget_exchangelib_state()
        assert canary not in (tmp_path / "demo" / "demo.json").read_text()
        assert canary not in server.settings.to_text()


def test_demo_accounts_table_shows_each_exchange_failure() -> None:
    from mailkit.demo import accounts_table
    from mailkit.demo.ews.scenarios import demo_accounts

    table = accounts_table()
    assert table["key"].is_unique
    ews_rows = table[table["key"].str.startswith("ews")]
    keys = set(ews_rows["key"])
    for fault in EWS_FAULTS.values():
        assert any(key.endswith(fault.key) for key in keys) or fault.key == "bad-credentials"
    assert "ews-wrong-password" in keys
    assert len(ews_rows) == len(demo_accounts("example.com", DEFAULT_USER, "x"))
    # Every row's account really triggers its fault on the fake (one table, one behaviour).
    sendas = ews_rows.set_index("key").loc["ews-send-as-denied"]
    assert sendas["user"] == "sendas-denied@example.com"
    assert sendas["reply"] == "ErrorSendAsDenied"


def test_each_demo_row_meets_its_fault(fake_exchange: FakeExchange) -> None:
    """The rows the demo shows are the ways to reach each fault on the fake (same table)."""
    from mailkit.demo.ews.scenarios import EwsFault as Fault
    from mailkit.demo.ews.scenarios import demo_accounts

    for row in demo_accounts(fake_exchange.domain, DEFAULT_USER, fake_exchange.password):
        if not isinstance(row.fault, Fault) or row.fault.where not in ("login", "mailbox"):
            continue
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the class is checked below
            _send(
                ews_account(
                    fake_exchange,
                    user=row.user,
                    password=row.password,
                    impersonate=row.fault.key == "impersonate-denied",
                )
            )
        assert type(raised.value).__name__ == row.fault.raises, row.key
        forget_exchangelib_state()


def _free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return int(free.getsockname()[1])


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"no output from mailkit demo-server within {timeout} s")
    return proc.stdout.readline()


@pytest.mark.parametrize("with_ews", [True, False], ids=["ews-port", "no-ews"])
def test_demo_server_command_serves_exchange(tmp_path: Path, with_ews: bool) -> None:
    from mailkit.demo import DemoSettings

    port = _free_port()
    exe = Path(sys.executable).with_name("mailkit")
    flags = ["--ews-port", str(port)] if with_ews else ["--no-ews"]
    argv = [str(exe), "demo-server", "--dir", str(tmp_path), "--json", "--no-oauth", *flags]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            demo = DemoSettings.from_dict(json.loads(_first_line(proc, 30)))
            if with_ews:
                assert demo.ews_url == f"https://127.0.0.1:{port}/EWS/Exchange.asmx"
                context = ssl.create_default_context(cafile=str(demo.ca_file))
                connection = http.client.HTTPSConnection(
                    "127.0.0.1", port, context=context, timeout=10
                )
                with closing(connection):
                    probe = _post(connection, "/EWS/Exchange.asmx", b"", {})
                assert probe.status == 401
                assert probe.headers.get_all("WWW-Authenticate") == [
                    "NTLM",
                    'Basic realm="127.0.0.1"',
                ]
            else:
                assert demo.ews_url is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_the_mailbox_a_send_acts_for(fake_exchange: FakeExchange) -> None:
    """From (exchangelib's ``author``), the impersonated mailbox and the folder's mailbox are
    each read from the request, and each can trigger a mailbox fault."""
    from exchangelib.errors import (  # type: ignore[import-untyped, unused-ignore]
        ErrorSendAsDenied,
    )

    boss = fake_exchange.address("boss")
    _send(ews_account(fake_exchange, mailbox=boss, impersonate=True))
    assert fake_exchange.sent[-1].mailbox == boss
    assert fake_exchange.sent[-1].user == DEFAULT_USER
    _send(ews_account(fake_exchange), author=boss)
    assert fake_exchange.sent[-1].from_ == boss
    with pytest.raises(ErrorSendAsDenied):
        _send(ews_account(fake_exchange), author=fake_exchange.address("sendas-denied"))


@pytest.mark.parametrize("known", [True, False], ids=["token", "unknown-token"])
def test_oauth_bearer_with_exchangelib(fake_exchange: FakeExchange, known: bool) -> None:
    """Exchange Online's way in (while EWS lasts): an access token from the Microsoft consent."""
    from exchangelib import (  # type: ignore[import-untyped, unused-ignore]
        DELEGATE,
        OAUTH2,
        Account,
        Configuration,
    )
    from exchangelib.credentials import (  # type: ignore[import-untyped, unused-ignore]
        OAuth2AuthorizationCodeCredentials,
    )
    from exchangelib.errors import UnauthorizedError  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.protocol import FailFast, Protocol  # type: ignore[import-untyped, unused-ignore]
    from oauthlib.oauth2 import OAuth2Token

    if known:
        fake_exchange.bearer_tokens["access-token-1"] = DEFAULT_USER
    token = OAuth2Token(
        {"access_token": "access-token-1", "token_type": "Bearer", "expires_in": 3600}
    )
    credentials = OAuth2AuthorizationCodeCredentials(client_id="demo", access_token=token)
    config = Configuration(
        service_endpoint=fake_exchange.ews_url,
        credentials=credentials,
        auth_type=OAUTH2,
        retry_policy=FailFast(),
    )
    trust(Protocol(config=config), fake_exchange.ca_file)
    account = Account(DEFAULT_USER, config=config, autodiscover=False, access_type=DELEGATE)
    if known:
        _send(account)
        assert {r.auth_scheme for r in fake_exchange.requests} == {"Bearer"}
    else:
        with pytest.raises(UnauthorizedError):
            _send(account)
        assert fake_exchange.sent == []


def test_a_draft_is_saved_not_sent(fake_exchange: FakeExchange) -> None:
    from exchangelib import Message  # type: ignore[import-untyped, unused-ignore]

    account = ews_account(fake_exchange)
    draft = Message(account=account, folder=account.drafts, subject="draft", to_recipients=[])
    draft.save()
    assert draft.id == fake_exchange.drafts[0].item_id  # SaveOnly answers with the ItemId
    assert fake_exchange.drafts[0].disposition == "SaveOnly"
    assert fake_exchange.sent == []


def test_plain_http_redirects_autodiscover_and_refuses_ews(fake_exchange: FakeExchange) -> None:
    """Autodiscover's HTTP redirect step, and IIS's 403.4 for EWS without TLS."""
    session = requests.Session()
    session.trust_env = False
    redirect = session.get(
        fake_exchange.autodiscover_redirect_url, allow_redirects=False, timeout=10
    )
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == fake_exchange.autodiscover_xml_url
    assert fake_exchange.autodiscover_redirect_url.startswith("http://127.0.0.1:")
    plain_ews = session.post(fake_exchange.http_url + "/EWS/Exchange.asmx", data=b"", timeout=10)
    assert plain_ews.status_code == 403
    assert "SSL is required" in plain_ews.text


def test_parallel_ntlm_sign_ins_keep_to_their_connections(fake_exchange: FakeExchange) -> None:
    """Each connection has its own handshake: parallel clients with different accounts (one
    of them refused) never sign in on another's connection."""
    from concurrent.futures import ThreadPoolExecutor

    from exchangelib import NTLM  # type: ignore[import-untyped, unused-ignore]

    users = [fake_exchange.address(f"user{n}") for n in range(6)]

    def send(user: str) -> str:
        password = "wrong" if user.startswith("user5") else None
        try:
            _send(ews_account(fake_exchange, user=user, password=password, auth_type=NTLM))
        except Exception as exc:
            return type(exc).__name__
        return "sent"

    with ThreadPoolExecutor(len(users)) as pool:
        outcomes = dict(zip(users, pool.map(send, users), strict=True))
    assert outcomes == dict.fromkeys(users[:5], "sent") | {users[5]: "UnauthorizedError"}
    assert sorted(m.user for m in fake_exchange.sent) == users[:5]
    by_connection: dict[int, set[str]] = {}
    for request in fake_exchange.requests:
        if request.user is not None:
            by_connection.setdefault(request.connection, set()).add(request.user)
    assert all(len(signed_in) == 1 for signed_in in by_connection.values())


def test_answers_carry_exchange_front_end_headers(fake_exchange: FakeExchange) -> None:
    """A request id on every answer (what an admin quotes to support), and the front end's
    name: an on-premises server's, or Exchange Online's (how a client can tell them apart)."""
    with closing(_raw(fake_exchange)) as connection:
        first = _post(connection, "/EWS/Exchange.asmx", b"", {})
        second = _post(connection, "/EWS/Exchange.asmx", b"", {})
        online = _post(connection, "/retired/EWS/Exchange.asmx", b"", {})
    assert first.headers["request-id"] != second.headers["request-id"]
    assert first.headers["X-FEServer"] == "EXCH01"
    assert online.headers["X-CalculatedBETarget"].endswith(".prod.outlook.com")
