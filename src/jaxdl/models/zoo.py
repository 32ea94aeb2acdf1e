"""``ZOO``: one descriptor per model family, and ``get`` to build a model by name.

The descriptor list drives the command line (``jaxdl train --model NAME``, for the
supervised models) and the shared model tests (shapes, jit, gradients, bfloat16, parameter
counts), so a model is tested the moment it is listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import flax.linen as nn
import numpy as np

from jaxdl import graphs
from jaxdl._checks import lookup
from jaxdl.models.autoencoder import VAE, Autoencoder
from jaxdl.models.cnn import CNN, ResNet
from jaxdl.models.gan import GAN, Discriminator, Generator
from jaxdl.models.gnn import GAT, GCN, MessagePassingNet
from jaxdl.models.mlp import MLP
from jaxdl.models.rnn import RNNClassifier
from jaxdl.models.transformer import TransformerClassifier, TransformerLM

OBJECTIVES = ("supervised", "reconstruction", "elbo", "gan")
"""What a model family is trained on, the values ``ModelSpec.objective`` takes: "supervised"
(features and targets), "reconstruction" (its inputs as targets), "elbo" (a VAE's evidence
lower bound) or "gan" (a generator and a discriminator in turn)."""


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model family and feed it.

    Attributes:
      name: the name ``get`` and ``jaxdl train --model`` know.
      make: ``make(num_classes, **options) -> nn.Module`` for a supervised model,
        ``make(**options) -> nn.Module`` for the others (they have no classes).
      inputs: "vector" (B, F), "image" (B, H, W, C), "tokens" (B, T) int, or "graph" (a
        ``jaxdl.graphs.GraphsTuple``).
      tiny: ``tiny() -> (module, sample_input)``, a small instance for tests.
      objective: what it is trained on, one of ``OBJECTIVES``: "supervised" (targets, the
        ``loss`` of ``Trainer``), "reconstruction" (its own inputs as targets), "elbo" (a
        VAE, ``Trainer(loss="elbo")``) or "gan" (``Trainer(loss="gan")``).
    """

    name: str
    make: Callable[..., nn.Module]
    inputs: str
    tiny: Callable[[], tuple[nn.Module, np.ndarray]]
    objective: str = "supervised"

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")


def _floats(*shape):
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def _tokens(*shape, vocab=11):
    return np.random.default_rng(0).integers(0, vocab, size=shape).astype(np.int32)


def _graph():
    """Two small graphs batched into one: 4 + 3 nodes with 3 features, edge features 2."""
    rng = np.random.default_rng(0)
    first = graphs.make_graph([0, 1, 1, 2, 3, 0], [1, 0, 2, 1, 0, 3], nodes=rng.normal(size=(4, 3)))
    second = graphs.make_graph([0, 1, 2], [1, 2, 0], nodes=rng.normal(size=(3, 3)))
    both = graphs.batch([first, second])
    return both._replace(edges=rng.normal(size=(9, 2)).astype(np.float32))


