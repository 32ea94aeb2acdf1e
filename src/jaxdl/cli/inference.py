"""``jaxdl predict`` and ``jaxdl evaluate``: the model of a run folder on new examples or on a
data set, with the run's preprocessing applied first."""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys

import numpy as np

import jaxdl
from jaxdl import models
from jaxdl.cli.arguments import train_flag_defaults
from jaxdl.cli.catalog import KIND_WORDS, dataset_kind, source_of
from jaxdl.cli.datasets import load_raw, scaled, scaler_from_json
from jaxdl.cli.modelling import fit_data, format_values, loss_and_metrics
from jaxdl.cli.runfolder import read_run
from jaxdl.data import files
from jaxdl.data.dataset import ArrayDataset
from jaxdl.train import Trainer


def _sample_inputs(dataset):
    """One batch of inputs to build a model's variables on."""
    if isinstance(dataset, ArrayDataset):
        return dataset.x[:1]
    return next(iter(dataset.batches(1)))["x"]


def _restored_trainer(folder: str, config: dict, prep: dict, sample):
    """A Trainer holding the run's exported model, built on ``sample`` inputs."""
    model, variables = jaxdl.load_model(os.path.join(folder, "model"))
    spec = models.SPECS[prep["model"]]
    loss, run_metrics = loss_and_metrics(spec, prep["task"])
    precision = config.get("precision")
    trainer = Trainer(
        model,
        loss=loss,
        metrics=run_metrics,
        precision=precision or "float32",
        pretrained=variables,
    )
    trainer.init(sample)
    return trainer


def _read_inputs(path: str, prep: dict) -> tuple[np.ndarray, list[str] | None]:
    """The examples of ``--input`` as the model takes them (before scaling), and the image
    files they came from (None for an array or a table)."""
    shape = tuple(prep["input_shape"])
    if os.path.isdir(path) or path.lower().endswith(files.IMAGE_EXTENSIONS):
        if prep["kind"] != "images":
            raise ValueError(f"--input {path}: images, but the model reads {prep['kind']}")
        paths = files.image_files(path) if os.path.isdir(path) else [path]
        if not paths:
            raise ValueError(f"--input {path}: the folder holds no image files")
        x = np.stack([files.read_image(p, shape[:2], shape[2]) for p in paths])
        return x, paths
    if path.lower().endswith(".npy"):
        x = np.load(path, allow_pickle=False)
    elif path.lower().endswith(".csv"):
        x = files.csv_features(path, prep["dataset"].get("feature_names"))
    else:
        raise ValueError(f"--input {path}: expected a .npy or .csv file (or images)")
    x = np.asarray(x)
    size = int(np.prod(shape))
    if x.ndim == 1 and x.size == size:
        x = x[None]
    if x.ndim < 2 or (tuple(x.shape[1:]) != shape and int(np.prod(x.shape[1:])) != size):
        raise ValueError(
            f"--input {path}: expected examples of shape {shape} ({size} values a row), got "
            f"an array of shape {x.shape}"
        )
    x = x.reshape(len(x), *shape)
    if prep["input_dtype"].startswith("int"):
        if x.dtype.kind == "f" and not np.all(x == np.round(x)):
            raise ValueError(f"--input {path}: the model reads integer token ids")
        return x.astype(np.int32), None
    return x.astype(np.float32), None


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _sigmoid(x) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _prediction_table(outputs, prep: dict, columns: str) -> tuple[list[str], list[list]]:
    """(header, rows) of ``jaxdl predict``'s CSV."""
    objective, task = prep["objective"], prep["task"]
    number = lambda v: f"{float(v):.7g}"
    if columns != "auto" and (objective != "supervised" or task == "regression"):
        raise ValueError(
            f"--columns {columns}: the model of this run predicts values, not classes; "
            "leave --columns out"
        )
    if objective == "gan":  # the discriminator: how real each image looks
        return ["p_real"], [[number(p)] for p in _sigmoid(outputs)]
    if objective in ("reconstruction", "elbo"):
        logits = outputs.logits if objective == "elbo" else outputs
        flat = _sigmoid(logits).reshape(len(logits), -1)
        return [f"x_{i}" for i in range(flat.shape[1])], [[number(v) for v in r] for r in flat]
    outputs = np.asarray(outputs, np.float64)
    if task == "regression":
        flat = outputs.reshape(len(outputs), -1)
        names = (
            ["prediction"]
            if flat.shape[1] == 1
            else [f"prediction_{i}" for i in range(flat.shape[1])]
        )
        return names, [[number(v) for v in r] for r in flat]
    names = prep["class_names"] or [str(i) for i in range(outputs.shape[-1])]
    probabilities = _softmax(outputs)
    chosen = outputs.argmax(-1)
    per_position = outputs.ndim > 2
    if columns == "auto":
        columns = "class" if per_position else "both"
    header, parts = [], []
    positions = range(outputs.shape[1]) if per_position else [None]
    suffix = lambda t: "" if t is None else f"_{t}"
    if columns in ("class", "both"):
        header += [f"predicted{suffix(t)}" for t in positions]
    if columns in ("probabilities", "both"):
        header += [f"p{suffix(t)}_{name}" for t in positions for name in names]
    for i in range(len(outputs)):
        row = []
        picks = chosen[i].reshape(-1)
        probs = probabilities[i].reshape(len(picks), -1)
        if columns in ("class", "both"):
            row += [names[c] for c in picks]
        if columns in ("probabilities", "both"):
            row += [number(p) for ps in probs for p in ps]
        parts.append(row)
    return header, parts


