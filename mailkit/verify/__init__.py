"""Did the test message arrive? The adapters of the delivery round trip after a test send.

A server that answers ``250 queued`` has accepted the message, not delivered it: it may still
land in spam, bounce later, or vanish. These adapters look for the test message in the
recipient's mailbox and fetch its bytes; :mod:`mailkit.delivery` (pure) decides what they mean.

- :mod:`~mailkit.verify.imap` — a mailbox over IMAPS (imapclient);
- :mod:`~mailkit.verify.api` — a Gmail or Microsoft 365 mailbox through the Gmail API or
  Microsoft Graph, with the stored OAuth consent.

Nothing is imported here: a test send without ``verify=`` never loads any of it.
"""
