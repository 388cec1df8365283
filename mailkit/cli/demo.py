"""``mailkit demo-server``: the embedded demo mail server in the foreground."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from mailkit.cli.common import (
    EXIT_OK,
)


def cmd_demo_server(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit demo-server``: serve in the foreground until Ctrl-C or SIGTERM."""
    from mailkit.demo.server import DemoServer, DemoSettings, run_foreground

    server = DemoServer(
        args.dir,
        starttls_port=args.starttls_port,
        tls_port=args.tls_port,
        oauth=args.oauth,
        oauth_port=args.oauth_port,
        ews=args.ews,
        ews_port=args.ews_port,
    )

    def ready(settings: DemoSettings) -> None:
        # Whoever started us (make lab, a test, Binder) reads this line, so flush it now.
        if args.json:
            out.write(json.dumps(settings.as_dict(), ensure_ascii=False) + "\n")
        else:
            out.write(settings.to_text() + "\n")
        out.flush()

    run_foreground(server, ready)
    return EXIT_OK


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    parser.set_defaults(func=cmd_demo_server)
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="its files: ca.pem, parser.json, mailbox/ (default: $MAILKIT_DEMO_DIR, else per user)",
    )
    parser.add_argument(
        "--starttls-port", type=int, default=0, metavar="P", help="STARTTLS port (0: any free)"
    )
    parser.add_argument(
        "--tls-port", type=int, default=0, metavar="P", help="implicit-TLS port (0: any free)"
    )
    parser.add_argument(
        "--oauth-port",
        type=int,
        default=0,
        metavar="P",
        help="HTTPS port of the fake OAuth provider and mail APIs (0: any free)",
    )
    parser.add_argument(
        "--no-oauth",
        dest="oauth",
        action="store_false",
        help="SMTP only: leave out the fake OAuth provider",
    )
    parser.add_argument(
        "--ews-port",
        type=int,
        default=0,
        metavar="P",
        help="HTTPS port of the fake Exchange: EWS and Autodiscover (0: any free)",
    )
    parser.add_argument(
        "--no-ews",
        dest="ews",
        action="store_false",
        help="leave out the fake Exchange",
    )