ZOO: tuple[ModelSpec, ...] = (
    ModelSpec(
        "mlp",
        lambda num_classes, hidden=(128, 128), **kw: MLP((*hidden, num_classes), **kw),
        "vector",
        lambda: (MLP((6, 3)), _floats(2, 4)),
    ),
    ModelSpec(
        "linear",
        lambda num_classes, **kw: MLP((num_classes,)),
        "vector",
        lambda: (MLP((3,)), _floats(2, 4)),
    ),
    ModelSpec(
        "cnn",
        lambda num_classes, **kw: CNN(num_classes=num_classes, **kw),
        "image",
        lambda: (CNN((2, 3), (4,), num_classes=3), _floats(2, 6, 6, 1)),
    ),
    ModelSpec(
        "resnet20",
        lambda num_classes, **kw: ResNet(20, num_classes, **kw),
        "image",
        lambda: (ResNet(20, 3, width=2, blocks=(1, 1, 1)), _floats(2, 8, 8, 1)),
    ),
    ModelSpec(
        "resnet18",
        lambda num_classes, **kw: ResNet(18, num_classes, **kw),
        "image",
        lambda: (ResNet(18, 3, width=2, blocks=(1, 1, 1, 1)), _floats(2, 16, 16, 3)),
    ),
    ModelSpec(
        "resnet50",
        lambda num_classes, **kw: ResNet(50, num_classes, **kw),
        "image",
        lambda: (ResNet(50, 3, width=2, blocks=(1, 1, 1, 1)), _floats(2, 16, 16, 3)),
    ),
    ModelSpec(
        "rnn",
        lambda num_classes, **kw: RNNClassifier("simple", num_classes=num_classes, **kw),
        "image",
        lambda: (RNNClassifier("simple", 5, num_classes=3), _floats(2, 4, 3)),
    ),
    ModelSpec(
        "lstm",
        lambda num_classes, **kw: RNNClassifier("lstm", num_classes=num_classes, **kw),
        "image",
        lambda: (
            RNNClassifier("lstm", 5, num_layers=2, num_classes=3, bidirectional=True),
            _floats(2, 4, 3),
        ),
    ),
    ModelSpec(
        "gru",
        lambda num_classes, **kw: RNNClassifier("gru", num_classes=num_classes, **kw),
        "image",
        lambda: (RNNClassifier("gru", 5, num_classes=3), _floats(2, 4, 3)),
    ),
    ModelSpec(
        "transformer",
        lambda num_classes, vocab_size=256, **kw: TransformerClassifier(
            vocab_size, num_classes=num_classes, **kw
        ),
        "tokens",
        lambda: (TransformerClassifier(11, 1, 8, 2, 16, 6, 3), _tokens(2, 6)),
    ),
    ModelSpec(
        "transformer_lm",
        lambda num_classes, **kw: TransformerLM(num_classes, **kw),
        "tokens",
        lambda: (TransformerLM(11, 2, 8, 2, 16, 6), _tokens(2, 6)),
    ),
    ModelSpec(
        "gcn",
        lambda num_classes, **kw: GCN(num_classes=num_classes, **kw),
        "graph",
        lambda: (GCN((4,), 3), _graph()),
    ),
    ModelSpec(
        "gat",
        lambda num_classes, **kw: GAT(num_classes=num_classes, **kw),
        "graph",
        lambda: (GAT((2,), 2, 3), _graph()),
    ),
    ModelSpec(
        "graph_network",
        lambda num_classes, **kw: MessagePassingNet(num_classes=num_classes, **kw),
        "graph",
        lambda: (MessagePassingNet((4, 4), 3, readout="attention"), _graph()),
    ),
    ModelSpec(
        "autoencoder",
        lambda input_shape=(8, 8, 1), **kw: Autoencoder(input_shape, **kw),
        "image",
        lambda: (Autoencoder((4, 4, 1), 3, hidden=(5,), kind="conv"), _floats(2, 4, 4, 1)),
        objective="reconstruction",
    ),
    ModelSpec(
        "vae",
        lambda input_shape=(64,), **kw: VAE(input_shape, **kw),
        "vector",
        lambda: (VAE((6,), 3, hidden=(5,)), _floats(2, 6)),
        objective="elbo",
    ),
    ModelSpec(
        "gan",
        lambda output_shape=(8, 8, 1), latent_dim=32: GAN(
            Generator(output_shape), Discriminator(), latent_dim
        ),
        "image",
        lambda: (GAN(Generator((8, 8, 1), (4, 2)), Discriminator((2, 3)), 4), _floats(2, 8, 8, 1)),
        objective="gan",
    ),
)
"""Every model family, one ``ModelSpec`` each: the supervised ones first (MLP and linear,
CNN and ResNets, recurrent nets, transformers, graph nets), then the autoencoder, the VAE and
the GAN. The command line (``jaxdl train --model``, ``jaxdl list``) reads it, and the shared
model tests (``tests/models/test_models.py``) run on each one's ``tiny()`` instance."""

MODELS: dict[str, Callable[..., nn.Module]] = {spec.name: spec.make for spec in ZOO}
"""{name: make} of every family of ``ZOO``: ``make(num_classes, **options)`` builds a
supervised model, ``make(**options)`` the others; ``get`` checks the arguments and calls it."""
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in ZOO}
"""{name: ModelSpec} of every family of ``ZOO``, the table ``get`` looks a name up in."""


def get(name: str, num_classes: int | None = None, **options) -> nn.Module:
    """Build the model called ``name`` (see ``MODELS``): a supervised one with
    ``num_classes`` outputs, the others (no classes) from their ``options`` alone."""
    spec = lookup("model", name, SPECS)
    if spec.objective != "supervised":
        if num_classes is not None:
            raise ValueError(
                f"model {name!r} is trained with the {spec.objective!r} objective and has no "
                f"classes; got num_classes={num_classes}"
            )
        return spec.make(**options)
    if num_classes is None:
        raise ValueError(f"model {name!r} needs num_classes")
    return spec.make(num_classes, **options)
