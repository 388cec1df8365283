"""The settings model: what an organisation and its users configure for outgoing mail.

Pure data and validation — no files, sockets or widgets. Every validator raises a ``ValueError``
whose text says what is wrong and how to fix it; pydantic adds the field name, and
:func:`settings_problems` turns a ``ValidationError`` into :class:`~mailkit.errors.FieldProblem`
rows for forms and the command line. Inputs are never echoed back in error text
(``hide_input_in_errors``) so that a password pasted into the wrong field does not leak.

The fields' values and checks (enums, limits, scalar checks, cross-checks) live in
:mod:`mailkit.fields`, which needs no pydantic; they are re-exported here, their usual home.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mailkit.errors import FieldProblem, SettingsError, UnsafeSettingWarning
from mailkit.fields import (
    AUDITED_CHECKS,
    AUTH_ALIASES,
    INTERNAL_SUFFIXES,
    MAX_ADDRESS_LENGTH,
    MAX_HOST_LENGTH,
    MAX_PATH_LENGTH,
    MAX_TEXT_LENGTH,
    MODE_ALIASES,
    ORG_SEND_DEFAULTS,
    OVERRIDE_FIELDS,
    SECURITY_ALIASES,
    SUBJECT_FIELDS,
    AddressDomain,
    AuthType,
    Edition,
    Mode,
    Priority,
    ProblemsError,
    Provenance,
    Security,
    _blank_to_none,
    _enum,
    _shown,
    _text,
    _warn_provider_slips,
    account_mismatch,
    address_domain,
    address_valid_in,
    audited,
    check_address,
    check_api_url,
    check_host,
    check_pin,
    check_port,
    check_route_name,
    check_subject_template,
    check_text,
    check_url,
    check_user_code,
    choice_key,
    default_port,
    edition_allows_mode,
    host_ascii,
    host_ip,
    host_typo,
    internal_suffix,
    is_ip_address,
    is_plain_local_part,
    org_problems,
    port_security_conflict,
    read_auth,
    read_choice,
    read_mode,
    read_security,
    route_sender_problem,
    sends_unencrypted,
    subject_template_problem,
    user_code_key,
    warn_org,
)

#: The settings' public names: the models defined here, and the values and checks of
#: :mod:`mailkit.fields`, which callers keep importing from here.
__all__ = [
    "AUDITED_CHECKS",
    "AUTH_ALIASES",
    "CLOUD_ACCOUNT_FIXES",
    "INTERNAL_SUFFIXES",
    "MAX_ADDRESS_LENGTH",
    "MAX_HOST_LENGTH",
    "MAX_PATH_LENGTH",
    "MAX_TEXT_LENGTH",
    "MODE_ALIASES",
    "OVERRIDE_FIELDS",
    "ROUTE_SUBJECTS",
    "SECURITY_ALIASES",
    "SUBJECT_FIELDS",
    "Address",
    "AddressDomain",
    "AuthType",
    "Edition",
    "EditionField",
    "FeatureRoute",
    "Mode",
    "OptAddress",
    "OptApiUrl",
    "OptAuth",
    "OptHost",
    "OptMode",
    "OptPath",
    "OptPin",
    "OptPort",
    "OptPriority",
    "OptSecurity",
    "OptText",
    "OptUrl",
    "OrgSettings",
    "Priority",
    "ProblemsError",
    "Profile",
    "Provenance",
    "Security",
    "SubjectTemplate",
    "Text",
    "UserCode",
    "UserSettings",
    "account_mismatch",
    "address_domain",
    "address_valid_in",
    "audited",
    "check_address",
    "check_api_url",
    "check_host",
    "check_pin",
    "check_port",
    "check_route_name",
    "check_subject_template",
    "check_text",
    "check_url",
    "check_user_code",
    "choice_key",
    "cloud_account_conflicts",
    "default_port",
    "edition_allows_mode",
    "host_ascii",
    "host_ip",
    "host_typo",
    "internal_suffix",
    "is_ip_address",
    "is_plain_local_part",
    "parse_flag",
    "port_security_conflict",
    "read_choice",
    "route_sender_problem",
    "sends_unencrypted",
    "settings_problems",
    "subject_template_problem",
    "user_code_key",
    "user_problems",
    "validate",
]

if TYPE_CHECKING:
    pass

Text = Annotated[str, AfterValidator(_text(MAX_TEXT_LENGTH))]
OptText = Annotated[
    str | None, AfterValidator(_text(MAX_TEXT_LENGTH)), BeforeValidator(_blank_to_none)
]
OptHost = Annotated[
    str | None,
    AfterValidator(lambda v: v if v is None else check_host(v)),
    BeforeValidator(_blank_to_none),
]
OptPort = Annotated[
    int | None,
    BeforeValidator(lambda v: v if v is None else check_port(v)),
    BeforeValidator(_blank_to_none),
]
Address = Annotated[str, AfterValidator(check_address)]
OptAddress = Annotated[
    str | None,
    AfterValidator(lambda v: v if v is None else check_address(v)),
    BeforeValidator(_blank_to_none),
]

OptMode = Annotated[
    Mode | None,
    BeforeValidator(read_mode),
    BeforeValidator(_blank_to_none),
]
OptSecurity = Annotated[
    Security | None,
    BeforeValidator(read_security),
    BeforeValidator(_blank_to_none),
]
OptAuth = Annotated[
    AuthType | None,
    BeforeValidator(read_auth),
    BeforeValidator(_blank_to_none),
]
OptPriority = Annotated[
    Priority | None, BeforeValidator(_enum(Priority, "priority")), BeforeValidator(_blank_to_none)
]
EditionField = Annotated[
    Edition,
    BeforeValidator(
        _enum(
            Edition, "edition", {"on_prem": Edition.ON_PREMISES, "on_premise": Edition.ON_PREMISES}
        )
    ),
]
OptPin = Annotated[
    str | None,
    AfterValidator(lambda v: v if v is None else check_pin(v)),
    BeforeValidator(_blank_to_none),
]
OptPath = Annotated[
    str | None, AfterValidator(_text(MAX_PATH_LENGTH)), BeforeValidator(_blank_to_none)
]
OptUrl = Annotated[
    str | None,
    AfterValidator(lambda v: v if v is None else check_url(v)),
    BeforeValidator(_blank_to_none),
]
OptApiUrl = Annotated[
    str | None,
    AfterValidator(lambda v: v if v is None else check_api_url(v)),
    BeforeValidator(_blank_to_none),
]
UserCode = Annotated[str, AfterValidator(check_user_code)]
SubjectTemplate = Annotated[str, AfterValidator(check_subject_template)]


# --------------------------------------------------------------------------- models

_MODEL_CONFIG = ConfigDict(
    extra="forbid",
    validate_assignment=True,
    hide_input_in_errors=True,
    str_strip_whitespace=False,
    # Each model's validator is built when first used, not at import: a command pays only for
    # the models it validates (``mailkit test`` never builds a user's or a profile's).
    defer_build=True,
)

ROUTE_SUBJECTS: dict[str, str] = {
    "requests": "Request {number}: {title}",
    "purchase_orders": "Purchase order {number}: {title}",
    "work_orders": "Work order {number}: {title}",
}


_UNSET = object()


class _Settings(BaseModel):
    model_config = _MODEL_CONFIG

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name, _UNSET)
        try:
            super().__setattr__(name, value)
        except ValidationError:
            if old is not _UNSET:
                self.__dict__[name] = old
            raise


class FeatureRoute(BaseModel):
    """A product feature that sends mail (requests, purchase orders, work orders, ...)."""

    model_config = _MODEL_CONFIG

    enabled: bool = False
    #: ``"org"`` for the organisation's sender, otherwise a user code.
    sender: UserCode = "org"
    recipients: list[Address] = Field(default_factory=list)
    subject_template: SubjectTemplate = "{feature} {number}: {title}"


def _default_routes() -> dict[str, FeatureRoute]:
    return {
        name: FeatureRoute(subject_template=subject) for name, subject in ROUTE_SUBJECTS.items()
    }


class OrgSettings(_Settings):
    """The organisation's "General Settings". ``None`` means "not set": a default applies."""

    model_config = _MODEL_CONFIG

    name: Text = "default"
    edition: EditionField = ORG_SEND_DEFAULTS["edition"]
    mode: OptMode = None
    host: OptHost = None
    port: OptPort = None
    security: OptSecurity = None
    auth: OptAuth = None
    username: OptText = None
    from_address: OptAddress = None
    from_name: OptText = None
    priority: OptPriority = None
    #: Trust a private server through this CA bundle instead of the system store.
    ca_file: OptPath = None
    #: Or pin the server certificate's SHA-256 fingerprint (64 hex digits).
    tls_pin_sha256: OptPin = None
    tls_min_version: Literal["1.2", "1.3"] = ORG_SEND_DEFAULTS["tls_min_version"]
    #: Sending credentials without TLS needs this explicit consent as well as security=none.
    allow_plaintext_auth: bool = ORG_SEND_DEFAULTS["allow_plaintext_auth"]
    connect_timeout: float = Field(default=ORG_SEND_DEFAULTS["connect_timeout"], gt=0, le=600)
    command_timeout: float = Field(default=ORG_SEND_DEFAULTS["command_timeout"], gt=0, le=3600)
    #: Exchange Web Services endpoint (mode exchange_ews).
    ews_url: OptUrl = None
    #: Mode exchange_ews: find the EWS URL by Autodiscover from the From address (also done
    #: when no EWS URL is set).
    ews_autodiscover: bool = ORG_SEND_DEFAULTS["ews_autodiscover"]
    #: Mode exchange_ews: ask this Autodiscover endpoint (an autodiscover.xml or
    #: autodiscover.json URL, or a server's base URL) instead of looking it up by domain.
    ews_autodiscover_url: OptUrl = None
    #: Desktop modes (outlook, mapi, lotus_notes): the folder a test writes its .eml draft to.
    eml_folder: OptPath = None
    #: Base URL of the Gmail API / Microsoft Graph (modes gmail_api, microsoft_graph); empty
    #: means the real service. Set it to reach a test double such as the demo's fake provider.
    api_url: OptApiUrl = None
    #: OAuth application (client) id for Gmail API / Microsoft Graph / XOAUTH2.
    oauth_client_id: OptText = None
    #: Microsoft Entra tenant (id or domain) for Microsoft OAuth.
    oauth_tenant: OptText = None
    routes: dict[str, FeatureRoute] = Field(default_factory=_default_routes)

    @field_validator("routes", mode="before")
    @classmethod
    def _routes_over_defaults(cls, routes: Any) -> Any:
        """Given routes extend the built-in ones; a given route keeps its default subject."""
        if not isinstance(routes, dict):
            return routes
        merged: dict[str, Any] = {}
        for name, subject in ROUTE_SUBJECTS.items():
            merged[name] = {"subject_template": subject}
        for name, route in routes.items():
            if not isinstance(name, str):
                raise ValueError("feature names must be text, e.g. work_orders")
            check_route_name(name)
            if isinstance(route, dict) and name in ROUTE_SUBJECTS:
                merged[name] = {**merged[name], **route}
            else:
                merged[name] = route
        return merged

    @model_validator(mode="after")
    def _coherent(self) -> OrgSettings:
        if problems := org_problems(self.edition, self.mode, self.port, self.security):
            raise ProblemsError(problems)
        for name, route in self.routes.items():
            if (
                route.enabled
                and user_code_key(route.sender) == "org"
                and (problem := route_sender_problem(self.mode))
            ):
                warnings.warn(
                    f"the {name} route sends as the organisation, but {problem}",
                    UnsafeSettingWarning,
                    stacklevel=2,
                )
        warn_org(self.security, self.host, self.username)
        return self


