"""Building blocks every panel shares: labelled fields with an inline error, forms, panels.

A :class:`Field` edits one model field, named by its dotted path in the model
(``port``, ``routes.work_orders.recipients``), and converts between the model's value and what
the input shows — nothing more. Whether a value is valid is the model's decision
(:func:`mailkit.settings.validate`); a :class:`Form` only puts each
:class:`~mailkit.errors.FieldProblem` next to the field it names, and what no field claims into
its general error area, so the person sees every message where they will look for it.
"""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.cards import ERROR_COLOUR, OK_COLOUR
from mailkit.errors import FieldProblem, MailkitError, SettingsError, UnsafeSettingWarning

__all__ = [
    "DESCRIPTION_WIDTH",
    "INPUT_WIDTH",
    "Field",
    "Form",
    "Panel",
    "checkbox_field",
    "choice_field",
    "error_html",
    "list_field",
    "note_html",
    "ok_html",
    "relabel_blank",
    "split_addresses",
    "text_field",
    "warning_html",
]

DESCRIPTION_WIDTH = "190px"
#: The width of a labelled input, label included: the box itself gets what the label leaves,
#: enough for the longest placeholder a form shows (ipywidgets' default would cut it off).
INPUT_WIDTH = "520px"
_STYLE = {"description_width": DESCRIPTION_WIDTH}
_INPUT_LAYOUT = {"width": INPUT_WIDTH}

WARNING_COLOUR = "#8a5a00"
NOTE_COLOUR = "#6b6b6b"


def _coloured(text: str, colour: str, *, bold: bool = False) -> str:
    body = html.escape(text, quote=False).replace("\n", "<br>")
    if bold:
        body = f"<b>{body}</b>"
    return f'<span style="color:{colour}">{body}</span>'


def error_html(text: str) -> str:
    """Red text for problems; escaped, because messages may quote what was typed."""
    return _coloured(text, ERROR_COLOUR)


def ok_html(text: str) -> str:
    return _coloured(text, OK_COLOUR, bold=True)


def warning_html(text: str) -> str:
    return _coloured(text, WARNING_COLOUR)


def note_html(text: str) -> str:
    """Grey small print: provenance labels and explanations.

    An inline block with its own line height: a long note wraps at small print's spacing,
    not at the 28 px line height ipywidgets gives an HTML widget.
    """
    return (
        f'<small style="color:{NOTE_COLOUR};display:inline-block;line-height:1.4">'
        f"{html.escape(text, quote=False)}</small>"
    )


def _to_text(value: Any) -> str:
    """A model value as a text box shows it: unset is empty, enums by their value."""
    if value is None:
        return ""
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


def split_addresses(text: str) -> list[str]:
    """Addresses typed one per line or separated by commas / semicolons, as mail clients take.

    Each address is checked by the model, not here; this only splits the box into entries.
    """
    return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()]


class Field:
    """One input bound to one model field, with an inline error line and a grey note line.

    ``read`` turns the input's value into what the model is given; ``write`` turns a model
    value into what the input shows. Blank text is handed to the model as ``""``, which the
    model itself reads as "not set".
    """

    def __init__(
        self,
        name: str,
        input_widget: Any,
        *,
        read: Callable[[Any], Any] | None = None,
        write: Callable[[Any], Any] | None = None,
        note: str = "",
    ) -> None:
        self.name = name
        self.input: Any = input_widget
        self._read = read or (lambda value: value)
        self._write = write or (lambda value: value)
        self.error: Any = widgets.HTML(layout={"margin": f"0 0 0 {DESCRIPTION_WIDTH}"})
        self.note: Any = widgets.HTML(note_html(note) if note else "")
        self.widget: Any = widgets.VBox(
            [widgets.HBox([self.input, self.note]), self.error],
            layout={"margin": "0 0 2px 0"},
        )

    @property
    def value(self) -> Any:
        """The value for the model."""
        return self._read(self.input.value)

    def load(self, value: Any) -> None:
        """Show a model value."""
        self.input.value = self._write(value)

    def show_error(self, message: str) -> None:
        current = self.error.value
        line = error_html(message)
        self.error.value = f"{current}<br>{line}" if current else line

    def clear_error(self) -> None:
        self.error.value = ""

    def set_note(self, text: str) -> None:
        self.note.value = note_html(text) if text else ""

    @property
    def disabled(self) -> bool:
        return bool(self.input.disabled)

    @disabled.setter
    def disabled(self, value: bool) -> None:
        self.input.disabled = value


