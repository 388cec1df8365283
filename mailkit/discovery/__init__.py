"""Discovery: an email address in, ranked submission-server candidates out.

:mod:`mailkit.discovery.candidates` (pure) turns what each source answered into candidates and
ranks them; :mod:`mailkit.discovery.fetch` (an adapter) makes the HTTPS requests, resolving
names through mailkit's DNS client; :mod:`mailkit.discovery.run` runs every source at once.
The entry point is ``mailkit.discover`` (``mailkit discover EMAIL`` on the command line). The
package is not called ``discover``: that name is the function on ``mailkit``.
"""
