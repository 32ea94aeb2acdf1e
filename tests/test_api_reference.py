"""The API reference (docs/reference/) and the public API cover each other, and every public
name has a docstring.

The public API is ``jaxdl.__all__``, and for each public module reached from it, that
module's ``__all__`` (or, for a module without one, the functions and classes it defines
whose names do not start with an underscore). The reference pages render modules and names
with mkdocstrings' ``::: identifier`` blocks. Both directions are checked: every block names
something public that exists, and every public name is rendered by some block. Only the
source and the pages are read; nothing is built, so these checks cost a second. The
docstrings' ``>>>`` examples run too, marked slow (``nox -s docs`` runs them).

The docstrings are read from the source (``ast``): a Flax module or a dataclass without a
docstring of its own is given one by ``dataclasses`` (its signature), which does not count.
A module-level value (``ZOO``, ``STRATEGIES``) is documented by a string placed right after
its assignment, as mkdocstrings reads it.
"""

from __future__ import annotations

import ast
import doctest
import functools
import importlib
import inspect
import pathlib
import re
import sys
import types

import pytest

import jaxdl

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
BLOCK = re.compile(r"^::: ([\w.]+)[ \t]*$", re.MULTILINE)

# Public names whose docstrings are missing in files other engineers are editing now; each
# leaves this set as its docstring lands (test_awaiting_is_current says when).
AWAITING: set[str] = set()
# The same for public methods (``Class.method``) that neither have a docstring nor inherit
# one from a base class. An override of a method listed here (every callback's ``on_*``
# hooks override ``Callback``'s) awaits with it: it inherits the docstring once it lands.
AWAITING_METHODS: set[str] = set()