class UserSettings(_Settings):
    """A user's "User-Specific Email Configuration"; unset override fields inherit the org's."""

    model_config = _MODEL_CONFIG

    user_code: UserCode
    display_name: OptText = None
    email: OptAddress = None
    override_enabled: bool = False
    mode: OptMode = None
    username: OptText = None
    from_address: OptAddress = None
    host: OptHost = None
    port: OptPort = None
    security: OptSecurity = None
    auth: OptAuth = None

    @field_validator("override_enabled", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        return parse_flag(value, default=False)

    @model_validator(mode="after")
    def _coherent(self) -> UserSettings:
        if problem := port_security_conflict(self.port, self.security):
            raise ProblemsError([FieldProblem("security", problem)])
        _warn_provider_slips(self.host, self.username)
        return self

    def overrides(self) -> dict[str, Any]:
        """The override fields this user sets (whether or not overriding is enabled)."""
        return {f: getattr(self, f) for f in OVERRIDE_FIELDS if getattr(self, f) is not None}


@audited("override_enabled")
def parse_flag(value: Any, *, default: bool) -> Any:
    """Booleans as spreadsheets and legacy files write them (1/0, yes/no, true/false, x)."""
    value = _blank_to_none(value)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = value.strip().lower()
        if key in {"1", "true", "yes", "y", "x", "on"}:
            return True
        if key in {"0", "false", "no", "n", "off"}:
            return False
    raise ValueError("must be yes or no (true/false, 1/0)")


#: What to say about each field that :func:`cloud_account_conflicts` can name.
CLOUD_ACCOUNT_FIXES: dict[str, str] = {
    "username": "in the cloud edition the user signs in as the user code (their own account "
    "and password, never the org's) and the user name cannot differ; clear the user's user name",
    "from_address": "in the cloud edition the From address is the user code and cannot differ; "
    "clear the user's From address",
}


@audited("cloud-account-ignored")
def cloud_account_conflicts(
    user_code: str, username: str | None, from_address: str | None
) -> list[str]:
    """The user's own fields that differ from their code, which the cloud edition ignores.

    There the user code is the address that signs in and sends (see ``resolve``): a different
    user name or From would silently not apply, so the validator refuses it and the audit
    (``cloud-account-ignored``) reports it in data that bypassed validation. Compared without
    case: ``Alice@Corp.example`` and ``alice@corp.example`` are one mailbox in practice.
    """
    code = user_code.strip().casefold()
    given = {"username": username, "from_address": from_address}
    return [
        name
        for name, value in given.items()
        if value is not None and value.strip() and value.strip().casefold() != code
    ]


def user_problems(org: OrgSettings, user: UserSettings) -> list[FieldProblem]:
    """Rules that need both the org and the user: the cloud edition, effective port/security."""
    problems: list[FieldProblem] = []
    where = f"users[{user.user_code}]"
    if org.edition is Edition.CLOUD:
        try:
            code = check_address(user.user_code)
        except ValueError:
            code = None
            problems.append(
                FieldProblem(
                    f"{where}.user_code",
                    "in the cloud edition the user code is the user's email address; "
                    "rename the user to their address",
                )
            )
        if user.mode is not None and not edition_allows_mode(org.edition, user.mode):
            problems.append(
                FieldProblem(
                    f"{where}.mode",
                    f"the cloud edition sends only through SMTP, not {user.mode.value}; "
                    "clear the user's mode or set it to smtp",
                )
            )
        if code is not None:
            for name in cloud_account_conflicts(code, user.username, user.from_address):
                problems.append(FieldProblem(f"{where}.{name}", CLOUD_ACCOUNT_FIXES[name]))
    if user.override_enabled:
        port = user.port if user.port is not None else org.port
        security = user.security if user.security is not None else org.security
        if (user.port is not None or user.security is not None) and (
            problem := port_security_conflict(port, security)
        ):
            problems.append(
                FieldProblem(f"{where}.port", f"with the inherited settings, {problem}")
            )
    return problems


class Profile(BaseModel):
    """An org and its users, validated together (cloud rules, unique user codes)."""

    model_config = _MODEL_CONFIG

    org: OrgSettings = Field(default_factory=OrgSettings)
    users: list[UserSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _together(self) -> Profile:
        seen: set[str] = set()
        problems: list[FieldProblem] = []
        for user in self.users:
            key = user_code_key(user.user_code)
            if key in seen:
                problems.append(
                    FieldProblem(
                        f"users[{user.user_code}].user_code",
                        "appears more than once; user codes must be unique (compared without "
                        "case): rename or remove the duplicate",
                    )
                )
            seen.add(key)
            problems.extend(user_problems(self.org, user))
        if problems:
            raise ProblemsError(problems)
        _warn_route_senders(self.org, self.users)
        return self


def _warn_route_senders(org: OrgSettings, users: list[UserSettings]) -> None:
    """An enabled route whose user sender is in a desktop mode (see :func:`route_sender_problem`);
    the org as sender is warned by the org's own validation."""
    by_code = {user_code_key(user.user_code): user for user in users}
    for name, route in org.routes.items():
        user = by_code.get(user_code_key(route.sender))
        if not route.enabled or user is None:
            continue
        mode = user.mode if user.override_enabled and user.mode is not None else org.mode
        if problem := route_sender_problem(mode):
            warnings.warn(
                f"the {name} route sends as {user.user_code}, but {problem}",
                UnsafeSettingWarning,
                stacklevel=3,
            )


# --------------------------------------------------------------------------- errors for people


def settings_problems(exc: ValidationError) -> list[FieldProblem]:
    """Turn pydantic's errors into field + message rows without echoing any input."""
    problems: list[FieldProblem] = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in err["loc"]) or "(whole record)"
        ctx = err.get("ctx") or {}
        original = ctx.get("error")
        if isinstance(original, ProblemsError):
            prefix = "".join(f"{part}." for part in err["loc"])
            problems.extend(FieldProblem(prefix + p.field, p.message) for p in original.problems)
            continue
        if isinstance(original, BaseException):
            message = str(original)
        elif err["type"] == "extra_forbidden":
            # The unknown name came from the input: show it only if it is a plain word.
            *parents, name = (str(part) for part in err["loc"])
            shown = name if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name) else _shown(name)
            field = ".".join([*parents, shown])
            message = "is not a known setting; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "is required; fill it in"
        else:
            message = err["msg"]
        problems.append(FieldProblem(field, message))
    return problems


def validate(model: type[BaseModel], data: Any, *, context: str | None = None) -> Any:
    """Validate ``data`` as ``model``, raising :class:`SettingsError` with a row per field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(settings_problems(exc), context or f"{model.__name__} values") from None
