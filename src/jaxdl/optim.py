"""Optimizers and learning-rate schedules by name, penalties and clipping, all on optax.

``make_optimizer("adam", 1e-3, schedule="cosine", total_steps=1000, l2=1e-4, clip_norm=1.0)``
returns one ``optax.GradientTransformation``: penalty gradients are added first (as if the
penalty were part of the loss), then the gradient is clipped, then the optimizer runs.

Penalties follow Keras: ``l1 * sum(|w|)`` and ``l2 * sum(w**2)`` over the weight matrices and
kernels (parameters with two or more axes); biases and normalisation scales are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxdl._checks import lookup

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda lr, momentum=0.0, **kw: optax.sgd(lr, momentum=momentum or None, **kw),
    "momentum": lambda lr, momentum=0.9, **kw: optax.sgd(lr, momentum=momentum, **kw),
    "nesterov": lambda lr, momentum=0.9, **kw: optax.sgd(
        lr, momentum=momentum, nesterov=True, **kw
    ),
    "adam": lambda lr, momentum=0.9, **kw: optax.adam(lr, b1=momentum, **kw),
    "adamw": lambda lr, momentum=0.9, weight_decay=1e-4, **kw: optax.adamw(
        lr, b1=momentum, weight_decay=weight_decay, **kw
    ),
    "adagrad": lambda lr, momentum=0.0, **kw: optax.adagrad(lr, **kw),
    "rmsprop": lambda lr, momentum=0.0, **kw: optax.rmsprop(lr, momentum=momentum, **kw),
}

SCHEDULES = ("constant", "exponential", "step", "cosine", "warmup_cosine", "plateau")


def is_weight_matrix(params):
    """Mask pytree: True for parameters with two or more axes (kernels), False otherwise."""
    return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


def _weights(params):
    return [
        p
        for p, keep in zip(jax.tree.leaves(params), jax.tree.leaves(is_weight_matrix(params)))
        if keep
    ]


def l1_penalty(params) -> jax.Array:
    """``sum |w|`` over the weight matrices of ``params``."""
    return sum((jnp.sum(jnp.abs(p)) for p in _weights(params)), jnp.zeros(()))


def l2_penalty(params) -> jax.Array:
    """``sum w**2`` over the weight matrices of ``params``."""
    return sum((jnp.sum(jnp.square(p)) for p in _weights(params)), jnp.zeros(()))


def add_penalty_gradients(l1: float = 0.0, l2: float = 0.0) -> optax.GradientTransformation:
    """Add the gradient of ``l1 * l1_penalty + l2 * l2_penalty`` to the updates."""

    def add(updates, params):
        if params is None:
            raise ValueError("L1/L2 penalties need the parameters: call tx.update(g, s, params)")
        return jax.tree.map(
            lambda g, p: g + l1 * jnp.sign(p) + 2.0 * l2 * p if jnp.ndim(p) >= 2 else g,
            updates,
            params,
        )

    return optax.stateless(add)


def make_schedule(
    name: str,
    learning_rate: float,
    total_steps: int | None = None,
    *,
    decay_rate: float = 0.5,
    decay_steps: int | None = None,
    boundaries: tuple[float, ...] = (0.5, 0.75),
    step_factor: float = 0.1,
    warmup_steps: int | None = None,
    final_fraction: float = 0.0,
) -> optax.Schedule:
    """A learning-rate schedule ``step -> lr``.

    - ``constant``: ``learning_rate`` throughout (also the base of ``plateau``).
    - ``exponential``: ``lr * decay_rate ** (step / decay_steps)``.
    - ``step``: multiply by ``step_factor`` at each boundary (fractions of ``total_steps``).
    - ``cosine``: cosine from ``lr`` to ``final_fraction * lr`` over ``total_steps``.
    - ``warmup_cosine``: linear from 0 to ``lr`` over ``warmup_steps`` (default 5% of the
      steps), then cosine down to ``final_fraction * lr`` at ``total_steps``.
    """
    name = lookup("schedule", name, {s: s for s in SCHEDULES})
    if name in ("constant", "plateau"):
        return optax.constant_schedule(learning_rate)
    if total_steps is None or total_steps < 1:
        raise ValueError(f"schedule {name!r} needs total_steps >= 1, got {total_steps}")
    if name == "exponential":
        return optax.exponential_decay(
            learning_rate,
            transition_steps=decay_steps or max(total_steps // 10, 1),
            decay_rate=decay_rate,
        )
    if name == "step":
        return optax.piecewise_constant_schedule(
            learning_rate, {int(b * total_steps): step_factor for b in boundaries}
        )
    if name == "cosine":
        return optax.cosine_decay_schedule(learning_rate, total_steps, alpha=final_fraction)
    warmup = warmup_steps if warmup_steps is not None else max(total_steps // 20, 1)
    return optax.warmup_cosine_decay_schedule(
        0.0,
        learning_rate,
        warmup,
        max(total_steps, warmup + 1),
        end_value=final_fraction * learning_rate,
    )


def make_optimizer(
    name: str = "adam",
    learning_rate: float | optax.Schedule = 1e-3,
    *,
    schedule: str = "constant",
    total_steps: int | None = None,
    steps_per_epoch: int = 1,
    plateau_patience: int = 5,
    plateau_factor: float = 0.5,
    l1: float = 0.0,
    l2: float = 0.0,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    **optimizer_kwargs,
) -> optax.GradientTransformation:
    """The optimizer called ``name`` (see ``OPTIMIZERS``) with penalties, clipping and schedule.

    ``learning_rate`` is a number (shaped by ``schedule``) or an optax schedule. With
    ``schedule="plateau"`` the step must call ``tx.update(..., value=loss)``: the learning
    rate is multiplied by ``plateau_factor`` after ``plateau_patience`` epochs (of
    ``steps_per_epoch`` steps, whose mean loss is compared) without improvement.
    ``optimizer_kwargs`` go to the optax constructor (``momentum``, ``weight_decay``, ...).
    """
    make = lookup("optimizer", name, OPTIMIZERS)
    lr = learning_rate
    if not callable(lr):
        lr = make_schedule(schedule, float(learning_rate), total_steps)
    parts = []
    if l1 or l2:
        parts.append(add_penalty_gradients(l1, l2))
    if clip_value is not None:
        parts.append(optax.clip(clip_value))
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    parts.append(make(lr, **optimizer_kwargs))
    if schedule == "plateau":
        parts.append(
            optax.contrib.reduce_on_plateau(
                factor=plateau_factor,
                patience=plateau_patience,
                accumulation_size=max(int(steps_per_epoch), 1),
            )
        )
    return optax.chain(*parts)


def get(name_or_tx, learning_rate=1e-3, **kwargs) -> optax.GradientTransformation:
    """An optax transformation as given, or ``make_optimizer(name, learning_rate, **kwargs)``."""
    if isinstance(name_or_tx, optax.GradientTransformation):
        return name_or_tx
    return make_optimizer(name_or_tx, learning_rate, **kwargs)
