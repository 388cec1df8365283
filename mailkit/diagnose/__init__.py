"""From what a sender observed to what it means and what to do: the failure popup, done well.

:func:`diagnose` is pure: it reads a :class:`~mailkit.outcome.Failure` (phase, signal, reply)
and the :class:`~mailkit.outcome.SendContext` and returns a
:class:`~mailkit.outcome.Diagnosis`, so every explanation is tested as plain data.

The package is split by concept:

- :mod:`~mailkit.diagnose.facts` — what a rule may look at (:class:`Facts`) and the
  :class:`When` predicates over it;
- :mod:`~mailkit.diagnose.rules` — :data:`RULES`, the table that decides the cause and the kind
  (first match wins; the last rule matches everything), and :func:`diagnose`;
- :mod:`~mailkit.diagnose.advice` and :mod:`~mailkit.diagnose.api_advice` — the words
  (:class:`Advice`) per cause and provider, for SMTP and for OAuth and the mail APIs;
- :mod:`~mailkit.diagnose.ews_advice` — Exchange Web Services: its questions (the send spoke
  EWS, NTLM was not offered, Autodiscover failed, Exchange Online answered) and its words;
- :mod:`~mailkit.diagnose.fields` — the settings the words name, rendered by each face.
"""

from mailkit.diagnose.advice import Advice
from mailkit.diagnose.facts import MAX_SERVER_TEXT, Facts, When, parse_enhanced
from mailkit.diagnose.rules import RULES, Rule, diagnose, rule_for

__all__ = [
    "MAX_SERVER_TEXT",
    "RULES",
    "Advice",
    "Facts",
    "Rule",
    "When",
    "diagnose",
    "parse_enhanced",
    "rule_for",
]
