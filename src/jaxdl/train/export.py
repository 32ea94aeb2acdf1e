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


def _decode(value):
    if isinstance(value, dict) and set(value) == {"module"}:
        return _build(value["module"])
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def _build(description: dict) -> nn.Module:
    from jaxdl import models

    name = description["class"]
    if name not in models.__all__ or not isinstance(getattr(models, name), type):
        raise ValueError(f"unknown model class {name!r}: expected one of jaxdl.models' classes")
    fields = {k: _decode(v) for k, v in description["fields"].items()}
    return getattr(models, name)(**fields)


def export_model(path: str | os.PathLike, model: nn.Module, variables: dict) -> str:
    """Write ``model`` and its ``variables`` ({"params": ..., "batch_stats": ...}) to
    ``path`` for inference; returns the folder."""
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    arrays = {k: v for k, v in variables.items() if k in ("params", "batch_stats") and v}
    with open(os.path.join(path, "model.json"), "w") as f:
        json.dump({"format": _FORMAT, "model": _describe(model)}, f, indent=2)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.join(path, "variables"), jax.device_get(arrays), force=True)
    return path


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
    if saved.get("format") != _FORMAT:
        raise ValueError(
            f"{path}/model.json: expected format {_FORMAT!r}, got {saved.get('format')!r}"
        )
    model = _build(saved["model"])
    with ocp.StandardCheckpointer() as checkpointer:
        variables = checkpointer.restore(os.path.join(path, "variables"))
    return model, dict(variables)
