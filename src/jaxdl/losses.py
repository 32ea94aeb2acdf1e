"""Losses: ``loss(predictions, targets, weights=None, reduction="mean")``.

Argument order follows optax: predictions first, targets second. Every loss reduces in
two stages:

1. to one value per example, of shape ``(batch,)``. Element-wise losses (``mse``, ``mae``,
   ``msle``, ``hinge``, ``squared_hinge``, ``binary_cross_entropy``) average over every
   non-batch axis; distribution losses (``cross_entropy``, ``sparse_cross_entropy``,
   ``kl_divergence``) sum over the class axis (the last one).
2. over the batch, by ``reduction``: ``"mean"`` (the default) is the weighted mean
   ``sum(w * l) / sum(w)`` (a plain mean when ``weights`` is None, so it equals the mean over
   all elements as in Keras and PyTorch), ``"sum"`` is ``sum(w * l)`` and ``"none"`` returns the
   per-example values ``w * l``.

``weights`` has shape ``(batch,)``: per-example weights, or a 0/1 mask of padded examples.
Classification losses take logits by default; pass ``from_logits=False`` for probabilities.

A custom loss (``Trainer(loss=fn)``, ``jaxdl.tasks.Supervised(fn)``) is a callable
``fn(predictions, targets, **loss_options) -> values`` of the model's outputs (batch, ...) and
the batch's targets (batch, ...) that returns stage 1 only: one value per example, shape
``(batch,)``, written in ``jax.numpy``. The training and evaluation steps take its weighted
mean over the batch's real rows (padding and ``sample_weight`` enter there), so it never
sees a mask; anything but ``(batch,)`` is refused when the step is traced. A model of several
outputs takes one loss per output: ``Supervised({"digit": "cross_entropy", "size": mse_fn},
loss_weights={"size": 0.5})``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxdl._checks import lookup

_EPS = 1e-7


def _per_example_mean(values: jax.Array) -> jax.Array:
    """(batch, ...) -> (batch,): mean over every axis but the first."""
    if values.ndim == 0:
        return values[None]
    if values.ndim == 1:
        return values
    return jnp.mean(values.reshape(values.shape[0], -1), axis=1)


def _reduce(per_example: jax.Array, weights, reduction: str) -> jax.Array:
    if weights is not None:
        weights = jnp.asarray(weights, per_example.dtype)
        per_example = per_example * weights
    if reduction == "none":
        return per_example
    total = jnp.sum(per_example)
    if reduction == "sum":
        return total
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if weights is None:
        return total / per_example.shape[0]
    denominator = jnp.sum(weights)
    return jnp.where(denominator > 0, total / jnp.where(denominator > 0, denominator, 1.0), 0.0)


def _as_float(x) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _same_shape(predictions, targets) -> tuple[jax.Array, jax.Array]:
    """Element-wise losses need one target per prediction; (B,) targets fit (B, 1) outputs."""
    predictions, targets = _as_float(predictions), _as_float(targets)
    if predictions.shape == targets.shape:
        return predictions, targets
    if predictions.shape[-1:] == (1,) and targets.shape == predictions.shape[:-1]:
        return predictions, targets[..., None]
    raise ValueError(
        f"predictions {predictions.shape} and targets {targets.shape} must have the same shape "
        "for an element-wise loss"
    )


def mse(predictions, targets, weights=None, reduction: str = "mean") -> jax.Array:
    """Mean squared error. predictions, targets: (batch, ...) of the same shape."""
    values = optax.losses.squared_error(*_same_shape(predictions, targets))
    return _reduce(_per_example_mean(values), weights, reduction)


def mae(predictions, targets, weights=None, reduction: str = "mean") -> jax.Array:
    """Mean absolute error. predictions, targets: (batch, ...) of the same shape."""
    predictions, targets = _same_shape(predictions, targets)
    values = jnp.abs(predictions - targets)
    return _reduce(_per_example_mean(values), weights, reduction)


def msle(predictions, targets, weights=None, reduction: str = "mean") -> jax.Array:
    """Mean squared logarithmic error, ``(log1p(p) - log1p(t))**2``; values below 0 are clipped."""
    predictions, targets = _same_shape(predictions, targets)
    p = jnp.log1p(jnp.maximum(predictions, 0.0))
    t = jnp.log1p(jnp.maximum(targets, 0.0))
    return _reduce(_per_example_mean((p - t) ** 2), weights, reduction)


def _signed(predictions, targets) -> tuple[jax.Array, jax.Array]:
    predictions, targets = _same_shape(predictions, targets)
    return predictions, jnp.where(targets == 0, -1.0, targets)


def hinge(predictions, targets, weights=None, reduction: str = "mean") -> jax.Array:
    """Hinge loss ``max(0, 1 - t * p)``. targets in {-1, +1}; 0 is read as -1, so {0, 1} works."""
    values = optax.losses.hinge_loss(*_signed(predictions, targets))
    return _reduce(_per_example_mean(values), weights, reduction)


def squared_hinge(predictions, targets, weights=None, reduction: str = "mean") -> jax.Array:
    """Squared hinge loss ``max(0, 1 - t * p)**2``, targets as for :func:`hinge`."""
    values = optax.losses.hinge_loss(*_signed(predictions, targets)) ** 2
    return _reduce(_per_example_mean(values), weights, reduction)


def binary_cross_entropy(
    predictions, targets, weights=None, reduction: str = "mean", from_logits: bool = True
) -> jax.Array:
    """Binary cross-entropy. predictions: logits (or probabilities with ``from_logits=False``)
    of shape (batch, ...); targets: the same shape, values in [0, 1]."""
    predictions, targets = _same_shape(predictions, targets)
    if from_logits:
        values = optax.losses.sigmoid_binary_cross_entropy(predictions, targets)
    else:
        p = jnp.clip(predictions, _EPS, 1.0 - _EPS)
        values = -(targets * jnp.log(p) + (1.0 - targets) * jnp.log1p(-p))
    return _reduce(_per_example_mean(values), weights, reduction)


def _log_probs(predictions, from_logits: bool) -> jax.Array:
    predictions = _as_float(predictions)
    if from_logits:
        return jax.nn.log_softmax(predictions, axis=-1)
    return jnp.log(jnp.clip(predictions, _EPS, 1.0))


def sparse_cross_entropy(
    predictions, targets, weights=None, reduction: str = "mean", from_logits: bool = True
) -> jax.Array:
    """Cross-entropy with integer labels. predictions: (batch, classes); targets: (batch,) ints."""
    targets = jnp.asarray(targets).astype(jnp.int32)
    if from_logits:
        values = optax.losses.softmax_cross_entropy_with_integer_labels(
            _as_float(predictions), targets
        )
    else:
        log_p = _log_probs(predictions, from_logits=False)
        values = -jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    return _reduce(_per_example_mean(values), weights, reduction)


def cross_entropy(
    predictions, targets, weights=None, reduction: str = "mean", from_logits: bool = True
) -> jax.Array:
    """Categorical cross-entropy ``-sum_c t_c log p_c``.

    predictions: (batch, classes) logits (or probabilities with ``from_logits=False``);
    targets: (batch, classes) one-hot or probability rows. Integer labels of shape (batch,)
    are accepted too and handled as :func:`sparse_cross_entropy`.
    """
    targets = jnp.asarray(targets)
    if targets.ndim == jnp.ndim(predictions) - 1:
        return sparse_cross_entropy(predictions, targets, weights, reduction, from_logits)
    if from_logits:
        values = optax.losses.softmax_cross_entropy(_as_float(predictions), _as_float(targets))
    else:
        values = -jnp.sum(_as_float(targets) * _log_probs(predictions, False), axis=-1)
    return _reduce(_per_example_mean(values), weights, reduction)


def kl_divergence(
    predictions, targets, weights=None, reduction: str = "mean", from_logits: bool = True
) -> jax.Array:
    """KL(targets || predictions) ``= sum_c t_c (log t_c - log p_c)``, with 0 log 0 = 0.

    predictions: (batch, classes) logits (or probabilities with ``from_logits=False``);
    targets: (batch, classes) probability rows.
    """
    values = optax.losses.kl_divergence(
        _log_probs(predictions, from_logits), _as_float(targets), axis=-1
    )
    return _reduce(_per_example_mean(values), weights, reduction)


LossFn = Callable[..., jax.Array]

LOSSES: dict[str, LossFn] = {
    "mse": mse,
    "mae": mae,
    "msle": msle,
    "hinge": hinge,
    "squared_hinge": squared_hinge,
    "binary_cross_entropy": binary_cross_entropy,
    "cross_entropy": cross_entropy,
    "sparse_cross_entropy": sparse_cross_entropy,
    "kl_divergence": kl_divergence,
}

CLASSIFICATION_LOSSES = frozenset({"cross_entropy", "sparse_cross_entropy"})


def get(name_or_fn: str | LossFn) -> LossFn:
    """The loss called ``name`` (see ``LOSSES``), or ``name_or_fn`` itself if it is callable."""
    if callable(name_or_fn):
        return name_or_fn
    return lookup("loss", name_or_fn, LOSSES)
