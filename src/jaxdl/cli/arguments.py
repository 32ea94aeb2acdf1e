"""The ``jaxdl`` argument parser, and the settings of a run being resumed read back into it."""

from __future__ import annotations

import argparse
import math
import os

import jaxdl
from jaxdl import optim
from jaxdl.cli.catalog import HF_FORM, dataset_names, model_names
from jaxdl.cli.runfolder import read_json
from jaxdl.data import files
from jaxdl.train.precision import POLICIES

# what ``jaxdl --help`` says first
DESCRIPTION = (
    "Train deep-learning models on built-in data sets or your own files (a CSV table, a "
    "folder of images per class), then predict and evaluate with what a run saved."
)


def _number(kind: type, low: float, high: float = math.inf, low_inclusive: bool = True):
    """An argparse type: a finite ``kind`` in [low, high) (or (low, high))."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        inside = value is not None and math.isfinite(value) and value < high
        inside = inside and (value >= low if low_inclusive else value > low)
        if not inside:
            bound = "[" if low_inclusive else "("
            upper = "inf)" if math.isinf(high) else f"{high})"
            raise argparse.ArgumentTypeError(
                f"expected {'an int' if kind is int else 'a number'} in {bound}{low}, {upper}, "
                f"got {text!r}"
            )
        return value

    return parse


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a model on a data set and write a run folder",
        description="Train a model on a data set, print the test metrics and write a run "
        "folder: config.json, preprocessing.json, model/ (the trained model), checkpoints/, "
        "history.csv, metrics.json and pictures. Ctrl-C stops after the running step and "
        "keeps a complete run folder; --resume continues it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", default="mlp", help=f"model: {', '.join(model_names())}")
    p.add_argument(
        "--dataset",
        default=None,
        help=f"data set: {', '.join(dataset_names())}; or FILE.csv (with --target), an "
        f"image folder with one folder of images per class, or {HF_FORM}, read offline from "
        "the datasets cache unless --download is given (default: digits; reverse for "
        "transformer, pydoc_text for transformer_lm, karate_club for gcn and gat, "
        "cycles_or_trees for graph_network)",
    )
    p.add_argument("--target", default=None, help="the column of --dataset FILE.csv to predict")
    p.add_argument(
        "--features",
        nargs="+",
        default=None,
        help="the feature columns of FILE.csv (default: every column but the target)",
    )
    p.add_argument(
        "--task",
        default="auto",
        choices=files.TASKS,
        help="what the CSV target is; auto: classes when it holds words, or at most "
        f"{files.MAX_AUTO_CLASSES} distinct integers, else a regression",
    )
    p.add_argument(
        "--image-size",
        type=_number(int, 1),
        default=32,
        help="the images of an image folder are resized to this height and width",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="1 (grey) or 3 (RGB) for an image folder (default: grey when every image is)",
    )
    p.add_argument(
        "--scaling",
        default="standard",
        choices=("standard", "minmax", "none"),
        help="feature scaling fitted on the training split (feature data sets and CSV files)",
    )
    p.add_argument(
        "--limit",
        type=_number(int, 1),
        default=None,
        help="keep at most this many examples of each split (a quick run)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where TFDS data sets are prepared (for hf:NAME: the Hugging Face datasets cache)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="download and prepare a TFDS or Hugging Face (hf:NAME) data set first",
    )
    p.add_argument(
        "--epochs", type=_number(int, 1), default=40, help="passes over the training split"
    )
    p.add_argument("--batch-size", type=_number(int, 1), default=64, help="examples per step")
    p.add_argument(
        "--optimizer", default="adam", help=f"optimizer: {', '.join(sorted(optim.OPTIMIZERS))}"
    )
    p.add_argument(
        "--lr", type=_number(float, 0, low_inclusive=False), default=1e-3, help="base learning rate"
    )
    p.add_argument(
        "--schedule", default="cosine", help=f"learning-rate schedule: {', '.join(optim.SCHEDULES)}"
    )
    p.add_argument(
        "--hidden",
        type=_number(int, 1),
        nargs="+",
        default=[256, 256],
        help="hidden layer widths of the MLP",
    )
    p.add_argument(
        "--dropout",
        type=_number(float, 0, 1),
        default=0.2,
        help="dropout rate of the MLP, CNN and graph networks",
    )
    p.add_argument(
        "--l2", type=_number(float, 0), default=0.0, help="L2 penalty on the weight matrices"
    )
    p.add_argument(
        "--patience",
        type=_number(int, 0),
        default=0,
        help="early stopping on val_loss after this many epochs without "
        "improvement, restoring the best epoch (0: off)",
    )
    p.add_argument(
        "--precision",
        default="float32",
        choices=POLICIES,
        help="compute dtype (bfloat16 and float16 keep float32 master weights)",
    )
    p.add_argument(
        "--seed",
        type=_number(int, 0),
        default=0,
        help="fixes the split, initialisation, shuffling and dropout",
    )
    p.add_argument(
        "--out", default=None, help="run folder to write (default: runs/MODEL-DATASET-TIMESTAMP)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the files of an earlier run in --out"
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where the run's checkpoints go (default: OUT/checkpoints)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_number(int, 1),
        default=1,
        help="save a checkpoint after every this many epochs (and at the end, and on Ctrl-C)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint, with its saved settings "
        "(flags given now override them; --epochs counts from the run's start)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return p


def build_parser(train_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The ``jaxdl`` argument parser; ``train_defaults`` replace ``train``'s defaults (the
    settings of a run being resumed)."""
    parser = argparse.ArgumentParser(prog="jaxdl", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"jaxdl {jaxdl.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train_parser = _train_parser(sub)
    if train_defaults:
        known = {action.dest for action in train_parser._actions}
        train_parser.set_defaults(**{k: v for k, v in train_defaults.items() if k in known})
    p = sub.add_parser(
        "predict",
        help="predict with the model of a run folder",
        description="Write the predictions of a run's model for the examples of --input as "
        "CSV: the predicted class and the probability of each class (a classifier), the "
        "predicted value (a regression), or the reconstruction (an autoencoder). The run's "
        "scaling is applied first.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", help="a run folder written by jaxdl train")
    p.add_argument(
        "--input",
        required=True,
        help="the examples: a .npy array (N, *input_shape) or (N, features), a .csv table "
        "(a header naming the run's feature columns, or one row of numbers per example), or "
        "an image file or folder for image models",
    )
    p.add_argument("--output", default="-", help="the CSV file to write (-: standard output)")
    p.add_argument(
        "--columns",
        default="auto",
        choices=("auto", "class", "probabilities", "both"),
        help="what a classifier's rows hold (auto: both, or the class alone for one output "
        "per position)",
    )
    p.add_argument("--batch-size", type=_number(int, 1), default=256, help="examples per call")
    p = sub.add_parser(
        "evaluate",
        help="evaluate the model of a run folder",
        description="Print the loss and metrics of a run's model on the test split of the "
        "data set it trained on, or on --dataset (every example of a file, the --split of a "
        "named or Hugging Face data set), with the run's scaling.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", help="a run folder written by jaxdl train")
    p.add_argument(
        "--dataset",
        default=None,
        help="another data set (default: the run's): a named one, FILE.csv, an image folder "
        "or hf:NAME",
    )
    p.add_argument("--target", default=None, help="the target column of a CSV --dataset")
    p.add_argument(
        "--split", default="test", choices=("train", "validation", "test"), help="which split"
    )
    p.add_argument("--batch-size", type=_number(int, 1), default=256, help="examples per call")
    sub.add_parser(
        "list",
        help="list models, data sets, optimizers, schedules, losses, and what trains on what",
        description="List the names jaxdl train accepts and which models train on which data sets.",
    )
    return parser


# the flags of ``jaxdl train`` that config.json leaves out: they are not settings of the run
NOT_SAVED = ("command", "quiet", "overwrite", "resume")


def resumed_args(argv: list[str], args) -> argparse.Namespace:
    """``args`` with the settings of the run being resumed where no flag gave them."""
    if not args.out:
        raise ValueError("--resume needs --out RUN_FOLDER, the run to continue")
    saved = read_json(os.path.join(args.out, "config.json"), f"--resume: {args.out}")
    saved = {k: v for k, v in saved.items() if k not in NOT_SAVED}
    return build_parser(train_defaults=saved).parse_args(argv)


def train_flag_defaults() -> dict:
    """The default of every ``jaxdl train`` flag, by its ``args`` name."""
    return vars(build_parser().parse_args(["train"]))
