"""Classification and regression metrics.

Two layers:

- Functions in scikit-learn's argument order, ``metric(y_true, y_pred_or_scores)``, with its
  ``average=`` names ("binary", "macro", "micro", "weighted"). ``y_true``: (N,) integer labels.
  ``y_pred``: (N,) integer labels, or (N, C) scores whose arg-max is the label, or (N,) float
  probabilities of the positive class, thresholded at 0.5. They run on the host in NumPy.
- Mergeable metric states in the style of CLU (``Mean``, ``Accuracy``, ``ConfusionMatrix``):
  ``State.from_batch(...)`` inside a compiled step, ``a.merge(b)`` across batches or
  devices, ``state.compute()`` at the end, and ``State.empty()``, the state of no examples,
  from which an epoch's running merge starts. States hold sums, so a metric over an epoch is
  exact, not an average of batch averages, and padded examples (mask 0) never count.

Macro averages run over the classes that occur in ``y_true`` or ``y_pred``, as scikit-learn
does; a ratio whose denominator is zero counts as 0 (scikit-learn's ``zero_division=0``).

Custom metrics stand beside the names of ``METRICS`` wherever a run takes metrics
(``Trainer(metrics=["accuracy", batch_mae, MyMetric])``); :func:`as_metric` turns each into
a :class:`Metric`, and the steps merge their states across batches and devices as they do
the built-ins'. Two forms:

- A function ``fn(outputs, targets, mask) -> (total, count)``: ``outputs`` the model's
  (B, ...) outputs of one batch, ``targets`` its (B, ...) targets, ``mask`` (B,) bool, True
  for the batch's real rows and False for the padding of its last batch. It returns two
  scalars summed over the real rows only, e.g. ``(jnp.sum(jnp.where(mask, err, 0)),
  jnp.sum(mask))``; the reported value is the sum of ``total`` over the whole data set
  divided by the sum of ``count``. Its name in the history is ``fn.__name__`` (a lambda has
  none: give it a ``def``). It runs inside the compiled step, so it is written in
  ``jax.numpy``.
- A state class, the protocol the built-in states follow: a pytree (a
  ``flax.struct.dataclass``) whose array leaves are sums, with

  - ``name``: a class attribute, its name in the history (default: the class name in
    snake case, ``MeanAbsoluteError`` -> "mean_absolute_error");
  - ``empty(num_classes=None)``, a classmethod: the state of no examples, with exactly the
    structure, shapes and dtypes ``from_batch`` returns;
  - ``from_batch(predictions, targets, mask, num_classes=None)``, a classmethod run inside
    the compiled step: ``mask`` (B,) float32, 1 for real rows and 0 for padding;
  - ``merge(other)``: the leaf-wise sum of two states (the ``pmap`` strategy sums states
    across devices, so a merge other than addition would not hold there);
  - ``compute()``: on the host, from the merged state: a float.

  ``num_classes`` (the model's output count, at least 2) is passed where the method takes
  it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxdl._checks import lookup

AVERAGES = ("binary", "macro", "micro", "weighted")

# --------------------------------------------------------------------------- functions


def _to_labels(y_pred) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        return y_pred.argmax(axis=1)
    y_pred = y_pred.reshape(len(y_pred))
    if y_pred.dtype.kind == "f":
        return (y_pred >= 0.5).astype(np.int64)
    return y_pred.astype(np.int64)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_pred = _to_labels(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must hold one label per example: got {y_true.shape[0]} "
            f"and {y_pred.shape[0]}"
        )
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """(C, C) counts; row = true class, column = predicted class (scikit-learn's layout)."""
    y_true, y_pred = _pair(y_true, y_pred)
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def accuracy(y_true, y_pred) -> float:
    """Fraction of examples whose predicted label equals the true one."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def scores_from_confusion(
    matrix, statistic: str, average: str = "macro", pos_label: int = 1
) -> float:
    """Precision, recall or F1 (``statistic``) from a confusion matrix (C, C)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if average == "binary":
        if matrix.shape[0] > 2:
            raise ValueError(
                f"average='binary' needs two classes, got {matrix.shape[0]}; "
                "choose average='macro', 'micro' or 'weighted'"
            )
        index = np.array([pos_label])
    else:
        index = np.flatnonzero((predicted + support) > 0)
    if average == "micro":
        tp_, pred_, supp_ = tp[index].sum(), predicted[index].sum(), support[index].sum()
    else:
        tp_, pred_, supp_ = tp[index], predicted[index], support[index]
    precision = _safe_divide(tp_, pred_)
    recall = _safe_divide(tp_, supp_)
    values = {
        "precision": precision,
        "recall": recall,
        "f1": _safe_divide(2 * precision * recall, precision + recall),
    }[statistic]
    if average == "weighted":
        return float(np.sum(values * supp_) / max(supp_.sum(), 1.0))
    return float(np.mean(values))


def precision(y_true, y_pred, average: str = "binary", pos_label: int = 1) -> float:
    """tp / (tp + fp), per class then averaged by ``average``."""
    return scores_from_confusion(confusion_matrix(y_true, y_pred), "precision", average, pos_label)


def recall(y_true, y_pred, average: str = "binary", pos_label: int = 1) -> float:
    """tp / (tp + fn), per class then averaged by ``average``."""
    return scores_from_confusion(confusion_matrix(y_true, y_pred), "recall", average, pos_label)


def f1_score(y_true, y_pred, average: str = "binary", pos_label: int = 1) -> float:
    """Harmonic mean of precision and recall per class, then averaged by ``average``."""
    return scores_from_confusion(confusion_matrix(y_true, y_pred), "f1", average, pos_label)


def _binary_counts(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    y_true = np.asarray(y_true).reshape(-1).astype(np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y_true.shape != scores.shape:
        raise ValueError(f"y_true has {y_true.size} entries but scores has {scores.size}")
    order = np.argsort(-scores, kind="mergesort")
    scores, y_true = scores[order], y_true[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(y_true)[last_of_each]
    fps = last_of_each + 1 - tps
    return tps, fps


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Binary ROC curve: (false-positive rates, true-positive rates), from (0, 0) to (1, 1)."""
    tps, fps = _binary_counts(y_true, scores)
    if tps[-1] == 0 or fps[-1] == 0:
        raise ValueError("ROC needs both classes among y_true; only one is present")
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def precision_recall_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Binary PR curve: (precision, recall) at each distinct threshold, highest first."""
    tps, fps = _binary_counts(y_true, scores)
    if tps[-1] == 0:
        raise ValueError("a precision-recall curve needs at least one positive in y_true")
    return tps / (tps + fps), tps / tps[-1]


def _average_over_classes(binary_metric, y_true, scores, average: str) -> float:
    y_true = np.asarray(y_true).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1 or scores.shape[1] == 1:
        return binary_metric(y_true, scores.reshape(-1))
    if scores.shape[1] == 2:
        return binary_metric(y_true, scores[:, 1])
    if average not in ("macro", "weighted"):
        raise ValueError(f"multi-class averages are 'macro' or 'weighted', got {average!r}")
    classes = np.arange(scores.shape[1])
    values = np.array([binary_metric(y_true == c, scores[:, c]) for c in classes])
    if average == "weighted":
        support = np.array([(y_true == c).sum() for c in classes], dtype=np.float64)
        return float(np.sum(values * support) / support.sum())
    return float(values.mean())


def _binary_roc_auc(y_true, scores) -> float:
    fpr, tpr = roc_curve(y_true, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _binary_average_precision(y_true, scores) -> float:
    precision_, recall_ = precision_recall_curve(y_true, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall_]) * precision_))


def roc_auc(y_true, scores, average: str = "macro") -> float:
    """Area under the ROC curve. scores: (N,) for two classes, or (N, C), one-vs-rest."""
    return _average_over_classes(_binary_roc_auc, y_true, scores, average)


def pr_auc(y_true, scores, average: str = "macro") -> float:
    """Area under the precision-recall curve as average precision, ``sum (R_n - R_n-1) P_n``.

    scores: (N,) for two classes, or (N, C), one-vs-rest.
    """
    return _average_over_classes(_binary_average_precision, y_true, scores, average)


def classifier_score(probabilities) -> float:
    """The Inception Score with any classifier: ``exp(mean_i KL(p(y|x_i) || p(y)))``.

    probabilities: (N, C) class probabilities of N generated examples; p(y) is their mean.
    It is C when every example is classified with certainty and the classes are used
    equally, and 1 when all examples look alike (or the classifier is unsure of each).
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or not np.allclose(p.sum(1), 1, atol=1e-3):
        raise ValueError(f"probabilities: expected (N, C) rows that sum to one, got {p.shape}")
    marginal = p.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0)
    return float(np.exp(terms.sum(1).mean()))


# --------------------------------------------------------------------------- states


def _mask(mask, n: int) -> jax.Array:
    return jnp.ones((n,), jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)


def predicted_labels(predictions: jax.Array) -> jax.Array:
    """Logits (B, ..., C) -> arg-max labels (B, ...); a single logit (B, ..., 1) or (B,)
    -> 1 where it is > 0."""
    if predictions.ndim >= 2 and predictions.shape[-1] > 1:
        return jnp.argmax(predictions, axis=-1)
    if predictions.ndim >= 2:
        predictions = predictions[..., 0]
    return (predictions > 0).astype(jnp.int32)


def _true_labels(targets: jax.Array, predictions: jax.Array) -> jax.Array:
    """Integer labels pass; one-hot rows (shaped like the logits) -> arg-max; probabilities
    of a single positive class -> 1 where > 0.5."""
    if jnp.issubdtype(targets.dtype, jnp.integer):
        return targets.reshape(predicted_labels(predictions).shape)
    if targets.shape == predictions.shape and predictions.shape[-1] > 1:
        return jnp.argmax(targets, axis=-1)
    return (targets.reshape(predicted_labels(predictions).shape) > 0.5).astype(jnp.int32)


def _per_example(values: jax.Array) -> jax.Array:
    return values.reshape(values.shape[0], -1).astype(jnp.float32).mean(axis=1)


@struct.dataclass
class Mean:
    """Running weighted mean: ``total / count``."""

    total: jax.Array
    count: jax.Array

    @classmethod
    def from_values(cls, values: jax.Array, mask: jax.Array | None = None) -> Mean:
        """values: (B,) per-example values; mask: (B,) weights, 0 for padding."""
        m = _mask(mask, values.shape[0])
        return cls(total=jnp.sum(values.astype(jnp.float32) * m), count=jnp.sum(m))

    @classmethod
    def empty(cls, num_classes: int | None = None) -> Mean:
        """The state of no examples: total 0, count 0 (float32 scalars)."""
        return cls(total=jnp.zeros((), jnp.float32), count=jnp.zeros((), jnp.float32))

    def merge(self, other: Mean) -> Mean:
        """The state of both sets of examples: totals and counts added."""
        return jax.tree.map(jnp.add, self, other)

    def compute(self) -> float:
        """``total / count`` as a Python float; NaN for the state of no examples."""
        count = float(self.count)
        return float(self.total) / count if count > 0 else float("nan")


@struct.dataclass
class Accuracy(Mean):
    """Fraction of correct arg-max predictions."""

    @classmethod
    def from_batch(cls, predictions, targets, mask=None, num_classes=None) -> Accuracy:
        """predictions: (B, C) or (B,) logits, or (B, T, C) for a label per position;
        targets: (B,) or (B, T) labels, or one-hot rows. Each example counts the fraction of
        its positions that are right."""
        correct = predicted_labels(predictions) == _true_labels(targets, predictions)
        return cls.from_values(_per_example(correct), mask)


@struct.dataclass
class ConfusionMatrix:
    """Counts (C, C) with rows = true class; computes precision, recall or F1 from them."""

    matrix: jax.Array
    statistic: str = struct.field(pytree_node=False, default="f1")
    average: str = struct.field(pytree_node=False, default="macro")

    @classmethod
    def from_batch(
        cls, predictions, targets, mask=None, num_classes=None, statistic="f1", average="macro"
    ) -> ConfusionMatrix:
        """predictions: (B, C) or (B,) logits, or (B, T, C); targets: (B,) or (B, T) labels,
        or one-hot rows. Every position counts once."""
        if num_classes is None:
            num_classes = max(predictions.shape[-1], 2) if predictions.ndim >= 2 else 2
        pred = predicted_labels(predictions)
        true = _true_labels(targets, predictions)
        m = jnp.broadcast_to(
            _mask(mask, pred.shape[0]).reshape(-1, *[1] * (pred.ndim - 1)), pred.shape
        )
        flat = (true * num_classes + pred).reshape(-1)
        counts = jnp.zeros((num_classes * num_classes,), jnp.float32).at[flat].add(m.reshape(-1))
        return cls(counts.reshape(num_classes, num_classes), statistic, average)

    @classmethod
    def empty(cls, num_classes: int, statistic="f1", average="macro") -> ConfusionMatrix:
        """The state of no examples: a (C, C) matrix of zeros (C at least 2)."""
        c = max(int(num_classes or 2), 2)
        return cls(jnp.zeros((c, c), jnp.float32), statistic, average)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """The state of both sets of examples: the (C, C) counts added."""
        return self.replace(matrix=self.matrix + other.matrix)

    def compute(self) -> float:
        """``statistic`` ("precision", "recall" or "f1") under ``average``, as a float."""
        return scores_from_confusion(np.asarray(self.matrix), self.statistic, self.average)


@dataclass(frozen=True)
class Metric:
    """A metric of a run: ``from_batch(predictions, targets, mask, num_classes) -> state`` in
    a compiled step, and ``empty(num_classes) -> state`` of no examples, with the structure,
    shapes and dtypes ``from_batch`` returns (so no trace is spent to learn them).

    Attributes:
      from_batch: ``(predictions (B, ...), targets (B, ...), mask (B,) float32 or None,
        num_classes) -> state``, a mergeable state (``Mean``, ``Accuracy``, ...).
      empty: ``(num_classes) -> state`` of no examples.
      name: the key of its state and its name in the history (``str(metric)`` too).
    """

    from_batch: Callable
    empty: Callable[[int | None], object]
    name: str = ""

    def __call__(self, predictions, targets, mask=None, num_classes=None):
        return self.from_batch(predictions, targets, mask, num_classes)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Metric({self.name!r})"


def _error_metric(kind: str) -> Metric:
    def from_batch(predictions, targets, mask=None, num_classes=None) -> Mean:
        diff = predictions.astype(jnp.float32) - targets.astype(jnp.float32).reshape(
            predictions.shape
        )
        values = jnp.abs(diff) if kind == "mae" else diff**2
        return Mean.from_values(_per_example(values), mask)

    return Metric(from_batch, Mean.empty)


def _confusion_metric(statistic: str) -> Metric:
    def from_batch(predictions, targets, mask=None, num_classes=None) -> ConfusionMatrix:
        return ConfusionMatrix.from_batch(
            predictions, targets, mask, num_classes, statistic=statistic, average="macro"
        )

    return Metric(from_batch, lambda num_classes: ConfusionMatrix.empty(num_classes, statistic))


METRICS: dict[str, Metric] = {
    name: replace(metric, name=name)
    for name, metric in {
        "accuracy": Metric(Accuracy.from_batch, Accuracy.empty),
        "precision": _confusion_metric("precision"),
        "recall": _confusion_metric("recall"),
        "f1": _confusion_metric("f1"),
        "mae": _error_metric("mae"),
        "mse": _error_metric("mse"),
    }.items()
}


def get(name) -> Metric:
    """The metric called ``name`` (see ``METRICS``); a custom metric (a function or a state
    class, see the module's docstring) or a ``Metric`` goes through :func:`as_metric`."""
    if isinstance(name, str):
        return lookup("metric", name, METRICS)
    return as_metric(name)


def as_metric(spec) -> Metric:
    """A :class:`Metric` from what a run's ``metrics=`` holds: a name of ``METRICS``, a
    ``Metric``, a function ``fn(outputs, targets, mask) -> (total, count)`` or a state class
    (the module's docstring gives both protocols). A wrong kind is a TypeError naming it."""
    if isinstance(spec, str):
        return lookup("metric", spec, METRICS)
    if isinstance(spec, Metric):
        if not spec.name:
            raise ValueError(f"metrics: a Metric needs a name, got {spec!r}")
        return spec
    if isinstance(spec, type):
        return _class_metric(spec)
    if callable(spec) and not hasattr(spec, "from_batch"):
        return _function_metric(spec)
    raise TypeError(
        "metrics: expected a name of jaxdl.metrics.METRICS, a function (outputs, targets, "
        "mask) -> (total, count) or a metric state class (empty, from_batch, merge, "
        f"compute), got {type(spec).__name__}: {spec!r}"
        + ("; pass the class itself, not an instance" if hasattr(spec, "from_batch") else "")
    )


def _takes(fn, argument: str) -> bool:
    """Whether ``fn`` takes ``argument`` (by that name or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _function_metric(fn: Callable) -> Metric:
    """``fn(outputs, targets, mask) -> (total, count)`` as a metric whose state is a ``Mean``."""
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"metrics: the function {fn!r} has no name for the history (a lambda or a "
            "partial); define it with def, or set its __name__"
        )

    def from_batch(predictions, targets, mask=None, num_classes=None) -> Mean:
        real = _mask(mask, jax.tree.leaves(predictions)[0].shape[0]) > 0
        result = fn(predictions, targets, real)
        if not (isinstance(result, tuple | list) and len(result) == 2) or any(
            jnp.ndim(part) != 0 for part in result
        ):
            shapes = (
                [jnp.shape(part) for part in result]
                if isinstance(result, tuple | list)
                else jnp.shape(result)
            )
            raise ValueError(
                f"the metric {name!r} must return (total, count), two scalars summed over the "
                f"batch's real rows (mask True); got {type(result).__name__} of shape(s) {shapes}"
            )
        total, count = result
        return Mean(jnp.asarray(total, jnp.float32), jnp.asarray(count, jnp.float32))

    return Metric(from_batch, Mean.empty, name)


def _class_metric(cls: type) -> Metric:
    """A state class that follows the built-in states' protocol, as a metric."""
    missing = [m for m in ("empty", "from_batch", "merge", "compute") if not hasattr(cls, m)]
    if missing:
        raise TypeError(
            f"metrics: the class {cls.__name__} lacks {', '.join(missing)}; a metric state "
            "class has classmethods empty(num_classes=None) and from_batch(predictions, "
            "targets, mask, num_classes=None) and methods merge(other) and compute()"
        )
    name = getattr(cls, "name", None)
    name = name if isinstance(name, str) and name else _snake_case(cls.__name__)
    batch_takes_classes = _takes(cls.from_batch, "num_classes")
    empty_takes_classes = _takes(cls.empty, "num_classes")

    def empty(num_classes=None):
        return cls.empty(num_classes=num_classes) if empty_takes_classes else cls.empty()

    def from_batch(predictions, targets, mask=None, num_classes=None):
        mask = _mask(mask, jax.tree.leaves(predictions)[0].shape[0])
        options = {"num_classes": num_classes} if batch_takes_classes else {}
        state = cls.from_batch(predictions, targets, mask, **options)
        _check_like_empty(name, cls, state, empty(num_classes))
        return state

    return Metric(from_batch, empty, name)


def _check_like_empty(name: str, cls: type, state, empty_state) -> None:
    """A custom state must be a pytree of arrays shaped as its ``empty()``: the epoch's
    running merge is a compiled carry that starts from it."""

    def describe(tree):
        leaves, structure = jax.tree.flatten(tree)
        for leaf in leaves:
            if not isinstance(leaf, jax.Array | np.ndarray | np.generic | int | float):
                raise TypeError(
                    f"the metric {name!r}: {cls.__name__} must be a pytree of arrays (e.g. a "
                    f"flax.struct.dataclass); it holds a {type(leaf).__name__}"
                )
        return structure, [(jnp.shape(leaf), jnp.result_type(leaf)) for leaf in leaves]

    got, want = describe(state), describe(empty_state)
    if got != want:
        raise ValueError(
            f"the metric {name!r}: {cls.__name__}.from_batch returned {got[1]} but "
            f"{cls.__name__}.empty() gives {want[1]} (shapes, dtypes); they must hold the same "
            "arrays, which merge adds"
        )


def empty_states(names, num_classes: int | None) -> dict:
    """``{"loss": Mean.empty(), name: metric.empty(num_classes), ...}`` for the metrics
    ``names`` (names of ``METRICS`` or custom metrics, see :func:`as_metric`): where the
    running merge of an epoch's metric states starts."""
    metrics = [as_metric(name) for name in names]
    return {"loss": Mean.empty(), **{m.name: m.empty(num_classes) for m in metrics}}


def merge(a, b):
    """Merge two dicts of metric states name by name."""
    return {k: a[k].merge(b[k]) for k in a}


def _number(value):
    """A state's ``compute()`` as a Python float where it is one number."""
    array = np.asarray(value)
    return float(array) if array.size == 1 and array.dtype.kind in "fiub" else value


def compute(states) -> dict[str, float]:
    """A dict of metric states -> a dict of Python floats."""
    return {k: _number(v.compute()) for k, v in jax.device_get(states).items()}
