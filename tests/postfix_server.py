"""A private Postfix with Dovecot SASL on loopback: the real peer for mailkit's SMTP tests.

Fakes such as aiosmtpd say what we believe SMTP servers do; this one is a real MTA, so the
sender is also checked against what servers actually do. Everything lives in one temporary
directory (configuration, queue, certificates, logs, the delivered mail) and nothing can leave
the machine: Postfix listens on 127.0.0.1 only, has no relay host, sends every non-virtual
destination to the ``error`` transport, and delivers every accepted recipient into one Maildir.

Use :func:`running_postfix` in a module-scoped fixture; it applies the availability policy of
:func:`require_postfix` (fail in CI, skip elsewhere), reaps what a crashed earlier run left,
and always stops the servers again. Postfix's master must run as root: so do these tests, here
and in CI.
"""

from __future__ import annotations

import contextlib
import email
import grp
import hashlib
import os
import pwd
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

__all__ = [
    "CANARY_PASSWORD",
    "CANARY_USER",
    "DIR_PREFIX",
    "PostfixServer",
    "reap_stale",
    "require_postfix",
    "running_postfix",
    "unavailable_reason",
]

#: The one account; the password is a canary that tests look for where it must never be.
CANARY_USER = "alice@example.test"
CANARY_PASSWORD = "canary-Postfix-7q!"
#: Every server directory starts with this, so a later run can find what a crashed run left.
DIR_PREFIX = "mailkit-postfix-"
_OWNER_FILE = "owner.pid"
# Debian installs the daemons under /usr/sbin, which a non-root PATH often lacks.
_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def _binary(name: str) -> str | None:
    path = os.pathsep.join(filter(None, [os.environ.get("PATH"), _SBIN_PATH]))
    return shutil.which(name, path=path)


def unavailable_reason() -> str | None:
    """Why a private Postfix + Dovecot cannot run here, or None when it can."""
    missing = [name for name in ("postfix", "dovecot") if _binary(name) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not installed: `make test` installs them "
            "(as root on Debian, from .ci/system-packages.txt)"
        )
    if os.geteuid() != 0:
        return (
            "the private Postfix needs root (its master binds ports and switches users): "
            "run the tests as root, as `make test` does in CI"
        )
    return None


