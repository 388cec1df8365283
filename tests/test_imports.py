"""What importing mailkit costs and changes: no heavy library until it is needed, no side effects.

Each check runs in a fresh interpreter, because this test process has long since imported
everything. ``import mailkit`` must stay cheap for scripts and for ``mailkit --help``; a test send
must not pay for pandas, Excel, the keyring or the OAuth libraries; and importing mailkit must
leave other libraries (aiosmtplib's classes, urllib3's loggers) as it found them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from smtpd_servers import MailServer

import mailkit
from mailkit import httpclient, logguard

#: Libraries that cost tens to hundreds of milliseconds each, or do I/O when imported.
HEAVY = (
    "pandas",
    "numpy",
    "openpyxl",
    "PIL",
    "matplotlib",
    "ipywidgets",
    "IPython",
    "keyring",
    "requests",
    "urllib3",
    "msal",
    "google.auth",
    "google_auth_oauthlib",
    "spnego",
    "sqlalchemy",
    "psycopg",
    "sqlite3",
    "tqdm",
    "cryptography",
    "dns",
    "exchangelib",
    "imapclient",
)
#: What ``import mailkit`` must not load either: its names resolve on first use.
DEFERRED = ("pydantic", "aiosmtplib", "aiosmtpd", "email_validator")


def loaded_after(code: str, *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it leaves a JSON-able dict in ``result``.

    Returns that dict plus ``loaded``: which of :data:`HEAVY` and :data:`DEFERRED` are imported.
    """
    watched = HEAVY + DEFERRED
    script = (
        "import json, sys\n"
        "result = {}\n"
        f"{code}\n"
        f"result['loaded'] = sorted(m for m in {watched!r} if m in sys.modules)\n"
        "print(json.dumps(result))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return parsed


def test_the_check_sees_a_heavy_import() -> None:
    """Control: the probe would notice pandas (else the tests below prove nothing)."""
    assert "pandas" in loaded_after("import mailkit.users")["loaded"]


def test_import_mailkit_loads_no_library_and_no_submodule() -> None:
    result = loaded_after(
        "import mailkit\n"
        "result['submodules'] = sorted(m for m in sys.modules if m.startswith('mailkit.'))"
    )
    assert result["loaded"] == []
    assert result["submodules"] == []


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    result = loaded_after(
        "import mailkit\n"
        "result['missing'] = [n for n in mailkit.__all__ if getattr(mailkit, n, None) is None]\n"
        "result['undirred'] = sorted(set(mailkit.__all__) - set(dir(mailkit)))\n"
        "from mailkit import Secret, OrgSettings\n"
        "result['secret_module'] = Secret.__module__"
    )
    assert result["missing"] == []
    assert result["undirred"] == []
    assert result["secret_module"] == "mailkit.secret"


def test_a_public_name_resolves_to_the_object_of_its_module() -> None:
    from mailkit.secrets import MemorySecretStore
    from mailkit.settings import OrgSettings

    assert mailkit.OrgSettings is OrgSettings
    assert mailkit.MemorySecretStore is MemorySecretStore
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = mailkit.no_such_name  # type: ignore[attr-defined]


def test_secret_value_loads_no_store() -> None:
    result = loaded_after("from mailkit.secret import Secret\nSecret('x')")
    assert result["loaded"] == []


def test_the_core_loads_no_io_library() -> None:
    """The transcript, diagnosis and resolver are importable without the stores' libraries."""
    result = loaded_after(
        "import mailkit.transcript, mailkit.diagnose, mailkit.resolve, mailkit.outcome\n"
        "import mailkit.message, mailkit.providers, mailkit.columns"
    )
    assert set(result["loaded"]) <= {"pydantic", "email_validator"}


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["test", "--help"], ["audit", "--help"], ["secret", "set", "--help"]],
    ids=" ".join,
)
def test_cli_help_loads_no_heavy_library(argv: list[str]) -> None:
    result = loaded_after(
        "import io\n"
        "from mailkit.cli import main\n"
        "out = io.StringIO()\n"
        "try:\n"
        f"    main({argv!r}, out=out)\n"
        "except SystemExit as exc:\n"
        "    result['exit'] = exc.code\n"
    )
    assert result["exit"] == 0
    assert set(result["loaded"]) == set()


