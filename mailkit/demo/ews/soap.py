"""EWS SOAP as Exchange writes it: the namespaces, the envelope with its ServerVersionInfo, the
response messages and faults, and the reading of what a client sends.

Shapes follow Exchange 2016/2019 answers as exchangelib and Microsoft's EWS reference show them,
because the sender's diagnosis reads these exact elements (``ResponseClass``, ``ResponseCode``,
``MessageText``, ``MessageXml``). Pure: text in, text out; requests are parsed with defusedxml.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
MESSAGES = "http://schemas.microsoft.com/exchange/services/2006/messages"
TYPES = "http://schemas.microsoft.com/exchange/services/2006/types"
ERRORS = "http://schemas.microsoft.com/exchange/services/2006/errors"
AUTODISCOVER = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

XML_CONTENT_TYPE = "text/xml; charset=utf-8"


class RequestError(ValueError):
    """The request body is not a SOAP envelope this fake can read (Exchange: a 400/500)."""


@dataclass(frozen=True)
class ServerVersion:
    """What an Exchange server says about itself in every SOAP answer's header."""

    name: str
    major: int
    minor: int
    major_build: int
    minor_build: int
    #: The ``Version`` attribute: Exchange 2016 and 2019 CUs say ``V2017_07_11``, a value
    #: clients may not send back (exchangelib keeps the version it asked with).
    schema: str
    #: The newest ``RequestServerVersion`` it accepts.
    newest_request: str


SERVER_VERSIONS = {
    "Exchange2016": ServerVersion("Exchange2016", 15, 1, 2507, 6, "V2017_07_11", "Exchange2016"),
    "Exchange2019": ServerVersion("Exchange2019", 15, 2, 1544, 4, "V2017_07_11", "Exchange2016"),
}

#: The schema versions Exchange 2016/2019 accept in ``RequestServerVersion``.
SUPPORTED_SCHEMAS = (
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
)


# --------------------------------------------------------------------------- reading requests


def parse(body: bytes) -> Any:
    """The XML root of a request body (defusedxml: no entities, no external references)."""
    from defusedxml import ElementTree  # type: ignore[import-untyped, unused-ignore]

    try:
        return ElementTree.fromstring(body)
    except Exception as exc:  # ParseError and defusedxml's refusals alike
        raise RequestError(f"the request body is not XML ({type(exc).__name__})") from None


def tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def local_name(element: Any) -> str:
    return str(element.tag).rsplit("}", 1)[-1]


@dataclass(frozen=True)
class Envelope:
    """A SOAP request: its header children and the operation element in its body."""

    header: Any | None
    operation: Any

    @property
    def name(self) -> str:
        """The operation element name: ``CreateItem``, ``GetUserSettingsRequestMessage``..."""
        return local_name(self.operation)

    def header_element(self, namespace: str, name: str) -> Any | None:
        if self.header is None:
            return None
        return self.header.find(tag(namespace, name))

    @property
    def requested_version(self) -> str | None:
        element = self.header_element(TYPES, "RequestServerVersion")
        return None if element is None else element.get("Version")

    @property
    def impersonated(self) -> str | None:
        """The address in an ``ExchangeImpersonation`` header, if any."""
        element = self.header_element(TYPES, "ExchangeImpersonation")
        if element is None:
            return None
        for name in ("PrimarySmtpAddress", "SmtpAddress", "PrincipalName"):
            found = element.find(f".//{tag(TYPES, name)}")
            if found is not None and found.text:
                return str(found.text).strip()
        return None


def envelope(body: bytes) -> Envelope:
    """Split a SOAP request into header and operation; :class:`RequestError` if it is not one."""
    root = parse(body)
    if root.tag != tag(SOAP, "Envelope"):
        raise RequestError("the request is not a SOAP 1.1 envelope")
    soap_body = root.find(tag(SOAP, "Body"))
    if soap_body is None or len(soap_body) == 0:
        raise RequestError("the SOAP envelope has no operation in its body")
    return Envelope(root.find(tag(SOAP, "Header")), soap_body[0])


def text_of(element: Any, path: str) -> str | None:
    """The stripped text at ``path`` (``t:``/``m:`` prefixes allowed), or None."""
    found = element.find(path, {"t": TYPES, "m": MESSAGES, "a": AUTODISCOVER})
    if found is None or found.text is None:
        return None
    return str(found.text).strip()


