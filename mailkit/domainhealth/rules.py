"""Findings about a sending domain: rule ids, severities, messages and fixes, from the reports.

Pure. :data:`DOMAIN_RULES` declares every rule once (id, severity, what it means), so the
command line, the audit and the dashboard list the same ids; :func:`domain_findings` decides
which fire for one domain's reports. A lookup that failed (timeout, SERVFAIL) is its own
finding, ``dns-lookup-failed`` — "could not check", never a false "missing".

Severities follow the audit's: critical = receivers will refuse or junk the mail;
warning = a risk or a check that could not be made; info = advice.
"""

from __future__ import annotations

from typing import Final

from mailkit.domainhealth.records import (
    DkimKey,
    DmarcReport,
    DomainFinding,
    MxReport,
    Severity,
    SpfReport,
)
from mailkit.domainhealth.spf import LOOKUP_LIMIT, VOID_LIMIT

__all__ = ["COMMON_SELECTORS", "DOMAIN_RULES", "domain_findings"]

#: Selectors tried when neither the provider nor the caller names one: the defaults of the
#: common signing tools and services (OpenDKIM's "default", Microsoft's, Google's, …).
COMMON_SELECTORS: Final = (
    "default",
    "selector1",
    "selector2",
    "google",
    "k1",
    "s1",
    "s2",
    "dkim",
    "mail",
)

#: Every domain rule: id → (severity, what it means).
DOMAIN_RULES: Final[dict[str, tuple[Severity, str]]] = {
    "domain-not-found": ("critical", "the From domain does not exist in DNS"),
    "spf-server-not-authorized": ("critical", "SPF does not authorise the sending server"),
    "spf-too-many-lookups": ("critical", "SPF needs more than 10 DNS lookups (permerror)"),
    "spf-syntax": ("critical", "the SPF record or one it includes is broken (permerror)"),
    "spf-pass-all": ("critical", "SPF ends in +all: anyone may send as the domain"),
    "domain-no-mx": ("warning", "the domain has no MX, or a null MX: it receives no mail"),
    "dns-lookup-failed": ("warning", "a record could not be checked (timeout, SERVFAIL)"),
    "spf-missing": ("warning", "the domain publishes no SPF record"),
    "dmarc-missing": ("warning", "the domain publishes no DMARC record"),
    "dmarc-syntax": ("warning", "the DMARC record is broken, so receivers ignore it"),
    "dmarc-policy-none": ("warning", "DMARC p=none: spoofed mail is still delivered"),
    "dmarc-not-aligned": ("warning", "neither SPF nor DKIM aligns with the From domain"),
    "dkim-key-missing": ("warning", "an expected DKIM key is missing or revoked"),
    "dkim-key-invalid": ("warning", "a DKIM key record cannot be parsed"),
    "spf-softfail-all": ("info", "SPF ends in ~all or ?all: failing mail is only marked"),
    "dmarc-pct-partial": ("info", "DMARC pct below 100: the policy covers part of the mail"),
    "dmarc-no-rua": ("info", "DMARC asks for no aggregate reports (rua=)"),
    "dkim-not-found": ("info", "no DKIM key under the common selectors; name the selector"),
}


def _finding(domain: str, rule: str, message: str, fix: str) -> DomainFinding:
    return DomainFinding(domain, rule, DOMAIN_RULES[rule][0], message, fix)


