"""The model, loss and metrics of a run, chosen from the model family and the data set, and
what ``fit``/``evaluate`` take for the model's objective."""

from __future__ import annotations

import numpy as np

from jaxdl import models
from jaxdl.cli.catalog import IMAGENET_RESNETS, RECURRENT
from jaxdl.cli.datasets import Data
from jaxdl.data.dataset import ArrayDataset


def loss_and_metrics(spec, task: str) -> tuple[str, tuple[str, ...]]:
    """(loss, metrics) of a run, named as ``Trainer`` takes them."""
    if spec.objective == "elbo":
        return "elbo", ()
    if spec.objective == "gan":
        return "gan", ()
    if spec.objective == "reconstruction":
        return "binary_cross_entropy", ()
    if task == "regression":
        return "mse", ("mae",)
    if task in ("sequence", "language_model"):
        return "cross_entropy", ("accuracy",)
    return "cross_entropy", ("accuracy", "f1")


def build_model(config, spec, data: Data):
    """The model of ``spec``'s family sized for ``data``, with the train flags of ``config``."""
    name, info, shape = spec.name, data.info, data.input_shape
    graph_readout = "sum" if data.kind == "graphs" else None
    if name == "autoencoder":
        return models.get(name, input_shape=shape, latent_dim=16)
    if name == "vae":
        return models.get(name, input_shape=shape, latent_dim=8)
    if name == "gan":
        return models.get(name, output_shape=shape)
    outputs = info.num_classes
    if data.task == "regression":
        outputs = int(np.prod(data.train.y.shape[1:])) or 1
    if name == "mlp":
        return models.get(name, outputs, hidden=tuple(config.hidden), dropout_rate=config.dropout)
    if name == "cnn":
        return models.get(name, outputs, dropout_rate=config.dropout)
    if name in RECURRENT:
        return models.get(name, outputs, hidden_size=128)
    if name in IMAGENET_RESNETS:
        return models.get(name, outputs, small_inputs=max(shape[:2]) <= 32)
    if name == "transformer":
        return models.get(
            name,
            outputs,
            vocab_size=int(info.extra.get("vocab_size", info.num_classes)),
            num_layers=2,
            d_model=64,
            num_heads=4,
            mlp_dim=128,
            max_len=shape[0],
            pooling="none" if data.task == "sequence" else "mean",
            pad_id=info.extra.get("pad_id"),
        )
    if name == "transformer_lm":
        return models.get(
            name, outputs, num_layers=2, d_model=128, num_heads=4, mlp_dim=512, max_len=shape[0]
        )
    if name == "gcn":
        return models.get(name, outputs, dropout_rate=config.dropout, readout=graph_readout)
    if name == "gat":
        return models.get(name, outputs, dropout_rate=config.dropout, readout=graph_readout)
    if name == "graph_network":
        return models.get(
            name, outputs, features=(32, 32), dropout_rate=config.dropout, readout=graph_readout
        )
    return models.get(name, outputs)


def fit_data(dataset, spec):
    """What ``fit``/``evaluate`` take for the model's objective."""
    if not isinstance(dataset, ArrayDataset):
        return dataset
    if spec.objective == "reconstruction":
        return (dataset.x, dataset.x)
    if spec.objective in ("elbo", "gan"):
        return dataset.x
    return dataset


def format_values(values: dict) -> str:
    """The numbers of ``values`` on one line, as ``name=0.1234``."""
    return "  ".join(f"{k}={v:.4f}" for k, v in values.items() if isinstance(v, int | float))
