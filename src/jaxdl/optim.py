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

The learning rate a run is at lives in its optimizer state: each chain ends with
``track_learning_rate``, which keeps ``schedule(count)`` beside its update count, and
``learning_rates(opt_state)`` reads it on the host, times a ``reduce_on_plateau`` scale and a
``LearningRateFactorState`` (``with_learning_rate_factor``: the factor that callbacks such as
``ReduceLROnPlateau`` set between epochs).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
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
    parts.append(track_learning_rate(lr))  # last: learning_rates() finds the plateau beside it
    return optax.chain(*parts)


def _grouped_optimizer(param_groups, make: Callable, learning_rate):
    """One chain per learning rate (patterns of the same rate share one, so clipping by norm
    sees them together), named by its patterns: the ``lr/<patterns>`` of a run's logs."""
    by_rate: dict[float, list[str]] = {}
    labels = {}
    for pattern, rate in param_groups.items():
        if isinstance(rate, str) and rate == FROZEN:
            labels[pattern] = FROZEN
            continue
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ValueError(
                f"param_groups[{pattern!r}]: expected a positive learning rate or 'frozen', "
                f"got {rate!r}"
            )
        by_rate.setdefault(float(rate), []).append(pattern)
    transforms = {"default": make(learning_rate)}
    if FROZEN in labels.values():
        transforms[FROZEN] = optax.set_to_zero()
    for rate, patterns in by_rate.items():
        group = ",".join(patterns)
        if group in transforms:  # a pattern spelled like a built-in group
            group = f"lr={rate:g}"
        transforms[group] = make(rate)
        labels.update(dict.fromkeys(patterns, group))
    return optax.multi_transform(transforms, lambda params: label_parameters(params, labels))


class LearningRateState(NamedTuple):
    """What ``track_learning_rate`` keeps: the rate a chain's schedule is at.

    Attributes:
      count: int32 (): the updates the chain has applied (an update skipped for non-finite
        gradients, or a batch still accumulating, does not count), the count its optimizer's
        schedule is evaluated at.
      learning_rate: float32 (): the schedule's rate of the chain's last update,
        ``schedule(count - 1)`` (``schedule(0)`` before the first); a ``reduce_on_plateau``
        scale and a ``LearningRateFactorState`` not included.
    """

    count: jax.Array
    learning_rate: jax.Array


def track_learning_rate(schedule: optax.Schedule) -> optax.GradientTransformation:
    """Updates unchanged; the state keeps the rate ``schedule`` gave this update, at the
    count the optimizer's own schedule sees (``LearningRateState``), for the host to read.
    Only the state gains computation, so the chain's updates stay bit for bit those of the
    chain without it."""

    def init(params):
        del params
        count = jnp.zeros((), jnp.int32)
        return LearningRateState(count, jnp.asarray(schedule(count), jnp.float32))

    def update(updates, state, params=None):
        del params
        rate = jnp.asarray(schedule(state.count), jnp.float32)  # this update's, as the optimizer's
        return updates, LearningRateState(optax.safe_int32_increment(state.count), rate)

    return optax.GradientTransformation(init, update)


class LearningRateFactorState(NamedTuple):
    """The state of ``learning_rate_factor``.

    Attributes:
      factor: float32 (): multiplies every update, so every learning rate; 1.0 until the host
        sets it between epochs (``set_learning_rate_factor``).
    """

    factor: jax.Array


def learning_rate_factor() -> optax.GradientTransformation:
    """Multiply the updates by the factor its state holds (``LearningRateFactorState``).

    The factor is an array of the state, so the host changes it between compiled calls
    without a new compile. Multiplying by 1.0 changes no value, but it changes how XLA fuses
    the update, hence the last bits of some results: it is added to a run only when a
    callback needs it (``with_learning_rate_factor``), never by default.
    """

    def init(params):
        del params
        return LearningRateFactorState(jnp.ones((), jnp.float32))

    def update(updates, state, params=None):
        del params
        scale = lambda u: u * state.factor.astype(u.dtype)
        return jax.tree.map(scale, updates), state

    return optax.GradientTransformation(init, update)


def find_states(tree, kinds) -> list[tuple[tuple, Any]]:
    """Every node of ``tree`` (an optimizer state) that is an instance of ``kinds`` (a class
    or a tuple of them, e.g. ``optax.ApplyIfFiniteState``), as ``(key path, node)`` pairs in
    leaf order, kind by kind (one kind may sit inside another: an injected state's inner one)."""
    found = []
    for kind in kinds if isinstance(kinds, tuple) else (kinds,):
        is_kind = lambda x, kind=kind: isinstance(x, kind)
        flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_kind)[0]
        found += [(path, node) for path, node in flat if is_kind(node)]
    return found


