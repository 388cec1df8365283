"""Feature routes as a test sends them: the subject filled in, the sender, the recipients.

A product feature that sends mail (requests, purchase orders, work orders, ...) is a
:class:`~mailkit.settings.FeatureRoute`: a sender (the organisation or a user), recipients and a
subject template. After setup an admin should see each one work. :func:`route_test` turns a
route into what its test sends — the template rendered with sample values, from the route's
sender to the route's recipients — or says, naming the field, why it cannot. Pure: the send
itself is :func:`mailkit.testsend.send_route_test_async`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from mailkit.errors import FieldProblem, SettingsError
from mailkit.settings import (
    SUBJECT_FIELDS,
    OrgSettings,
    UserSettings,
    subject_template_problem,
    user_code_key,
)

__all__ = ["ORG_SENDER", "RouteTest", "render_subject", "route_test", "sample_values"]

#: The sender of a route that sends as the organisation itself.
ORG_SENDER = "org"


@dataclass(frozen=True)
class RouteTest:
    """What a route's test sends: as whom, to whom, with which subject."""

    feature: str
    #: The user who sends, or None when the organisation itself does.
    user: UserSettings | None
    recipients: tuple[str, ...]
    subject: str
    #: The route's template, as stored.
    template: str
    enabled: bool

    @property
    def sender(self) -> str:
        """``"org"`` or the sending user's code (as the route names it)."""
        return ORG_SENDER if self.user is None else self.user.user_code


def sample_values(feature: str, sender: str, today: date) -> dict[str, str]:
    """The values a route test fills the template with: recognisably a test, never real data."""
    return {
        "feature": feature.replace("_", " ").capitalize(),
        "number": "TEST-0001",
        "title": "mailkit route test",
        "sender": sender,
        "date": today.isoformat(),
    }


def render_subject(template: str, values: Mapping[str, str], *, field: str) -> str:
    """``template`` with its placeholders filled from ``values``.

    Raises :class:`~mailkit.errors.SettingsError` naming ``field`` when the template cannot be
    filled: the validator's own words (:func:`~mailkit.settings.subject_template_problem`)
    for an unknown placeholder, which name it and every known one.
    """
    problem = subject_template_problem(template)
    if problem is None and (missing := sorted(SUBJECT_FIELDS - set(values))):
        problem = f"needs values for {', '.join(missing)}"
    if problem is not None:
        raise SettingsError([FieldProblem(field, problem)], "the route's subject template")
    return template.format_map(dict(values))


def route_test(
    org: OrgSettings, feature: str, users: Iterable[UserSettings], *, today: date
) -> RouteTest:
    """The test of the route ``feature``: its sender (the org, or a user of ``users``), its
    recipients and its subject rendered with :func:`sample_values`.

    Raises :class:`~mailkit.errors.SettingsError` naming the field for an unknown route, a
    sender who is not a user, a route without recipients or a template that cannot be filled.
    A disabled route is tested all the same: that is how an admin checks it before enabling it.
    """
    route = org.routes.get(feature)
    if route is None:
        known = ", ".join(sorted(org.routes)) or "none"
        raise SettingsError(
            [
                FieldProblem(
                    "route",
                    f"{feature[:60]!r} is not a feature route of these settings; the routes are: "
                    f"{known}",
                )
            ],
            "the route test",
        )
    where = f"routes.{feature}"
    problems: list[FieldProblem] = []
    user: UserSettings | None = None
    if user_code_key(route.sender) != ORG_SENDER:
        wanted = user_code_key(route.sender)
        user = next((u for u in users if user_code_key(u.user_code) == wanted), None)
        if user is None:
            problems.append(
                FieldProblem(
                    f"{where}.sender",
                    f"{route.sender} is not a user of this profile; pick a user (or org) as the "
                    "route's sender",
                )
            )
    if not route.recipients:
        problems.append(
            FieldProblem(f"{where}.recipients", "is empty; add the addresses the route sends to")
        )
    if problems:
        raise SettingsError(problems, f"the {feature} route")
    sender_name = (
        (user.display_name or user.user_code) if user is not None else (org.from_name or org.name)
    )
    subject = render_subject(
        route.subject_template,
        sample_values(feature, sender_name, today),
        field=f"{where}.subject_template",
    )
    return RouteTest(
        feature=feature,
        user=user,
        recipients=tuple(route.recipients),
        subject=subject,
        template=route.subject_template,
        enabled=route.enabled,
    )
