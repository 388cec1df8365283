"""The value that carries a password, token or client secret through mailkit.

Kept apart from the stores (:mod:`mailkit.secrets`) so that the pure core -- transcripts,
settings, diagnosis -- can hold and mask a secret without importing the OS keyring or the
encrypted file's cryptography. A :class:`Secret` shows itself only as :data:`MASK`: redaction
happens at the source, not by callers being careful.
"""

from __future__ import annotations

import hmac
from typing import Final, NoReturn, final

__all__ = ["MASK", "Secret"]

MASK: Final = "********"
"""What every secret looks like when shown; fixed so that it does not reveal the length."""


@final
class Secret:
    """A secret string that shows itself only as a mask; :meth:`reveal` is the one way out.

    Immutable and slotted, so nothing can swap the value or attach a copy of it. Equality with
    another :class:`Secret` runs in constant time (it may be used to check a typed password);
    a :class:`Secret` never equals a plain ``str``, so comparing against clear text cannot
    quietly fall back to an ordinary, timing-revealing string comparison.

    Deliberately unhashable: a hashable secret can become a dict key or a
    ``functools.lru_cache`` argument and then lives on in a cache for the life of the process;
    nothing in mailkit needs a set of secrets.

    Pickling raises :class:`TypeError` because a pickle is a file (or a socket payload) holding
    the clear text. ``copy.copy``/``copy.deepcopy`` return the same object instead, which is
    safe for an immutable value and keeps deep copies of settings objects working.
    """

    __slots__ = ("_value",)
    __hash__ = None  # type: ignore[assignment]  # see the class docstring

    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            # The type name only: the value itself may be the secret in another form.
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the clear text; call it only at the point where the secret is sent."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # compare_digest accepts str only when ASCII; bytes work for every password.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a Secret is immutable; make a new one instead")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("a Secret is immutable; make a new one instead")

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a Secret cannot be pickled: that would write the clear text to a file or socket; "
            "store it in a SecretStore and pass the key instead"
        )

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self