def addresses(element: Any, path: str) -> tuple[str, ...]:
    """Every ``Mailbox/EmailAddress`` under ``path``."""
    container = element.find(path, {"t": TYPES, "m": MESSAGES})
    if container is None:
        return ()
    found = container.iter(tag(TYPES, "EmailAddress"))
    return tuple(str(e.text).strip() for e in found if e.text and e.text.strip())


# --------------------------------------------------------------------------- writing answers


def server_version_info(version: ServerVersion) -> str:
    return (
        f'<h:ServerVersionInfo MajorVersion="{version.major}" MinorVersion="{version.minor}" '
        f'MajorBuildNumber="{version.major_build}" MinorBuildNumber="{version.minor_build}" '
        f'Version="{version.schema}" xmlns:h="{TYPES}" xmlns="{TYPES}" '
        f'xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"/>'
    )


def answer(version: ServerVersion, body: str) -> bytes:
    """A SOAP answer as Exchange frames it: ServerVersionInfo in the header, ``body`` inside."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}">'
        f"<s:Header>{server_version_info(version)}</s:Header>"
        f'<s:Body xmlns:xsi="{XSI}" xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body}</s:Body>'
        "</s:Envelope>"
    ).encode()


@dataclass(frozen=True)
class Message:
    """One ``<m:{Operation}ResponseMessage>``: success with ``content``, or an error."""

    code: str = "NoError"
    text: str | None = None
    content: str = ""
    #: ``(name, value)`` pairs for ``<m:MessageXml>`` (e.g. BackOffMilliseconds).
    xml_values: Sequence[tuple[str, str]] = ()

    @property
    def response_class(self) -> str:
        return "Success" if self.code == "NoError" else "Error"

    def render(self, operation: str) -> str:
        parts = [f'<m:{operation}ResponseMessage ResponseClass="{self.response_class}">']
        if self.text is not None:
            parts.append(f"<m:MessageText>{escape(self.text)}</m:MessageText>")
        parts.append(f"<m:ResponseCode>{self.code}</m:ResponseCode>")
        if self.code != "NoError":
            parts.append("<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>")
        if self.xml_values:
            values = "".join(
                f"<t:Value Name={quoteattr(name)}>{escape(value)}</t:Value>"
                for name, value in self.xml_values
            )
            parts.append(f"<m:MessageXml>{values}</m:MessageXml>")
        parts.append(self.content)
        parts.append(f"</m:{operation}ResponseMessage>")
        return "".join(parts)


def response(version: ServerVersion, operation: str, messages: Iterable[Message]) -> bytes:
    """``<m:{Operation}Response>`` with one response message per item asked about."""
    inner = "".join(message.render(operation) for message in messages)
    return answer(
        version,
        f'<m:{operation}Response xmlns:m="{MESSAGES}" xmlns:t="{TYPES}">'
        f"<m:ResponseMessages>{inner}</m:ResponseMessages></m:{operation}Response>",
    )


def fault(
    code: str, text: str, *, xml_values: Sequence[tuple[str, str]] = (), schema_error: bool = False
) -> bytes:
    """A SOAP fault as Exchange sends it with HTTP 500 (throttling, impersonation, bad XML).

    Exchange omits the ServerVersionInfo header from faults; the detail carries the EWS
    ``ResponseCode`` and ``Message`` in the errors namespace and ``MessageXml`` in the types one.
    """
    fault_code = "a:ErrorSchemaValidation" if schema_error else f"a:{code}"
    values = "".join(
        f"<t:Value Name={quoteattr(name)}>{escape(value)}</t:Value>" for name, value in xml_values
    )
    message_xml = f'<t:MessageXml xmlns:t="{TYPES}">{values}</t:MessageXml>' if values else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault>'
        f'<faultcode xmlns:a="{TYPES}">{fault_code}</faultcode>'
        f'<faultstring xml:lang="en-US">{escape(text)}</faultstring>'
        f'<detail><e:ResponseCode xmlns:e="{ERRORS}">{code}</e:ResponseCode>'
        f'<e:Message xmlns:e="{ERRORS}">{escape(text)}</e:Message>{message_xml}</detail>'
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()
