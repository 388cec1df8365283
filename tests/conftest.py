"""Fixtures: TLS material, the good SMTP server and the misbehaving-server scenarios.

``smtp_server`` is one session-wide aiosmtpd server, reset before each test that asks for it.
``scenario_server`` starts the scenario named by the test's marker::

    @pytest.mark.smtp_scenario("relay_denied_550", rcpt_reply="550 5.7.54 Unable to relay")
    def test_relay(scenario_server: ScenarioServer) -> None: ...

Parametrize over scenarios with ``pytest.param(..., marks=pytest.mark.smtp_scenario(name))``.
A scenario's refusal is a :class:`mailkit.demo.scenarios.Failure`, the very object the demo
server's failure account of the same kind gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ews_fixtures import fake_exchange, fake_exchange_session  # noqa: F401 - fixtures
from smtpd_servers import (
    Credentials,
    MailServer,
    ScenarioServer,
    ServerLoop,
    TLSMaterial,
    make_tls_material,
    start_scenario,
    stop_scenario,
)

from mailkit.demo import DemoServer
from mailkit.demo.oauth import FakeOAuthProvider


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the widgets tests left behind while ipywidgets can still do so.

    Otherwise their ``__del__`` runs during interpreter shutdown, after ipywidgets' registry is
    gone, and prints an ignored ``AttributeError`` per widget.
    """
    import gc
    import sys

    widgets = sys.modules.get("ipywidgets")
    if widgets is not None:
        gc.collect()
        widgets.Widget.close_all()


def pytest_configure(config: pytest.Config) -> None:
    # A terminal in a `make lab` JupyterLab carries that run's demo folder: tests start demo
    # servers of their own and must never find (or write to) that lab's mailbox.
    import os

    os.environ.pop("MAILKIT_DEMO_DIR", None)
    config.addinivalue_line(
        "markers",
        "smtp_scenario(name, **options): the misbehaving SMTP server the scenario_server "
        "fixture starts (names and options: tests/smtpd_servers.py SCENARIOS)",
    )


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def smtp_credentials() -> Credentials:
    return Credentials()


@pytest.fixture(scope="session")
def server_loop() -> Iterator[ServerLoop]:
    loop = ServerLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def smtp_server_session(
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    smtp_credentials: Credentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MailServer]:
    server = MailServer(
        server_loop, tls_material, smtp_credentials, tmp_path_factory.mktemp("smtpd")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(smtp_server_session: MailServer) -> MailServer:
    """The good server with empty records and default flags."""
    smtp_server_session.reset()
    return smtp_server_session


@pytest.fixture
def scenario_server(
    request: pytest.FixtureRequest, server_loop: ServerLoop, tls_material: TLSMaterial
) -> Iterator[ScenarioServer]:
    marker = request.node.get_closest_marker("smtp_scenario")
    if marker is None or len(marker.args) != 1:
        pytest.fail(
            "scenario_server needs @pytest.mark.smtp_scenario(NAME, **options)", pytrace=False
        )
    server = start_scenario(server_loop, tls_material, marker.args[0], **marker.kwargs)
    yield server
    stop_scenario(server_loop, server)


@pytest.fixture
def fake_oauth(tls_material: TLSMaterial) -> Iterator[FakeOAuthProvider]:
    """A started fake OAuth provider (Google, Microsoft, Gmail API, Graph) with fresh state.

    Clients trust ``fake_oauth.ca_file`` (the session's test CA); build HTTP sessions with
    ``trust_env=False`` so ``REQUESTS_CA_BUNDLE`` cannot override it.
    """
    provider = FakeOAuthProvider.from_files(
        tls_material.server.cert_file, tls_material.server.key_file, tls_material.ca_file
    )
    with provider:
        yield provider


@pytest.fixture
def fake_oauth_demo(tmp_path: Path) -> Iterator[DemoServer]:
    """A started demo server (its own directory and CA) with the fake OAuth provider:
    ``.settings`` for what other processes read, ``.oauth`` for modes and hooks."""
    with DemoServer(tmp_path / "demo") as server:
        yield server