def has_learning_rate_factor(opt_state) -> bool:
    """Whether ``opt_state`` holds a ``LearningRateFactorState``."""
    return bool(find_states(opt_state, LearningRateFactorState))


def with_learning_rate_factor(tx: optax.GradientTransformation, opt_state):
    """``(tx, opt_state)`` followed by ``learning_rate_factor`` (factor 1.0), the running
    optimizer state kept as it is: ``(optax.chain(tx, factor), (opt_state, factor_state))``.
    A state that holds a factor already is returned unchanged."""
    if has_learning_rate_factor(opt_state):
        return tx, opt_state
    return optax.chain(tx, learning_rate_factor()), (opt_state, learning_rate_factor().init(None))


def set_learning_rate_factor(opt_state, factor):
    """``opt_state`` with its ``LearningRateFactorState`` set to ``factor`` (a number), in
    the old array's dtype, shape and placement (so nothing compiles again)."""
    if not has_learning_rate_factor(opt_state):
        raise ValueError("the optimizer state holds no learning-rate factor")

    def put(node):
        if not isinstance(node, LearningRateFactorState):
            return node
        old = node.factor
        new = np.full(np.shape(old), factor, np.dtype(old.dtype))
        sharding = getattr(old, "sharding", None)
        return LearningRateFactorState(jax.device_put(new, sharding) if sharding else new)

    is_factor = lambda x: isinstance(x, LearningRateFactorState)
    return jax.tree.map(put, opt_state, is_leaf=is_factor)


def _group_name(path) -> str:
    return "/".join(str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey))


def learning_rates(opt_state, by_group: bool = False) -> dict[str, Any]:
    """The learning rate ``opt_state`` is at: ``{"lr": rate}``, or with ``by_group`` (for a
    run with parameter groups of their own rates) ``{"lr/<group>": rate}`` for each group,
    named by its patterns (``lr/conv_*``; ``lr/default`` for the others; a GAN's networks as
    ``generator/...``). Without ``by_group``, groups whose rates differ are named as with it.
    ``{}`` when the state says nothing of its rate.

    A rate is the one the last update took: the schedule's at that update's count
    (``track_learning_rate``; before any update, the first update's), times the chain's
    ``reduce_on_plateau`` scale and the ``learning_rate_factor`` (which a callback may have
    changed since, for the updates to come). For an optax transformation given as it is, the
    rate is that of its ``optax.inject_hyperparams`` state, if it has one. A rate is a float,
    or an array of one per member for a stacked state (a sweep's (K,)).
    """
    plateau = optax.contrib.ReduceLROnPlateauState
    inject = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)
    found = find_states(opt_state, (LearningRateState, LearningRateFactorState, plateau, *inject))
    found = list(zip([path for path, _ in found], jax.device_get([n for _, n in found])))
    factor = np.float64(1.0)
    for _, node in found:
        if isinstance(node, LearningRateFactorState):
            factor = factor * np.asarray(node.factor, np.float64)
    # a chain's plateau scale sits beside its LearningRateState: the same path but the index
    scales = {p[:-1]: np.asarray(n.scale, np.float64) for p, n in found if isinstance(n, plateau)}
    rates = {}
    for path, node in found:
        if isinstance(node, LearningRateState):
            rate = np.asarray(node.learning_rate, np.float64) * scales.get(path[:-1], 1.0)
            rates[_group_name(path) or "default"] = rate * factor
    if not rates:  # a transformation of the user's own: its injected rate, if any
        for path, node in found:
            if isinstance(node, inject) and "learning_rate" in node.hyperparams:
                rate = np.asarray(node.hyperparams["learning_rate"], np.float64)
                rates[_group_name(path) or "default"] = rate * factor
    value = lambda rate: float(rate) if np.ndim(rate) == 0 else rate
    values = list(rates.values())
    if values and not by_group and all(np.array_equal(values[0], v) for v in values[1:]):
        return {"lr": value(values[0])}
    return {f"lr/{name}": value(rate) for name, rate in rates.items()}


def get(name_or_tx, learning_rate=1e-3, **kwargs) -> optax.GradientTransformation:
    """An optax transformation as given, or ``make_optimizer(name, learning_rate, **kwargs)``."""
    if isinstance(name_or_tx, optax.GradientTransformation):
        return name_or_tx
    return make_optimizer(name_or_tx, learning_rate, **kwargs)
