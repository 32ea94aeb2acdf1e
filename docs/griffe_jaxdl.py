"""A griffe extension for jaxdl's reference: Flax modules' signatures, and Sphinx roles.

**Signatures.** A Linen module is a dataclass made by ``flax.linen.Module``'s
``__init_subclass__``, not by a ``@dataclass`` decorator, so the docstring reader sees no
``__init__`` and the reference would show ``MLP`` with no arguments. This extension gives
each module class an ``__init__`` from its annotated fields and those of the jaxdl modules
it derives from, in declaration order, with their defaults (and Flax's keyword ``name``
last), so the reference shows ``MLP(features, activation='relu', ...)``.

**Roles.** Some docstrings name other objects the Sphinx way, ``:func:`load_model```, which
Markdown would print as it is; the role is dropped and the name kept as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")

LINEN_MODULE = {"flax.linen.Module", "flax.linen.module.Module", "nn.Module"}


def _is_linen(cls: griffe.Class, seen: set[str] | None = None) -> bool:
    seen = set() if seen is None else seen
    if cls.path in seen:
        return False
    seen.add(cls.path)
    for base in cls.bases:
        path = getattr(base, "canonical_path", str(base))
        if path in LINEN_MODULE:
            return True
        try:
            parent = cls.modules_collection[path]
        except (KeyError, AttributeError):
            continue
        if isinstance(parent, griffe.Alias):
            parent = parent.final_target
        if isinstance(parent, griffe.Class) and _is_linen(parent, seen):
            return True
    return False


def _fields(cls: griffe.Class) -> list[griffe.Parameter]:
    params: dict[str, griffe.Parameter] = {}
    try:
        lineage = [c for c in reversed(cls.mro()) if isinstance(c, griffe.Class)] + [cls]
    except ValueError:
        lineage = [cls]
    for owner in lineage:
        for member in owner.members.values():
            if member.is_alias or not member.is_attribute or member.annotation is None:
                continue
            if member.name.startswith("_") or str(member.annotation).startswith("ClassVar"):
                continue
            params[member.name] = griffe.Parameter(
                member.name,
                annotation=member.annotation,
                kind=griffe.ParameterKind.positional_or_keyword,
                default=member.value,
                docstring=member.docstring,
            )
    name = griffe.Parameter(
        "name", annotation="str | None", kind=griffe.ParameterKind.keyword_only, default="None"
    )
    return [*params.values(), name]


class JaxdlReference(griffe.Extension):
    """Adds ``__init__`` to every Flax Linen module class of the package, and turns Sphinx
    roles in docstrings into inline code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj, processed: set[str]) -> None:
        if obj.path in processed:
            return
        processed.add(obj.path)
        for member in list(obj.members.values()):
            if member.is_alias:
                continue
            if member.is_module:
                self._walk(member, processed)
            elif member.is_class:
                if "__init__" not in member.members and _is_linen(member):
                    member.set_member(
                        "__init__",
                        griffe.Function(
                            "__init__",
                            lineno=0,
                            endlineno=0,
                            parent=member,
                            parameters=griffe.Parameters(
                                griffe.Parameter(
                                    "self", kind=griffe.ParameterKind.positional_or_keyword
                                ),
                                *_fields(member),
                            ),
                            returns="None",
                        ),
                    )
                self._walk(member, processed)
