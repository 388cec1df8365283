"""Many users at once: audit rules over effective settings, and reports of the findings.

Reports (:mod:`mailkit.audit.report`) import matplotlib, so they are not imported here.
"""

from mailkit.audit.rules import (
    FINDINGS_COLUMNS,
    RULES,
    SEVERITIES,
    Rule,
    audit,
    audit_frame,
    effective_settings,
)

__all__ = [
    "FINDINGS_COLUMNS",
    "RULES",
    "SEVERITIES",
    "Rule",
    "audit",
    "audit_frame",
    "effective_settings",
]