def predict(args) -> int:
    """Run ``jaxdl predict``: the model's outputs for the examples of ``--input`` as CSV."""
    config, prep = read_run(args.run)
    if prep["kind"] in ("nodes", "graphs"):
        raise ValueError(
            f"the model of {args.run} reads graphs; jaxdl predict reads feature rows (.npy, "
            f".csv) or images: use jaxdl evaluate {args.run}"
        )
    x, paths = _read_inputs(args.input, prep)
    scaler = scaler_from_json(prep["scaler"])
    if scaler is not None:
        x = scaler(x)
    trainer = _restored_trainer(args.run, config, prep, x[:1])
    outputs = trainer.predict(x, batch_size=args.batch_size)
    header, rows = _prediction_table(outputs, prep, args.columns)
    if paths is not None:
        header, rows = ["file", *header], [[p, *r] for p, r in zip(paths, rows)]
    with contextlib.ExitStack() as stack:
        if args.output in (None, "-"):
            target = sys.stdout
        else:
            target = stack.enter_context(open(args.output, "w", newline=""))
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    if args.output not in (None, "-"):
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return 0


def _concatenated(splits) -> ArrayDataset:
    parts = [splits.train, splits.validation, splits.test]
    return ArrayDataset(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))


def evaluate(args) -> int:
    """Run ``jaxdl evaluate``: the run's model on its test split or another data set."""
    config, prep = read_run(args.run)
    spec = models.SPECS[prep["model"]]
    saved = argparse.Namespace(**{**train_flag_defaults(), **config})
    if args.dataset is None:  # the data the run trained on, split as it was
        data = load_raw(saved, spec)
        dataset = getattr(data, args.split)
        where = f"the {args.split} split of {saved.dataset}"
    else:
        saved.dataset, saved.limit = args.dataset, None
        saved.target = args.target or saved.target
        source = source_of(args.dataset)
        kind = dataset_kind(args.dataset, spec, data_dir=saved.data_dir, download=saved.download)[0]
        if kind != prep["kind"]:
            raise ValueError(
                f"the model of {args.run} reads {KIND_WORDS[prep['kind']]}; data set "
                f"{args.dataset!r} holds {KIND_WORDS[kind]}"
            )
        if source in ("named", "hf"):  # a set with splits: the --split of it
            data = load_raw(saved, spec)
            dataset = getattr(data, args.split)
            where = f"the {args.split} split of {args.dataset}"
        else:  # a file: every example of it, with the run's classes
            classes = prep["class_names"] or None
            if source == "image_folder":
                shape = prep["input_shape"]
                splits = files.from_image_folder(
                    args.dataset, tuple(shape[:2]), channels=shape[2], classes=classes
                )
            else:
                splits = files.from_csv(
                    args.dataset, saved.target, task=prep["task"], classes=classes,
                    features=prep["dataset"].get("feature_names"), scaling=None,
                )  # fmt: skip
            dataset = _concatenated(splits)
            where = f"the {len(dataset)} examples of {args.dataset}"
    if isinstance(dataset, ArrayDataset):
        if tuple(dataset.x.shape[1:]) != tuple(prep["input_shape"]):
            raise ValueError(
                f"--dataset {args.dataset}: examples of shape {dataset.x.shape[1:]}, the model "
                f"of {args.run} reads {tuple(prep['input_shape'])}"
            )
        dataset = scaled(dataset, scaler_from_json(prep["scaler"]))
    trainer = _restored_trainer(args.run, config, prep, _sample_inputs(dataset))
    values = trainer.evaluate(fit_data(dataset, spec), batch_size=args.batch_size)
    print(f"{args.split if args.dataset is None else 'data'}: {format_values(values)}  ({where})")
    return 0
