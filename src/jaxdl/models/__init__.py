"""Flax Linen models, and a registry of them by name for the command line and the tests."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn

from jaxdl._checks import lookup
from jaxdl.models.mlp import MLP

# name -> constructor(num_classes, **options) -> nn.Module
MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda num_classes, hidden=(128, 128), **kw: MLP(features=(*hidden, num_classes), **kw),
    "linear": lambda num_classes, **kw: MLP(features=(num_classes,)),
}


def get(name: str, num_classes: int, **options) -> nn.Module:
    """Build the model called ``name`` (see ``MODELS``) with ``num_classes`` outputs."""
    return lookup("model", name, MODELS)(num_classes, **options)


__all__ = ["MLP", "MODELS", "get"]
