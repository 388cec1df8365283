"""Many users at once: audit rules over effective settings, and reports of the findings.

Reports (:mod:`mailkit.audit.report`) are not imported here: they are a face of the audit,
and their charts load matplotlib (when one is drawn).
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
