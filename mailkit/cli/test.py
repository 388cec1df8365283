"""``mailkit test``: one test send; the exit code says in which phase it failed."""

from __future__ import annotations

import argparse
import json
from contextvars import Token
from datetime import date
from typing import TYPE_CHECKING, TextIO

from mailkit.cli.common import (
    EXIT_AUTH,
    EXIT_CONNECT,
    EXIT_DATA,
    EXIT_GREETING,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_RECIPIENT,
    EXIT_SENDER,
    EXIT_TLS,
    EXIT_USAGE,
    PROFILE_HELP,
    SECRETS_CHOICES,
    SECRETS_HELP,
    UsageError,
    add_password_source,
    open_store,
    profile_spec,
    read_password,
    secret_store,
)
from mailkit.cli.delivery import add_verify_arguments, verify_spec
from mailkit.errors import (
    FieldProblem,
    SettingsError,
)

if TYPE_CHECKING:
    from mailkit.delivery import VerifySpec
    from mailkit.resolve import Effective
    from mailkit.routes import RouteTest
    from mailkit.settings import OrgSettings
    from mailkit.store import Store

_PHASE_EXIT = {
    "setup": EXIT_USAGE,
    "connect": EXIT_CONNECT,
    "greeting": EXIT_GREETING,
    "ehlo": EXIT_GREETING,
    "starttls": EXIT_TLS,
    "tls": EXIT_TLS,
    "auth": EXIT_AUTH,
    "mail": EXIT_SENDER,
    "rcpt": EXIT_RECIPIENT,
    "data": EXIT_DATA,
    "end_of_data": EXIT_DATA,
    "quit": EXIT_DATA,
    "consent": EXIT_AUTH,
    "token": EXIT_AUTH,
    "request": EXIT_DATA,
    "delivery": EXIT_NOT_DELIVERED,
}

#: API answers that mean "the sign-in is the problem": exit as an auth failure, not as data.
_SIGN_IN_CAUSES = frozenset(
    {
        "oauth_token_invalid",
        "token_expired",
        "token_revoked",
        "insufficient_scope",
    }
)

_AD_HOC_FIELDS = (
    "mode",
    "host",
    "port",
    "security",
    "auth",
    "username",
    "from_address",
    "ca_file",
    "api_url",
    "ews_url",
    "ews_autodiscover",
    "ews_autodiscover_url",
)


