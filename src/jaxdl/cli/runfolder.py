"""The files of a run folder: JSON in and out, the folder made ready for ``jaxdl train``, its
history table, and the checked reading of a finished run for ``predict`` and ``evaluate``."""

from __future__ import annotations

import csv
import json
import os
import shutil

# the format of a run folder, kept in its preprocessing.json
RUN_FORMAT = "jaxdl-run-1"
# what `jaxdl train` writes into a run folder (--overwrite replaces these, nothing else)
_RUN_FILES = (
    "config.json",
    "preprocessing.json",
    "metrics.json",
    "history.csv",
    "loss_curve.png",
    "confusion_matrix.png",
    "samples.png",
    "reconstructions.png",
    "model",
    "checkpoints",
)


def write_json(path: str, value) -> None:
    """Write ``value`` to ``path`` as indented JSON."""
    with open(path, "w") as f:
        json.dump(value, f, indent=2)


def read_json(path: str, what: str) -> dict:
    """The JSON object in ``path``; ``what`` begins the message when the file is missing."""
    try:
        with open(path) as f:
            value = json.load(f)
    except FileNotFoundError:
        where = os.path.dirname(path) or "."
        raise FileNotFoundError(f"{what}: no {os.path.basename(path)} in {where}") from None
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def prepare_folder(args, checkpoints: str) -> str:
    """The run folder, ready for this run (its files replaced with --overwrite)."""
    out = args.out
    has_checkpoints = os.path.isdir(checkpoints) and any(
        not n.startswith(".") for n in os.listdir(checkpoints)
    )
    if args.resume:
        if not has_checkpoints:
            raise FileNotFoundError(f"--resume: no checkpoint in {checkpoints} to continue from")
        return out
    if os.path.isdir(out) and os.listdir(out):
        if not args.overwrite:
            raise FileExistsError(
                f"--out {out} already holds a run; choose another folder, pass --overwrite, "
                "or --resume to continue it"
            )
        for name in _RUN_FILES:
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        has_checkpoints = has_checkpoints and os.path.isdir(checkpoints)
    if has_checkpoints:
        raise FileExistsError(
            f"--checkpoint-dir {checkpoints} holds the checkpoints of another run; pass "
            "--resume to continue it or choose an empty folder"
        )
    os.makedirs(out, exist_ok=True)
    return out


def write_history(path: str, history: dict) -> None:
    """Write ``history`` (name -> one value an epoch) as CSV, one row an epoch."""
    names = list(history)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *names])
        for epoch in range(len(history.get("loss", []))):
            writer.writerow([epoch, *(history[n][epoch] for n in names)])


def read_run(folder: str) -> tuple[dict, dict]:
    """(config, preprocessing) of a run folder, checked."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no run folder {folder}")
    what = f"{folder} is not a run folder of jaxdl train"
    prep = read_json(os.path.join(folder, "preprocessing.json"), what)
    if prep.get("format") != RUN_FORMAT:
        raise ValueError(
            f"{folder}/preprocessing.json: expected format {RUN_FORMAT!r}, got "
            f"{prep.get('format')!r}"
        )
    config = read_json(os.path.join(folder, "config.json"), what)
    if not os.path.isfile(os.path.join(folder, "model", "model.json")):
        raise FileNotFoundError(f"{folder} holds no trained model (model/ is missing)")
    return config, prep