def text_field(
    name: str, label: str, *, placeholder: str = "", note: str = "", multiline: bool = False
) -> Field:
    """A text box. Numbers (ports, timeouts) are typed as text too, so that the model — not the
    widget — decides what is acceptable and says why in its own words."""
    factory = widgets.Textarea if multiline else widgets.Text
    box = factory(
        description=label, placeholder=placeholder, style=_STYLE, layout=dict(_INPUT_LAYOUT)
    )
    return Field(name, box, read=lambda value: value, write=_to_text, note=note)


def list_field(name: str, label: str, *, placeholder: str = "", note: str = "") -> Field:
    """Several addresses in one box, for the model's ``list[...]`` fields."""
    box = widgets.Textarea(
        description=label,
        placeholder=placeholder,
        style=_STYLE,
        layout={**_INPUT_LAYOUT, "height": "4em"},
    )
    return Field(
        name,
        box,
        read=split_addresses,
        write=lambda values: "\n".join(values or ()),
        note=note,
    )


def choice_field(
    name: str,
    label: str,
    choices: Iterable[str] | type[StrEnum],
    *,
    blank: str | None = "(not set)",
    note: str = "",
) -> Field:
    """A drop-down of the model's choices; ``blank`` (if given) stands for "not set"."""
    values = [c.value if isinstance(c, StrEnum) else str(c) for c in choices]
    options: list[tuple[str, str]] = [(v, v) for v in values]
    if blank is not None:
        options.insert(0, (blank, ""))
    box = widgets.Dropdown(
        description=label, options=options, style=_STYLE, layout=dict(_INPUT_LAYOUT)
    )
    return Field(name, box, read=lambda value: value, write=_to_text, note=note)


def relabel_blank(field: Field, label: str) -> None:
    """Rename a drop-down's "not set" choice (e.g. to the inherited value), keeping the choice.

    Replacing a Dropdown's options resets its selection, so the value is put back.
    """
    box = field.input
    options = list(box.options)
    if not options or options[0][1] != "" or options[0][0] == label:
        return
    current = box.value
    box.options = [(label, ""), *options[1:]]
    box.value = current


def checkbox_field(name: str, label: str, *, note: str = "") -> Field:
    box = widgets.Checkbox(description=label, indent=False, layout={"width": "auto"})
    return Field(name, box, read=bool, write=bool, note=note)


def _field_for(problem_field: str, names: Sequence[str]) -> str | None:
    """The longest field name that ``problem_field`` is, or lies inside (``a.b`` in ``a.b.0``)."""
    best: str | None = None
    for name in names:
        if (problem_field == name or problem_field.startswith(name + ".")) and (
            best is None or len(name) > len(best)
        ):
            best = name
    return best


_USER_PREFIX = re.compile(r"^users\[[^\]]*\]\.")


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"routes.requests.enabled": True}`` → ``{"routes": {"requests": {"enabled": True}}}``."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _lookup(model: Any, path: str) -> Any:
    value = model
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
        if value is None:
            return None
    return value


