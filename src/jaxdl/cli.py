"""The ``jaxdl`` command.

``jaxdl train`` trains a model on a data set and writes a run folder; ``jaxdl list`` shows
what can be named. With no arguments, ``jaxdl train`` trains an MLP on scikit-learn's 8x8
digits (no download) and reaches about 0.98 test accuracy in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import datetime

from jaxdl import data as data_lib
from jaxdl import losses, metrics, models, optim, plotting
from jaxdl._checks import lookup
from jaxdl.host_memory import keep_freed_memory
from jaxdl.optimizer import Optimizer
from jaxdl.train import CSVLogger, EarlyStopping, Trainer


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


def _trainable() -> list[str]:
    """The models ``jaxdl train`` offers: the supervised ones (it trains classifiers)."""
    return sorted(spec.name for spec in models.ZOO if spec.objective == "supervised")


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a model on a data set and write a run folder",
        description="Train a model on a data set, print the test metrics and write a run "
        "folder with metrics.json, history.csv, loss_curve.png and confusion_matrix.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        default="mlp",
        help=f"model: {', '.join(_trainable())} "
        "(cnn, resnet and recurrent models read digits as 8x8 images or rows)",
    )
    p.add_argument("--dataset", default="digits", help=f"data set: {', '.join(data_lib.names())}")
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
        "--dropout", type=_number(float, 0, 1), default=0.2, help="dropout rate of the MLP or CNN"
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _model_options(args) -> dict:
    name = args.model.lower()
    if name == "mlp":
        return {"hidden": tuple(args.hidden), "dropout_rate": args.dropout}
    if name == "cnn":
        return {"dropout_rate": args.dropout}
    if name in ("rnn", "lstm", "gru"):
        return {"hidden_size": 128}
    return {}


def _load(args, spec):
    if spec.objective != "supervised":
        raise ValueError(
            f"model {args.model!r} is trained with the {spec.objective!r} objective; "
            "`jaxdl train` trains classifiers: see examples/vae.py and examples/gan.py"
        )
    if spec.inputs == "tokens":
        raise ValueError(
            f"model {args.model!r} reads token ids; `jaxdl train` trains on "
            "feature and image data sets: see examples/ for the Transformers"
        )
    if spec.inputs == "graph":
        raise ValueError(
            f"model {args.model!r} reads graphs; `jaxdl train` trains on feature and image "
            "data sets: see examples/node_classification.py and examples/graph_classification.py"
        )
    image = spec.inputs == "image"
    if args.dataset.lower() == "digits":
        return data_lib.load("digits", seed=args.seed, image=image)
    splits = data_lib.load(args.dataset, seed=args.seed)
    if splits.info.task != "classification":
        raise ValueError(
            f"data set {args.dataset!r} is a {splits.info.task} task; "
            "`jaxdl train` trains classifiers"
        )
    if image and len(splits.info.input_shape) != 3:
        raise ValueError(
            f"model {args.model!r} needs images (H, W, C); data set "
            f"{args.dataset!r} has features of shape {splits.info.input_shape}"
        )
    return splits


def train(args) -> dict:
    """Run ``jaxdl train`` with parsed ``args``; returns the test metrics."""
    started = time.perf_counter()
    spec = lookup("model", args.model, models.SPECS)
    splits = _load(args, spec)
    info = splits.info
    model = models.get(args.model, info.num_classes, **_model_options(args))
    optimizer = Optimizer(args.optimizer, args.lr, schedule=args.schedule, l2=args.l2)
    trainer = Trainer(
        model, loss="cross_entropy", optimizer=optimizer, metrics=("accuracy", "f1"), seed=args.seed
    )
    out = args.out or os.path.join(
        "runs", f"{args.model}-{args.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    )
    if os.path.isdir(out) and os.listdir(out) and not args.overwrite:
        raise FileExistsError(
            f"--out {out} already holds a run; choose another folder or pass --overwrite"
        )
    os.makedirs(out, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k not in ("command", "quiet", "overwrite")}
    config["out"] = out
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    callbacks = [CSVLogger(os.path.join(out, "history.csv"))]
    if args.patience > 0:
        callbacks.append(EarlyStopping("val_loss", patience=args.patience))
    try:
        history = trainer.fit(
            splits.train,
            epochs=args.epochs,
            batch_size=args.batch_size,
            validation_data=splits.validation,
            callbacks=callbacks,
            verbose=not args.quiet,
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"interrupted after {trainer.epoch} epochs; {out} holds config.json and "
            "history.csv of the finished epochs"
        ) from None
    test = trainer.evaluate(splits.test)
    elapsed = time.perf_counter() - started
    result = {
        "test": test,
        "validation": {k[4:]: v[-1] for k, v in history.items() if k.startswith("val_")},
        "epochs_run": len(history["loss"]),
        "seconds": round(elapsed, 2),
        "model": args.model,
        "dataset": args.dataset,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(result, f, indent=2)
    plotting.plot_classifier_run(
        out, history, splits.test.y, trainer.predict(splits.test.x), info.class_names
    )
    print("test: " + "  ".join(f"{k}={v:.4f}" for k, v in test.items()) + f"  ({elapsed:.1f} s)")
    print(f"wrote {out}/: metrics.json history.csv loss_curve.png confusion_matrix.png")
    return test


def list_names(args) -> None:
    """Print what each flag of ``jaxdl train`` accepts."""
    rows = {
        "models": _trainable(),
        "datasets": data_lib.names(),
        "optimizers": sorted(optim.OPTIMIZERS),
        "schedules": list(optim.SCHEDULES),
        "losses": sorted(losses.LOSSES),
        "metrics": sorted(metrics.METRICS),
    }
    for kind, names in rows.items():
        print(f"{kind + ':':12s}{', '.join(names)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxdl", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _train_parser(sub)
    sub.add_parser("list", help="list models, data sets, optimizers, schedules, losses")
    return parser


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()  # a process of its own: step buffers reused (jaxdl.host_memory)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "train":
            train(args)
        else:
            list_names(args)
    except (ValueError, TypeError) as error:  # a bad argument: a usage error
        print(f"jaxdl: error: {error}", file=sys.stderr)
        return 2
    except (FloatingPointError, OSError) as error:  # the run failed (NaN loss, disk, ...)
        print(f"jaxdl: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:  # Ctrl-C: a line, not a traceback
        print(f"jaxdl: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