def _check_test_flags(args: argparse.Namespace) -> None:
    """``--timeout`` and ``--ca-file`` refused before any connection, in the flags' own words."""
    from mailkit.senders.tls import ca_file_problem

    if args.timeout is not None and not 0 < args.timeout <= 3600:
        raise UsageError(
            f"--timeout {args.timeout:g} is not a wait: give the seconds to wait for each reply, "
            "more than 0 and at most 3600 (e.g. --timeout 30)"
        )
    if args.ca_file is not None and (problem := ca_file_problem(args.ca_file)) is not None:
        raise UsageError(
            f"--ca-file {args.ca_file} {problem}; give the PEM file of the certificate "
            "authority that signed the server's certificate (a text file starting with "
            "-----BEGIN CERTIFICATE-----), or leave --ca-file out to trust the system's "
            "certificate authorities"
        )


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit test``: one test send; the exit code says in which phase it failed."""
    from mailkit.faces import Face, Where
    from mailkit.message import MESSAGE_SUBJECT
    from mailkit.profiles import locate_profile
    from mailkit.testsend import account_of, send_resolved

    if args.password is not None:
        raise UsageError(
            "passwords are never accepted as arguments (shell history and process lists keep "
            "them); use --password-env NAME, --password-stdin, or the secret store"
        )
    password = read_password(args) if args.password_env or args.password_stdin else None
    spec = profile_spec(args)
    store = open_store(spec) if spec else None
    subject: Token[str | None] | None = None
    try:
        given = {f: getattr(args, f) for f in _AD_HOC_FIELDS if getattr(args, f) is not None}
        if args.pin_sha256:
            given["tls_pin_sha256"] = args.pin_sha256
        if args.user and store is None:
            raise UsageError("--user needs --profile: users live in a profile")
        route: RouteTest | None = None
        resolved = _resolve_from_flags(args, given) if store is None and not args.route else None
        if resolved is not None:
            eff, verify = resolved
        else:
            eff, route, verify = _resolve_from_models(args, store, given)
            if route is not None:
                # A route's test is the test message with the route's subject.
                subject = MESSAGE_SUBJECT.set(route.subject)
        location = locate_profile(store.path) if store is not None else None
        secrets = secret_store(args.secrets, location, check=True)
        result = send_resolved(
            eff,
            to=list(route.recipients) if route is not None else args.to,
            secrets=secrets,
            profile=store.profile_name if store is not None else "default",
            password=password,
            store=store,
            timeout=args.timeout,
            eml_folder=args.eml_folder,
            open_eml=args.open_eml,
            verify=verify,
        )
    finally:
        if subject is not None:
            MESSAGE_SUBJECT.reset(subject)
        if store is not None:
            store.close()
    # The diagnosis in command-line words: --ca-file, and `mailkit secret set` for a password.
    where = Where(
        profile=store.profile_name if store is not None else None,
        account=account_of(eff),
        ad_hoc=store is None,
    )
    diagnosis = result.diagnosis.for_face(Face.CLI, where) if result.diagnosis else None
    if args.json:
        data = result.as_dict()
        data["diagnosis"] = diagnosis.as_dict() if diagnosis is not None else None
        if route is not None:
            data["route"] = _route_record(route)
        json.dump(data, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
    else:
        if route is not None:
            out.write(_route_line(route) + "\n\n")
        out.write(result.transcript.to_text() + "\n\n")
        if result.delivery is not None:
            out.write(result.delivery.to_text() + "\n\n")
        if result.ok and result.eml_path is not None:
            # A desktop mode's hand-off: the transcript above says who sends it and its notes.
            out.write(f"OK: wrote {result.eml_path}\n")
        elif result.ok:
            out.write(f"OK: the server accepted the test message {result.message_id}\n")
        else:
            assert diagnosis is not None
            out.write(diagnosis.to_text() + "\n")
    if result.ok:
        return EXIT_OK
    assert result.diagnosis is not None
    if result.diagnosis.kind.value == "outcome_unknown":
        return EXIT_OUTCOME_UNKNOWN
    if result.diagnosis.cause in _SIGN_IN_CAUSES:
        return EXIT_AUTH
    return _PHASE_EXIT.get(result.diagnosis.phase.value, EXIT_USAGE)


def _resolve_from_flags(
    args: argparse.Namespace, given: dict[str, object]
) -> tuple[Effective, VerifySpec | None] | None:
    """The effective settings from the flags alone (no profile): read and checked as the org
    model reads and checks them, without building it (pydantic never loads). None when only
    the model can answer, e.g. to say what is wrong with a value."""
    from mailkit.fields import org_values_from_flags
    from mailkit.resolve import effective_from_flags

    if not args.to:
        raise UsageError(
            "--to ADDR is required (or --route NAME, which sends to the route's recipients)"
        )
    _check_test_flags(args)
    verify = verify_spec(args, args.ca_file)
    values = org_values_from_flags(given)
    return (effective_from_flags(values), verify) if values is not None else None


def _resolve_from_models(
    args: argparse.Namespace, store: Store | None, given: dict[str, object]
) -> tuple[Effective, RouteTest | None, VerifySpec | None]:
    """The effective settings from the profile's models (or the default org's) with the flags
    over them: the user's, or the route's sender's. The flags are validated by the org model,
    its problems named by the flags that gave the values."""
    from mailkit.faces import Face, name_setting, rename_settings
    from mailkit.resolve import effective
    from mailkit.settings import OrgSettings, validate

    org = store.get_org() if store is not None else OrgSettings()
    user = None
    if args.user:
        assert store is not None  # --user without --profile is refused before
        user = store.get_user(args.user)
        if user is None:
            raise UsageError(f"no user {args.user!r} in {store.path}; check the user code")
    route = _route_test(args, store, org, given) if args.route else None
    if route is not None:
        user = route.user
    elif not args.to:
        raise UsageError(
            "--to ADDR is required (or --route NAME, which sends to the route's recipients)"
        )
    _check_test_flags(args)
    verify = verify_spec(args, args.ca_file or org.ca_file)
    if given:
        # Ad hoc values replace the org's for this run only (nothing is saved).
        data = org.model_dump(exclude_none=True)
        if user is not None and user.override_enabled:
            given.setdefault("mode", "smtp")
        try:
            org = validate(OrgSettings, {**data, **given}, context="test settings")
        except SettingsError as exc:  # named by the flags that gave the values
            raise SettingsError(
                [
                    FieldProblem(
                        name_setting(p.field, Face.CLI), rename_settings(p.message, Face.CLI)
                    )
                    for p in exc.problems
                ],
                exc.context,
            ) from None
        if user is not None:
            user = user.model_copy(update={"override_enabled": False})
    return effective(org, user), route, verify


def _route_test(
    args: argparse.Namespace, store: Store | None, org: OrgSettings, given: dict[str, object]
) -> RouteTest:
    """``--route NAME``: the route as the profile configures it (sender, recipients, subject)."""
    from mailkit.faces import Face, name_setting
    from mailkit.routes import route_test

    if store is None:
        raise UsageError("--route needs --profile: feature routes live in a profile's settings")
    clashing = [flag for flag, value in (("--user", args.user), ("--to", args.to)) if value]
    clashing += [name_setting(name, Face.CLI) for name in given]
    if clashing:
        raise UsageError(
            f"--route tests the route as the profile configures it (its sender, recipients and "
            f"that sender's settings); leave out {', '.join(clashing)}, or change the route or "
            "the sender in the profile"
        )
    return route_test(org, args.route, store.users(), today=date.today())


def _route_record(route: RouteTest) -> dict[str, object]:
    return {
        "name": route.feature,
        "sender": route.sender,
        "recipients": list(route.recipients),
        "subject": route.subject,
        "enabled": route.enabled,
    }


def _route_line(route: RouteTest) -> str:
    state = "" if route.enabled else " (disabled: tested all the same)"
    return (
        f"Route {route.feature}{state}: as {route.sender} to {', '.join(route.recipients)}, "
        f"subject {route.subject!r}"
    )


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    parser.set_defaults(func=cmd_test)
    parser.add_argument(
        "--to",
        action="append",
        metavar="ADDR",
        help="recipient (repeatable; required without --route)",
    )
    parser.add_argument(
        "--route",
        metavar="NAME",
        help="test a feature route of the profile (requests, purchase_orders, work_orders or "
        "another): its subject template with sample values, from its sender to its recipients",
    )
    parser.add_argument("--profile", metavar="DB", help=PROFILE_HELP)
    parser.add_argument("--user", metavar="CODE", help="test this user's effective settings")
    parser.add_argument(
        "--mode",
        help="smtp, gmail_api, microsoft_graph or exchange_ews (the API modes use the OAuth "
        "consent stored in the secret store; EWS a password, or that consent with --auth "
        "xoauth2); outlook, mapi or lotus_notes write the test message as an .eml for the "
        "desktop mail client (see --eml-out)",
    )
    parser.add_argument("--host")
    parser.add_argument("--port")
    parser.add_argument("--security", help="auto, implicit_tls, starttls or none")
    parser.add_argument("--auth", help="auto, login, plain, cram_md5, ntlm, xoauth2 or none")
    parser.add_argument("--username")
    parser.add_argument("--from", dest="from_address", metavar="ADDR")
    parser.add_argument("--ca-file", help="trust this CA bundle (a private server)")
    parser.add_argument(
        "--api-url", metavar="URL", help="Gmail API / Graph base URL (default: the real service)"
    )
    parser.add_argument(
        "--ews-url", metavar="URL", help="exchange_ews: https://SERVER/EWS/Exchange.asmx"
    )
    parser.add_argument(
        "--autodiscover",
        dest="ews_autodiscover",
        action="store_true",
        default=None,
        help="exchange_ews: find the EWS URL by Autodiscover from the --from address",
    )
    parser.add_argument(
        "--autodiscover-url",
        dest="ews_autodiscover_url",
        metavar="URL",
        help="exchange_ews: ask this Autodiscover endpoint (autodiscover.xml or "
        "autodiscover.json URL, or a server's https://SERVER) instead of the domain's",
    )
    parser.add_argument("--pin-sha256", help="trust exactly this certificate (SHA-256 hex)")
    parser.add_argument(
        "--eml-out",
        dest="eml_folder",
        metavar="DIR",
        help="outlook, mapi, lotus_notes: write the test message into DIR as an .eml draft for "
        "the desktop mail client, which sends it (default: the profile's folder for test drafts)",
    )
    parser.add_argument(
        "--open",
        dest="open_eml",
        action="store_true",
        help="with --eml-out: open the written .eml with the system's handler (the mail client)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for each reply, replacing the per-phase waits (connect 10, "
        "greeting 12, each command 15, end of data 60)",
    )
    add_password_source(parser)
    add_verify_arguments(parser)
    parser.add_argument("--password", help=argparse.SUPPRESS)
    parser.add_argument(
        "--secrets",
        choices=SECRETS_CHOICES,
        default="auto",
        help="where stored passwords and OAuth tokens are read from: " + SECRETS_HELP,
    )