class Panel:
    """Anything with an ipywidgets root in ``.widget``; a notebook can display the panel itself."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class Form(Panel):
    """Fields, a general error area and a status line, and the save-or-explain routine.

    Subclasses build ``self.fields`` and call :meth:`attempt` from their Save button. Two
    things follow every edit a person makes: an error shown beside a field goes as soon as the
    field is corrected (the subclass's :meth:`check` says what is still wrong), and a "Saved"
    status turns into "not saved yet", so the form never claims to hold what it does not.
    """

    def __init__(self) -> None:
        self.fields: dict[str, Field] = {}
        #: Problems that no field claims (cross-field rules, stored users, the store itself).
        self.general: Any = widgets.HTML()
        #: The outcome of the last save: a short confirmation, or why nothing was saved.
        self.status: Any = widgets.HTML()
        #: Whether the form shows edits that are not saved (since the last load or save).
        self.dirty: bool = False
        self._quiet = 0
        self._saved_at: datetime | None = None
        self._failed = False

    def add(self, *fields: Field) -> None:
        for field in fields:
            self.fields[field.name] = field
            self.watch(field.input)

    def watch(self, control: Any) -> None:
        """Treat a change of ``control``'s value as an edit (fields are watched already)."""
        control.observe(lambda _change: self._edited(), names="value")

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Changes made inside are the form's own (loading, relabelling), not a person's edits."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def values(self) -> dict[str, Any]:
        """The form's values, nested as the model expects them."""
        return _nest({name: field.value for name, field in self.fields.items()})

    def load_model(self, model: Any) -> None:
        """Show every field's value from ``model`` (a pydantic model; dicts for routes)."""
        with self.quietly():
            for name, field in self.fields.items():
                field.load(_lookup(model, name))
        self.dirty = False

    def clear_problems(self) -> None:
        for field in self.fields.values():
            field.clear_error()
        self.general.value = ""
        self.status.value = ""
        self._saved_at = None
        self._failed = False

    def check(self) -> list[FieldProblem] | None:
        """What is wrong with the values shown now, without saving; None if a form cannot tell.

        Subclasses answer with the same validation their save runs, so a message beside a
        field disappears exactly when saving would no longer complain about it.
        """
        return None

    def problems_of(self, validate_values: Callable[[], object]) -> list[FieldProblem]:
        """The problems ``validate_values`` raises (none if it passes), its warnings silenced."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnsafeSettingWarning)
            try:
                validate_values()
            except SettingsError as exc:
                return list(exc.problems)
        return []

    def _edited(self) -> None:
        if self._quiet:
            return
        self.dirty = True
        if self._saved_at is not None:
            self.status.value = warning_html(
                "Changed since the last save, not saved yet: press Save to keep the changes."
            )
            self._saved_at = None
        if self._failed:
            self._recheck()

    def _recheck(self) -> None:
        """Clear (or update) the messages shown, now that a value changed; add none."""
        problems = self.check()
        shown = [field for field in self.fields.values() if field.error.value]
        if problems is None:
            return
        names = list(self.fields)
        claimed: dict[str, list[str]] = {}
        unclaimed: list[str] = []
        for problem in problems:
            name = _field_for(_USER_PREFIX.sub("", problem.field), names)
            if name is None:
                unclaimed.append(str(problem))
            else:
                claimed.setdefault(name, []).append(problem.message)
        for field in shown:
            field.clear_error()
            for message in claimed.get(field.name, ()):
                field.show_error(message)
        if self.general.value:
            self.general.value = "<br>".join(error_html(line) for line in unclaimed)
        remaining = sum(bool(f.error.value) for f in self.fields.values())
        remaining += len(unclaimed) if self.general.value else 0
        if remaining:
            self.status.value = error_html(
                f"Nothing was saved: fix the {remaining} problem(s) shown."
            )
        else:
            self._failed = False
            self.status.value = warning_html(
                "Not saved yet: the problems shown are fixed; press Save."
            )

    def show_problems(self, problems: Iterable[FieldProblem]) -> None:
        """Each message next to its field; a store's ``users[code].`` prefix is dropped."""
        names = list(self.fields)
        unclaimed: list[str] = []
        for problem in problems:
            path = _USER_PREFIX.sub("", problem.field)
            name = _field_for(path, names)
            if name is None:
                unclaimed.append(str(problem))
            else:
                self.fields[name].show_error(problem.message)
        self.general.value = "<br>".join(error_html(line) for line in unclaimed)

    def attempt(self, save: Callable[[], str]) -> bool:
        """Run ``save`` (validate, then write); show its confirmation or every problem.

        ``save`` raises :class:`SettingsError` for invalid input, before anything is written.
        Unsafe-but-valid settings (an IP address as host, no TLS) are saved and their warning
        shown beside the confirmation: the model warns, the form makes the warning visible.
        """
        self.clear_problems()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnsafeSettingWarning)
            try:
                confirmation = save()
            except SettingsError as exc:
                self.show_problems(exc.problems)
                self.status.value = error_html(
                    f"Nothing was saved: fix the {len(exc.problems)} problem(s) shown."
                )
                self._failed = True
                return False
            except MailkitError as exc:
                self.general.value = error_html(str(exc))
                self.status.value = error_html("Nothing was saved.")
                return False
        notes: list[str] = []
        for caught_warning in caught:
            if issubclass(caught_warning.category, UnsafeSettingWarning):
                notes.append(str(caught_warning.message))
            else:  # not ours to swallow
                warnings.warn_explicit(
                    caught_warning.message,
                    caught_warning.category,
                    caught_warning.filename,
                    caught_warning.lineno,
                )
        self.status.value = ok_html(confirmation) + "".join(
            "<br>" + warning_html(f"Warning: {note}") for note in notes
        )
        self._saved_at = datetime.now()
        self.dirty = False
        return True
