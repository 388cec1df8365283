"""The settings advice names, as references each face renders in its own words."""

from __future__ import annotations

from mailkit.faces import password_home, setting, unlock_home


class S:
    """Settings as advice names them: references each face renders its own way (``--ca-file``
    on the command line, the "CA file" field in a form, ``ca_file`` in Python; see
    :mod:`mailkit.faces`). Advice never spells a setting's name itself."""

    host = setting("host")
    port = setting("port")
    security = setting("security")
    auth = setting("auth")
    username = setting("username")
    from_address = setting("from_address")
    mode = setting("mode")
    ca_file = setting("ca_file")
    pin = setting("tls_pin_sha256")
    tls_min_version = setting("tls_min_version")
    plaintext_auth = setting("allow_plaintext_auth")
    command_timeout = setting("command_timeout")
    api_url = setting("api_url")
    eml_folder = setting("eml_folder")
    client_id = setting("oauth_client_id")
    tenant = setting("oauth_tenant")
    secrets = setting("secrets")
    verify_imap = setting("verify_imap")
    verify_timeout = setting("verify_timeout")
    password_home = password_home()
    unlock = unlock_home()
