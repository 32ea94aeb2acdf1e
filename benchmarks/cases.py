"""The zoo's models at a small and a medium size, each with a fixed synthetic batch.

``zoo_case(name, size)`` -> ``Case``. The medium sizes of mlp, cnn, lstm and lm are the four
shapes of the model-zoo issue that ``peers.py`` also builds in hand-written JAX and PyTorch.
Tokens per step count every position of a sequence batch (examples × length).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import jaxdl
from jaxdl import graphs

MODELS = ("mlp", "cnn", "resnet20", "lstm", "gru", "transformer", "lm", "gcn", "vae", "gan")
SIZES = ("small", "medium")


@dataclass
class Case:
    name: str
    size: str
    model: object
    x: object  # an array, or a GraphsTuple
    y: np.ndarray
    mask: np.ndarray
    description: str
    items_per_step: int
    item: str = "examples"
    trainer_options: dict = field(default_factory=dict)
    single_device_only: bool = False

    @property
    def batch(self) -> dict:
        return {"x": self.x, "y": self.y, "mask": self.mask}


def _labels(rng, n: int, classes: int = 10) -> np.ndarray:
    return rng.integers(0, classes, n).astype(np.int32)


def random_graphs(count: int, seed: int = 0) -> graphs.GraphDataset:
    """Random graphs of 20-40 nodes (edge probability 0.15, both directions stored), 16
    node features, two classes."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(count):
        n = int(rng.integers(20, 41))
        upper = np.triu(rng.random((n, n)) < 0.15, 1)
        senders, receivers = np.nonzero(upper | upper.T)
        nodes = rng.normal(size=(n, 16)).astype(np.float32)
        items.append(graphs.make_graph(senders, receivers, nodes=nodes))
    return graphs.GraphDataset(items, rng.integers(0, 2, count).astype(np.int32))


def zoo_case(name: str, size: str) -> Case:
    """A model of the zoo and one batch for it; see the table in ``describe()``."""
    if name not in MODELS or size not in SIZES:
        raise ValueError(f"zoo case: expected a model of {MODELS} and a size of {SIZES}")
    rng = np.random.default_rng(0)
    small = size == "small"
    m = jaxdl.models
    options: dict = {}
    item = "examples"
    if name == "mlp":
        width, features, batch = (128, 64, 64) if small else (512, 784, 128)
        model = m.MLP((width, width, 10))
        x = rng.normal(size=(batch, features))
        text = f"MLP {features}-{width}-{width}-10, batch {batch}"
    elif name == "cnn":
        hw, batch = (8, 64) if small else (28, 128)
        channels, dense = ((16, 32), 64) if small else ((32, 64), 256)
        model = m.CNN(channels, (dense,), 10, padding="VALID" if not small else "SAME")
        x = rng.normal(size=(batch, hw, hw, 1))
        text = f"CNN conv {channels} dense {dense} on {hw}x{hw}x1, batch {batch}"
    elif name == "resnet20":
        hw, width, batch = (16, 8, 32) if small else (32, 16, 64)
        model = m.ResNet(20, 10, width=width)
        x = rng.normal(size=(batch, hw, hw, 3))
        text = f"ResNet-20 width {width} on {hw}x{hw}x3, batch {batch}"
    elif name in ("lstm", "gru"):
        length, features, hidden, batch = (32, 16, 64, 32) if small else (64, 32, 256, 64)
        model = m.RNNClassifier(name, hidden, num_classes=10)
        x = rng.normal(size=(batch, length, features))
        text = f"{name.upper()} {hidden} over {length} steps of {features}, batch {batch}"
        item = "tokens"
    elif name in ("transformer", "lm"):
        layers, d, heads, mlp, length, vocab, batch = (
            (2, 64, 4, 256, 64, 256, 16) if small else (4, 256, 4, 1024, 128, 1000, 16)
        )
        if name == "lm":
            model = m.TransformerLM(vocab, layers, d, heads, mlp, length)
        else:
            model = m.TransformerClassifier(vocab, layers, d, heads, mlp, length, num_classes=2)
        x = rng.integers(0, vocab, size=(batch, length))
        kind = "LM (causal)" if name == "lm" else "classifier"
        text = (
            f"Transformer {kind} {layers}x d{d} h{heads} mlp{mlp}, {length} tokens, batch {batch}"
        )
        item = "tokens"
    elif name == "gcn":
        count, width = (32, 32) if small else (128, 64)
        data = random_graphs(count)
        batch = next(iter(data.batches(count)))
        model = m.GCN((width, width), 2, readout="mean")
        text = f"GCN ({width}, {width}) mean readout, batch of {count} graphs of 20-40 nodes"
        return Case(name, size, model, batch["x"], batch["y"], batch["mask"], text, count,
                    "graphs", single_device_only=True)  # fmt: skip
    elif name == "vae":
        shape, hidden, latent, batch = ((64,), (128, 64), 8, 64) if small else (
            (784,), (512, 256), 16, 128)  # fmt: skip
        model = m.VAE(shape, latent_dim=latent, hidden=hidden)
        x = rng.random(size=(batch, *shape))
        options = {"loss": "elbo", "metrics": ()}
        text = f"VAE {shape[0]}-{'-'.join(map(str, hidden))} latent {latent}, batch {batch}"
    else:  # gan
        shape, batch = ((8, 8, 1), 64) if small else ((28, 28, 1), 64)
        model = m.GAN(m.Generator(shape), m.Discriminator(), latent_dim=32)
        x = rng.random(size=(batch, *shape))
        options = {"loss": "gan", "metrics": ()}
        text = f"GAN (pixel-shuffle generator, conv discriminator) on {shape}, batch {batch}"
    batch = len(x)
    if name == "lm":
        y = rng.integers(0, x.max() + 1, size=x.shape).astype(np.int32)
    elif name == "transformer":
        y = _labels(rng, batch, 2)
    else:
        y = _labels(rng, batch)
    x = x.astype(np.int32 if name in ("transformer", "lm") else np.float32)
    items = batch * (x.shape[1] if item == "tokens" else 1)
    return Case(name, size, model, x, y, np.ones(batch, bool), text, items, item, options)


def describe() -> list[str]:
    """One line per case: name, size and what it is."""
    return [f"{n}/{s}: {zoo_case(n, s).description}" for n in MODELS for s in SIZES]
