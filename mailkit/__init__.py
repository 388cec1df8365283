"""mailkit: set up, test and audit the outgoing email of business software.

The public surface is deliberately small; everything else is reached through its module
(``mailkit.store``, ``mailkit.oauth``, ``mailkit.audit``, ...). ``tests/test_public_api.py``
pins this list.
"""

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
from mailkit.profiles import init_profile, locate_profile, open_profile, profile_secrets
from mailkit.resolve import Effective, effective, effective_frame
from mailkit.secrets import (
    EnvSecretStore,
    FileSecretStore,
    KeyringSecretStore,
    MemorySecretStore,
    Secret,
    SecretStore,
    default_secret_store,
    secret_key,
)
from mailkit.senders.smtp import TestResult
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
from mailkit.store import Store
from mailkit.testsend import send_test, send_test_async
from mailkit.transcript import Transcript
from mailkit.users import USERS_COLUMNS, read_users, write_users

__version__ = "0.1.0"

__all__ = [
    "USERS_COLUMNS",
    "AuthType",
    "Cause",
    "Diagnosis",
    "Edition",
    "Effective",
    "EnvSecretStore",
    "FeatureRoute",
    "FileSecretStore",
    "ImportFileError",
    "KeyringSecretStore",
    "Kind",
    "MailkitError",
    "MemorySecretStore",
    "Migration",
    "Mode",
    "OAuthConfigError",
    "OAuthError",
    "OrgSettings",
    "Phase",
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
    "TestResult",
    "Transcript",
    "UnsafeSettingWarning",
    "UserSettings",
    "__version__",
    "default_secret_store",
    "effective",
    "effective_frame",
    "init_profile",
    "locate_profile",
    "migrate",
    "open_profile",
    "profile_secrets",
    "read_legacy",
    "read_users",
    "secret_key",
    "send_test",
    "send_test_async",
    "write_users",
]
