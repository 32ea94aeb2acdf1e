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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
        return jax.tree.map(jnp.add, self, other)

    def compute(self) -> float:
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
        return self.replace(matrix=self.matrix + other.matrix)

    def compute(self) -> float:
        return scores_from_confusion(np.asarray(self.matrix), self.statistic, self.average)


@dataclass(frozen=True)
class Metric:
    """A metric by name: ``from_batch(predictions, targets, mask, num_classes) -> state`` in
    a compiled step, and ``empty(num_classes) -> state`` of no examples, with the structure,
    shapes and dtypes ``from_batch`` returns (so no trace is spent to learn them)."""

    from_batch: Callable
    empty: Callable[[int | None], object]

    def __call__(self, predictions, targets, mask=None, num_classes=None):
        return self.from_batch(predictions, targets, mask, num_classes)


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
    "accuracy": Metric(Accuracy.from_batch, Accuracy.empty),
    "precision": _confusion_metric("precision"),
    "recall": _confusion_metric("recall"),
    "f1": _confusion_metric("f1"),
    "mae": _error_metric("mae"),
    "mse": _error_metric("mse"),
}


def get(name: str) -> Metric:
    """The metric called ``name`` (see ``METRICS``)."""
    return lookup("metric", name, METRICS)


def empty_states(names, num_classes: int | None) -> dict:
    """``{"loss": Mean.empty(), name: METRICS[name].empty(num_classes), ...}``: where the
    running merge of an epoch's metric states starts."""
    return {"loss": Mean.empty(), **{name: get(name).empty(num_classes) for name in names}}


def merge(a, b):
    """Merge two dicts of metric states name by name."""
    return {k: a[k].merge(b[k]) for k in a}


def compute(states) -> dict[str, float]:
    """A dict of metric states -> a dict of Python floats."""
    return {k: v.compute() for k, v in jax.device_get(states).items()}
