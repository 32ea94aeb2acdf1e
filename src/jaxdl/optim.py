"""Optimizers and learning-rate schedules by name, penalties and clipping, all on optax.

``make_optimizer("adam", 1e-3, schedule="cosine", total_steps=1000, l2=1e-4, clip_norm=1.0)``
returns one ``optax.GradientTransformation``: penalty gradients are added first (as if the
penalty were part of the loss), then the gradient is clipped, then the optimizer runs.

Parameter groups: ``make_optimizer("adam", 1e-3, param_groups={"conv_*": 1e-4, "norm_*":
"frozen"})`` gives the parameters whose path matches a pattern their own learning rate (or
none at all), through ``optax.multi_transform``. A path is the parameter's names joined by
"/", such as ``conv_0/kernel``; patterns are shell-style (``fnmatch``), ``*`` matching "/" too.

Penalties follow Keras: ``l1 * sum(|w|)`` and ``l2 * sum(w**2)`` over the weight matrices and
kernels (parameters with two or more axes); biases and normalisation scales are left alone.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxdl._checks import lookup

# name -> constructor(learning_rate, **options); ``momentum`` means the first-moment decay
# for every optimizer that has one, so one option name serves them all
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda learning_rate, momentum=0.0, **kw: optax.sgd(
        learning_rate, momentum=momentum or None, **kw
    ),
    "momentum": lambda learning_rate, momentum=0.9, **kw: optax.sgd(
        learning_rate, momentum=momentum, **kw
    ),
    "nesterov": lambda learning_rate, momentum=0.9, **kw: optax.sgd(
        learning_rate, momentum=momentum, nesterov=True, **kw
    ),
    "adam": lambda learning_rate, momentum=0.9, **kw: optax.adam(learning_rate, b1=momentum, **kw),
    "adamw": lambda learning_rate, momentum=0.9, weight_decay=1e-4, **kw: optax.adamw(
        learning_rate, b1=momentum, weight_decay=weight_decay, **kw
    ),
    "adagrad": lambda learning_rate, momentum=0.0, **kw: optax.adagrad(learning_rate, **kw),
    "rmsprop": lambda learning_rate, momentum=0.0, **kw: optax.rmsprop(
        learning_rate, momentum=momentum, **kw
    ),
}

SCHEDULES = ("constant", "exponential", "step", "cosine", "warmup_cosine", "plateau")


FROZEN = "frozen"


def parameter_paths(tree) -> list[str]:
    """The "/"-joined path of every leaf of ``tree`` (e.g. ``conv_0/kernel``), in leaf order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return ["/".join(_key_name(k) for k in path) for path, _ in leaves]


def _key_name(key) -> str:
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def matches(path: str, patterns: str | Sequence[str]) -> bool:
    """Whether ``path`` matches one of the shell-style ``patterns`` (``*`` matches "/")."""
    patterns = (patterns,) if isinstance(patterns, str) else patterns
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def check_patterns(tree, patterns: Sequence[str], what: str = "pattern") -> None:
    """Raise ValueError for a pattern that matches no path of ``tree`` (most often a typo)."""
    paths = parameter_paths(tree)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{what}: expected a path pattern (str), got {pattern!r}")
        if not any(fnmatch.fnmatchcase(path, pattern) for path in paths):
            shown = ", ".join(paths[:12]) + (", ..." if len(paths) > 12 else "")
            raise ValueError(f"{what} {pattern!r} matches no parameter; the paths are: {shown}")


def label_parameters(params, groups: Mapping[str, str], default: str = "default"):
    """A pytree like ``params`` holding each parameter's group: the group of the first
    pattern of ``groups`` ({pattern: group}) that its path matches, else ``default``.
    A pattern that matches nothing is a ValueError."""
    check_patterns(params, list(groups), "parameter group")
    labels = [
        next((group for pattern, group in groups.items() if matches(path, pattern)), default)
        for path in parameter_paths(params)
    ]
    return jax.tree.unflatten(jax.tree.structure(params), labels)


def freeze(tx: optax.GradientTransformation, patterns: str | Sequence[str]):
    """``tx`` for every parameter except those whose path matches ``patterns``, which get
    zero updates (and keep no optimizer state)."""
    patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
    return optax.multi_transform(
        {"trainable": tx, FROZEN: optax.set_to_zero()},
        lambda params: label_parameters(params, dict.fromkeys(patterns, FROZEN), "trainable"),
    )


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
    param_groups: Mapping[str, float | str] | None = None,
    **optimizer_kwargs,
) -> optax.GradientTransformation:
    """The optimizer called ``name`` (see ``OPTIMIZERS``) with penalties, clipping and schedule.

    ``learning_rate`` is a number (shaped by ``schedule``) or an optax schedule. With
    ``schedule="plateau"`` the step must call ``tx.update(..., value=loss)``: the learning
    rate is multiplied by ``plateau_factor`` after ``plateau_patience`` epochs (of
    ``steps_per_epoch`` steps, whose mean loss is compared) without improvement.
    ``optimizer_kwargs`` go to the optax constructor (``momentum``, ``weight_decay``, ...).

    ``param_groups`` maps path patterns to a learning rate of their own (shaped by the same
    schedule) or to ``"frozen"``; the first matching pattern wins and the other parameters
    use ``learning_rate``. Each group gets the whole chain (penalties, clipping by its own
    norm, optimizer) so a frozen parameter is never touched.
    """
    if param_groups:
        settings = dict(
            schedule=schedule,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            plateau_patience=plateau_patience,
            plateau_factor=plateau_factor,
            l1=l1,
            l2=l2,
            clip_norm=clip_norm,
            clip_value=clip_value,
        )
        make_group = lambda lr: make_optimizer(name, lr, **settings, **optimizer_kwargs)
        return _grouped_optimizer(param_groups, make_group, learning_rate)
    make = lookup("optimizer", name, OPTIMIZERS)
    lr = learning_rate
    if not callable(lr):  # a number, or an array (a sweep member's rate, traced)
        lr = make_schedule(schedule, learning_rate, total_steps)
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


def _grouped_optimizer(param_groups, make: Callable, learning_rate):
    transforms, labels = {"default": make(learning_rate)}, {}
    for pattern, rate in param_groups.items():
        if isinstance(rate, str) and rate == FROZEN:
            transforms[FROZEN] = optax.set_to_zero()
            labels[pattern] = FROZEN
            continue
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ValueError(
                f"param_groups[{pattern!r}]: expected a positive learning rate or 'frozen', "
                f"got {rate!r}"
            )
        group = f"lr={float(rate):g}"
        transforms.setdefault(group, make(float(rate)))
        labels[pattern] = group
    return optax.multi_transform(transforms, lambda params: label_parameters(params, labels))


def get(name_or_tx, learning_rate=1e-3, **kwargs) -> optax.GradientTransformation:
    """An optax transformation as given, or ``make_optimizer(name, learning_rate, **kwargs)``."""
    if isinstance(name_or_tx, optax.GradientTransformation):
        return name_or_tx
    return make_optimizer(name_or_tx, learning_rate, **kwargs)
