"""Grid and random search over hyperparameters, scored on a validation split or by k-fold.

A trial is one configuration, a dict such as ``{"learning_rate": 1e-3, "hidden_units": 64,
"layers": 2, "optimizer": "adam", "dropout": 0.1, "weight_decay": 1e-4, "epochs": 20}``.
``build(config, num_classes)`` turns it into a ``Trainer``; the default, :func:`mlp_trainer`,
knows the names above. Every trial is trained from the same seed, so trials differ only in
their hyperparameters, and the results come back sorted by score.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from jaxdl import _checks
from jaxdl.data.adapters import arrays_of
from jaxdl.data.sampling import stratified_kfold
from jaxdl.models.mlp import MLP
from jaxdl.optimizer import Optimizer
from jaxdl.train.trainer import Trainer


@dataclass(frozen=True)
class Distribution:
    """A range to draw a hyperparameter from in :func:`random_search`."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self):
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(
                f"expected 0 < low < high for a log range, low < high otherwise; got "
                f"low={self.low}, high={self.high}"
            )

    def sample(self, rng: np.random.Generator):
        """One value drawn from ``rng`` (a NumPy ``Generator``), rounded for an integer range."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else float(value)


def uniform(low: float, high: float) -> Distribution:
    """Uniform on [low, high]."""
    return Distribution(low, high)


def log_uniform(low: float, high: float) -> Distribution:
    """Uniform in log space (learning rates, weight decays)."""
    return Distribution(low, high, log=True)


def int_uniform(low: int, high: int) -> Distribution:
    """An integer from low to high, inclusive (hidden units, layers, epochs)."""
    return Distribution(low - 0.4999, high + 0.4999, integer=True)


def mlp_trainer(config: Mapping, num_classes: int, seed: int = 0) -> Trainer:
    """A ``Trainer`` of an ``MLP`` from ``config``: ``hidden_units`` (64), ``layers`` (1),
    ``activation`` ("relu"), ``dropout`` (0), ``optimizer`` ("adam"), ``learning_rate``
    (1e-3), ``weight_decay`` (0: decoupled for "adamw", an L2 penalty of gradient
    ``weight_decay * w`` for the others) and ``schedule`` ("constant")."""
    hidden = [int(config.get("hidden_units", 64))] * int(config.get("layers", 1))
    model = MLP(
        features=(*hidden, num_classes),
        activation=config.get("activation", "relu"),
        dropout_rate=float(config.get("dropout", 0.0)),
    )
    optimizer = config.get("optimizer", "adam")
    decay = float(config.get("weight_decay", 0.0))
    options = {"weight_decay": decay} if optimizer == "adamw" else {}
    description = Optimizer(
        optimizer,
        float(config.get("learning_rate", 1e-3)),
        schedule=config.get("schedule", "constant"),
        l2=0.0 if optimizer == "adamw" else decay / 2,
        options=options,
    )
    return Trainer(model, optimizer=description, seed=seed)


class SearchResults:
    """The trials of a search, best first.

    ``rows``: one dict per trial with its hyperparameters, ``score`` (mean over folds),
    ``score_std``, ``fold_scores`` and ``seconds``. ``best`` is the first row's configuration.
    """

    def __init__(self, rows: list[dict], names: list[str], metric: str, mode: str):
        reverse = mode == "max"
        self.rows = sorted(rows, key=lambda r: -r["score"] if reverse else r["score"])
        self.names, self.metric, self.mode = names, metric, mode

    @property
    def best(self) -> dict:
        """The best trial's hyperparameters."""
        return {name: self.rows[0][name] for name in self.names}

    def __len__(self) -> int:
        return len(self.rows)

    def table(self) -> str:
        """The rows as aligned text, best first."""
        columns = ["rank", *self.names, self.metric, "std", "seconds"]
        lines = [columns]
        for rank, row in enumerate(self.rows, 1):
            values = [row[n] for n in self.names]
            lines.append(
                [
                    str(rank),
                    *(f"{v:.3g}" if isinstance(v, float) else str(v) for v in values),
                    f"{row['score']:.4f}",
                    f"{row['score_std']:.4f}",
                    f"{row['seconds']:.1f}",
                ]
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)

    def to_csv(self, path: str | os.PathLike) -> str:
        """Write the rows (best first) as CSV; returns the path."""
        fields = ["rank", *self.names, "score", "score_std", "fold_scores", "seconds"]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for rank, row in enumerate(self.rows, 1):
                fold_scores = " ".join(f"{s:.6g}" for s in row["fold_scores"])
                writer.writerow({**row, "rank": rank, "fold_scores": fold_scores})
        return os.fspath(path)

    def plot(self, path: str | os.PathLike) -> str:
        """Score against each hyperparameter, one panel each; returns the path."""
        from jaxdl.plotting import plot_search_results

        return plot_search_results(self.rows, self.names, path, self.metric)


