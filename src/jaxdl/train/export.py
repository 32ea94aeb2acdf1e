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
        raise TypeError(f"cannot export {name}: only the classes of jaxdl.models can be exported")
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


def _written_by_jaxdl(path: str) -> bool:
    try:
        with open(os.path.join(path, "model.json")) as f:
            return json.load(f).get("format") == _FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def export_model(path: str | os.PathLike, model: nn.Module, variables: dict) -> str:
    """Write ``model`` and its ``variables`` ({"params": ..., "batch_stats": ...}) to
    ``path`` for inference; returns the folder.

    Exporting over an earlier export replaces it atomically: the new arrays are written
    beside the old ones and ``model.json``, which names them, is replaced in one rename, so a
    run killed at any moment leaves the old export or the new one, both loadable. A folder
    that holds anything else is refused, and nothing in it is touched.
    """
    path = os.path.abspath(os.fspath(path))
    description = {"format": _FORMAT, "model": _describe(model)}  # refused before any write
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"export path {path} is a file")
    if os.path.isdir(path) and os.listdir(path) and not _written_by_jaxdl(path):
        raise FileExistsError(
            f"{path} holds files that are not a jaxdl export; export into an empty or new folder"
        )
    os.makedirs(path, exist_ok=True)
    old = _variables_folder(path) if _written_by_jaxdl(path) else None
    arrays = {k: v for k, v in variables.items() if k in ("params", "batch_stats") and v}
    folder = f"variables-{time.time_ns()}"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.join(path, folder), jax.device_get(arrays))
    temporary = os.path.join(path, f"model.json.{os.getpid()}.tmp")
    with open(temporary, "w") as f:
        json.dump({**description, "variables": folder}, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(path, "model.json"))  # the switch to the new export
    for name in os.listdir(path):  # the old arrays, and any a killed export left behind
        if name != folder and (name == old or name.startswith("variables")):
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    return path


def _variables_folder(path: str) -> str:
    """The arrays' folder that ``path/model.json`` names (older exports: "variables")."""
    with open(os.path.join(path, "model.json")) as f:
        return json.load(f).get("variables", "variables")


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """``(model, variables)`` written by :func:`export_model`; use them as
    ``model.apply(variables, x)``."""
    path = os.path.abspath(os.fspath(path))
    try:
        with open(os.path.join(path, "model.json")) as f:
            saved = json.load(f)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} holds no exported model (model.json is missing)"
        ) from error
    except ValueError as error:
        raise ValueError(f"{path}/model.json is not valid JSON: {error}") from None
    if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
        got = saved.get("format") if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"{path}/model.json: expected format {_FORMAT!r}, got {got!r}")
    try:
        model = _build(saved["model"])
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path}/model.json does not describe a model ({type(error).__name__}: {error})"
        ) from None
    folder = saved.get("variables", "variables")
    if not isinstance(folder, str) or os.path.basename(folder) != folder:
        raise ValueError(f"{path}/model.json: variables must name a folder inside it")
    with ocp.StandardCheckpointer() as checkpointer:
        variables = checkpointer.restore(os.path.join(path, folder))
    return model, dict(variables)
