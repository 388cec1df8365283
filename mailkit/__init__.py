"""mailkit: set up, test and audit the outgoing email of business software.

The public surface is deliberately small; everything else is reached through its module
(``mailkit.store``, ``mailkit.oauth``, ``mailkit.audit``, ...). ``tests/test_public_api.py``
pins this list.
"""

from typing import TYPE_CHECKING, Any

# Where each public name lives. ``import mailkit`` imports none of these modules (and so none of
# pandas, openpyxl, the keyring, pydantic or aiosmtplib): a name's module loads the first time
# the name is used, so ``mailkit --help`` and a script needing one function start quickly.
_LAZY: dict[str, str] = {
    "ImportFileError": "mailkit.errors",
    "MailkitError": "mailkit.errors",
    "OAuthConfigError": "mailkit.errors",
    "OAuthError": "mailkit.errors",
    "SecretStoreError": "mailkit.errors",
    "SettingsError": "mailkit.errors",
    "StoreError": "mailkit.errors",
    "UnsafeSettingWarning": "mailkit.errors",
    "Migration": "mailkit.legacy",
    "migrate": "mailkit.legacy",
    "read_legacy": "mailkit.legacy",
    "domain": "mailkit.domainhealth.check",
    "DeliveryReport": "mailkit.delivery",
    "MailboxSpec": "mailkit.delivery",
    "VerifySpec": "mailkit.delivery",
    "Cause": "mailkit.outcome",
    "Diagnosis": "mailkit.outcome",
    "Kind": "mailkit.outcome",
    "Phase": "mailkit.outcome",
    "DiscoveryReport": "mailkit.discovery.candidates",
    "discover": "mailkit.discovery.run",
    "discover_async": "mailkit.discovery.run",
    "ProbeReport": "mailkit.probereport",
    "probe": "mailkit.smtpprobe",
    "probe_async": "mailkit.smtpprobe",
    "init_profile": "mailkit.profiles",
    "locate_profile": "mailkit.profiles",
    "open_profile": "mailkit.profiles",
    "profile_secrets": "mailkit.profiles",
    "Effective": "mailkit.resolve",
    "effective": "mailkit.resolve",
    "effective_frame": "mailkit.resolve",
    "Secret": "mailkit.secret",
    "EnvSecretStore": "mailkit.secrets",
    "FileSecretStore": "mailkit.secrets",
    "KeyringSecretStore": "mailkit.secrets",
    "MemorySecretStore": "mailkit.secrets",
    "SecretStore": "mailkit.secrets",
    "default_secret_store": "mailkit.secrets",
    "secret_key": "mailkit.secrets",
    "TestResult": "mailkit.result",
    "AuthType": "mailkit.settings",
    "Edition": "mailkit.settings",
    "FeatureRoute": "mailkit.settings",
    "Mode": "mailkit.settings",
    "OrgSettings": "mailkit.settings",
    "Priority": "mailkit.settings",
    "Profile": "mailkit.settings",
    "Provenance": "mailkit.settings",
    "Security": "mailkit.settings",
    "UserSettings": "mailkit.settings",
    "Store": "mailkit.store",
    "send_test": "mailkit.testsend",
    "send_test_async": "mailkit.testsend",
    "send_route_test": "mailkit.testsend",
    "send_route_test_async": "mailkit.testsend",
    "Transcript": "mailkit.transcript",
    "USERS_COLUMNS": "mailkit.columns",
    "read_users": "mailkit.users",
    "write_users": "mailkit.users",
}

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ provides them
    from mailkit.columns import USERS_COLUMNS
    from mailkit.delivery import DeliveryReport, MailboxSpec, VerifySpec
    from mailkit.discovery.candidates import DiscoveryReport
    from mailkit.discovery.run import discover, discover_async
    from mailkit.domainhealth.check import domain
    from mailkit.errors import (
        ImportFileError,
        MailkitError,
        OAuthConfigError,
        OAuthError,
        SecretStoreError,
        SettingsError,
        StoreError,
        UnsafeSettingWarning,
    )
    from mailkit.legacy import Migration, migrate, read_legacy
    from mailkit.outcome import Cause, Diagnosis, Kind, Phase
    from mailkit.probereport import ProbeReport
    from mailkit.profiles import init_profile, locate_profile, open_profile, profile_secrets
    from mailkit.resolve import Effective, effective, effective_frame
    from mailkit.result import TestResult
    from mailkit.secret import Secret
    from mailkit.secrets import (
        EnvSecretStore,
        FileSecretStore,
        KeyringSecretStore,
        MemorySecretStore,
        SecretStore,
        default_secret_store,
        secret_key,
    )
    from mailkit.settings import (
        AuthType,
        Edition,
        FeatureRoute,
        Mode,
        OrgSettings,
        Priority,
        Profile,
        Provenance,
        Security,
        UserSettings,
    )
    from mailkit.smtpprobe import probe, probe_async
    from mailkit.store import Store
    from mailkit.testsend import (
        send_route_test,
        send_route_test_async,
        send_test,
        send_test_async,
    )
    from mailkit.transcript import Transcript
    from mailkit.users import read_users, write_users

__version__ = "0.1.0"

__all__ = [
    "USERS_COLUMNS",
    "AuthType",
    "Cause",
    "DeliveryReport",
    "Diagnosis",
    "DiscoveryReport",
    "Edition",
    "Effective",
    "EnvSecretStore",
    "FeatureRoute",
    "FileSecretStore",
    "ImportFileError",
    "KeyringSecretStore",
    "Kind",
    "MailboxSpec",
    "MailkitError",
    "MemorySecretStore",
    "Migration",
    "Mode",
    "OAuthConfigError",
    "OAuthError",
    "OrgSettings",
    "Phase",
    "Priority",
    "ProbeReport",
    "Profile",
    "Provenance",
    "Secret",
    "SecretStore",
    "SecretStoreError",
    "Security",
    "SettingsError",
    "Store",
    "StoreError",
    "TestResult",
    "Transcript",
    "UnsafeSettingWarning",
    "UserSettings",
    "VerifySpec",
    "__version__",
    "default_secret_store",
    "discover",
    "discover_async",
    "domain",
    "effective",
    "effective_frame",
    "init_profile",
    "locate_profile",
    "migrate",
    "open_profile",
    "probe",
    "probe_async",
    "profile_secrets",
    "read_legacy",
    "read_users",
    "secret_key",
    "send_route_test",
    "send_route_test_async",
    "send_test",
    "send_test_async",
    "write_users",
]


if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name is still an error there

    def __getattr__(name: str) -> Any:
        """Import a public name's module on first use (PEP 562) and keep the name here."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'mailkit' has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