def domain_findings(
    domain: str,
    mx: MxReport,
    spf: SpfReport,
    dmarc: DmarcReport,
    dkim: tuple[DkimKey, ...],
    *,
    authorize_fix: str = "",
    dkim_probed: bool = True,
) -> tuple[DomainFinding, ...]:
    """The findings for one domain's reports. ``authorize_fix``: how to authorise the server
    (``add include:spf.protection.outlook.com …``), when SPF does not; ``dkim_probed``: the
    common selectors were tried (else finding no key says nothing)."""
    if mx.status == "nxdomain":
        return (
            _finding(
                domain,
                "domain-not-found",
                f"{domain} does not exist in DNS (NXDOMAIN): receivers refuse mail from it",
                f"check the spelling of the From domain, or register {domain} and publish its "
                "records",
            ),
        )
    found: list[DomainFinding] = []
    failed = [
        ("MX", mx.status, mx.detail),
        ("SPF", spf.status, spf.detail),
        ("DMARC", dmarc.status, dmarc.detail),
    ] + [(f"DKIM selector {k.selector}", k.status, k.detail) for k in dkim if k.expected]
    probes = [k for k in dkim if not k.expected and k.status == "unknown"]
    if probes:
        names = ", ".join(k.selector for k in probes)
        failed.append(("DKIM (common selectors " + names + ")", "unknown", probes[0].detail))
    for what, status, detail in failed:
        if status == "unknown":
            found.append(
                _finding(
                    domain,
                    "dns-lookup-failed",
                    f"could not check {what} of {domain}: {detail}",
                    "check again later or with another DNS server (--dns-server); a lookup "
                    "that fails for receivers too defers or fails their checks",
                )
            )
    if mx.status == "null":
        found.append(
            _finding(
                domain,
                "domain-no-mx",
                f"{domain} has a null MX (RFC 7505 '0 .'): it says it accepts no mail, so "
                "replies and bounces are lost, and some receivers refuse mail from it",
                f"publish the MX of the server that receives mail for {domain}, or send from a "
                "domain that receives mail",
            )
        )
    elif mx.status == "missing":
        found.append(
            _finding(
                domain,
                "domain-no-mx",
                f"{domain} has no MX record: replies and bounces have nowhere to go, and "
                "receivers may treat the domain as unable to receive mail",
                f"publish an MX record for {domain} (the server that receives its mail)",
            )
        )
    found += _spf_findings(domain, spf, authorize_fix)
    found += _dmarc_findings(domain, dmarc)
    found += _dkim_findings(domain, dkim, dkim_probed)
    rank = {"critical": 0, "warning": 1, "info": 2}
    return tuple(sorted(found, key=lambda f: rank[f.severity]))


def _spf_findings(domain: str, spf: SpfReport, authorize_fix: str) -> list[DomainFinding]:
    found: list[DomainFinding] = []
    if spf.status == "missing":
        found.append(
            _finding(
                domain,
                "spf-missing",
                f"{domain} publishes no SPF record: receivers cannot tell its servers from "
                "forgers, and large mailbox providers junk or refuse such mail",
                f"publish a TXT record at {domain}: v=spf1 {authorize_fix or 'mx'} -all "
                "(listing every server that sends for the domain)",
            )
        )
        return found
    if spf.problems:
        found.append(
            _finding(
                domain,
                "spf-syntax",
                f"the SPF of {domain} is broken, so receivers treat it as a permanent error: "
                + "; ".join(spf.problems),
                "correct the record (or the included domain's) as the message says; test it "
                "again with mailkit domain",
            )
        )
    if spf.lookups > LOOKUP_LIMIT:
        found.append(
            _finding(
                domain,
                "spf-too-many-lookups",
                f"the SPF of {domain} and its includes need {spf.lookups} DNS lookups; "
                f"receivers stop at {LOOKUP_LIMIT} and fail SPF (permerror) for every message",
                "remove includes of services that no longer send for the domain, replace a "
                "and mx terms by ip4/ip6 ranges, or split senders across subdomains",
            )
        )
    if spf.void_lookups > VOID_LIMIT:
        found.append(
            _finding(
                domain,
                "spf-too-many-lookups",
                f"{spf.void_lookups} terms of the SPF of {domain} and its includes look up "
                f"names that do not exist or have no such record; receivers allow "
                f"{VOID_LIMIT} such void lookups and then fail SPF (permerror)",
                "remove the a, mx and exists terms that point at names without records "
                "(servers retired, typos)",
            )
        )
    if spf.all_term == "+all":
        found.append(
            _finding(
                domain,
                "spf-pass-all",
                f"the SPF of {domain} ends in {spf.all_term}: it authorises every server on "
                "the internet, so it proves nothing and invites spoofing",
                "end the record in -all (or ~all while you check the list of servers)",
            )
        )
    elif spf.status == "ok" and spf.all_term in ("~all", "?all", None):
        ending = f"ends in {spf.all_term}" if spf.all_term else "has no all term (neutral)"
        found.append(
            _finding(
                domain,
                "spf-softfail-all",
                f"the SPF of {domain} {ending}: mail from other servers is only marked, not "
                "refused",
                "once every sending server is listed, end the record in -all",
            )
        )
    if spf.authorized is False:
        results = ", ".join(f"{ip}: {result}" for ip, result in spf.results)
        found.append(
            _finding(
                domain,
                "spf-server-not-authorized",
                f"the SPF of {domain} does not authorise {spf.checked}"
                + (f" ({results})" if results else "")
                + ": receivers fail SPF for its mail and, with DMARC, junk or refuse it",
                authorize_fix or f"add the sending server to the SPF record of {domain}",
            )
        )
    return found


