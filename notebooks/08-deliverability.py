# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Deliverability: a green test is not a delivered mail
#
# "250 queued" means the server took the message, not that anyone will read it: it can still
# land in spam, bounce an hour later, or vanish. This notebook asks the two questions behind
# "emails don't go out" against the demo server, which has a DNS zone and a mailbox of its own:
#
# 1. Will receivers trust mail from this domain? (MX, SPF, DMARC, DKIM)
# 2. Did the test message arrive — and where, by which path, with which verdicts?

# %%
import pandas as pd

import mailkit
from mailkit.demo import ensure_running
from mailkit.demo.server import SPAM_TRAP

demo = ensure_running()
settings = demo.settings
password = settings.password_secret()
print("The demo domain example.com is served by the demo's DNS server at", settings.dns_server)

# %% [markdown]
# ## The sending domain's health
#
# `mailkit.domain` looks up MX, evaluates SPF for the server that sends (here the demo server,
# on loopback), reads the DMARC policy and checks the DKIM keys it expects. Each finding has a
# rule id, a severity, and the fix — the same shape as the audit's findings.

# %%
health = mailkit.domain("example.com", host=settings.host, dns_server=settings.dns_server)
health.summary_frame()

# %%
print("healthy:", health.ok)
health.findings_frame()

# %% [markdown]
# ## A round trip to the inbox
#
# `verify=` makes the test send look for its own message afterwards: the demo mailbox is served
# over IMAPS (with the demo CA), and the check searches the inbox, then the spam folder, by the
# message's Message-ID until it appears or the time is up.

# %%
result = mailkit.send_test(
    settings.org(), to=["someone@example.com"], password=password, verify=settings.verify()
)
report = result.delivery
assert report is not None
print("ok:", result.ok)
print(report.to_text())

# %% [markdown]
# The Received chain, oldest hop first, with the delay each hop added:

# %%
pd.DataFrame(report.hops_table())

# %% [markdown]
# What the receiving server recorded in `Authentication-Results` (the demo server checks the
# SMTP sign-in; a provider's server adds SPF, DKIM and DMARC here):

# %%
pd.DataFrame([check.as_dict() for check in report.auth])

# %% [markdown]
# ## Delivered — into spam
#
# The demo's spam rule flags mail for its spam trap. The server still says 250; only the
# delivery check sees where the message went, and says what to do about it.

# %%
spam = mailkit.send_test(
    settings.org(), to=[SPAM_TRAP], password=password, verify=settings.verify()
)
assert spam.delivery is not None
assert spam.diagnosis is not None
print("placement:", spam.delivery.placement.value, "in folder", spam.delivery.folder)
print(spam.diagnosis.to_text())

# %%
pd.DataFrame([spam.delivery.spam.as_dict()]) if spam.delivery.spam else None
