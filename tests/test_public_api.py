"""The public surface is a decision: adding or removing a name must change this test too."""

from __future__ import annotations

from importlib.metadata import version

import mailkit

EXPECTED = {
    "USERS_COLUMNS",
    "AuthType",
    "Cause",
    "Diagnosis",
    "DiscoveryReport",
    "Kind",
    "Phase",
    "TestResult",
    "Transcript",
    "send_test",
    "send_test_async",
    "Edition",
    "Effective",
    "EnvSecretStore",
    "FeatureRoute",
    "FileSecretStore",
    "init_profile",
    "locate_profile",
    "open_profile",
    "profile_secrets",
    "ImportFileError",
    "KeyringSecretStore",
    "MailkitError",
    "MemorySecretStore",
    "Migration",
    "Mode",
    "OAuthConfigError",
    "OAuthError",
    "OrgSettings",
    "Priority",
    "Profile",
    "Provenance",
    "Secret",
    "SecretStore",
    "SecretStoreError",
    "Security",
    "SettingsError",
    "Store",
    "StoreError",
    "UnsafeSettingWarning",
    "UserSettings",
    "__version__",
    "default_secret_store",
    "discover",
    "discover_async",
    "domain",
    "effective",
    "effective_frame",
    "migrate",
    "read_legacy",
    "read_users",
    "secret_key",
    "write_users",
    "ProbeReport",
    "probe",
    "probe_async",
    "DeliveryReport",
    "MailboxSpec",
    "VerifySpec",
    "send_route_test",
    "send_route_test_async",
}


def test_exported_names() -> None:
    assert set(mailkit.__all__) == EXPECTED
    assert len(mailkit.__all__) == len(EXPECTED)


def test_every_exported_name_exists_and_belongs_to_mailkit() -> None:
    for name in mailkit.__all__:
        obj = getattr(mailkit, name)
        module = getattr(obj, "__module__", "mailkit")
        assert module.startswith("mailkit"), (name, module)


def test_version_matches_the_installed_distribution() -> None:
    assert mailkit.__version__ == version("mailkit")
