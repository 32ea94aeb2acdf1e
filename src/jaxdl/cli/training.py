"""``jaxdl train``: train a model on a data set and write a run folder (model, checkpoints,
history, metrics and pictures), stopping cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime

import numpy as np

from jaxdl import metrics, models, plotting
from jaxdl._checks import lookup
from jaxdl.cli.arguments import NOT_SAVED
from jaxdl.cli.catalog import DEFAULT_DATASET, check_combination, check_image_size
from jaxdl.cli.datasets import Data, fit_scaler, load_raw, preprocessing, scaled
from jaxdl.cli.modelling import build_model, fit_data, format_values, loss_and_metrics
from jaxdl.cli.runfolder import prepare_folder, write_history, write_json
from jaxdl.data.dataset import ArrayDataset
from jaxdl.optimizer import Optimizer
from jaxdl.train import CSVLogger, EarlyStopping, Trainer
from jaxdl.train.checkpointing import Checkpoint

log = logging.getLogger("jaxdl.cli")


def _pictures(out: str, spec, trainer, data: Data, history: dict, seed: int) -> list[str]:
    """The run's pictures: the loss curve, and a confusion matrix or image grids."""
    import jax

    written = [plotting.plot_history(history, os.path.join(out, "loss_curve.png"))]
    test, names = data.test, list(data.info.class_names)
    if spec.objective != "supervised":
        variables, model = trainer.state.variables(), trainer.model
        key = jax.random.key(seed)
        shown = test.x[:10]
        if spec.name in ("vae", "gan"):
            samples = np.asarray(model.apply(variables, key, 30, method="sample"))
            title = f"{spec.name.upper()} samples"
            path = os.path.join(out, "samples.png")
            written.append(plotting.plot_image_grid(samples, path, title=title))
        if spec.name in ("vae", "autoencoder"):
            if spec.name == "vae":
                again = model.apply(variables, shown, method="reconstruct")
            else:
                again = jax.nn.sigmoid(trainer.predict(shown))
            grid = np.concatenate([shown, np.asarray(again)])
            path = os.path.join(out, "reconstructions.png")
            labels = ["test", spec.name]
            written.append(plotting.plot_image_grid(grid, path, row_labels=labels))
        return written
    if data.task != "classification":
        return written
    if data.kind == "nodes":
        keep = test.mask > 0
        y, scores = test.labels[keep], trainer.predict(test.graph)[keep]
    elif data.kind == "graphs":
        y, scores = test.labels, trainer.predict(test)
    else:
        y, scores = test.y, trainer.predict(test.x)
    matrix = metrics.confusion_matrix(y, scores, len(names))
    path = os.path.join(out, "confusion_matrix.png")
    written.append(plotting.plot_confusion_matrix(matrix, path, names))
    return written


