"""The ``mailkit`` command line: the same core as the notebooks, for scripts and support.

Exit codes: 0 success; 1 usage or configuration (arguments, a file, settings that do not
validate, an unusable store or secret store). ``mailkit test`` adds one code per failure
phase: 2 connect/DNS, 3 greeting/EHLO, 4 TLS/STARTTLS, 5 auth (also an OAuth consent or token
the provider refuses), 6 sender, 7 recipient, 8 data (an API's other refusals), 9 outcome
unknown (the message may have been delivered). Errors go to stderr as one
clear message (JSON with ``--json``), never as a traceback. Passwords are never accepted as
arguments: they would land in shell history and process lists. When the reader of the output
goes away (``mailkit --json … | head``) the command stops quietly with 141, the status of a Unix
tool stopped by SIGPIPE: no error text, no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

# Only the standard library and mailkit.errors at the top: `mailkit --help` and a usage error
# must start in a blink, so each command imports what it needs (pandas, the keyring, pydantic,
# aiosmtplib) when it runs.
from mailkit.errors import (
    FieldProblem,
    MailkitError,
    ProfileExistsError,
    ProfileNotFoundError,
    SecretsLockedError,
    SettingsError,
    UnsafeSettingWarning,
)

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_CONNECT = 2
EXIT_GREETING = 3
EXIT_TLS = 4
EXIT_AUTH = 5
EXIT_SENDER = 6
EXIT_RECIPIENT = 7
EXIT_DATA = 8
EXIT_OUTCOME_UNKNOWN = 9


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors honour ``--json`` and our exit code for bad input."""

    def error(self, message: str) -> Any:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


class _UsageError(MailkitError):
    pass


# What a command did besides its output (e.g. "created profile ..."); main() prints it to stderr.
_NOTICES: ContextVar[list[str] | None] = ContextVar("mailkit_cli_notices", default=None)


def _notice(text: str) -> None:
    notices = _NOTICES.get()
    if notices is not None:
        notices.append(text)


def _open_store(spec: str | None, *, create: bool = False) -> Any:
    """``--profile`` (or ``MAILKIT_PROFILE``): a profile name or a file path.

    Reading commands never create a profile; writing ones pass ``create`` and say so out loud
    when they did.
    """
    from mailkit.profiles import PROFILE_ENV, locate_profile, open_profile, spec_text

    where = locate_profile(spec)
    if where.exists:
        return open_profile(where)
    if not create:
        given = "--profile" if spec is not None else f"--profile (or {PROFILE_ENV})"
        raise ProfileNotFoundError(
            f"there is no mailkit profile at {where.path}; nothing was created. Check {given}, "
            f"or create the profile first: mailkit profile init {spec_text(where)}"
        )
    store = open_profile(where, create=True)
    _notice(f"created profile {store.profile_name!r} at {store.path}")
    return store


# --------------------------------------------------------------------------- commands


def _profile_spec(args: argparse.Namespace) -> str | None:
    """``--profile``, else ``MAILKIT_PROFILE``; None when neither names one."""
    from mailkit.profiles import PROFILE_ENV

    spec: str | None = getattr(args, "profile", None)
    return spec or os.environ.get(PROFILE_ENV, "").strip() or None


SECRETS_CHOICES = ("auto", "keyring", "file", "memory", "env", "none")
_SECRETS_HELP = (
    "auto (default): the OS keyring where one exists, else the encrypted file beside the "
    "profile (<profile>.secrets, passphrase from MAILKIT_SECRETS_PASSPHRASE or a prompt); "
    "keyring, file, memory, env (MAILKIT_SECRET_* variables) or none"
)


def _secret_store(choice: str, where: Any, *, check: bool = False, lazy: bool = True) -> Any:
    """The store ``--secrets`` names, for the profile at ``where`` (a ProfileLocation or None).

    The OS keyring is opened lazily, so a command that meets no secret does not need one. With
    ``check``, an encrypted file that exists is opened at once: a wrong passphrase or a damaged
    file stops the command (exit 1) instead of passing for "no password stored".
    """
    from mailkit.secrets import FileSecretStore, LazySecretStore, keyring_available

    if choice == "none":
        return None
    path = where.secrets_path if where is not None else None
    if choice == "file" or (choice == "auto" and path is not None and not keyring_available()):
        if path is None:
            raise _UsageError(
                "--secrets file keeps secrets in an encrypted file beside a profile; "
                "add --profile NAME"
            )
        store = FileSecretStore(path, prompt=True)
        if check and store.exists:
            store.keys()  # reads and decrypts: wrong passphrase / damaged file -> exit 1
        return store
    from mailkit.secrets import secret_store_from_name

    if not lazy:
        return secret_store_from_name(choice)
    return LazySecretStore(lambda: secret_store_from_name(choice))