@pytest.mark.parametrize("secrets_flags", [[], ["--secrets", "none"]], ids=["auto", "none"])
def test_cli_test_sends_without_pandas_excel_keyring_or_oauth_libraries(
    smtp_server: MailServer, secrets_flags: list[str]
) -> None:
    """A real ``mailkit test`` against the loopback server, in a fresh interpreter. With the
    default ``--secrets auto`` too: a password given for the run needs no stored consent, so
    neither the keyring nor the OAuth libraries are opened to look for one."""
    argv = [
        "test",
        "--to", "bob@example.org",
        "--host", smtp_server.host,
        "--port", str(smtp_server.starttls_port),
        "--security", "starttls",
        "--username", smtp_server.user,
        "--from", "alice@example.com",
        "--ca-file", str(smtp_server.ca_file),
        "--password-env", "MAILKIT_IMPORTS_PW",
        "--timeout", "10",
        *secrets_flags,
    ]  # fmt: skip
    env = {**os.environ, "MAILKIT_IMPORTS_PW": smtp_server.password}
    env.pop("MAILKIT_PROFILE", None)
    result = loaded_after(
        "import io\n"
        "from mailkit.cli import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        f"result['exit'] = main({argv!r}, out=out, err=err)\n"
        "result['err'] = err.getvalue()\n"
        "import aiosmtplib.protocol, aiosmtplib.smtp\n"
        "result['unpatched'] = aiosmtplib.smtp.SMTPProtocol is aiosmtplib.protocol.SMTPProtocol",
        env=env,
    )
    assert result["exit"] == 0, result["err"]
    assert smtp_server.messages
    assert result["unpatched"] is True
    not_needed = set(HEAVY) - {"cryptography", "spnego"}  # certificate details; NTLM
    assert not_needed.isdisjoint(result["loaded"])


