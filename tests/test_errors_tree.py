"""The exception tree drawn in ``mailkit.errors``' docstring is the real one.

A drawing nobody checks goes stale the first time a class moves. This test reads the drawing,
finds every exception mailkit defines (in ``mailkit.errors``, and every public subclass of
``MailkitError`` anywhere in the package), and compares names, parents and further bases.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import mailkit
import mailkit.errors

PACKAGE = Path(mailkit.__file__).parent


@dataclass(frozen=True)
class Drawn:
    """One class as the drawing shows it."""

    name: str
    bases: tuple[str, ...]  # the parent first (none for a root), then the names in parentheses
    connector: str  # "├──", "└──", or "" for a root
    last_child: bool  # whether no later sibling follows it in the drawing


def literal_block(docstring: str) -> list[str]:
    """The lines of the first ``::`` literal block, dedented, blank lines kept."""
    lines = docstring.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("::")) + 1
    block: list[str] = []
    for line in lines[start:]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip("\n").splitlines()


def parse_tree(docstring: str) -> dict[str, Drawn]:
    """Every class in the drawing, with the bases its place and its parentheses give it."""
    drawn: dict[str, Drawn] = {}
    path: list[str] = []  # the ancestors of the current line, one per depth
    children: dict[str | None, list[str]] = {}
    connectors: dict[str, str] = {}
    bases: dict[str, tuple[str, ...]] = {}
    for line in literal_block(docstring):
        if not line.strip():
            continue
        prefix_len = len(line) - len(line.lstrip(" │├└─"))
        depth, rest = prefix_len // 4, line[prefix_len:]
        assert prefix_len % 4 == 0, f"misaligned line: {line!r}"
        name, _, tail = rest.partition(" ")
        assert name.isidentifier(), f"not a class name: {line!r}"
        tail = tail.lstrip()
        extra: tuple[str, ...] = ()
        if tail.startswith("("):
            extra = tuple(b.strip() for b in tail[1 : tail.index(")")].split(","))
        assert name not in bases, f"{name} is drawn twice"
        del path[depth:]
        assert len(path) == depth, f"{name} has no parent line above it"
        parent = path[-1] if path else None
        path.append(name)
        bases[name] = ((parent,) if parent else ()) + extra
        connectors[name] = line[prefix_len - 4 : prefix_len - 1] if depth else ""
        children.setdefault(parent, []).append(name)
    for parent, names in children.items():
        for i, name in enumerate(names):
            last = i == len(names) - 1
            drawn[name] = Drawn(name, bases[name], connectors[name], last and parent is not None)
    return drawn


def defined_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class of ``mailkit.errors``, and every public ``MailkitError`` subclass
    defined elsewhere in the package (found in the source, so no module is left unimported)."""
    found: dict[str, type[BaseException]] = {
        name: cls
        for name, cls in vars(mailkit.errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == mailkit.errors.__name__
    }
    family = {name for name, cls in found.items() if issubclass(cls, mailkit.errors.MailkitError)}
    candidates: list[tuple[str, str, set[str]]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and module != mailkit.errors.__name__:
                names = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                candidates.append((module, node.name, names))
    grew = True
    while grew:  # subclasses of subclasses, in whatever order the files come
        grew = False
        for module, name, names in candidates:
            if name not in family and names & family:
                family.add(name)
                grew = True
                if not name.startswith("_"):
                    found[name] = getattr(importlib.import_module(module), name)
    return found


def mismatches(drawn: dict[str, Drawn], classes: dict[str, type[BaseException]]) -> list[str]:
    """What the drawing says that the classes contradict, one line each."""
    problems = [f"{name} is not drawn" for name in sorted(classes.keys() - drawn.keys())]
    problems += [f"{name} is drawn but not defined" for name in sorted(drawn.keys() - classes)]
    for name in sorted(drawn.keys() & classes.keys()):
        real = tuple(base.__name__ for base in classes[name].__bases__)
        if drawn[name].bases != real:
            problems.append(f"{name} is drawn with bases {drawn[name].bases}, defined with {real}")
    for d in drawn.values():
        wanted = "└──" if d.last_child else "├──"
        if d.connector and d.connector != wanted:
            problems.append(f"{d.name} is drawn with {d.connector}, should be {wanted}")
    return problems


def test_the_drawing_is_the_real_exception_tree() -> None:
    assert mailkit.errors.__doc__ is not None
    drawn = parse_tree(mailkit.errors.__doc__)
    classes = defined_exceptions()
    assert {"MailkitError", "UnsafeSettingWarning", "DemoServerError"} <= classes.keys()
    assert mismatches(drawn, classes) == []


GOOD = """Tree.

::

    MailkitError (Exception)
    ├── StoreError                  the store
    │   └── StoreLockedError (TimeoutError) locked
    └── OAuthError                  sign-in

    UnsafeSettingWarning (UserWarning) risky

Text after the drawing.
"""


def test_the_parser_reads_parents_further_bases_and_roots() -> None:
    drawn = parse_tree(GOOD)
    assert {name: d.bases for name, d in drawn.items()} == {
        "MailkitError": ("Exception",),
        "StoreError": ("MailkitError",),
        "StoreLockedError": ("StoreError", "TimeoutError"),
        "OAuthError": ("MailkitError",),
        "UnsafeSettingWarning": ("UserWarning",),
    }
    errors = mailkit.errors
    classes: dict[str, type[BaseException]] = {
        name: getattr(errors, name) for name in drawn if hasattr(errors, name)
    }
    assert mismatches(drawn, classes) == []


@pytest.mark.parametrize(
    ("drawing", "problem"),
    [
        # a class under the wrong parent
        (GOOD.replace("    │   └── StoreLockedError", "    └── StoreLockedError", 1), "bases"),
        # a built-in base left out
        (GOOD.replace(" (TimeoutError)", "", 1), "bases"),
        # a class missing from the drawing
        (GOOD.replace("    └── OAuthError                  sign-in\n", "", 1), "not drawn"),
        # a class drawn that does not exist
        (GOOD.replace("OAuthError ", "TokenError ", 1), "not defined"),
        # the last child drawn as if a sibling followed
        (GOOD.replace("└── OAuthError", "├── OAuthError", 1), "should be └──"),
    ],
)
def test_a_stale_drawing_is_caught(drawing: str, problem: str) -> None:
    errors = mailkit.errors
    names = ["MailkitError", "StoreError", "StoreLockedError", "OAuthError", "UnsafeSettingWarning"]
    classes = {name: getattr(errors, name) for name in names}
    found = mismatches(parse_tree(drawing), classes)
    assert any(problem in line for line in found), found
