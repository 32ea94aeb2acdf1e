"""What trains on what: the kinds of data set each model family takes, checked before anything
is loaded (from the name, or for a Hugging Face set from the features it declares), and
``jaxdl list``, which shows them."""

from __future__ import annotations

import contextlib
import os

from jaxdl import data as data_lib
from jaxdl import losses, metrics, models, optim
from jaxdl.data import hf_source
from jaxdl.train.precision import POLICIES

# the graph data sets (jaxdl.data.graph_sets), by what they label: nodes or whole graphs
GRAPH_SETS = {"karate_club": "nodes", "cycles_or_trees": "graphs"}
# the kind of examples of each named data set, known before loading it
_NAMED_KINDS = {
    "digits": "images",  # 8x8; the vector models read it as 64 features
    "xor": "features",
    "moons": "features",
    "spirals": "features",
    "adding": "sequences",
    "reverse": "tokens",
    "pydoc_text": "language_model",
    "mnist": "images",
    "fashion_mnist": "images",
    "emnist": "images",
    "cifar10": "images",
    "cifar100": "images",
    "imdb_reviews": "tokens",
    **GRAPH_SETS,
}
_IMAGE_SIDE = {"digits": 8, "mnist": 28, "fashion_mnist": 28, "emnist": 28, "cifar10": 32}
_IMAGE_SIDE["cifar100"] = 32
# the recurrent families, which read an image row by row as a sequence
RECURRENT = ("rnn", "lstm", "gru")
# the ResNets of ImageNet's shape, which down-sample too far for small images
IMAGENET_RESNETS = ("resnet18", "resnet50")
_MIN_IMAGENET_SIDE = 32  # below it the ImageNet ResNets' down-sampling leaves maps of 1x1
# each kind of data set as messages and ``jaxdl list`` name it
KIND_WORDS = {
    "features": "feature vectors",
    "images": "images",
    "sequences": "sequences (T, F)",
    "tokens": "token ids",
    "language_model": "next-token text",
    "nodes": "a graph with node labels",
    "graphs": "labelled graphs",
}
# how --dataset names a Hugging Face set, as usage lines and messages show it
HF_FORM = "hf:NAME (a Hugging Face Hub id, e.g. hf:ylecun/mnist, or a local folder of its files)"
# the kind of examples of each kind of input column of a Hugging Face set (hf_source)
_HF_KINDS = {"image": "images", "text": "tokens"}
# the data set of a model family when --dataset is not given (else digits)
DEFAULT_DATASET = {
    "transformer": "reverse",
    "transformer_lm": "pydoc_text",
    "gcn": "karate_club",
    "gat": "karate_club",
    "graph_network": "cycles_or_trees",
}


def _accepts(spec) -> tuple[str, ...]:
    """The kinds of data set a model family trains on."""
    if spec.objective != "supervised":
        return ("images",)  # generated and reconstructed as images in [0, 1]
    if spec.name in RECURRENT:
        return ("images", "sequences")  # an image is read row by row
    if spec.name == "transformer_lm":
        return ("language_model",)
    return {
        "vector": ("features", "images", "sequences"),
        "image": ("images",),
        "tokens": ("tokens",),
        "graph": ("nodes", "graphs"),
    }[spec.inputs]


def model_names() -> list[str]:
    """The names ``--model`` takes, sorted."""
    return sorted(spec.name for spec in models.ZOO)


def dataset_names() -> list[str]:
    """The named data sets ``--dataset`` takes (files and folders aside)."""
    return data_lib.names() + list(GRAPH_SETS)


def source_of(dataset: str) -> str:
    """Where a --dataset value points: "named", "csv", "image_folder" or "hf"."""
    if hf_source.is_hf_name(dataset):
        if dataset == hf_source.PREFIX:
            raise ValueError(f"--dataset: expected {HF_FORM}, got {dataset!r}")
        return "hf"
    if dataset.lower().replace("-", "_") in _NAMED_KINDS:
        return "named"
    if dataset.lower().endswith(".csv"):
        return "csv"
    if os.path.isdir(dataset):
        return "image_folder"
    raise ValueError(
        f"unknown data set {dataset!r}; expected one of: {', '.join(dataset_names())}, a "
        f"FILE.csv (with --target COLUMN), an image folder (CLASS_NAME/*.png) or {HF_FORM}"
    )


@contextlib.contextmanager
def reading_hf(dataset: str, data_dir, download: bool):
    """Reading a Hugging Face set: one missing from the cache is reported in the command's
    flags (--download, --data-dir), not in the ``download=True`` of the Python call below."""
    try:
        yield
    except FileNotFoundError as error:
        if download or os.path.exists(dataset[len(hf_source.PREFIX) :]):
            raise
        where = data_dir or "the Hugging Face cache (~/.cache/huggingface or $HF_HOME)"
        raise FileNotFoundError(
            f"--dataset {dataset}: no such local folder, and no such set in {where}; "
            "without --download nothing is fetched: pass --download once on a machine with "
            "internet (with the same --data-dir), or name a folder of its parquet files"
        ) from error