def _dmarc_findings(domain: str, dmarc: DmarcReport) -> list[DomainFinding]:
    found: list[DomainFinding] = []
    if dmarc.status == "missing":
        found.append(
            _finding(
                domain,
                "dmarc-missing",
                f"no DMARC record at _dmarc.{domain}"
                + (
                    f" nor at its organisational domain's _dmarc.{dmarc.org_domain}"
                    if dmarc.org_domain and dmarc.org_domain != domain
                    else ""
                )
                + ": receivers get no policy, and bulk senders without one are refused by "
                "large mailbox providers",
                f"publish a TXT record at _dmarc.{domain}: v=DMARC1; p=none; "
                f"rua=mailto:dmarc-reports@{domain} — then move to quarantine or reject",
            )
        )
    elif dmarc.status == "invalid":
        found.append(
            _finding(
                domain,
                "dmarc-syntax",
                f"the DMARC record at {dmarc.found_at} is broken ({dmarc.detail}), so "
                "receivers ignore it",
                "correct the record as the message says (v=DMARC1; p=…; first)",
            )
        )
    if dmarc.status != "ok":
        return found
    if dmarc.applied_policy == "none":
        found.append(
            _finding(
                domain,
                "dmarc-policy-none",
                f"the DMARC policy for {domain} is p=none (at {dmarc.found_at}): mail that "
                "fails DMARC, forged or not, is delivered as usual",
                "read the aggregate reports until your own mail passes, then set "
                "p=quarantine and later p=reject",
            )
        )
    elif dmarc.pct is not None and dmarc.pct < 100:
        found.append(
            _finding(
                domain,
                "dmarc-pct-partial",
                f"the DMARC policy for {domain} ({dmarc.applied_policy}) applies to "
                f"pct={dmarc.pct}% of failing mail; the rest is treated one step milder",
                "raise pct to 100 (or remove it) once reports show your mail passes",
            )
        )
    if not dmarc.rua:
        found.append(
            _finding(
                domain,
                "dmarc-no-rua",
                f"the DMARC record at {dmarc.found_at} asks for no aggregate reports, so "
                "nobody learns which servers send as the domain or fail",
                f"add rua=mailto:dmarc-reports@{domain} (an address that is read)",
            )
        )
    if dmarc.spf_aligned is False and dmarc.dkim_aligned is False:
        found.append(
            _finding(
                domain,
                "dmarc-not-aligned",
                f"neither SPF nor DKIM of the sending path aligns with {domain} "
                f"(aspf={dmarc.aspf}, adkim={dmarc.adkim}): its mail fails DMARC and gets "
                f"the policy ({dmarc.applied_policy})",
                "authorise the server in the SPF of the envelope sender's domain (the same "
                "organisational domain), and sign with a DKIM key published under the From "
                "domain",
            )
        )
    return found


def _dkim_findings(domain: str, dkim: tuple[DkimKey, ...], probed: bool) -> list[DomainFinding]:
    found: list[DomainFinding] = []
    expected = [key for key in dkim if key.expected]
    for key in expected:
        if key.status in ("missing", "revoked"):
            why = "is revoked (p= is empty)" if key.status == "revoked" else "does not exist"
            fix = (
                f"publish the key (or the provider's CNAME) at {key.name}, as the "
                "provider's DKIM settings show it"
            )
            if key.cname:
                why = f"is a CNAME to {key.cname}, which publishes no key"
                fix = (
                    f"turn DKIM signing on for {domain} in the provider's settings, so that "
                    f"{key.cname} publishes the key (the CNAME itself is in place)"
                )
            found.append(
                _finding(
                    domain,
                    "dkim-key-missing",
                    f"the DKIM key {key.name} {why}: mail signed with selector "
                    f"{key.selector} fails DKIM",
                    fix,
                )
            )
    for key in dkim:
        if key.status == "invalid":
            found.append(
                _finding(
                    domain,
                    "dkim-key-invalid",
                    f"the DKIM key record at {key.name} cannot be used: {key.detail}",
                    "publish the record again exactly as the signing service shows it "
                    "(v=DKIM1; k=rsa; p=BASE64 key on one logical string)",
                )
            )
    if probed and not expected and not any(key.status in ("ok", "unknown") for key in dkim):
        tried = ", ".join(COMMON_SELECTORS)
        found.append(
            _finding(
                domain,
                "dkim-not-found",
                f"no DKIM key found for {domain} under the common selectors ({tried}); "
                "whether its mail is signed could not be checked",
                "name the selector your server signs with (--dkim-selector), or set up "
                "DKIM signing for the domain",
            )
        )
    return found