def public_names(module: types.ModuleType) -> list[str]:
    """A module's ``__all__``, or the public functions and classes it defines."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    ]


@functools.cache
def public_modules() -> dict[str, types.ModuleType]:
    """Every public module reached from ``jaxdl.__all__``, by its own (canonical) name."""
    found: dict[str, types.ModuleType] = {}

    def walk(module):
        if module.__name__ in found:
            return
        found[module.__name__] = module
        for name in public_names(module):
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) and value.__name__.startswith("jaxdl"):
                walk(value)

    walk(jaxdl)
    return found


def public_api() -> list[tuple[str, str]]:
    """(canonical module name, name) for every public name."""
    return [(m, n) for m, module in public_modules().items() for n in public_names(module)]


def resolve(identifier: str):
    """The object a ``::: identifier`` block renders."""
    try:
        return importlib.import_module(identifier)
    except ImportError:
        parent, _, name = identifier.rpartition(".")
        return getattr(importlib.import_module(parent), name)


@functools.cache
def reference_blocks() -> dict[str, str]:
    """{identifier: page} of every ``:::`` block of the reference."""
    blocks = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for identifier in BLOCK.findall(page.read_text()):
            blocks[identifier] = page.name
    return blocks


def test_reference_pages_have_blocks():
    assert reference_blocks(), f"no ::: blocks under {REFERENCE}"
    assert "jaxdl.train" in reference_blocks() and "jaxdl.models" in reference_blocks()


def test_every_reference_block_names_something_public():
    modules = {id(m) for m in public_modules().values()}
    objects = {id(getattr(public_modules()[m], n)) for m, n in public_api()}
    wrong = []
    for identifier, page in reference_blocks().items():
        try:
            target = resolve(identifier)
        except (ImportError, AttributeError) as error:
            wrong.append(f"{page}: ::: {identifier} names nothing ({error})")
            continue
        if id(target) not in modules and id(target) not in objects:
            wrong.append(f"{page}: ::: {identifier} is not public (in no __all__)")
    assert not wrong, "\n".join(wrong)


def test_every_public_name_is_in_the_reference():
    rendered = {}  # id(module) -> identifier of the block rendering it
    single = set()  # id(object) of names rendered by a block of their own
    for identifier in reference_blocks():
        try:
            target = resolve(identifier)
        except (ImportError, AttributeError):
            continue  # test_every_reference_block_names_something_public reports it
        if isinstance(target, types.ModuleType):
            rendered[id(target)] = identifier
        else:
            single.add(id(target))
    # a name is shown where a rendered module exports it
    shown = set(single)
    for module in public_modules().values():
        if id(module) in rendered:
            shown.update(id(getattr(module, n)) for n in public_names(module))
    missing = []
    for m, n in public_api():
        value = getattr(public_modules()[m], n)
        if isinstance(value, types.ModuleType):
            if id(value) not in rendered:
                missing.append(f"module {m}.{n}: add `::: {value.__name__}` to a reference page")
        elif id(value) not in shown:
            missing.append(f"{m}.{n}: add `::: {m}.{n}` to a reference page")
    assert not missing, "\n".join(missing)


@functools.cache
def _source_tree(path: str) -> ast.Module:
    return ast.parse(pathlib.Path(path).read_text())


def _own_docstring(obj) -> str | None:
    """The docstring written in the source of a class or function (not a generated one)."""
    try:
        path = inspect.getsourcefile(inspect.unwrap(obj))
    except TypeError:
        path = None
    if path:
        nodes = _source_tree(path).body
        for part in obj.__qualname__.split("."):
            node = next(
                (n for n in nodes if getattr(n, "name", None) == part and hasattr(n, "body")),
                None,
            )
            if node is None:
                break
            nodes = node.body
        else:
            return ast.get_docstring(node)
    return inspect.getdoc(obj)


def _value_docstring(module_name: str, name: str) -> str | None:
    """The string right after ``name = ...`` in the module that assigns it."""
    value = getattr(sys.modules[module_name], name)
    for candidate in [module_name, *sorted(k for k in sys.modules if k.startswith("jaxdl"))]:
        module = sys.modules.get(candidate)
        path = getattr(module, "__file__", None)
        if not path or getattr(module, name, None) is not value:
            continue
        body = _source_tree(path).body
        for i, node in enumerate(body):
            targets = (
                node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            )
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                following = body[i + 1] if i + 1 < len(body) else None
                if (
                    isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    return following.value.value
                return None
    return None


def docstring_of(module_name: str, name: str) -> str | None:
    value = getattr(sys.modules[module_name], name)
    if isinstance(value, types.ModuleType):
        return value.__doc__
    if inspect.isclass(value) or inspect.isfunction(value):
        return _own_docstring(value)
    if callable(value) and type(value).__module__.startswith("jaxdl"):
        return inspect.getdoc(value)
    return _value_docstring(module_name, name)


@functools.cache
def missing_docstrings() -> frozenset[str]:
    missing = set()
    for m, n in public_api():
        if not (docstring_of(m, n) or "").strip():
            missing.add(f"{m}.{n}")
    return frozenset(missing)


def public_classes() -> list[type]:
    classes = {}
    for m, n in public_api():
        value = getattr(public_modules()[m], n)
        if inspect.isclass(value) and value.__module__.startswith("jaxdl"):
            classes[f"{value.__module__}.{value.__qualname__}"] = value
    return [classes[k] for k in sorted(classes)]


@functools.cache
def missing_method_docstrings() -> frozenset[str]:
    missing = set()
    for cls in public_classes():
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            if not (
                inspect.isfunction(member)
                or isinstance(member, property | classmethod | staticmethod)
            ):
                continue
            if (inspect.getdoc(getattr(cls, name, member)) or "").strip():
                continue
            bases = [f"{b.__module__}.{b.__qualname__}.{name}" for b in cls.__mro__[1:]]
            if any(base in AWAITING_METHODS for base in bases):
                continue  # inherits its base's docstring once that lands
            missing.add(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return frozenset(missing)


def test_every_public_name_has_a_docstring():
    missing = missing_docstrings() - AWAITING
    assert not missing, "public names without a docstring:\n" + "\n".join(sorted(missing))


def test_every_public_method_has_a_docstring():
    missing = missing_method_docstrings() - AWAITING_METHODS
    assert not missing, "public methods without a docstring:\n" + "\n".join(sorted(missing))


def test_awaiting_is_current():
    """Names listed as awaiting a docstring that now have one leave the lists."""
    have = (AWAITING - missing_docstrings()) | (AWAITING_METHODS - missing_method_docstrings())
    assert not have, (
        "documented now; remove from AWAITING / AWAITING_METHODS in this file:\n"
        + "\n".join(sorted(have))
    )


def _examples():
    """(name, docstring) of the public classes and functions whose docstring has examples."""
    found = {}
    for m, n in public_api():
        value = getattr(public_modules()[m], n)
        if (inspect.isclass(value) or inspect.isfunction(value)) and ">>>" in (value.__doc__ or ""):
            found.setdefault(f"{value.__module__}.{value.__qualname__}", value)
    return sorted(found.items())


@pytest.mark.slow  # eager Flax calls compile op by op: seconds per example; nox -s docs runs them
@pytest.mark.parametrize("name, obj", _examples(), ids=[n for n, _ in _examples()])
def test_docstring_examples_run(name, obj, tmp_path, monkeypatch):
    """Each ``>>>`` example prints what its docstring says it prints."""
    monkeypatch.chdir(tmp_path)
    import jax
    import numpy as np

    test = doctest.DocTestParser().get_doctest(
        obj.__doc__, {"jaxdl": jaxdl, "jax": jax, "np": np}, name, None, 0
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) print something else"