def dataset_kind(
    dataset: str, spec, *, data_dir: str | None = None, download: bool = False
) -> tuple[str, int | None]:
    """(kind, smallest image side or None), from the name alone, or for a Hugging Face set
    ("hf:NAME", read from ``data_dir`` and fetched with ``download`` as ``jaxdl.data.load``
    does) from the features it declares: no example is read or decoded."""
    source = source_of(dataset)
    if source == "csv":
        return "features", None
    if source == "image_folder":
        return "images", None
    if source == "hf":
        with reading_hf(dataset, data_dir, download):
            features = hf_source.features_hf(dataset, data_dir=data_dir, download=download)
        kind = hf_source.input_kind(features, dataset)
        return _HF_KINDS[kind], None  # the image size is known once the images are decoded
    name = dataset.lower().replace("-", "_")
    kind = _NAMED_KINDS[name]
    if name == "digits" and spec.inputs == "vector" and spec.objective == "supervised":
        kind = "features"
    return kind, _IMAGE_SIDE.get(name)


def check_combination(args, spec) -> None:
    """Refuse a model and a data set that do not go together, before anything is loaded."""
    kind, side = dataset_kind(args.dataset, spec, data_dir=args.data_dir, download=args.download)
    if source_of(args.dataset) == "image_folder":
        side = args.image_size
    accepted = _accepts(spec)
    if kind not in accepted:
        raise ValueError(
            f"model {spec.name!r} trains on {' or '.join(KIND_WORDS[k] for k in accepted)}; "
            f"data set {args.dataset!r} holds {KIND_WORDS[kind]}: use one of "
            f"{', '.join(_fitting_sets(spec))}"
        )
    if side is not None:
        check_image_size(spec, args.dataset, side, side)
    source = source_of(args.dataset)
    if source == "csv" and not args.target:
        raise ValueError(f"--dataset {args.dataset}: a CSV file needs --target COLUMN")
    if source != "csv" and (args.target or args.features):
        raise ValueError("--target and --features are for --dataset FILE.csv")


def check_image_size(spec, dataset: str, height: int, width: int) -> None:
    """Refuse images too small for an ImageNet ResNet, or that the GAN cannot generate."""
    if spec.name in IMAGENET_RESNETS and min(height, width) < _MIN_IMAGENET_SIDE:
        raise ValueError(
            f"model {spec.name!r} is built for images of at least {_MIN_IMAGENET_SIDE}x"
            f"{_MIN_IMAGENET_SIDE} (its stages halve the resolution three times, so "
            f"{height}x{width} images end as maps of {max(height // 8, 1)}x"
            f"{max(width // 8, 1)} pixels or less); use cnn or resnet20 for smaller images"
        )
    if spec.name == "gan" and (height % 4 or width % 4):
        raise ValueError(
            f"model 'gan' generates images whose height and width are multiples of 4; data set "
            f"{dataset!r} has {height}x{width} images"
        )


def _fitting_sets(spec) -> list[str]:
    """The data sets ``spec``'s model trains on, named as ``--dataset`` takes them."""
    accepted = _accepts(spec)
    big = spec.name in IMAGENET_RESNETS
    sets = []
    for name in _NAMED_KINDS:
        side = _IMAGE_SIDE.get(name)
        if dataset_kind(name, spec)[0] in accepted and not (
            big and side is not None and side < _MIN_IMAGENET_SIDE
        ):
            sets.append(name)
    if "features" in accepted:
        sets.append("FILE.csv")
    if "images" in accepted:
        sets.append("IMAGE_FOLDER" + (" (--image-size 32 or more)" if big else ""))
    if "images" in accepted or "tokens" in accepted:
        sets.append("hf:NAME" + (" (images of 32x32 or more)" if big else ""))
    return sets


def _trains_on() -> list[tuple[str, str]]:
    """(models, what they train on) rows of ``jaxdl list``."""
    groups: dict[tuple, list[str]] = {}
    for spec in models.ZOO:
        what = ", ".join(KIND_WORDS[k] for k in _accepts(spec))
        if spec.objective != "supervised":
            what = "images in [0, 1]"
        groups.setdefault((what, tuple(_fitting_sets(spec))), []).append(spec.name)
    return [
        (", ".join(names), f"{what}: {', '.join(sets)}") for (what, sets), names in groups.items()
    ]


def list_names(args) -> int:
    """Print what each flag of ``jaxdl train`` accepts, and which models train on what."""
    rows = {
        "models": model_names(),
        "datasets": dataset_names()
        + ["FILE.csv --target COLUMN", "IMAGE_FOLDER/CLASS/*.png", "hf:NAME"],
        "optimizers": sorted(optim.OPTIMIZERS),
        "schedules": list(optim.SCHEDULES),
        "losses": sorted(losses.LOSSES),
        "metrics": sorted(metrics.METRICS),
        "precisions": list(POLICIES),
    }
    for kind, names in rows.items():
        print(f"{kind + ':':12s}{', '.join(names)}")
    print("\nwhat each model trains on:")
    table = _trains_on()
    width = max(len(names) for names, _ in table)
    for names, what in table:
        print(f"  {names:{width}s}  {what}")
    return 0