def train(args) -> int:
    """Run ``jaxdl train`` with parsed ``args``; returns the exit status."""
    started = time.perf_counter()
    spec = lookup("model", args.model, models.SPECS)
    args.model = spec.name
    if args.dataset is None:
        args.dataset = DEFAULT_DATASET.get(spec.name, "digits")
    check_combination(args, spec)
    optimizer = Optimizer(args.optimizer, args.lr, schedule=args.schedule, l2=args.l2)
    data = load_raw(args, spec)
    if data.source["source"] == "hf" and data.kind == "images":
        # a Hugging Face set declares no image size: checked once its images are decoded
        check_image_size(spec, args.dataset, *data.input_shape[:2])
    scaler = fit_scaler(args, spec, data)
    train_set, validation, test = (
        scaled(s, scaler) for s in (data.train, data.validation, data.test)
    )
    if isinstance(validation, ArrayDataset) and len(validation) == 0:
        validation = None
    if validation is None and args.patience:
        raise ValueError(f"--patience needs a validation split; {args.dataset!r} has none")
    if isinstance(test, ArrayDataset) and len(test) == 0:
        raise ValueError(f"data set {args.dataset!r} has too few examples for a test split")
    loss, run_metrics = loss_and_metrics(spec, data.task)
    model = build_model(args, spec, data)
    named = args.dataset.removeprefix("hf:")  # no colon in the run folder's name
    dataset_name = os.path.splitext(os.path.basename(os.path.normpath(named)))[0]
    args.out = args.out or os.path.join(
        "runs", f"{spec.name}-{dataset_name}-{datetime.now():%Y%m%d-%H%M%S}"
    )
    checkpoints = args.checkpoint_dir or os.path.join(args.out, "checkpoints")
    trainer = Trainer(  # refuses what it cannot run (a precision, ...) before any file is written
        model,
        loss=loss,
        optimizer=optimizer,
        metrics=run_metrics,
        seed=args.seed,
        precision=args.precision,
        checkpoint=Checkpoint(checkpoints, every_epochs=args.checkpoint_every, keep=2),
    )
    out = prepare_folder(args, checkpoints)
    config = {k: v for k, v in vars(args).items() if k not in NOT_SAVED}
    write_json(os.path.join(out, "config.json"), config)
    write_json(os.path.join(out, "preprocessing.json"), preprocessing(data, spec, scaler))
    if args.resume:
        log.info("resuming %s from its newest checkpoint in %s", out, checkpoints)

    callbacks = [CSVLogger(os.path.join(out, "history.csv"), append=args.resume)]
    if args.patience > 0:
        callbacks.append(EarlyStopping("val_loss", patience=args.patience))
    stopped = None
    try:
        history = trainer.fit(
            fit_data(train_set, spec),
            epochs=args.epochs,
            batch_size=args.batch_size,
            validation_data=None if validation is None else fit_data(validation, spec),
            callbacks=callbacks,
            verbose=not args.quiet,
            resume=args.resume,
        )
    except KeyboardInterrupt:
        stopped = ("interrupted", 130)
    except SystemExit as exit:  # the Checkpoint callback's answer to SIGTERM
        if not str(exit.code).startswith("SIGTERM"):
            raise
        stopped = ("stopped by SIGTERM", 143)
    if stopped is not None:
        if trainer.state is None or trainer.run is None:
            print(f"jaxdl: {stopped[0]} before training began", file=sys.stderr)
            return stopped[1]
        history = trainer.run.history
    trainer.export(os.path.join(out, "model"))
    write_history(os.path.join(out, "history.csv"), history)
    result = {
        "epochs_run": len(history.get("loss", [])),
        "validation": {k[4:]: v[-1] for k, v in history.items() if k.startswith("val_")},
        "model": spec.name,
        "dataset": args.dataset,
    }
    if stopped is not None:
        plotting.plot_history(history, os.path.join(out, "loss_curve.png"))
        run = trainer.run
        inside = ""
        if 0 < run.batch < run.num_batches:
            inside = f" and {run.batch} of {run.num_batches} steps of epoch {trainer.epoch + 1}"
        result |= {"stopped": stopped[0], "seconds": round(time.perf_counter() - started, 2)}
        write_json(os.path.join(out, "metrics.json"), result)
        print(
            f"jaxdl: {stopped[0]} after {trainer.epoch} of {args.epochs} epochs{inside}; "
            f"{out} holds the model of that point (model/), history.csv, loss_curve.png and a "
            f"checkpoint in {checkpoints}; continue with: jaxdl train --resume --out {out}",
            file=sys.stderr,
        )
        return stopped[1]
    test_values = trainer.evaluate(fit_data(test, spec))
    pictures = _pictures(out, spec, trainer, data, history, args.seed)
    elapsed = time.perf_counter() - started
    result = {"test": test_values, **result, "seconds": round(elapsed, 2)}
    write_json(os.path.join(out, "metrics.json"), result)
    print(f"test: {format_values(test_values)}  ({elapsed:.1f} s)")
    shown = ["metrics.json", "history.csv", *(os.path.basename(p) for p in pictures), "model/"]
    print(f"wrote {out}/: {' '.join(shown)}")
    return 0