def cmd_profile_init(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit profile init NAME|PATH``: create an empty profile, never over an existing one."""
    from mailkit.profiles import init_profile, locate_profile

    where = locate_profile(args.name)
    if where.exists:
        raise ProfileExistsError(
            f"a mailkit profile already exists at {where.path}; it was left as it is. Use it "
            "with --profile, or choose another name"
        )
    with init_profile(where) as store:
        path, name = store.path, store.profile_name
    _report(
        args,
        out,
        {"created": str(path), "profile": name, "secrets_file": str(where.secrets_path)},
        f"Created profile {name!r} at {path}.",
    )
    return EXIT_OK


def _secret_target(args: argparse.Namespace) -> tuple[Any, str, str]:
    """(the profile's location, its name, the account) for ``secret set/delete --user``."""
    from mailkit.profiles import locate_profile

    with _open_store(_profile_spec(args)) as store:
        account = "org"
        if args.user:
            user = store.get_user(args.user)
            if user is None:
                raise _UsageError(
                    f"no user {args.user!r} in the profile at {store.path}; check --user (the "
                    "user code), or import the user first (mailkit users import)"
                )
            account = user.user_code
            _note_shared_login(store.get_org(), user)
        return locate_profile(store.path), store.profile_name, account


def _note_shared_login(org: Any, user: Any) -> None:
    """A user who signs in with the org's account sends with the org's password, not this."""
    from mailkit.testsend import credential_account

    if credential_account(org, user) != user.user_code:
        _notice(
            f"note: user {user.user_code} signs in with the organisation's account today, so "
            "sends use the organisation's password until the user has a user name of their own"
        )


def _add_password_source(parser: argparse.ArgumentParser) -> None:
    """``--password-env NAME`` or ``--password-stdin``: never the password itself."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-env", metavar="NAME", help="read the password from this environment variable"
    )
    source.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )


def _read_password(args: argparse.Namespace) -> Any:
    from mailkit.secret import Secret

    if args.password_env:
        value = os.environ.get(args.password_env, "")
        if not value:
            raise _UsageError(
                f"the environment variable {args.password_env} is not set or empty; export it "
                "first, or use --password-stdin"
            )
        return Secret(value)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise _UsageError("no password on standard input; pipe it in, e.g. from a vault CLI")
    return Secret(line)


def cmd_secret_set(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit secret set``: store the org's or a user's password in the profile's store."""
    from mailkit.secrets import secret_key

    if not (args.password_env or args.password_stdin):
        raise _UsageError(
            "say where the password comes from: --password-stdin or --password-env NAME "
            "(never as an argument: shell history and process lists keep those)"
        )
    where, profile, account = _secret_target(args)
    password = _read_password(args)
    store = _secret_store(args.secrets, where, check=True, lazy=False)
    if store is None:
        raise _UsageError("--secrets none stores nothing; choose a secret store")
    key = secret_key(profile, account, args.kind)
    store.set(key, password)
    whose = "the organisation's" if account == "org" else f"user {account}'s"
    _report(
        args,
        out,
        {"stored": key, "store": store.name, "store_kind": store.kind},
        f"Stored {whose} {args.kind} as {key} in {store.name}.",
    )
    return EXIT_OK


def cmd_secret_delete(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit secret delete``: forget the org's or a user's secret."""
    from mailkit.secrets import secret_key

    where, profile, account = _secret_target(args)
    store = _secret_store(args.secrets, where, check=True, lazy=False)
    if store is None:
        raise _UsageError("--secrets none holds nothing; choose a secret store")
    key = secret_key(profile, account, args.kind)
    existed = store.get(key) is not None
    store.delete(key)
    text = f"Deleted {key} from {store.name}." if existed else f"{key} was not in {store.name}."
    _report(args, out, {"deleted": key if existed else None, "store": store.name}, text)
    return EXIT_OK


def cmd_secret_list(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit secret list``: which store is in use, and the names of its keys (no values)."""
    from mailkit.profiles import locate_profile
    from mailkit.secrets import secret_key

    with _open_store(_profile_spec(args)) as profile_store:
        where = locate_profile(profile_store.path)
        profile = profile_store.profile_name
        accounts = ["org", *(u.user_code for u in profile_store.users())]
    store = _secret_store(args.secrets, where, check=True, lazy=False)
    if store is None:
        raise _UsageError("--secrets none holds nothing; choose a secret store")
    prefix = secret_key(profile, "org").rsplit(":", 2)[0] + ":"
    listed = store.keys()
    if listed is None:  # the OS keyring: ask for every key this profile can have
        from mailkit.oauth import google, microsoft

        kinds = ("password", google.TOKEN_KIND, google.CLIENT_SECRET_KIND, microsoft.TOKEN_KIND)
        listed = []
        for account in accounts:
            for kind in kinds:
                try:
                    key = secret_key(profile, account, kind)
                except ValueError:
                    continue
                if store.get(key) is not None:
                    listed.append(key)
    keys = sorted(k for k in listed if k.startswith(prefix))
    if args.json:
        json.dump(
            {"store": store.name, "store_kind": store.kind, "profile": profile, "keys": keys},
            out,
            ensure_ascii=False,
        )
        out.write("\n")
    else:
        out.write(f"Secret store: {store.name}\n")
        out.write(f"{len(keys)} secret(s) of profile {profile!r} (names only):\n")
        out.writelines(f"  {key}\n" for key in keys)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    from mailkit.legacy import migrate, report_text

    where = _migration_target(args)
    # Lazy: only a legacy file that holds a password needs the secret store to be usable.
    secrets = _secret_store(args.secrets, where, check=True)
    profile = where.name if where is not None else "default"
    migration = migrate(
        Path(args.legacy_file), secrets=secrets, profile=profile, drop_password=args.drop_password
    )
    saved_to = None
    if args.profile and not args.dry_run:
        with _open_store(args.profile, create=True) as store:
            store.set_org(migration.org)
            saved_to = str(store.path)
    report = migration.report.astype(object).where(migration.report.notna(), None)
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in row.items()} for row in report.to_dict(orient="records")
    ]
    if args.json:
        json.dump(
            {
                "org": migration.org.model_dump(mode="json", exclude_none=True),
                "report": rows,
                "moved_secrets": list(migration.moved_secrets),
                "needs_review": list(migration.warnings),
                "saved_to": saved_to,
            },
            out,
            ensure_ascii=False,
            indent=2,
        )
        out.write("\n")
    else:
        out.write(report_text(migration) + "\n")
        if saved_to:
            out.write(f"\nSaved the migrated org settings to {saved_to}.\n")
        elif not args.profile:
            out.write("\nNothing saved: pass --profile DB to save the migrated settings.\n")
    return EXIT_OK


def _migration_target(args: argparse.Namespace) -> Any:
    """Where ``migrate --profile`` saves, with the name its secrets are filed under."""
    from dataclasses import replace

    from mailkit.profiles import locate_profile, spec_text

    if not args.profile or args.dry_run:
        return None
    where = locate_profile(args.profile)
    if where.exists:
        with _open_store(args.profile) as store:  # an existing file keeps its recorded name
            return replace(where, name=store.profile_name)
    if spec_text(where) == where.name:
        # The data folder, so that a moved password can be filed beside the new profile.
        where.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return where


def cmd_users_import(args: argparse.Namespace, out: TextIO) -> int:
    from mailkit.userfiles import import_users
    from mailkit.users import read_table

    mapping = _parse_mapping(args.map)
    # Read first: a file that cannot be read must not create (or even open) a profile.
    encoding_note = read_table(Path(args.file)).attrs.get("encoding_note", "")
    with _open_store(args.profile, create=True) as store:
        count = import_users(store, Path(args.file), mapping=mapping)
        path = str(store.path)
    if encoding_note:
        _notice(f"note: {encoding_note}")
    _report(
        args, out, {"imported": count, "profile": path}, f"Imported {count} user(s) into {path}."
    )
    return EXIT_OK


def cmd_users_export(args: argparse.Namespace, out: TextIO) -> int:
    from mailkit.userfiles import export_users

    with _open_store(args.profile) as store:
        count = export_users(store, Path(args.file))
    _report(
        args,
        out,
        {"exported": count, "file": args.file},
        f"Exported {count} user(s) to {args.file}.",
    )
    return EXIT_OK


def cmd_profile_import(args: argparse.Namespace, out: TextIO) -> int:
    """Replace a profile with a TOML export: checked first, shown, backed up, then written."""
    from mailkit.settings import Profile
    from mailkit.store import profile_changes, profile_from_file

    # Parsed before any profile is opened: a bad file neither creates nor touches one.
    imported = profile_from_file(Path(args.file))
    if args.dry_run:
        try:
            store = _open_store(args.profile)
        except ProfileNotFoundError:
            changes = profile_changes(Profile(), imported)
            path = "(a new profile)"
        else:
            with store:
                changes = store.import_toml(Path(args.file), dry_run=True).changes
                path = str(store.path)
        data = {"dry_run": True, "profile": path, "changes": changes.as_dict(), "backup": None}
        text = f"Dry run: importing {args.file} into {path} would change:\n{changes.to_text()}"
        _report(args, out, data, text + "\nNothing was changed.")
        return EXIT_OK
    with _open_store(args.profile, create=True) as store:
        result = store.import_profile(imported)
        path = str(store.path)
    backup = str(result.backup) if result.backup else None
    data = {
        "dry_run": False,
        "profile": path,
        "users": len(imported.users),
        "changes": result.changes.as_dict(),
        "backup": backup,
    }
    if not result.applied:
        text = f"Nothing to import: {args.file} holds the same org and users as {path}."
    else:
        text = (
            f"Imported the org and {len(imported.users)} user(s) from {args.file} into {path}."
            f"\n{result.changes.to_text()}"
        )
        if backup:
            text += (
                f"\nThe profile as it was before is saved in {backup}; to go back, import its "
                f"export or use it as the profile (--profile {backup})."
            )
    _report(args, out, data, text)
    return EXIT_OK


def cmd_profile_export(args: argparse.Namespace, out: TextIO) -> int:
    with _open_store(args.profile) as store:
        store.export_toml(Path(args.file))
        users = len(store.users())
    message = f"Exported the org and {users} user(s) to {args.file} (secrets are never exported)."
    _report(args, out, {"users": users, "file": args.file}, message)
    return EXIT_OK


_SEVERITY_RANK = {"critical": 2, "warning": 1, "info": 0}


#: Why missing-secret did not run for users from a file or a database, and what to do.
_SECRETS_NOT_IN_SOURCE = (
    "the users come from {origin}, which holds no passwords",
    "audit the profile itself (mailkit audit --profile NAME, without --csv, --excel or --sql) "
    "to check its users against its secret store",
)


def _accounts_with_secret(
    choice: str, store: Any, frame: Any
) -> tuple[frozenset[str] | None, tuple[str, str] | None]:
    """Whose password the profile's secret store holds; or None and why it could not be told.

    A wrong passphrase or a damaged file is an error (exit 1), never "not checked".
    """
    from mailkit.errors import SecretFileCorruptError, SecretStoreError, WrongPassphraseError
    from mailkit.profiles import locate_profile
    from mailkit.secrets import accounts_with_secret

    if choice == "none":
        return None, ("--secrets none was given", "leave out --secrets none to check passwords")
    codes = [str(code) for code in frame["user_code"].dropna()]
    try:
        secrets = _secret_store(choice, locate_profile(store.path), check=True)
        assert secrets is not None
        return accounts_with_secret(secrets, store.profile_name, ["org", *codes]), None
    except (WrongPassphraseError, SecretFileCorruptError):
        raise
    except SecretStoreError as exc:
        return None, (
            f"the secret store cannot be read ({_describe(exc)})",
            "make the secret store readable (see the reason) and audit again",
        )


def _with_secrets_note(findings: Any, not_checked: tuple[str, str]) -> Any:
    """One info row saying missing-secret did not run and why, in every output format."""
    import pandas as pd

    why, fix = not_checked
    note = pd.DataFrame(
        [
            {
                "user_code": "",
                "rule": "secrets-not-checked",
                "severity": "info",
                "message": f"passwords were not checked (missing-secret did not run): {why}",
                "fix": fix,
            }
        ]
    )
    return pd.concat([findings, note[list(findings.columns)]], ignore_index=True)


def cmd_audit(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit audit``: load users from one source, audit them, print or write the findings."""
    from mailkit.audit import audit
    from mailkit.audit.report import export
    from mailkit.audit.sources import users_from_file, users_from_sql, users_from_store
    from mailkit.settings import OrgSettings

    if args.query and not args.sql:
        raise _UsageError("--query goes with --sql URL")
    if args.sql and not args.query:
        raise _UsageError("--sql needs --query, e.g. --query 'SELECT * FROM users'")
    external = bool(args.csv or args.excel or args.sql)
    spec = args.profile or (None if external else _profile_spec(args))
    if not (external or spec):
        raise _UsageError("say where the users are: --profile DB, --csv, --excel or --sql")
    if args.format == "xlsx" and not args.output:
        raise _UsageError("--format xlsx writes a file: add -o OUT.xlsx")
    mapping = _parse_mapping(args.map)
    store = _open_store(spec) if spec else None
    try:
        org = store.get_org() if store is not None else OrgSettings()
        history = store.history_frame() if store is not None else None
        if args.csv or args.excel:
            source = users_from_file(Path(args.csv or args.excel), mapping)
            if source.encoding_note:  # a guessed encoding is said, whatever the format
                _notice(f"note: {source.encoding_note}")
        elif args.sql:
            source = users_from_sql(args.sql, args.query, mapping)
        else:
            assert store is not None
            source = users_from_store(store)
        if store is not None and not external:
            accounts, not_checked = _accounts_with_secret(args.secrets, store, source.frame)
        else:
            why, fix = _SECRETS_NOT_IN_SOURCE
            accounts, not_checked = None, (why.format(origin=source.origin), fix)
        found = audit(org, source.frame, accounts_with_secret=accounts, history=history)
        # Shown in every format; counted and judged (--fail-on) without the note row.
        findings = found if not_checked is None else _with_secrets_note(found, not_checked)
    finally:
        if store is not None:
            store.close()
    if args.output:
        suffix = {"table": ".csv"}.get(args.format, f".{args.format}")
        target = Path(args.output)
        export(findings, target if target.suffix else target.with_suffix(suffix))
    elif args.format == "json" or args.json:
        records = findings.astype(object).where(findings.notna(), None).to_dict(orient="records")
        json.dump(records, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif args.format == "csv":
        from mailkit.audit.report import write_csv

        write_csv(findings, out)
    elif args.format == "html":
        from mailkit.audit.report import to_html

        out.write(to_html(findings))
    else:
        from mailkit.audit.report import affected_users

        # Counted as the summary, the charts and the dashboard count them.
        out.write(
            f"{len(source.frame)} user(s) from {source.origin}: {len(found)} finding(s) for "
            f"{affected_users(found)} user(s)\n"
        )
        if not_checked is not None:
            out.write(f"Passwords were not checked: {not_checked[0]}; {not_checked[1]}.\n")
        if not findings.empty:
            out.write(findings.to_string(index=False, max_colwidth=70) + "\n")
    if args.fail_on:
        worst = found["severity"].map(_SEVERITY_RANK).max() if not found.empty else -1
        if worst >= _SEVERITY_RANK[args.fail_on]:
            return 1
    return EXIT_OK


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
)


def _check_test_flags(args: argparse.Namespace) -> None:
    """``--timeout`` and ``--ca-file`` refused before any connection, in the flags' own words."""
    from mailkit.senders.tls import ca_file_problem

    if args.timeout is not None and not 0 < args.timeout <= 3600:
        raise _UsageError(
            f"--timeout {args.timeout:g} is not a wait: give the seconds to wait for each reply, "
            "more than 0 and at most 3600 (e.g. --timeout 30)"
        )
    if args.ca_file is not None and (problem := ca_file_problem(args.ca_file)) is not None:
        raise _UsageError(
            f"--ca-file {args.ca_file} {problem}; give the PEM file of the certificate "
            "authority that signed the server's certificate (a text file starting with "
            "-----BEGIN CERTIFICATE-----), or leave --ca-file out to trust the system's "
            "certificate authorities"
        )


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit test``: one test send; the exit code says in which phase it failed."""
    from mailkit.faces import Face, Where, name_setting, rename_settings
    from mailkit.profiles import locate_profile
    from mailkit.settings import OrgSettings, validate
    from mailkit.testsend import credential_account, send_test

    if args.password is not None:
        raise _UsageError(
            "passwords are never accepted as arguments (shell history and process lists keep "
            "them); use --password-env NAME, --password-stdin, or the secret store"
        )
    password = _read_password(args) if args.password_env or args.password_stdin else None
    spec = _profile_spec(args)
    store = _open_store(spec) if spec else None
    try:
        org = store.get_org() if store is not None else OrgSettings()
        user = None
        if args.user:
            if store is None:
                raise _UsageError("--user needs --profile: users live in a profile")
            user = store.get_user(args.user)
            if user is None:
                raise _UsageError(f"no user {args.user!r} in {store.path}; check the user code")
        given = {f: getattr(args, f) for f in _AD_HOC_FIELDS if getattr(args, f) is not None}
        if args.pin_sha256:
            given["tls_pin_sha256"] = args.pin_sha256
        _check_test_flags(args)
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
        location = locate_profile(store.path) if store is not None else None
        secrets = _secret_store(args.secrets, location, check=True)
        result = send_test(
            org,
            user,
            to=args.to,
            secrets=secrets,
            profile=store.profile_name if store is not None else "default",
            password=password,
            store=store,
            timeout=args.timeout,
        )
    finally:
        if store is not None:
            store.close()
    # The diagnosis in command-line words: --ca-file, and `mailkit secret set` for a password.
    where = Where(
        profile=store.profile_name if store is not None else None,
        account=credential_account(org, user),
        ad_hoc=store is None,
    )
    diagnosis = result.diagnosis.for_face(Face.CLI, where) if result.diagnosis else None
    if args.json:
        data = result.as_dict()
        data["diagnosis"] = diagnosis.as_dict() if diagnosis is not None else None
        json.dump(data, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
    else:
        out.write(result.transcript.to_text() + "\n\n")
        if result.ok:
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


def cmd_demo_server(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit demo-server``: serve in the foreground until Ctrl-C or SIGTERM."""
    from mailkit.demo.server import DemoServer, DemoSettings, run_foreground

    server = DemoServer(
        args.dir,
        starttls_port=args.starttls_port,
        tls_port=args.tls_port,
        oauth=args.oauth,
        oauth_port=args.oauth_port,
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


def _report(args: argparse.Namespace, out: TextIO, data: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(data, out, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(text + "\n")


def _parse_mapping(pairs: Sequence[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise _UsageError(
                f"--map {pair!r} is not COLUMN=FIELD; write e.g. --map 'E-mail=email'"
            )
        mapping[source.strip()] = target.strip()
    return mapping


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailkit",
        description="Set up, test and audit the outgoing email of business software.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(
        sub: Any, name: str, func: Callable[..., int] | None, help_text: str
    ) -> argparse.ArgumentParser:
        """A (sub)command; groups such as ``users`` have no function of their own."""
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        if func is not None:
            p.set_defaults(func=func)
        p.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print machine-readable JSON",
        )
        return p

    profile_help = (
        "profile name (kept in your data folder) or file path (.sqlite); default: "
        "$MAILKIT_PROFILE, else 'default'"
    )

    migrate = add(
        commands,
        "migrate",
        cmd_migrate,
        "Migrate legacy email settings (JSON or INI) and report every change.",
    )
    migrate.add_argument("legacy_file", metavar="LEGACY_FILE")
    migrate.add_argument("--profile", metavar="DB", help="save the migrated org settings here")
    migrate.add_argument("--dry-run", action="store_true", help="report only, save nothing")
    migrate.add_argument(
        "--secrets",
        choices=SECRETS_CHOICES,
        default="auto",
        help="where a password found in the legacy file goes: " + _SECRETS_HELP,
    )
    migrate.add_argument(
        "--drop-password",
        action="store_true",
        help="leave a legacy password behind (enter it again later) instead of moving it",
    )

    test = add(
        commands,
        "test",
        cmd_test,
        "Send the test message with the org's or a user's settings and show the dialog.",
    )
    test.add_argument(
        "--to", required=True, action="append", metavar="ADDR", help="recipient (repeatable)"
    )
    test.add_argument("--profile", metavar="DB", help=profile_help)
    test.add_argument("--user", metavar="CODE", help="test this user's effective settings")
    test.add_argument(
        "--mode",
        help="smtp, gmail_api or microsoft_graph (the API modes use the OAuth consent stored "
        "in the secret store)",
    )
    test.add_argument("--host")
    test.add_argument("--port")
    test.add_argument("--security", help="auto, implicit_tls, starttls or none")
    test.add_argument("--auth", help="auto, login, plain, cram_md5, ntlm, xoauth2 or none")
    test.add_argument("--username")
    test.add_argument("--from", dest="from_address", metavar="ADDR")
    test.add_argument("--ca-file", help="trust this CA bundle (a private server)")
    test.add_argument(
        "--api-url", metavar="URL", help="Gmail API / Graph base URL (default: the real service)"
    )
    test.add_argument("--pin-sha256", help="trust exactly this certificate (SHA-256 hex)")
    test.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for each reply, replacing the per-phase waits (connect 10, "
        "greeting 12, each command 15, end of data 60)",
    )
    _add_password_source(test)
    test.add_argument("--password", help=argparse.SUPPRESS)
    test.add_argument(
        "--secrets",
        choices=SECRETS_CHOICES,
        default="auto",
        help="where stored passwords and OAuth tokens are read from: " + _SECRETS_HELP,
    )

    demo = add(
        commands,
        "demo-server",
        cmd_demo_server,
        "Run the demo mail server (loopback, STARTTLS + TLS, demo accounts) and a local fake "
        "of Google's and Microsoft's OAuth, the Gmail API and Graph until Ctrl-C.",
    )
    demo.add_argument(
        "--dir",
        metavar="DIR",
        help="its files: ca.pem, demo.json, mailbox/ (default: $MAILKIT_DEMO_DIR, else per user)",
    )
    demo.add_argument(
        "--starttls-port", type=int, default=0, metavar="P", help="STARTTLS port (0: any free)"
    )
    demo.add_argument(
        "--tls-port", type=int, default=0, metavar="P", help="implicit-TLS port (0: any free)"
    )
    demo.add_argument(
        "--oauth-port",
        type=int,
        default=0,
        metavar="P",
        help="HTTPS port of the fake OAuth provider and mail APIs (0: any free)",
    )
    demo.add_argument(
        "--no-oauth",
        dest="oauth",
        action="store_false",
        help="SMTP only: leave out the fake OAuth provider",
    )

    audit = add(
        commands,
        "audit",
        cmd_audit,
        "Audit users' effective email settings: findings with severity, message and fix.",
    )
    source = audit.add_mutually_exclusive_group()
    source.add_argument("--csv", metavar="FILE", help="users from a CSV export")
    source.add_argument("--excel", metavar="FILE", help="users from an Excel export")
    source.add_argument("--sql", metavar="URL", help="users from a database (SQLAlchemy URL)")
    audit.add_argument("--query", help="the SQL query that returns the users (with --sql)")
    audit.add_argument(
        "--profile", metavar="DB", help="the org settings and history (and the users, alone)"
    )
    audit.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="map an application's column to a users-table field (repeatable)",
    )
    audit.add_argument(
        "--format", choices=["table", "csv", "json", "xlsx", "html"], default="table"
    )
    audit.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    audit.add_argument(
        "--secrets",
        choices=SECRETS_CHOICES,
        default="auto",
        help="where missing-secret looks for passwords (with --profile as the users' source): "
        + _SECRETS_HELP,
    )
    audit.add_argument(
        "--fail-on",
        choices=["critical", "warning"],
        help="exit 1 when findings at or above this severity exist",
    )

    users = add(commands, "users", None, "Import or export the users table.")
    users_sub = users.add_subparsers(dest="action", required=True, parser_class=_Parser)
    u_import = add(
        users_sub, "import", cmd_users_import, "Import users from CSV or Excel (all rows or none)."
    )
    u_import.add_argument("file", metavar="FILE")
    u_import.add_argument("--profile", metavar="DB", help=profile_help)
    u_import.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="map an application's column to a users-table field (repeatable)",
    )
    u_export = add(users_sub, "export", cmd_users_export, "Export users to CSV or Excel.")
    u_export.add_argument("file", metavar="FILE")
    u_export.add_argument("--profile", metavar="DB", help=profile_help)

    prof = add(commands, "profile", None, "Create a profile, or import or export one as TOML.")
    prof_sub = prof.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p_import = add(
        prof_sub,
        "import",
        cmd_profile_import,
        "Replace the profile with a TOML file's org and users.",
    )
    p_import.add_argument("file", metavar="FILE.toml")
    p_import.add_argument("--profile", metavar="DB", help=profile_help)
    p_import.add_argument(
        "--dry-run",
        action="store_true",
        help="show what the import would change (org fields, users added, removed, changed) "
        "and change nothing",
    )
    p_export = add(
        prof_sub, "export", cmd_profile_export, "Write the profile (secrets excluded) to TOML."
    )
    p_export.add_argument("file", metavar="FILE.toml")
    p_export.add_argument("--profile", metavar="DB", help=profile_help)
    p_init = add(
        prof_sub,
        "init",
        cmd_profile_init,
        "Create an empty profile: a NAME lives in your data folder, a PATH where you say; "
        "an existing profile is never overwritten.",
    )
    p_init.add_argument("name", metavar="NAME|PATH")

    secret = add(
        commands,
        "secret",
        None,
        "Store, list or delete a profile's passwords in its secret store (values are never "
        "shown or taken as arguments).",
    )
    secret_sub = secret.add_subparsers(dest="action", required=True, parser_class=_Parser)
    s_set = add(secret_sub, "set", cmd_secret_set, "Store the org's (or --user's) password.")
    s_list = add(
        secret_sub, "list", cmd_secret_list, "Show the secret store in use and its key names."
    )
    s_delete = add(
        secret_sub, "delete", cmd_secret_delete, "Forget the org's (or --user's) password."
    )
    for sub in (s_set, s_list, s_delete):
        sub.add_argument("--profile", metavar="DB", help=profile_help)
        sub.add_argument("--secrets", choices=SECRETS_CHOICES, default="auto", help=_SECRETS_HELP)
    for sub in (s_set, s_delete):
        sub.add_argument(
            "--user", metavar="CODE", help="a user's own password (default: the org's)"
        )
        sub.add_argument(
            "--kind",
            default="password",
            help="which secret of the account (default: password)",
        )
    _add_password_source(s_set)
    return parser


def _problems(exc: BaseException) -> list[FieldProblem]:
    problems = getattr(exc, "problems", None)
    return list(problems) if problems else []


def _exit_code(exc: BaseException) -> int:
    return EXIT_USAGE


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Risky-but-accepted settings become one "warning:" line each, not Python warnings.
            warnings.simplefilter("always", UnsafeSettingWarning)
            code = _run(argv, as_json, out, err)
            out.flush()  # here, where a reader that went away can still be handled
    except BrokenPipeError:
        return _reader_gone(out)
    shown: set[str] = set()
    for w in caught:
        if w.category is not UnsafeSettingWarning:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in shown:
            shown.add(str(w.message))
            err.write(f"mailkit: warning: {w.message}\n")
    return code


def _run(argv: list[str], as_json: bool, out: TextIO, err: TextIO) -> int:
    notices: list[str] = []
    token = _NOTICES.set(notices)
    try:
        args = build_parser().parse_args(argv)
        result: int = args.func(args, out)
    except BrokenPipeError:
        raise  # not the user's error: main() ends quietly
    except (MailkitError, OSError) as exc:
        return main_error(exc, as_json, err, notices)
    except ValueError as exc:
        problems = _validation_problems(exc)
        if problems is None:
            raise
        return main_error(SettingsError(problems), as_json, err, notices)
    finally:
        _NOTICES.reset(token)
    _write_notices(notices, as_json, err)
    return result


def _validation_problems(exc: ValueError) -> list[FieldProblem] | None:
    """A settings model's ``ValidationError`` as field problems; None for any other error.

    pydantic is looked up, not imported: a command that never loaded it cannot have raised
    one of its errors, and ``mailkit --help`` stays free of it.
    """
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(exc, pydantic.ValidationError):
        return None
    from mailkit.settings import settings_problems

    return settings_problems(exc)


#: The exit status of a Unix tool stopped by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def _reader_gone(out: TextIO) -> int:
    """``mailkit --json … | head``: the reader closed the pipe, so stop without a word.

    Standard output is pointed at the null device, or Python's own flush at exit would fail
    on the closed pipe again and print "Exception ignored" after all.
    """
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return EXIT_BROKEN_PIPE  # not a file (a caller's buffer): nothing more to do
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _write_notices(notices: list[str], as_json: bool, err: TextIO) -> None:
    """What a command did on the side (created a profile): one JSON line, or a line each."""
    if notices and as_json:
        err.write(json.dumps({"notices": notices}, ensure_ascii=False) + "\n")
    elif notices:
        err.writelines(f"mailkit: {text}\n" for text in notices)


def main_error(exc: BaseException, as_json: bool, err: TextIO, notices: Sequence[str] = ()) -> int:
    """Print one user error (no traceback) and return its exit code.

    ``notices`` (e.g. a profile created before the failure) go with it: inside the one JSON
    object with ``--json``, as lines before the error otherwise.
    """
    message = _describe(exc)
    if as_json:
        payload: dict[str, Any] = {
            "error": type(exc).__name__,
            "message": message,
            "problems": [{"field": p.field, "message": p.message} for p in _problems(exc)],
        }
        if notices:
            payload["notices"] = list(notices)
        err.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        err.writelines(f"mailkit: {text}\n" for text in notices)
        err.write(f"mailkit: error: {message}\n")
    return _exit_code(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SecretsLockedError) and exc.path:
        from mailkit.secrets import PASSPHRASE_ENV

        return (
            f"the encrypted secret store {exc.path} is locked: set {PASSPHRASE_ENV} to its "
            "passphrase, or run the command in a terminal to be asked for it (or choose "
            "another store with --secrets)"
        )
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file; check the path"
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied; check the file's permissions"
    if isinstance(exc, OSError) and not isinstance(exc, MailkitError):
        return f"{getattr(exc, 'filename', None) or 'file'}: {exc.strerror or exc}"
    return str(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
