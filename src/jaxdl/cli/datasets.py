"""What a run trains on: the data set of ``--dataset`` split three ways, the scaler fitted on
its training split, and what the model expects written as ``preprocessing.json``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from jaxdl import data as data_lib
from jaxdl._checks import lookup
from jaxdl.cli.catalog import GRAPH_SETS, dataset_kind, reading_hf, source_of
from jaxdl.cli.runfolder import RUN_FORMAT
from jaxdl.data import files, hf_source
from jaxdl.data.dataset import ArrayDataset
from jaxdl.data.tfds_source import TFDS_SETS
from jaxdl.data.transforms import SCALERS, MinMaxScaler, Standardizer


@dataclass
class Data:
    """A data set as the command trains on it.

    ``train``/``validation``/``test`` are ``ArrayDataset`` (features as read, unscaled), or
    ``NodeDataset``/``GraphDataset`` for graph sets; ``kind`` is one of
    ``KIND_WORDS``; ``task`` is "classification", "regression", "sequence" or
    "language_model"; ``source`` says where it came from (stored in preprocessing.json):
    "named", "csv", "image_folder" or "hf" (a Hugging Face set), with what reloads it.
    """

    train: object
    validation: object
    test: object
    info: object
    kind: str
    source: dict

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.info.input_shape)


def _named_options(name: str, spec) -> dict:
    if name == "digits":
        return {"image": not (spec.inputs == "vector" and spec.objective == "supervised")}
    return {}


def load_raw(config, spec) -> Data:
    """The data set of ``config`` (the train flags) split three ways, unscaled."""
    dataset, seed = config.dataset, config.seed
    source = source_of(dataset)
    if source == "csv":
        splits = files.from_csv(
            dataset,
            config.target,
            task=config.task,
            features=config.features,
            seed=seed,
            scaling=None,
        )
        where = {"source": "csv", "path": splits.info.extra["path"], "target": config.target}
        where["feature_names"] = list(splits.info.extra["feature_names"])
        return Data(*_limited(splits, config.limit), splits.info, "features", where)
    if source == "image_folder":
        splits = files.from_image_folder(
            dataset, config.image_size, seed=seed, channels=config.channels
        )
        where = {"source": "image_folder", "path": splits.info.extra["path"]}
        where |= {"image_size": config.image_size, "channels": splits.info.extra["channels"]}
        return Data(*_limited(splits, config.limit), splits.info, "images", where)
    if source == "hf":
        return _load_hf(config)
    name = dataset.lower().replace("-", "_")
    if name in GRAPH_SETS:
        return _load_graphs(name, seed, config.limit)
    options = _named_options(name, spec)
    if name in TFDS_SETS:
        splits = data_lib.load(name, seed=seed, data_dir=config.data_dir, download=config.download)
    else:
        splits = data_lib.load(name, seed=seed, scaling=None, **options)
    kind = dataset_kind(name, spec)[0]
    where = {"source": "named", "name": name, "options": options}
    return Data(*_limited(splits, config.limit), splits.info, kind, where)


def _load_hf(config) -> Data:
    """A Hugging Face set ("hf:NAME") as ``jaxdl.data.load`` splits it: its test split, and
    a stratified tenth of its train split held out for validation by ``config.seed``."""
    dataset = config.dataset
    with reading_hf(dataset, config.data_dir, config.download):
        splits = data_lib.load(
            dataset, seed=config.seed, data_dir=config.data_dir, download=config.download
        )
    kind = "tokens" if "vocabulary" in splits.info.extra else "images"
    # config.json keeps the seed, --limit, --data-dir and --download that reload the same
    # splits (and, for text, the same vocabulary, built on the training part)
    where = {"source": "hf", "name": dataset, "data_dir": config.data_dir}
    path = dataset[len(hf_source.PREFIX) :]
    if os.path.exists(path):
        where["path"] = os.path.abspath(path)
    return Data(*_limited(splits, config.limit), splits.info, kind, where)


def _limited(splits, limit) -> tuple:
    parts = (splits.train, splits.validation, splits.test)
    if limit:
        parts = tuple(p.subset(slice(0, limit)) for p in parts)
    return parts


def _load_graphs(name: str, seed: int, limit) -> Data:
    from jaxdl.data import graph_sets
    from jaxdl.data.dataset import DatasetInfo
    from jaxdl.graphs import NodeDataset

    fractions = (0.65, 0.15, 0.2)
    where = {"source": "named", "name": name, "options": {}}
    if name == "karate_club":
        graph, labels = graph_sets.karate_club()
        parts = data_lib.stratified_split(labels, fractions, seed=seed)
        masks = [np.isin(np.arange(len(labels)), part) for part in parts]
        info = DatasetInfo(
            name, 2, (int(graph.nodes.shape[-1]),), ("Mr. Hi", "Officer"),
            description="Zachary's karate club: which faction each member joined",
        )  # fmt: skip
        sets = [NodeDataset(graph, labels, mask) for mask in masks]
        return Data(*sets, info, "nodes", where)
    everything = graph_sets.cycles_or_trees(1000 if not limit else min(1000, 3 * limit), seed)
    parts = data_lib.stratified_split(everything.labels, fractions, seed=seed)
    sets = [everything.subset(part[:limit] if limit else part) for part in parts]
    info = DatasetInfo(
        name, 2, (1,), ("tree", "one cycle"),
        description="random trees against trees with one extra edge",
    )  # fmt: skip
    return Data(*sets, info, "graphs", where)


def fit_scaler(config, spec, data: Data):
    """The scaler ``jaxdl train`` fits on the training split (None: the data stays as is)."""
    if data.kind in ("nodes", "graphs", "tokens", "language_model"):
        return None
    if spec.objective != "supervised":
        if data.info.name == "digits" and data.source["source"] == "named":
            # grey levels 0..16: a fixed range keeps every image, test ones too, in [0, 1]
            return MinMaxScaler(np.zeros(1, np.float32), np.full(1, 16.0, np.float32))
        return None  # TFDS images and image folders are in [0, 1] already
    if config.scaling == "none" or data.source["source"] in ("image_folder", "hf"):
        return None  # images in [0, 1] as they are read, token ids as they are
    if data.source["source"] == "named":
        named = data.source["name"]
        if named in TFDS_SETS or not data.info.scalable:
            return None  # as jaxdl.data.load keeps them
    return lookup("scaling", config.scaling, SCALERS).fit(data.train.x)


def scaled(dataset: ArrayDataset, scaler) -> ArrayDataset:
    """``dataset`` with ``scaler`` applied to its features (as it is: no scaler, or graphs)."""
    if scaler is None or not isinstance(dataset, ArrayDataset):
        return dataset
    return ArrayDataset(scaler(dataset.x), dataset.y)


def _scaler_json(scaler) -> dict | None:
    if scaler is None:
        return None
    if isinstance(scaler, Standardizer):
        return {"kind": "standard", "mean": scaler.mean.tolist(), "std": scaler.std.tolist()}
    return {"kind": "minmax", "minimum": scaler.minimum.tolist(), "scale": scaler.scale.tolist()}


def scaler_from_json(saved: dict | None):
    """The scaler preprocessing.json describes (None for none)."""
    if saved is None:
        return None
    as_array = lambda key: np.asarray(saved[key], np.float32)
    if saved.get("kind") == "standard":
        return Standardizer(as_array("mean"), as_array("std"))
    if saved.get("kind") == "minmax":
        return MinMaxScaler(as_array("minimum"), as_array("scale"))
    raise ValueError(f"preprocessing.json: unknown scaler {saved.get('kind')!r}")


def preprocessing(data: Data, spec, scaler) -> dict:
    """What the model expects, as preprocessing.json holds it."""
    x = getattr(data.train, "x", None)
    info = data.info
    return {
        "format": RUN_FORMAT,
        "dataset": data.source,
        "kind": data.kind,
        "task": info.task,
        "objective": spec.objective,
        "model": spec.name,
        "input_shape": list(x.shape[1:]) if x is not None else list(info.input_shape),
        "input_dtype": str(x.dtype) if x is not None else "graph",
        "class_names": list(info.class_names),
        "scaler": _scaler_json(scaler),
    }