def grid(space: Mapping[str, Sequence]) -> list[dict]:
    """Every combination of the values in ``space`` ({name: [values]}), in order."""
    names = list(space)
    for name in names:
        values = space[name]
        if isinstance(values, str | Distribution) or not isinstance(values, Sequence):
            raise TypeError(
                f"grid search: space[{name!r}] must be a list of values, got {values!r}"
            )
        if not values:
            raise ValueError(f"grid search: space[{name!r}] is empty")
    return [dict(zip(names, combo)) for combo in itertools.product(*(space[n] for n in names))]


def sample(space: Mapping, trials: int, seed: int = 0) -> list[dict]:
    """``trials`` configurations drawn from ``space``: a ``Distribution`` is sampled, a list
    is chosen from uniformly, anything else is kept fixed."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials: expected a positive int, got {trials!r}")
    rng = np.random.default_rng(_checks.check_seed(seed))
    configs = []
    for _ in range(trials):
        config = {}
        for name, values in space.items():
            if isinstance(values, Distribution):
                config[name] = values.sample(rng)
            elif isinstance(values, Sequence) and not isinstance(values, str):
                config[name] = values[int(rng.integers(len(values)))]
            else:
                config[name] = values
        configs.append(config)
    return configs


def _score_trial(build, config, folds, num_classes, metric, seed, batch_size) -> list[float]:
    scores = []
    for (x_train, y_train), validation in folds:
        trainer = build(config, num_classes, seed)
        trainer.fit(
            (x_train, y_train),
            epochs=int(config.get("epochs", 10)),
            batch_size=min(int(config.get("batch_size", batch_size)), len(x_train)),
            verbose=False,
        )
        scores.append(float(trainer.evaluate(validation)[metric]))
    return scores


def run_search(
    configs: Sequence[Mapping],
    data,
    validation_data=None,
    *,
    folds: int | None = None,
    build: Callable[..., Trainer] = mlp_trainer,
    metric: str = "accuracy",
    mode: str = "auto",
    seed: int = 0,
    batch_size: int = 32,
    verbose: bool = False,
) -> SearchResults:
    """Train and score every configuration of ``configs``.

    Args:
      data: (x, y) or a data set with ``.x``/``.y``, or ``jaxdl.data.Splits`` (its train and
        validation parts are used).
      validation_data: scored on after training on ``data``; or ``folds=k`` for stratified
        k-fold cross-validation on ``data`` (the score is the mean over the folds).
      build: ``build(config, num_classes, seed) -> Trainer``; ``config["epochs"]`` (10) and
        ``config["batch_size"]`` (``batch_size``) go to ``fit``.
      metric: what is scored, a key of ``Trainer.evaluate``'s result.
      mode: whether higher ("max") or lower ("min") is better; "auto" is min for losses
        and errors, max otherwise.
    """
    if hasattr(data, "train") and hasattr(data, "validation"):
        validation_data = data.validation if validation_data is None else validation_data
        data = data.train
    x, y = arrays_of(data, "data")
    y = np.asarray(y)
    num_classes = int(y.max()) + 1 if y.ndim == 1 and y.dtype.kind in "iu" else y.shape[-1]
    if (validation_data is None) == (folds is None):
        raise ValueError("give either validation_data (or Splits as data) or folds=k, not both")
    if folds is not None:
        split = [(x[t], y[t], x[v], y[v]) for t, v in stratified_kfold(y, folds, seed=seed)]
        parts = [((xt, yt), (xv, yv)) for xt, yt, xv, yv in split]
    else:
        parts = [((x, y), validation_data)]
    mode = _checks.monitor_mode(metric, mode)
    names = list(dict.fromkeys(name for config in configs for name in config))
    rows = []
    for i, config in enumerate(configs):
        start = time.perf_counter()
        scores = _score_trial(build, config, parts, num_classes, metric, seed, batch_size)
        row = {name: config.get(name) for name in names}
        row.update(
            score=float(np.mean(scores)),
            score_std=float(np.std(scores)),
            fold_scores=scores,
            seconds=time.perf_counter() - start,
        )
        rows.append(row)
        if verbose:
            print(f"trial {i + 1}/{len(configs)} {config}: {metric} {row['score']:.4f}")
    return SearchResults(rows, names, metric, mode)


def grid_search(space: Mapping[str, Sequence], data, validation_data=None, **options):
    """Every combination of ``space`` ({name: [values]}); see :func:`run_search`."""
    return run_search(grid(space), data, validation_data, **options)


def random_search(space: Mapping, data, validation_data=None, *, trials: int = 10, **options):
    """``trials`` configurations drawn from ``space`` (lists, ``log_uniform``, ``uniform``,
    ``int_uniform``, fixed values) with the search's seed; see :func:`run_search`."""
    configs = sample(space, trials, options.get("seed", 0))
    return run_search(configs, data, validation_data, **options)