def require_postfix() -> None:
    """Skip without Postfix + Dovecot, but fail under ``CI=true``: CI must never skip them."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"real-server tests cannot run: {reason} (CI=true never skips)", pytrace=False)
    pytest.skip(reason)


class PostfixServer:
    """Postfix (submission with STARTTLS + implicit TLS) and Dovecot SASL in ``directory``.

    ``directory`` must be empty, not shared, and reachable by the ``postfix``, ``dovecot`` and
    ``nobody`` users; :func:`running_postfix` makes such a directory. The ports are chosen
    in :meth:`start`.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        directory: Path,
        *,
        user: str = CANARY_USER,
        password: str = CANARY_PASSWORD,
    ) -> None:
        self.directory = directory.resolve()
        self.user = user
        self.password = password
        self.ca_file = self.directory / "tls" / "ca.pem"
        self.maildir = self.directory / "mail" / "catchall"
        self.log_dir = self.directory / "logs"
        self.postfix_log = self.log_dir / "postfix.log"
        self.dovecot_log = self.log_dir / "dovecot.log"
        self.timings: dict[str, float] = {}
        self._conf_dir = self.directory / "postfix"
        self._queue_dir = self.directory / "queue"
        self._dovecot_conf = self.directory / "dovecot" / "dovecot.conf"
        self._ports: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"PostfixServer({str(self.directory)!r}, ports={self._ports})"

    @property
    def submission_port(self) -> int:
        """STARTTLS required before AUTH, as on port 587."""
        return self._started_ports()[0]

    @property
    def smtps_port(self) -> int:
        """Implicit TLS, as on port 465."""
        return self._started_ports()[1]

    def _started_ports(self) -> tuple[int, int]:
        if self._ports is None:
            raise RuntimeError("PostfixServer.start() has not been called")
        return self._ports

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's private CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, start both daemons, and return once both ports offer AUTH.

        On any failure the daemons are stopped again and the error carries the logs' tails.
        """
        began = time.monotonic()
        deadline = began + timeout
        try:
            self._ports = _two_free_ports()
            self._write_files()
            postfix, dovecot = _binary("postfix"), _binary("dovecot")
            if postfix is None or dovecot is None:
                raise RuntimeError(unavailable_reason())
            # Postfix first: its start creates the queue's private/ directory, in which Dovecot
            # then creates the auth socket. smtpd only connects to it once a client arrives.
            self._run([postfix, "-c", str(self._conf_dir), "start"], "postfix-start", deadline)
            self._run([dovecot, "-c", str(self._dovecot_conf)], "dovecot-start", deadline)
            self._wait_until_ready(deadline)
        except BaseException as error:
            details = self._diagnostics()
            with contextlib.suppress(Exception):
                self.stop()
            if isinstance(error, Exception):
                raise RuntimeError(f"{self!r} did not start: {error}\n{details}") from error
            raise
        self.timings["start_s"] = time.monotonic() - began

    def stop(self, timeout: float = 15.0) -> None:
        """Stop both daemons and wait until none of their processes is left.

        SIGTERM to the masters (what ``postfix abort`` does, without ``postfix stop``'s
        one-second polling), SIGKILL for whatever outlives ``timeout``. Safe to call in any
        state, also after a failed start. Takes about 1 s: Dovecot's master waits that long for
        its log process.
        """
        began = time.monotonic()
        _terminate(self.directory, timeout)
        self.timings["stop_s"] = time.monotonic() - began

    def processes(self) -> list[int]:
        """Live processes that belong to this server (its daemons and their children)."""
        return _server_processes(self.directory)

    def __enter__(self) -> PostfixServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- delivered mail and logs -------------------------------------------------------------

    def messages(self) -> list[EmailMessage]:
        """Every delivered copy, oldest first; ``Delivered-To`` names each copy's recipient.

        The files are mode 0600 owned by ``nobody``: reading them relies on running as root.
        """
        files = [
            path
            for sub in ("new", "cur")
            if (self.maildir / sub).is_dir()
            for path in (self.maildir / sub).iterdir()
            if path.is_file()
        ]
        files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
        return [
            email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in files
        ]

    def wait_for_message(
        self, predicate: Callable[[EmailMessage], bool], timeout: float = 10.0
    ) -> EmailMessage:
        """The first delivered copy matching ``predicate``; delivery is asynchronous."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages():
                if predicate(message):
                    return message
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        seen = [(m["Delivered-To"], m["Subject"]) for m in self.messages()]
        raise TimeoutError(
            f"no matching message in {self.maildir} after {timeout} s; delivered: {seen}\n"
            f"{self._diagnostics()}"
        )

    def log_files(self) -> list[Path]:
        """The daemons' own logs (Postfix's ``maillog_file``, Dovecot's ``log_path``)."""
        return [path for path in (self.postfix_log, self.dovecot_log) if path.exists()]

    # -- internals ---------------------------------------------------------------------------

    def _run(self, argv: list[str], name: str, deadline: float) -> None:
        # Output goes to a file, never to a pipe: a daemon that keeps the pipe open (Dovecot
        # keeps the stderr it was started with) would make run() wait forever.
        out = self.log_dir / f"{name}.out"
        with out.open("ab") as sink:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=max(deadline - time.monotonic(), 1.0),
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}")

    def _wait_until_ready(self, deadline: float) -> None:
        """Both ports greet and advertise AUTH after TLS, so smtpd reached Dovecot."""
        pending = {"submission": self._probe_submission, "smtps": self._probe_smtps}
        last_error: Exception | None = None
        while pending:
            for name, probe in list(pending.items()):
                try:
                    probe()
                except (OSError, smtplib.SMTPException) as error:
                    last_error = error
                else:
                    del pending[name]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not ready: {sorted(pending)}; last error: {last_error!r}")
            time.sleep(0.05)

    def _probe_submission(self) -> None:
        with smtplib.SMTP(self.host, self.submission_port, timeout=5) as client:
            client.starttls(context=self.ssl_context())
            client.ehlo()
            _expect_auth(client)

    def _probe_smtps(self) -> None:
        with smtplib.SMTP_SSL(
            self.host, self.smtps_port, timeout=5, context=self.ssl_context()
        ) as client:
            client.ehlo()
            _expect_auth(client)

    def _diagnostics(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*")) if self.log_dir.is_dir() else []:
            lines = path.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {path.name} (last lines)\n" + "\n".join(lines))
        return "\n".join(parts)

    def _write_files(self) -> None:
        postfix = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        dovecot_gid = grp.getgrnam("dovecot").gr_gid
        for parent in self.directory.parents:
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(
                    f"{parent} is not searchable by other users, so Postfix's and Dovecot's "
                    "unprivileged processes cannot reach the server directory; use "
                    "running_postfix() or a directory under /tmp made with tempfile.mkdtemp()"
                )
        # First, so that reap_stale() can clean up after a run that dies from here on.
        (self.directory / _OWNER_FILE).write_text(_process_identity(os.getpid()) + "\n")
        # Daemons running as postfix, dovecot and nobody must be able to reach their parts.
        self.directory.chmod(0o711)
        for path in (self._conf_dir, self._queue_dir, self.ca_file.parent, self.log_dir):
            path.mkdir(mode=0o755)
        data_dir = self.directory / "data"
        data_dir.mkdir(mode=0o700)
        os.chown(data_dir, postfix.pw_uid, postfix.pw_gid)
        # virtual(8) writes as the uid of virtual_uid_maps; it refuses root.
        self.maildir.parent.mkdir(mode=0o755)
        for path in (self.maildir, *(self.maildir / sub for sub in ("tmp", "new", "cur"))):
            path.mkdir(mode=0o700)
            os.chown(path, nobody.pw_uid, nobody.pw_gid)

        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        chain = self.ca_file.parent / "server.pem"
        # An IP SAN as well as the name: clients connect to 127.0.0.1 and still verify.
        ca.issue_cert("localhost", self.host).private_key_and_cert_chain_pem.write_to_path(
            str(chain)
        )
        chain.chmod(0o600)  # smtpd reads it as root, before it drops privileges

        _write(self._conf_dir / "main.cf", self._main_cf(chain, nobody.pw_uid, nobody.pw_gid))
        _write(self._conf_dir / "master.cf", self._master_cf())
        # Postfix distrusts a main.cf changed within the last second (it may be half-written)
        # and re-reads it every 300 ms until it is older: backdating saves ~2 s per start.
        for name in ("main.cf", "master.cf"):
            stamp = time.time() - 60
            os.utime(self._conf_dir / name, (stamp, stamp))

        dovecot_dir = self._dovecot_conf.parent
        dovecot_dir.mkdir(mode=0o755)
        (dovecot_dir / "state").mkdir(mode=0o755)
        users = dovecot_dir / "users"
        # {PLAIN} because CRAM-MD5 needs the clear password on the server side.
        _write(users, f"{self.user}:{{PLAIN}}{self.password}::::::\n", mode=0o640)
        os.chown(users, 0, dovecot_gid)  # read by the auth process, which runs as dovecot
        _write(self._dovecot_conf, self._dovecot_config(users))

    def _main_cf(self, chain: Path, uid: int, gid: int) -> str:
        never = "error:mailkit test Postfix delivers nothing beyond its Maildir"
        return textwrap.dedent(f"""\
            # Written by tests/postfix_server.py for one test run; removed after it.
            compatibility_level = 3.6
            queue_directory = {self._queue_dir}
            data_directory = {self.directory / "data"}
            maillog_file = {self.postfix_log}
            maillog_file_prefixes = {self.log_dir}

            myhostname = localhost
            mydomain = example.test
            smtpd_banner = $myhostname ESMTP mailkit test Postfix
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            smtpd_peername_lookup = no
            biff = no

            # Nothing leaves this machine: no relay host, no local or relay domains, and every
            # transport that could reach another host is an error. All mail is "virtual".
            relayhost =
            mydestination =
            relay_domains =
            alias_maps =
            alias_database =
            default_transport = {never}
            relay_transport = {never}
            local_transport = {never}
            virtual_mailbox_domains = static:all
            virtual_mailbox_base = {self.maildir.parent}
            virtual_mailbox_maps = static:{self.maildir.name}/
            virtual_uid_maps = static:{uid}
            virtual_gid_maps = static:{gid}

            smtpd_tls_chain_files = {chain}
            smtpd_tls_security_level = encrypt
            smtpd_tls_auth_only = yes
            smtpd_tls_loglevel = 1
            smtpd_tls_received_header = yes
            smtpd_sasl_type = dovecot
            smtpd_sasl_path = private/auth
            smtpd_sasl_auth_enable = no
            smtpd_relay_restrictions = permit_sasl_authenticated, reject
            smtpd_error_sleep_time = 0
            """)

    def _master_cf(self) -> str:
        submission, smtps = self._started_ports()
        common = (
            "  -o smtpd_tls_auth_only=yes\n"
            "  -o smtpd_sasl_auth_enable=yes\n"
            "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
        )
        # Columns: service type private unpriv chroot wakeup maxproc command. No port 25, no
        # pickup, no smtp client: only what accepts mail on the two ports and delivers it.
        return (
            "# Written by tests/postfix_server.py for one test run; removed after it.\n"
            f"{self.host}:{submission} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix/submission\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            f"{common}"
            f"{self.host}:{smtps} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix/smtps\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            f"{common}"
            + textwrap.dedent("""\
            cleanup   unix       n - n -   0 cleanup
            qmgr      unix       n - n 300 1 qmgr
            tlsmgr    unix       - - n 300 1 tlsmgr
            rewrite   unix       - - n -   - trivial-rewrite
            bounce    unix       - - n -   0 bounce
            defer     unix       - - n -   0 bounce
            trace     unix       - - n -   0 bounce
            verify    unix       - - n -   1 verify
            flush     unix       n - n 300 0 flush
            proxymap  unix       - - n -   - proxymap
            showq     unix       n - n -   - showq
            error     unix       - - n -   - error
            retry     unix       - - n -   - error
            discard   unix       - - n -   - discard
            virtual   unix       - n n -   - virtual
            anvil     unix       - - n -   1 anvil
            scache    unix       - - n -   1 scache
            postlog   unix-dgram n - n -   1 postlogd
            """)
        )

    def _dovecot_config(self, users: Path) -> str:
        dovecot_dir = self._dovecot_conf.parent
        return textwrap.dedent(f"""\
            # Written by tests/postfix_server.py: Dovecot as Postfix's SASL service, nothing else.
            instance_name = {_instance_name(self.directory)}
            base_dir = {dovecot_dir / "run"}
            state_dir = {dovecot_dir / "state"}
            log_path = {self.dovecot_log}
            protocols = none
            ssl = no
            auth_mechanisms = plain login cram-md5
            auth_verbose = yes
            # Tests fail passwords on purpose, so no delays: none after a failure, no per-IP
            # penalty (anvil would slow every later AUTH from 127.0.0.1 by seconds), and the
            # first passdb only sets "nodelay" - without it a failure still waits for the
            # auth process's 500 ms failure tick. noauthenticate means it checks no password
            # and hands on to passwd-file; its fields survive passwd-file's failure.
            auth_failure_delay = 0
            service anvil {{
              unix_listener anvil-auth-penalty {{
                mode = 0
              }}
            }}
            passdb {{
              driver = static
              args = noauthenticate nodelay=yes
            }}
            passdb {{
              driver = passwd-file
              args = scheme=PLAIN username_format=%u {users}
            }}
            userdb {{
              driver = static
              args = uid=nobody gid=nogroup home=/nonexistent
            }}
            service auth {{
              unix_listener {self._queue_dir / "private" / "auth"} {{
                mode = 0660
                user = postfix
                group = postfix
              }}
            }}
            """)


def _expect_auth(client: smtplib.SMTP) -> None:
    if not client.has_extn("auth"):
        raise smtplib.SMTPException("EHLO after TLS does not offer AUTH yet")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def _two_free_ports() -> tuple[int, int]:
    """Two distinct free loopback ports: both sockets stay open until both are chosen."""
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return first.getsockname()[1], second.getsockname()[1]


# -- processes -------------------------------------------------------------------------------


def _proc_read(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (PID 1 here may never reap orphans)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != b"Z"


def _stat_fields(pid: int) -> list[bytes]:
    """``/proc/PID/stat`` from field 3 (state) on; the name before it may contain spaces."""
    return _proc_read(pid, "stat").rpartition(b")")[2].split()


def _parent(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if len(fields) > 1 else 0


def _process_identity(pid: int) -> str:
    """``PID STARTTIME``: a pid alone may have been reused since it was written down."""
    fields = _stat_fields(pid)
    return f"{pid} {fields[19].decode() if len(fields) > 19 else '?'}"


def _instance_name(directory: Path) -> str:
    """Dovecot names its processes ``dovecot-<instance>/auth`` etc.: make that unique per path."""
    digest = hashlib.sha256(bytes(directory)).hexdigest()[:8]
    return f"{directory.name}-{digest}"


def _server_processes(directory: Path) -> list[int]:
    """Processes of the server in ``directory``, found without trusting its pid files.

    Postfix's processes carry ``MAIL_CONFIG=<config dir>`` in their environment (master passes
    it on); Dovecot's master has its config file on its command line and its children are
    named after its unique ``instance_name``. Descendants are added too. Matches are exact,
    never substrings of a path: parallel runs and other engineers' servers stay untouched.
    """
    mail_config = b"MAIL_CONFIG=" + bytes(directory / "postfix")
    dovecot_conf = bytes(directory / "dovecot" / "dovecot.conf")
    instance = b"-" + _instance_name(directory).encode() + b"/"
    parents: dict[int, int] = {}
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid() or not _alive(pid):
            continue
        parents[pid] = _parent(pid)
        argv = _proc_read(pid, "cmdline").split(b"\0")
        if (
            dovecot_conf in argv
            or instance in argv[0]
            or mail_config in _proc_read(pid, "environ").split(b"\0")
        ):
            found.add(pid)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return sorted(found)


def _terminate(directory: Path, timeout: float) -> None:
    """Stop the server in ``directory``: SIGTERM its masters, SIGKILL what outlives ``timeout``.

    The masters stop their own children in order (what ``postfix abort`` does, without
    ``postfix stop``'s one-second polling). Processes are found by :func:`_server_processes`,
    not by pid files: after a crash a pid file can name a reused pid, even another run's.
    """
    signalled: set[int] = set()
    deadline = time.monotonic() + timeout
    while processes := _server_processes(directory):
        if time.monotonic() >= deadline:
            break
        # Roots: the masters, or orphans whose master is already gone. Scanning again each
        # round also catches a child a master forked just before its signal arrived.
        for pid in set(processes) - signalled:
            if _parent(pid) not in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                signalled.add(pid)
        time.sleep(0.05)
    else:
        return
    deadline = time.monotonic() + 2.0
    while processes := _server_processes(directory):
        if time.monotonic() >= deadline:
            raise RuntimeError(f"processes of {directory} survived SIGKILL: {processes}")
        for pid in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


# -- for fixtures ----------------------------------------------------------------------------


def reap_stale(parent: Path | None = None) -> list[Path]:
    """Stop and remove servers whose test process died without stopping them.

    A directory is stale when the process named in its owner file (pid and start time) is
    gone; live runs (this one, or a parallel one) are left alone. Returns what was removed.
    """
    parent = Path(tempfile.gettempdir()) if parent is None else parent
    reaped = []
    for directory in parent.glob(f"{DIR_PREFIX}*"):
        try:
            owner = (directory / _OWNER_FILE).read_text().strip()
            pid = int(owner.split()[0])
        except (OSError, ValueError, IndexError):
            continue  # still being created, or not ours
        if _alive(pid) and _process_identity(pid) == owner:
            continue
        with contextlib.suppress(RuntimeError):
            _terminate(directory, timeout=5.0)
            shutil.rmtree(directory, ignore_errors=True)
            reaped.append(directory)
    return reaped


@contextlib.contextmanager
def running_postfix(parent: Path | None = None) -> Iterator[PostfixServer]:
    """A started server in a fresh directory, stopped and removed afterwards, whatever happens.

    Applies :func:`require_postfix` first. The directory is kept only if stopping failed, so
    its logs can be read; the next run's :func:`reap_stale` removes it.
    """
    require_postfix()
    reap_stale(parent)
    directory = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=parent))
    server = PostfixServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
