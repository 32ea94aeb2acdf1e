"""Export a trained model for inference: its configuration as JSON, its variables with Orbax.

``export_model(path, model, variables)`` writes ``model.json`` (the class name from
``jaxdl.models`` and its fields) and ``variables/`` (parameters and batch statistics, no
optimizer state). ``load_model(path)`` rebuilds the module and reads the arrays back in a
fresh process. Loading runs no code from the files: the class is looked up by name among
``jaxdl.models``' public classes, and the fields are plain JSON values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import orbax.checkpoint as ocp

_FORMAT = "jaxdl-model-1"


def _encode(value, where: str):
    if isinstance(value, nn.Module):
        return {"module": _describe(value)}
    if isinstance(value, tuple | list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"cannot export {where}={value!r}: only numbers, strings, sequences and jaxdl modules "
        "can be written as JSON (pass activations by name, e.g. activation='relu')"
    )


def _describe(module: nn.Module) -> dict:
    from jaxdl import models

    name = type(module).__name__
    if getattr(models, name, None) is not type(module):
        raise TypeError(
            f"cannot export {name} as JSON: only the classes of jaxdl.models can be described "
            'so; export a custom module as a compiled program with format="stablehlo"'
        )
    fields = {
        f.name: _encode(getattr(module, f.name), f"{name}.{f.name}")
        for f in dataclasses.fields(module)
        if f.init and f.name not in ("parent", "name")
    }
    return {"class": name, "fields": fields}


def describe_model(module: nn.Module) -> dict | str:
    """{"class": name, "fields": {...}} of a jaxdl model, as ``model.json`` holds it; the
    module's repr for a model that cannot be written so (a custom module)."""
    try:
        return _describe(module)
    except TypeError:
        return repr(module)


def _decode(value):
    if isinstance(value, dict) and set(value) == {"module"}:
        return _build(value["module"])
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def _build(description: dict) -> nn.Module:
    from jaxdl import models

    name = description["class"]
    cls = getattr(models, name, None) if isinstance(name, str) and name in models.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"unknown model class {name!r}: expected one of jaxdl.models' classes")
    fields = {k: _decode(v) for k, v in description["fields"].items()}
    return cls(**fields)


FORMATS = (_FORMAT, "jaxdl-stablehlo-1")  # what jaxdl writes into an export folder


def _written_by_jaxdl(path: str) -> bool:
    try:
        with open(os.path.join(path, "model.json")) as f:
            return json.load(f).get("format") in FORMATS
    except (OSError, ValueError, AttributeError):
        return False


def write_export(path, description: dict, write: Callable[[str], None], prefix: str) -> str:
    """Write an export folder: ``write(target)`` writes the payload (arrays, a program) at
    ``path/<prefix>-<time>``, then ``model.json`` (``description``, and the payload's name
    under ``prefix``) switches to it.

    Writing over an earlier export replaces it atomically: the new payload is written beside
    the old one and ``model.json``, which names it, is replaced in one rename, so a run killed
    at any moment leaves the old export or the new one, both loadable. A folder that holds
    anything else is refused, and nothing in it is touched.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"export path {path} is a file")
    if os.path.isdir(path) and os.listdir(path) and not _written_by_jaxdl(path):
        raise FileExistsError(
            f"{path} holds files that are not a jaxdl export; export into an empty or new folder"
        )
    os.makedirs(path, exist_ok=True)
    name = f"{prefix}-{time.time_ns()}"
    write(os.path.join(path, name))
    temporary = os.path.join(path, f"model.json.{os.getpid()}.tmp")
    with open(temporary, "w") as f:
        json.dump({**description, prefix: name}, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(path, "model.json"))  # the switch to the new export
    for old in os.listdir(path):  # the old payload, and any a killed export left behind
        if old != name and old.startswith(("variables", "program")):
            target = os.path.join(path, old)
            if os.path.isdir(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                os.remove(target)
    return path


def read_description(path: str, expected: str) -> dict:
    """``path/model.json`` of an export of format ``expected``, checked."""
    try:
        with open(os.path.join(path, "model.json")) as f:
            saved = json.load(f)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} holds no exported model (model.json is missing)"
        ) from error
    except ValueError as error:
        raise ValueError(f"{path}/model.json is not valid JSON: {error}") from None
    got = saved.get("format") if isinstance(saved, dict) else type(saved).__name__
    if got != expected:
        reader = {_FORMAT: "jaxdl.load_model", "jaxdl-stablehlo-1": "jaxdl.load_exported"}
        hint = f"; it is read with {reader[got]}" if got in reader else ""
        raise ValueError(f"{path}/model.json: expected format {expected!r}, got {got!r}{hint}")
    key = "variables" if expected == _FORMAT else "program"
    name = saved.get(key, key)  # the first exports had one folder, "variables"
    if not isinstance(name, str) or os.path.basename(name) != name:
        kind = "folder" if key == "variables" else "file"
        raise ValueError(f"{path}/model.json: {key} must name a {kind} inside it")
    saved[key] = name
    return saved


def export_model(path: str | os.PathLike, model: nn.Module, variables: dict) -> str:
    """Write ``model`` and its ``variables`` ({"params": ..., "batch_stats": ...}) to
    ``path`` for inference; returns the folder.

    The folder holds ``model.json`` (the class of ``jaxdl.models`` and its fields) and the
    arrays (Orbax). Exporting over an earlier export replaces it atomically (see
    :func:`write_export`); a folder that holds anything else is refused. A model of a class
    outside ``jaxdl.models`` cannot be described this way: export it as a compiled program
    with :func:`jaxdl.export_stablehlo` (``Trainer.export(path, format="stablehlo")``).
    """
    description = {"format": _FORMAT, "model": _describe(model)}  # refused before any write
    arrays = {k: v for k, v in variables.items() if k in ("params", "batch_stats") and v}

    def write(target):
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(target, jax.device_get(arrays))

    return write_export(path, description, write, "variables")


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """``(model, variables)`` written by :func:`export_model`; use them as
    ``model.apply(variables, x)``."""
    path = os.path.abspath(os.fspath(path))
    saved = read_description(path, _FORMAT)
    try:
        model = _build(saved["model"])
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path}/model.json does not describe a model ({type(error).__name__}: {error})"
        ) from None
    with ocp.StandardCheckpointer() as checkpointer:
        variables = checkpointer.restore(os.path.join(path, saved["variables"]))
    return model, dict(variables)