def test_importing_every_module_changes_no_library_logger_or_class() -> None:
    """Importing mailkit's modules leaves aiosmtplib's classes and other libraries' log levels."""
    result = loaded_after(
        "import logging, pkgutil, importlib, mailkit\n"
        f"names = {logguard.GUARDED!r}\n"
        "before = {n: logging.getLogger(n).level for n in names}\n"
        "for info in pkgutil.walk_packages(mailkit.__path__, 'mailkit.'):\n"
        # A __main__ module runs its program when imported: that is its purpose, not a side effect.
        "    if not info.name.endswith('.__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "result['changed'] = {n: logging.getLogger(n).level for n in names\n"
        "                     if logging.getLogger(n).level != before[n]}\n"
        "import aiosmtplib.protocol, aiosmtplib.smtp\n"
        "result['unpatched'] = aiosmtplib.smtp.SMTPProtocol is aiosmtplib.protocol.SMTPProtocol"
    )
    assert result["changed"] == {}
    assert result["unpatched"] is True


class _Quiet(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_urllib3_debug_is_held_back_only_during_mailkits_own_request(http_server: str) -> None:
    """A user debugging urllib3 keeps its DEBUG lines, except while mailkit talks to a server."""
    urllib3_logger = logging.getLogger("urllib3")
    collect = _Collect()
    urllib3_logger.addHandler(collect)
    old_level = urllib3_logger.level
    urllib3_logger.setLevel(logging.DEBUG)
    try:
        logguard.install()
        with httpclient.session() as session:
            assert session.get(http_server).status_code == 200
        assert urllib3_logger.level == logging.DEBUG  # given back as the user set it
        assert not [r for r in collect.records if r.levelno <= logging.DEBUG]

        import requests

        with requests.Session() as own:  # the user's own session, outside any mailkit call
            assert own.get(http_server + "?code=opaque-xyz").status_code == 200
        debug = [r for r in collect.records if r.levelno <= logging.DEBUG]
        assert debug, "the user's own DEBUG lines were suppressed"
        assert all("opaque-xyz" not in r.getMessage() for r in debug)  # masked, not dropped
    finally:
        urllib3_logger.removeHandler(collect)
        urllib3_logger.setLevel(old_level)


def test_guarded_restores_levels_after_nested_and_failing_calls() -> None:
    urllib3_logger = logging.getLogger("urllib3")
    old_level = urllib3_logger.level
    urllib3_logger.setLevel(logging.DEBUG)
    seen: list[bool] = []

    def failing_call() -> None:
        with logguard.guarded():
            with logguard.guarded():
                seen.append(urllib3_logger.isEnabledFor(logging.DEBUG))
            seen.append(urllib3_logger.isEnabledFor(logging.DEBUG))  # the outer call still runs
            raise RuntimeError("the call failed")

    try:
        with pytest.raises(RuntimeError):
            failing_call()
        assert seen == [False, False]
        assert urllib3_logger.level == logging.DEBUG
    finally:
        urllib3_logger.setLevel(old_level)


def test_every_module_has_a_place_in_the_layer_contract() -> None:
    """A new module must be placed in a layer (pyproject.toml), or the contract would not see it."""
    import pkgutil
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    # Package namespaces that only re-export their own modules.
    namespaces = {"mailkit", "mailkit.audit", "mailkit.domainhealth", "mailkit.discovery"}
    unplaced = [
        info.name
        for info in pkgutil.walk_packages(mailkit.__path__, "mailkit.")
        if not any(info.name == p or info.name.startswith(p + ".") for p in placed)
        and info.name not in namespaces
    ]
    assert unplaced == []
    assert "mailkit.cli" in placed  # control: the layers were read


def test_the_http_client_loads_no_oauth_library() -> None:
    """The log guard lives apart from the OAuth package: the HTTP session needs neither of them."""
    result = loaded_after(
        "import mailkit.httpclient, mailkit.logguard\n"
        "result['oauth'] = sorted(m for m in sys.modules if m.startswith('mailkit.oauth'))\n"
        "result['google'] = sorted(m for m in sys.modules if m.startswith('google'))"
    )
    assert result["oauth"] == []
    assert result["google"] == []
    assert "msal" not in result["loaded"]
    assert "requests" in result["loaded"]  # control: the probe sees what httpclient does load


def test_the_store_loads_no_users_file_code() -> None:
    """The store keeps settings; reading and writing users files is composed by its callers."""
    result = loaded_after(
        "import mailkit.store\n"
        "result['users'] = 'mailkit.users' in sys.modules\n"
        "import mailkit.userfiles\n"
        "result['control'] = 'mailkit.users' in sys.modules"
    )
    assert result["users"] is False
    assert result["control"] is True
    assert "openpyxl" not in result["loaded"]


def _contract(contracts: list[dict[str, Any]], kind: str, says: str) -> dict[str, Any]:
    return next(c for c in contracts if c["type"] == kind and says in c["name"])


def test_every_adapter_is_a_leaf_or_a_shared_helper_in_the_contracts() -> None:
    """A new adapter module must be listed as a leaf or a helper, or its imports go unchecked."""
    import pkgutil
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = _contract(contracts, "layers", "compose")["layers"]
    adapters = [name.strip() for name in layers[2].replace("|", ":").split(":")]
    leaves = set(_contract(contracts, "independence", "leaves")["modules"])
    helpers = set(_contract(contracts, "forbidden", "helpers")["source_modules"])
    assert set(_contract(contracts, "forbidden", "helpers")["forbidden_modules"]) == leaves
    listed = leaves | helpers

    def covered(name: str) -> bool:
        return any(name == m or name.startswith(m + ".") for m in listed)

    uncovered = []
    for adapter in adapters:
        if covered(adapter):
            continue
        module = __import__(adapter, fromlist=["_"])
        children = [
            info.name
            for info in pkgutil.iter_modules(getattr(module, "__path__", []), adapter + ".")
        ]
        uncovered += [adapter] if not children else [c for c in children if not covered(c)]
    assert uncovered == []
    assert "mailkit.senders" in adapters  # control: the config was read
    assert "mailkit.store" in leaves
