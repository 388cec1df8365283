"""mailkit: set up, test and audit the outgoing email of business software.

The public surface is deliberately small; everything else is reached through its module
(``mailkit.store``, ``mailkit.legacy``, ...). ``tests/test_public_api.py`` pins this list.
"""

from mailkit.errors import (
    ImportFileError,
    MailkitError,
    SecretStoreError,
    SettingsError,
    StoreError,
    UnsafeSettingWarning,
)
from mailkit.legacy import Migration, migrate, read_legacy
from mailkit.resolve import Effective, effective, effective_frame
from mailkit.secrets import (
    EnvSecretStore,
    KeyringSecretStore,
    MemorySecretStore,
    Secret,
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
from mailkit.store import Store
from mailkit.users import USERS_COLUMNS, read_users, write_users

__version__ = "0.1.0"

__all__ = [
    "USERS_COLUMNS",
    "AuthType",
    "Edition",
    "Effective",
    "EnvSecretStore",
    "FeatureRoute",
    "ImportFileError",
    "KeyringSecretStore",
    "MailkitError",
    "MemorySecretStore",
    "Migration",
    "Mode",
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
    "effective",
    "effective_frame",
    "migrate",
    "read_legacy",
    "read_users",
    "secret_key",
    "write_users",
]
