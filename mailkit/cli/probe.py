"""``mailkit probe HOST``: what a mail server offers on each port, and which to use.

Exit codes: 0 a port with verified TLS is recommended; 1 bad arguments; 2 no port spoke SMTP
(refused, silent, unreachable, reset, name not resolved); 4 the best port has no trusted TLS
(its certificate fails verification, or the server speaks only plaintext).
"""

from __future__ import annotations

import argparse
from typing import TextIO

from mailkit.cli.common import EXIT_CONNECT, EXIT_OK, EXIT_TLS
from mailkit.errors import FieldProblem, SettingsError

#: How each argument of :func:`mailkit.probe` is spelt on this command line.
FLAGS = {
    "host": "HOST",
    "ports": "--ports",
    "tls_ports": "--tls-ports",
    "timeout": "--timeout",
    "silent_after": "--silent-after",
    "ca_file": "--ca-file",
}


def _in_flags(exc: SettingsError) -> SettingsError:
    """The probe's argument problems, each under the flag that gave the value."""
    problems = [FieldProblem(FLAGS.get(p.field, p.field), p.message) for p in exc.problems]
    return SettingsError(problems, context="the arguments")


def cmd_probe(args: argparse.Namespace, out: TextIO) -> int:
    """Probe the ports, print every port's findings and the verdict."""
    from mailkit.faces import Face
    from mailkit.smtpprobe import probe

    try:
        report = probe(
            args.host,
            args.ports,
            timeout=args.timeout,
            ca_file=args.ca_file,
            silent_after=args.silent_after,
            server_name=args.server_name,
            tls_ports=args.tls_ports,
        )
    except SettingsError as exc:
        raise _in_flags(exc) from None
    if args.json:
        import json

        json.dump(report.as_dict(Face.CLI), out, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(report.text(Face.CLI) + "\n")
    verdict = report.verdict
    if verdict.port is None:
        return EXIT_CONNECT
    return EXIT_OK if verdict.trusted else EXIT_TLS


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    parser.set_defaults(func=cmd_probe)
    parser.add_argument("host", metavar="HOST", help="the mail server's host name or address")
    parser.add_argument(
        "--ports",
        default="465,587,25,2525",
        metavar="LIST",
        help="ports to probe, comma-separated, all at once (default 465,587,25,2525)",
    )
    parser.add_argument(
        "--tls-ports",
        default="465",
        metavar="LIST",
        help="ports to try with TLS from the first byte (implicit TLS); the others start in "
        "plaintext with STARTTLS, and a port that stays silent is also tried with TLS "
        "(default 465; '' for none)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds any one port may take at most (default 10)",
    )
    parser.add_argument(
        "--silent-after",
        type=float,
        default=1.5,
        metavar="S",
        help="once a port has answered, stop waiting for ports silent this long (default 1.5)",
    )
    parser.add_argument(
        "--ca-file",
        metavar="FILE",
        help="verify certificates against this CA (PEM) instead of the system's CA store",
    )
    parser.add_argument(
        "--server-name",
        metavar="NAME",
        help="the name the certificate must carry, when HOST is an address",
    )
