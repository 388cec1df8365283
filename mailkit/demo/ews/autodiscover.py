"""Autodiscover answers in its three flavours, as Exchange words them.

- SOAP ``/autodiscover/autodiscover.svc`` ``GetUserSettings``: what exchangelib's own
  ``Autodiscovery`` speaks (and Outlook 2010+ via EWS Managed API).
- POX ``/autodiscover/autodiscover.xml`` (Outlook schema ``2006a``): the oldest, still served
  by every on-premises Exchange.
- JSON v2 ``/autodiscover/autodiscover.json/v1.0/{address}?Protocol=EWS``: anonymous, one URL
  per protocol.

Pure: each function takes what the request said and returns the answer's bytes; the server
decides status, authentication and which failure applies (:mod:`.scenarios`).
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape

from mailkit.demo.ews import soap
from mailkit.demo.ews.soap import AUTODISCOVER, SUPPORTED_SCHEMAS, ServerVersion

POX_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
POX_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
POX_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


# --------------------------------------------------------------------------- requests


def pox_address(body: bytes) -> str | None:
    """The ``EMailAddress`` a POX request asks about (None if there is none)."""
    root = soap.parse(body)
    return soap.text_of(root, f"{{{POX_REQUEST}}}Request/{{{POX_REQUEST}}}EMailAddress")


def soap_addresses(operation: object) -> tuple[str, ...]:
    """The mailboxes a ``GetUserSettingsRequestMessage`` asks about."""
    found = operation.iter(f"{{{AUTODISCOVER}}}Mailbox")  # type: ignore[attr-defined]
    return tuple(str(e.text).strip() for e in found if e.text and e.text.strip())


# --------------------------------------------------------------------------- SOAP answers


def _soap_envelope(version: ServerVersion, user_responses: str) -> bytes:
    header = (
        f'<h:ServerVersionInfo xmlns:h="{AUTODISCOVER}" xmlns:i="{soap.XSI}">'
        f"<h:MajorVersion>{version.major}</h:MajorVersion>"
        f"<h:MinorVersion>{version.minor}</h:MinorVersion>"
        f"<h:MajorBuildNumber>{version.major_build}</h:MajorBuildNumber>"
        f"<h:MinorBuildNumber>{version.minor_build}</h:MinorBuildNumber>"
        f"<h:Version>{version.name}</h:Version></h:ServerVersionInfo>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{soap.SOAP}" xmlns:a="http://www.w3.org/2005/08/addressing">'
        f"<s:Header>{header}</s:Header><s:Body>"
        f'<GetUserSettingsResponseMessage xmlns="{AUTODISCOVER}"><Response>'
        "<ErrorCode>NoError</ErrorCode><ErrorMessage/>"
        f"<UserResponses>{user_responses}</UserResponses>"
        "</Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"
    ).encode()


def _setting(name: str, value: str) -> str:
    return (
        f'<UserSetting i:type="StringSetting" xmlns:i="{soap.XSI}">'
        f"<Name>{name}</Name><Value>{escape(value)}</Value></UserSetting>"
    )


def soap_settings(
    version: ServerVersion, address: str, ews_url: str | None, display_name: str
) -> bytes:
    """GetUserSettings success; without ``ews_url`` the EWS settings are missing."""
    settings = [
        _setting("UserDisplayName", display_name),
        _setting("AutoDiscoverSMTPAddress", address),
        _setting("CasVersion", f"{version.major}.{version.minor}.{version.major_build}.0"),
        _setting("EwsSupportedSchemas", ", ".join(SUPPORTED_SCHEMAS)),
    ]
    if ews_url is not None:
        settings += [_setting("InternalEwsUrl", ews_url), _setting("ExternalEwsUrl", ews_url)]
    user = (
        "<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>"
        f'<RedirectTarget i:nil="true" xmlns:i="{soap.XSI}"/><UserSettingErrors/>'
        f"<UserSettings>{''.join(settings)}</UserSettings></UserResponse>"
    )
    return _soap_envelope(version, user)


def soap_redirect(version: ServerVersion, target: str) -> bytes:
    """GetUserSettings answering "ask again for another address" (``RedirectAddress``)."""
    user = (
        "<UserResponse><ErrorCode>RedirectAddress</ErrorCode>"
        "<ErrorMessage>Redirection address.</ErrorMessage>"
        f"<RedirectTarget>{escape(target)}</RedirectTarget>"
        "<UserSettingErrors/><UserSettings/></UserResponse>"
    )
    return _soap_envelope(version, user)


def soap_unknown_user(version: ServerVersion, address: str) -> bytes:
    user = (
        "<UserResponse><ErrorCode>InvalidUser</ErrorCode>"
        f"<ErrorMessage>Invalid user: '{escape(address)}'</ErrorMessage>"
        "<UserSettingErrors/><UserSettings/></UserResponse>"
    )
    return _soap_envelope(version, user)


# --------------------------------------------------------------------------- POX answers


def pox_settings(address: str, ews_url: str | None, display_name: str, server: str) -> bytes:
    """The Outlook-schema answer: an EXCH and an EXPR protocol, each with ``EwsUrl`` (left
    out entirely without ``ews_url``)."""
    ews = f"<EwsUrl>{escape(ews_url)}</EwsUrl>" if ews_url is not None else ""
    protocols = "".join(
        f"<Protocol><Type>{kind}</Type><Server>{escape(server)}</Server><SSL>On</SSL>"
        f"<AuthPackage>Ntlm</AuthPackage>{ews}</Protocol>"
        for kind in ("EXCH", "EXPR")
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<Autodiscover xmlns="{POX_RESPONSE}"><Response xmlns="{POX_OUTLOOK}">'
        f"<User><DisplayName>{escape(display_name)}</DisplayName>"
        f"<AutoDiscoverSMTPAddress>{escape(address)}</AutoDiscoverSMTPAddress></User>"
        "<Account><AccountType>email</AccountType><Action>settings</Action>"
        f"<MicrosoftOnline>False</MicrosoftOnline>{protocols}</Account>"
        "</Response></Autodiscover>"
    ).encode()


def pox_redirect(target: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<Autodiscover xmlns="{POX_RESPONSE}"><Response xmlns="{POX_OUTLOOK}">'
        "<Account><AccountType>email</AccountType><Action>redirectAddr</Action>"
        f"<RedirectAddr>{escape(target)}</RedirectAddr></Account>"
        "</Response></Autodiscover>"
    ).encode()


def pox_error(code: int, message: str) -> bytes:
    """A POX error (HTTP 200, ``<Error>`` in the base response schema), e.g. 500 for an
    address Exchange cannot find."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<Autodiscover xmlns="{POX_RESPONSE}"><Response>'
        '<Error Time="09:00:00.0000000" Id="1234567890">'
        f"<ErrorCode>{code}</ErrorCode><Message>{escape(message)}</Message><DebugData/>"
        "</Error></Response></Autodiscover>"
    ).encode()


# --------------------------------------------------------------------------- JSON v2


def json_settings(protocol: str, url: str | None) -> bytes:
    answer: dict[str, str] = {"Protocol": protocol}
    if url is not None:
        answer["Url"] = url
    return json.dumps(answer).encode()


def json_invalid_protocol(protocol: str) -> bytes:
    return json.dumps(
        {
            "ErrorCode": "InvalidProtocol",
            "ErrorMessage": f"The given protocol value '{protocol}' is invalid. Supported values "
            "are 'Rest,ActiveSync,Ews,AutodiscoverV1'",
        }
    ).encode()


#: A truncated document: what a proxy cutting the answer short, or a broken page, gives.
MALFORMED_XML = b'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="'
MALFORMED_JSON = b'{"Protocol": "EWS", "Url": '
