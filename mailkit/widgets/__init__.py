"""Notebook panels (ipywidgets) over the settings model, the stores and the test send.

One module per panel. The panels hold no rules of their own: values are validated by
:mod:`mailkit.settings`, resolved by :mod:`mailkit.resolve`, stored by :mod:`mailkit.store`
and :mod:`mailkit.secrets`, sent by :mod:`mailkit.testsend` and audited by
:mod:`mailkit.audit`; OAuth consent is :mod:`mailkit.oauth`. Each panel keeps its ipywidgets
root in ``.widget``, and a notebook displays the panel object itself.
"""

from mailkit.widgets.audit import AuditDashboard
from mailkit.widgets.common import Field, Form, Panel
from mailkit.widgets.discover import DiscoverPanel
from mailkit.widgets.modes import ModeSections, SmtpSection
from mailkit.widgets.oauth import GoogleWalkthrough, MicrosoftWalkthrough
from mailkit.widgets.org import OrgForm, RoutesEditor
from mailkit.widgets.passphrase import PassphrasePanel
from mailkit.widgets.password import PasswordFields, PasswordPanel, SecretInput
from mailkit.widgets.presets import PresetChooser
from mailkit.widgets.probe import ProbePanel
from mailkit.widgets.routes import RoutesPanel
from mailkit.widgets.testsend import TestSendPanel
from mailkit.widgets.users import UserForm, UsersPanel

__all__ = [
    "AuditDashboard",
    "DiscoverPanel",
    "Field",
    "Form",
    "GoogleWalkthrough",
    "MicrosoftWalkthrough",
    "ModeSections",
    "OrgForm",
    "Panel",
    "PassphrasePanel",
    "PasswordFields",
    "PasswordPanel",
    "PresetChooser",
    "ProbePanel",
    "RoutesEditor",
    "RoutesPanel",
    "SecretInput",
    "SmtpSection",
    "TestSendPanel",
    "UserForm",
    "UsersPanel",
]
