"""The audit dashboard: findings filtered by severity, rule and mode; a click opens the user.

The panel composes: :func:`mailkit.audit.audit` finds, :func:`mailkit.audit.effective_settings`
gives each user's effective mode, and the :class:`~mailkit.widgets.users.UserForm` edits and
saves a user exactly as the users panel does. After a save the audit runs again, so a fixed
override visibly removes its findings — the loop an admin works in.

"Check sending domains" adds each user's From-domain findings (SPF for their server, DMARC,
DKIM, MX) from :func:`mailkit.audit.domains.check_user_domains`. A domain's health is kept
between audits of the panel (a save re-audits without asking DNS again for known domains);
"Audit again" asks afresh.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import ipywidgets as widgets  # type: ignore[import-untyped]
import pandas as pd

from mailkit.audit import SEVERITIES, audit, effective_settings
from mailkit.audit.report import affected_users
from mailkit.audit.sources import users_from_store
from mailkit.domainhealth.records import DomainHealth, DomainQuery
from mailkit.errors import SecretStoreError, SettingsError
from mailkit.secrets import SecretStore, accounts_with_secret
from mailkit.settings import Mode, UserSettings
from mailkit.store import Store
from mailkit.widgets.common import Panel, note_html, warning_html
from mailkit.widgets.users import UserForm

__all__ = ["AuditDashboard"]

#: The "no filter" choice of each drop-down.
ALL: Final = ""
#: The mode shown for findings about a feature route's sender that is no user.
NO_USER_MODE: Final = "(no such user)"
_TABLE_COLUMNS: Final = ("user_code", "mode", "severity", "rule", "message", "fix")
#: A route's sender that means the organisation itself (FeatureRoute.sender).
_ORG_SENDER: Final = "org"
_SHOWN_ROWS: Final = 200  # more rows than this make a notebook sluggish; the filters narrow
#: The labels of the domain check's fields, as its errors name them.
_DNS_LABELS: Final = {"dns_server": "DNS server", "timeout": "DNS timeout"}


def _findings(count: int) -> str:
    return f"{count} finding" if count == 1 else f"{count} findings"


class AuditDashboard(Panel):
    """Audit ``store``'s users (or those ``users`` returns) and fix them one by one.

    ``users`` loads the canonical users table to audit (default: the store's users); the org
    settings, the test history and saving always go through ``store``. With ``secrets``, the
    ``missing-secret`` rule runs too, and the user form takes a user's own password (typed
    twice, saved with the user), so that finding is fixed where it is shown. ``now`` fixes the
    clock for ``test-stale``. ``check_domains`` ticks "Check sending domains" at the start;
    ``dns_server`` fills "DNS server" (``HOST:PORT``; empty: the system's resolvers).

    Attributes: ``severity``, ``rule``, ``mode`` (the filters; ``""`` means all), ``count``,
    ``table`` (the filtered findings), ``user_list`` (a Select of the filtered users; picking one
    opens it in ``form``), ``form`` (a :class:`UserForm`), ``findings`` (every finding, with the
    user's effective ``mode``) and ``visible`` (the rows the filters let through).
    """

    def __init__(
        self,
        store: Store,
        *,
        users: Callable[[], pd.DataFrame] | None = None,
        secrets: SecretStore | None = None,
        stale_days: int = 30,
        now: Callable[[], datetime] | None = None,
        check_domains: bool = False,
        dns_server: str | None = None,
    ) -> None:
        self.store = store
        self._domain_checks: dict[DomainQuery, DomainHealth] = {}
        self._load = users if users is not None else lambda: users_from_store(store).frame
        self._secrets = secrets
        self._stale_days = stale_days
        self._now = now
        self.findings: pd.DataFrame = pd.DataFrame(columns=list(_TABLE_COLUMNS))
        self.visible: pd.DataFrame = self.findings
        self.users_audited = 0
        style = {"description_width": "70px"}
        self.severity: Any = widgets.Dropdown(description="Severity", style=style)
        self.rule: Any = widgets.Dropdown(description="Rule", style=style)
        self.mode: Any = widgets.Dropdown(description="Mode", style=style)
        self.refresh_button: Any = widgets.Button(description="Audit again", icon="refresh")
        self.check_domains: Any = widgets.Checkbox(
            value=check_domains, description="Check sending domains", indent=False
        )
        self.dns_server: Any = widgets.Text(
            value=dns_server or "",
            description="DNS server",
            placeholder="HOST:PORT (empty: the system's)",
            style={"description_width": "80px"},
        )
        self.domain_note: Any = widgets.HTML()
        self.count: Any = widgets.HTML()
        self.table: Any = widgets.HTML()
        self.user_list: Any = widgets.Select(
            description="Users", rows=8, layout={"width": "420px"}, style=style
        )
        self.user_note: Any = widgets.HTML()
        self.form = UserForm(store, secrets=secrets)
        self._quiet = False
        for control in (self.severity, self.rule, self.mode):
            control.observe(lambda _change: self._filter(), names="value")
        self.user_list.observe(self._picked, names="value")
        self.refresh_button.on_click(lambda _button: self.refresh(recheck=True))
        self.form.on_saved.append(lambda _user: self.refresh())
        self.widget: Any = widgets.VBox(
            [
                widgets.HTML("<h3>Audit</h3>"),
                widgets.HBox([self.severity, self.rule, self.mode, self.refresh_button]),
                widgets.HBox([self.check_domains, self.dns_server]),
                self.domain_note,
                self.count,
                self.table,
                self.user_list,
                self.user_note,
                self.form.widget,
            ]
        )
        self.refresh()

    # ------------------------------------------------------------------ auditing

    def _accounts_with_secret(self, users: pd.DataFrame) -> frozenset[str] | None:
        """Whose password is stored; None (not checked) without a store or when it is locked."""
        if self._secrets is None:
            return None
        codes = list(users["user_code"].dropna().astype(str))
        try:
            return accounts_with_secret(self._secrets, self.store.profile_name, ["org", *codes])
        except SecretStoreError:
            return None

    def _domains(self, org: Any, users: pd.DataFrame) -> dict[DomainQuery, DomainHealth] | None:
        """The users' domain health (None when not asked for, or when the field is wrong)."""
        self.domain_note.value = ""
        if not self.check_domains.value:
            return None
        from mailkit.audit.domainrules import user_queries
        from mailkit.domainhealth.check import check_domains, dns_client
        from mailkit.runner import run_sync

        try:
            client = dns_client(self.dns_server.value.strip() or None, 3.0, _DNS_LABELS)
        except SettingsError as exc:
            self.domain_note.value = warning_html(
                "; ".join(str(problem) for problem in exc.problems)
                + " — sending domains were not checked."
            )
            return None
        _codes, queries = user_queries(effective_settings(org, users))
        missing = [query for query in queries if query not in self._domain_checks]
        if missing:
            self._domain_checks.update(run_sync(check_domains(missing, client)))
        self.domain_note.value = note_html(
            f"{len(queries)} sending domain(s) checked over DNS ({len(missing)} looked up now)."
        )
        return {query: self._domain_checks[query] for query in queries}

    def refresh(self, *, recheck: bool = False) -> None:
        """Re-read users, org and history; audit; keep the filters and the selection if valid.

        ``recheck``: ask DNS again about domains checked before ("Audit again").
        """
        users = self._load()
        org = self.store.get_org()
        moment = self._now() if self._now is not None else None
        if recheck:
            self._domain_checks.clear()
        findings = audit(
            org,
            users,
            accounts_with_secret=self._accounts_with_secret(users),
            history=self.store.history_frame(),
            stale_days=self._stale_days,
            now=moment,
            domains=self._domains(org, users),
        )
        modes = effective_settings(org, users)[["user_code", "mode"]]
        modes = modes.assign(key=modes["user_code"].str.casefold()).drop_duplicates("key")
        by_key = pd.Series(modes["mode"].astype("string").to_numpy(), index=modes["key"])
        keys = findings["user_code"].str.casefold()
        mode = keys.map(by_key)
        # A route sending as "org" sends with the org's settings: its mode, not "no such user".
        is_org = keys.eq(_ORG_SENDER).fillna(False).astype(bool)
        mode = mode.mask(mode.isna() & is_org, (org.mode or Mode.SMTP).value)
        findings = findings.assign(mode=mode.fillna(NO_USER_MODE).astype(str))
        self.findings = findings[list(_TABLE_COLUMNS)].reset_index(drop=True)
        self.users_audited = len(users)
        self.form.refresh()
        self._quiet = True
        try:
            self._offer(self.severity, self.findings["severity"], order=SEVERITIES)
            self._offer(self.rule, self.findings["rule"])
            self._offer(self.mode, self.findings["mode"])
        finally:
            self._quiet = False
        self._filter()

    @staticmethod
    def _offer(control: Any, values: pd.Series[Any], order: tuple[str, ...] = ()) -> None:
        """Options with their counts of findings, "all" first; the current choice kept if
        still there."""
        counts = values.value_counts()
        names = [v for v in order if v in counts] or sorted(str(v) for v in counts.index)
        keep = control.value
        control.options = [(f"all ({_findings(len(values))})", ALL)] + [
            (f"{name} ({_findings(counts[name])})", name) for name in names
        ]
        control.value = keep if keep in names else ALL

    def _filter(self) -> None:
        if self._quiet:
            return
        rows = self.findings
        for column, control in (
            ("severity", self.severity),
            ("rule", self.rule),
            ("mode", self.mode),
        ):
            if control.value != ALL:
                rows = rows[rows[column] == control.value]
        self.visible = rows.reset_index(drop=True)
        codes = list(dict.fromkeys(self.visible["user_code"]))
        # Users counted as the summary and the charts count them (affected_users).
        self.count.value = note_html(
            f"{len(self.visible)} of {len(self.findings)} finding(s), for "
            f"{affected_users(self.visible)} user(s); {self.users_audited} user(s) audited."
        )
        self.table.value = self._render(self.visible)
        keep = self.user_list.value
        self._quiet = True
        try:
            self.user_list.options = codes
            self.user_list.value = keep if keep in codes else None
        finally:
            self._quiet = False

    @staticmethod
    def _render(rows: pd.DataFrame) -> str:
        if rows.empty:
            return note_html("No findings match the filters.")
        shown = rows.head(_SHOWN_ROWS)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in record) + "</tr>"
            for record in shown.itertuples(index=False, name=None)
        )
        more = (
            note_html(f"Showing the first {_SHOWN_ROWS}; narrow the filters to see the rest.")
            if len(rows) > _SHOWN_ROWS
            else ""
        )
        return (
            # Its own line height: ipywidgets' 28 px would leave room for a few rows only.
            '<div style="max-height: 360px; overflow: auto; line-height: 1.35">'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}"
        )

    # ------------------------------------------------------------------ a user

    @property
    def selected(self) -> UserSettings | None:
        """The user open in the form (None when the picked code is not a stored user)."""
        return self.form.user

    def _picked(self, change: dict[str, Any]) -> None:
        code = change["new"]
        if self._quiet or code is None:
            return
        self.open(code)

    def open(self, code: str) -> None:
        """Open ``code``'s settings in the form, as the users panel does."""
        user = self.store.get_user(code)
        self.form.load(user)
        if user is None and code.casefold() == _ORG_SENDER:
            self.user_note.value = warning_html(
                "org is the organisation's own sender, not a user: fix this finding in the "
                "organisation settings."
            )
        elif user is None:
            self.form.fields["user_code"].input.value = code
            self.user_note.value = warning_html(
                f"{code} is not a user of this profile (for instance a route's sender or a row "
                "the profile refused): fix it in the application, or save it here as a new user."
            )
        else:
            self.user_note.value = ""
