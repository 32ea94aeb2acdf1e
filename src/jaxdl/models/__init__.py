"""Flax Linen models, and ``ZOO``: one descriptor per model family.

The descriptor list drives the command line (``jaxdl train --model NAME``) and the shared
model tests (shapes, jit, gradients, bfloat16, parameter counts), so a model is tested the
moment it is listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import flax.linen as nn
import numpy as np

from jaxdl import graphs
from jaxdl._checks import lookup
from jaxdl.activations import Maxout
from jaxdl.models.autoencoder import VAE, Autoencoder, Decoder, Encoder, VAEOutput
from jaxdl.models.cnn import CNN, BasicBlock, Bottleneck, ResNet
from jaxdl.models.gan import GAN, Discriminator, Generator
from jaxdl.models.gnn import (
    GAT,
    GCN,
    GATLayer,
    GCNLayer,
    GraphNetwork,
    MessagePassingNet,
    Readout,
)
from jaxdl.models.mlp import MLP
from jaxdl.models.perceptron import PerceptronParams, perceptron_fit, perceptron_predict
from jaxdl.models.rnn import RNN, RNNClassifier, RNNLayer, RNNSequenceModel
from jaxdl.models.transformer import (
    MultiHeadAttention,
    TransformerBlock,
    TransformerClassifier,
    TransformerLM,
)


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model family and feed it.

    Attributes:
      name: the name ``get`` and ``jaxdl train --model`` know.
      make: ``make(num_classes, **options) -> nn.Module``.
      inputs: "vector" (B, F), "image" (B, H, W, C), "tokens" (B, T) int, or "graph" (a
        ``jaxdl.graphs.GraphsTuple``).
      tiny: ``tiny() -> (module, sample_input)``, a small instance for tests.
    """

    name: str
    make: Callable[..., nn.Module]
    inputs: str
    tiny: Callable[[], tuple[nn.Module, np.ndarray]]


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
)

MODELS: dict[str, Callable[..., nn.Module]] = {spec.name: spec.make for spec in ZOO}
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in ZOO}


def get(name: str, num_classes: int, **options) -> nn.Module:
    """Build the model called ``name`` (see ``MODELS``) with ``num_classes`` outputs."""
    return lookup("model", name, MODELS)(num_classes, **options)


__all__ = [
    "CNN",
    "GAN",
    "VAE",
    "Autoencoder",
    "Decoder",
    "Discriminator",
    "Encoder",
    "Generator",
    "VAEOutput",
    "GAT",
    "GCN",
    "MLP",
    "MODELS",
    "RNN",
    "SPECS",
    "ZOO",
    "BasicBlock",
    "Bottleneck",
    "GATLayer",
    "GCNLayer",
    "GraphNetwork",
    "Maxout",
    "MessagePassingNet",
    "ModelSpec",
    "MultiHeadAttention",
    "RNNClassifier",
    "RNNLayer",
    "RNNSequenceModel",
    "Readout",
    "ResNet",
    "TransformerBlock",
    "TransformerClassifier",
    "TransformerLM",
    "PerceptronParams",
    "get",
    "perceptron_fit",
    "perceptron_predict",
]
