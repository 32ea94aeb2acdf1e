"""Pure step functions: arrays in, arrays out, no Python state, no I/O.

``make_train_step`` and ``make_eval_step`` return functions of ``(state, batch)`` that the
caller compiles (``jax.jit``, ``jax.pmap`` or jit over a mesh). A batch is a dict:

- ``"x"``: (B, *input_shape) features,
- ``"y"``: (B,) integer labels or (B, *target_shape) targets (for a loss per output, a dict
  or tuple of them, one per output of the model),
- ``"mask"`` (optional): (B,) float weights, 0 for padded rows that must not count.

Metrics come back as mergeable states (``jaxdl.metrics``), always with ``"loss"`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxdl import losses as losses_lib
from jaxdl import metrics as metrics_lib
from jaxdl import optim
from jaxdl.train import precision
from jaxdl.train.cross_device import global_batch_layers
from jaxdl.train.state import TrainState, mode_kwargs

Batch = dict[str, jax.Array]


def _single_loss(loss, loss_options: dict | None) -> Callable:
    fn = losses_lib.get(loss)
    options = dict(loss_options or {})
    ours = fn in losses_lib.LOSSES.values()

    def per_example(predictions, targets):
        if ours:
            return fn(predictions, targets, reduction="none", **options)
        values = fn(predictions, targets, **options)
        if jnp.ndim(values) != 1:
            raise ValueError(
                "a custom loss must return one value per example, shape (batch,); "
                f"got shape {jnp.shape(values)}"
            )
        return values

    return per_example


def output_name(key) -> str:
    """An output's name in the history: its dict key, or "output_<i>" for a tuple's i-th."""
    return key if isinstance(key, str) else f"output_{key}"


def _of_output(value, key, default=None):
    """The entry of a per-output dict (or sequence) ``value`` for output ``key``."""
    if value is None:
        return default
    if isinstance(value, Mapping):
        return value.get(key, default)
    return value[key]


def _per_example_loss(loss, loss_options: dict | None, loss_weights=None) -> Callable:
    """``per_example(outputs, targets) -> (values (B,), terms)``. For one loss, ``terms`` is
    {}. For a loss per output (``loss`` a dict or tuple matching the model's outputs and
    targets; ``loss_options`` and ``loss_weights`` then per output too, a weight 1 where
    none is given), ``terms`` holds each output's unweighted values ``{"<name>_loss": (B,)}``
    and ``values`` is their ``loss_weights``-weighted sum."""
    if not isinstance(loss, Mapping | list | tuple):
        single = _single_loss(loss, loss_options)
        return lambda outputs, targets: (single(outputs, targets), {})
    keys = tuple(loss) if isinstance(loss, Mapping) else tuple(range(len(loss)))
    fns = {k: _single_loss(loss[k], _of_output(loss_options, k)) for k in keys}
    weights = {k: float(_of_output(loss_weights, k, 1.0)) for k in keys}

    def per_example(outputs, targets):
        for what, tree in (("outputs", outputs), ("targets", targets)):
            if isinstance(loss, Mapping):
                fits = isinstance(tree, Mapping) and set(tree) == set(keys)
                have = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
            else:
                fits = isinstance(tree, list | tuple) and len(tree) == len(keys)
                have = len(tree) if isinstance(tree, list | tuple) else type(tree).__name__
            if not fits:
                want = sorted(keys) if isinstance(loss, Mapping) else len(keys)
                raise ValueError(
                    f"loss: one loss per output for {want}, but the model's {what} are {have}"
                )
        terms = {f"{output_name(k)}_loss": fns[k](outputs[k], targets[k]) for k in keys}
        total = sum(w * terms[f"{output_name(k)}_loss"] for k, w in weights.items())
        return total, terms

    return per_example


def forward(state: TrainState, params, x: jax.Array, *, train: bool, rng=None):
    """Apply the model. Returns (outputs, new batch statistics).

    Under a precision policy (``state.compute_dtype`` other than float32) the parameters and
    floating inputs are cast to the compute dtype, and floating outputs back to float32;
    the batch statistics keep their dtype.
    """
    kwargs = mode_kwargs(state.mode_argument, train)
    dtype = state.compute_dtype
    if dtype != "float32":
        params, x = precision.cast_floats((params, x), dtype)
    if train and state.batch_stats:
        outputs, updates = state.apply_fn(
            state.variables(params), x, rngs={"dropout": rng}, mutable=["batch_stats"], **kwargs
        )
        batch_stats = jax.tree.map(
            lambda new, old: new.astype(old.dtype), updates["batch_stats"], state.batch_stats
        )
    else:
        rngs = {"dropout": rng} if train else {}
        outputs = state.apply_fn(state.variables(params), x, rngs=rngs, **kwargs)
        batch_stats = state.batch_stats
    if dtype != "float32":
        outputs = precision.cast_floats(outputs, "float32")
    return outputs, batch_stats


def _metric_states(metrics, num_classes, outputs, batch, mask, per_example_loss, terms=None):
    states = {"loss": metrics_lib.Mean.from_values(per_example_loss, mask)}
    for name, values in (terms or {}).items():
        states[name] = metrics_lib.Mean.from_values(values, mask)
    for metric in metrics:
        states[metric.name] = metric(outputs, batch["y"], mask, num_classes)
    return states


def batch_mask(batch: Batch) -> jax.Array:
    """The batch's (B,) float weights: its ``"mask"``, or ones when it has none."""
    mask = batch.get("mask")
    if mask is None:
        return jnp.ones((batch["x"].shape[0],), jnp.float32)
    return mask.astype(jnp.float32)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """``sum(mask * values) / sum(mask)`` over (B,) values; 0 for an all-padding batch."""
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def apply_gradients(state: TrainState, grads, loss_value, **changes) -> TrainState:
    """One optimizer update of ``state``. Optimizers that take the loss
    (``reduce_on_plateau``) receive ``loss_value`` as ``value``; ``changes`` replaces other
    fields (e.g. new batch statistics)."""
    extra = {}
    if isinstance(state.tx, optax.GradientTransformationExtraArgs):
        extra = {"value": loss_value}
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params, **extra)
    if state.frozen and "batch_stats" in changes:
        changes["batch_stats"] = keep_frozen(
            state.batch_stats, changes["batch_stats"], state.frozen
        )
    return state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        **changes,
    )


def _label_weights(weights: jax.Array, targets: jax.Array) -> jax.Array:
    """Each example's class weight: ``weights[y]`` for labels (B,), ``y @ weights`` for
    one-hot or soft rows (B, C)."""
    if targets.ndim == 2 and jnp.issubdtype(targets.dtype, jnp.floating):
        return targets @ weights
    return weights[targets.astype(jnp.int32)]


def keep_frozen(old, new, patterns):
    """``new`` with the leaves whose path matches ``patterns`` taken from ``old``."""
    paths = optim.parameter_paths(new)
    leaves = [
        o if optim.matches(path, patterns) else n
        for path, o, n in zip(paths, jax.tree.leaves(old), jax.tree.leaves(new))
    ]
    return jax.tree.unflatten(jax.tree.structure(new), leaves)


def make_train_step(
    loss="cross_entropy",
    metrics: Sequence = (),
    num_classes: int | None = None,
    loss_options: dict | None = None,
    *,
    augment: Callable | None = None,
    class_weights=None,
    loss_weights=None,
    axis_name: str | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """``train_step(state, batch) -> (state, metric_states)``: one gradient step.

    The objective is the mask-weighted mean of the per-example ``loss`` over the batch, so a
    padded row contributes nothing. ``loss``: a name of ``jaxdl.losses.LOSSES`` or a callable
    ``(outputs (B, ...), targets (B, ...)) -> (B,)``, or one of them per output (a dict or
    tuple matching the model's outputs and ``batch["y"]``), summed per example with
    ``loss_weights`` (per output, default 1) and reported one by one as ``"<output>_loss"``.
    ``metrics``: names of ``jaxdl.metrics.METRICS`` or custom metrics
    (``jaxdl.metrics.as_metric``); ``num_classes`` an int, or {output: C} for metrics of
    several outputs. Dropout draws from ``fold_in(state.rng, state.step)``.
    Optimizers that take the loss (``reduce_on_plateau``) receive it as ``value``.

    ``augment(key, x) -> x`` (``jaxdl.data.augment``) transforms the batch's features first,
    with a key of its own from the step's. ``class_weights`` (C,) multiply each example's
    loss by its class's weight (the objective is then ``sum(mask * w_y * l) / sum(mask)``,
    as Keras's ``class_weight``); a batch's ``"weight"`` (``fit(sample_weight=)``, (B,))
    multiplies each example's loss the same way. The reported training metrics stay
    unweighted.

    ``axis_name``: the step runs per device inside ``jax.pmap`` over that axis, each device
    with its slice of the global batch. The mean is then over the global batch, gradients,
    losses and metric states are summed over the devices, batch norm and dropout act on the
    global batch (``jaxdl.train.cross_device``) and augmentation draws each example's key
    from its global index, so the step equals the one-device step on the whole batch.

    With a float16 policy (``state.loss_scale`` set) the objective is multiplied by the loss
    scale before differentiation and the gradients divided by it; an update whose gradients
    are not finite is skipped and the scale halved (``jaxdl.train.precision``).
    """
    per_example = _per_example_loss(loss, loss_options, loss_weights)
    metric_list = tuple(map(metrics_lib.get, metrics))
    weights = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)
    psum = (lambda tree: jax.lax.psum(tree, axis_name)) if axis_name else (lambda tree: tree)

    def train_step(state: TrainState, batch: Batch):
        mask = batch_mask(batch)
        count = psum(jnp.sum(mask))
        rng = jax.random.fold_in(state.rng, state.step)
        x = batch["x"]
        if augment is not None:
            key = jax.random.fold_in(rng, 1)
            if axis_name is None:
                x = augment(key, x)
            else:
                first = jax.lax.axis_index(axis_name) * x.shape[0]
                x = _augment_from(augment, key, x, first)
        scale = mask if weights is None else mask * _label_weights(weights, batch["y"])
        if "weight" in batch:  # sample_weight: each example's loss multiplied by its weight
            scale = scale * batch["weight"].astype(jnp.float32)
        loss_scale = state.loss_scale

        def objective(params):
            with global_batch_layers(axis_name):
                outputs, batch_stats = forward(state, params, x, train=True, rng=rng)
            values, terms = per_example(outputs, batch["y"])
            objective_value = jnp.sum(values * scale) / jnp.maximum(count, 1.0)
            scaled = (
                objective_value if loss_scale is None else loss_scale.scale_loss(objective_value)
            )
            return scaled, (objective_value, outputs, batch_stats, (values, terms))

        (_, (loss_value, outputs, batch_stats, (values, terms))), grads = jax.value_and_grad(
            objective, has_aux=True
        )(state.params)
        grads, loss_value = psum((grads, loss_value))
        if axis_name is not None and batch_stats:  # equal already when batch norm is synced
            batch_stats = jax.lax.pmean(batch_stats, axis_name)
        new_state = _scaled_update(state, grads, loss_value, batch_stats)
        states = _metric_states(metric_list, num_classes, outputs, batch, mask, values, terms)
        return new_state, psum(states)

    return train_step


def _scaled_update(state: TrainState, grads, loss_value, batch_stats) -> TrainState:
    """``apply_gradients``; under a loss scale (float16) the gradients are unscaled first, an
    update whose gradients are not finite is skipped and the scale adjusted."""
    loss_scale = state.loss_scale
    if loss_scale is None:
        return apply_gradients(state, grads, loss_value, batch_stats=batch_stats)
    grads = loss_scale.unscale(grads)
    finite = precision.all_finite(grads)
    updated = apply_gradients(state, grads, loss_value, batch_stats=batch_stats)
    skipped = state.replace(step=state.step + 1)
    new_state = jax.tree.map(lambda u, s: jnp.where(finite, u, s), updated, skipped)
    return new_state.replace(loss_scale=loss_scale.adjust(finite))


def _augment_from(augment: Callable, key, x, first):
    """``augment(key, x)`` for rows ``first, first + 1, ...`` of a larger batch: the
    library's transforms take ``first_index`` so each row gets its global row's key."""
    try:
        return augment(key, x, first_index=first)
    except TypeError as error:
        if "first_index" not in str(error):
            raise
        raise TypeError(
            "under the pmap strategy augment(key, x) must also take first_index= (the global "
            "row of x[0]) so that each example's draw equals the one-device run's; the "
            "transforms of jaxdl.data.augment do"
        ) from None


def make_eval_step(
    loss="cross_entropy",
    metrics: Sequence = (),
    num_classes: int | None = None,
    loss_options: dict | None = None,
    *,
    loss_weights=None,
    axis_name: str | None = None,
) -> Callable[[TrainState, Batch], dict]:
    """``eval_step(state, batch) -> metric_states`` in inference mode (no dropout, running
    batch statistics). A batch with a ``"weight"`` (sample weights) reports the loss
    ``sum(w * l) / N``, the objective's weighting, and metrics weighted by ``w`` (each
    example counts ``w`` times), as Keras does. Under ``jax.pmap`` over ``axis_name`` the
    metric states are summed over the devices."""
    per_example = _per_example_loss(loss, loss_options, loss_weights)
    metric_list = tuple(map(metrics_lib.get, metrics))

    def eval_step(state: TrainState, batch: Batch):
        mask = batch_mask(batch)
        outputs, _ = forward(state, state.params, batch["x"], train=False)
        values, terms = per_example(outputs, batch["y"])
        weighted = mask * batch["weight"].astype(jnp.float32) if "weight" in batch else mask
        states = _metric_states(metric_list, num_classes, outputs, batch, weighted, values, terms)
        if "weight" in batch:  # the losses as the objective weights them: sum(w * l) / N
            for name, term in {"loss": values, **terms}.items():
                states[name] = metrics_lib.Mean(
                    total=jnp.sum(term.astype(jnp.float32) * weighted), count=jnp.sum(mask)
                )
        return jax.lax.psum(states, axis_name) if axis_name else states

    return eval_step


def predict_step(state: TrainState, x: jax.Array) -> jax.Array:
    """Model outputs (B, ...) for features x (B, *input_shape), in inference mode."""
    return forward(state, state.params, x, train=False)[0]


def accumulate(step: Callable) -> Callable:
    """Wrap ``train_step`` into ``(state, acc, first_bad, batch) -> (state, acc, first_bad)``.

    ``acc`` is the running merge of the metric states of the batches whose loss was finite;
    ``first_bad`` is the first step whose loss was not finite, or -1. The wrapper is the loop
    body both of one compiled step per call and of a whole epoch run inside ``lax.scan``.
    """

    def body(state, acc, first_bad, batch):
        step_index = state.step
        state, batch_metrics = step(state, batch)
        finite = jnp.isfinite(batch_metrics["loss"].total)
        first_bad = jnp.where((first_bad < 0) & ~finite, step_index, first_bad)
        merged = metrics_lib.merge(acc, batch_metrics)
        return state, jax.tree.map(lambda m, a: jnp.where(finite, m, a), merged, acc), first_bad

    return body


def make_epoch_runner(train_step: Callable, constrain: Callable | None = None) -> Callable:
    """``run(state, data, indices, mask, acc, first_bad) -> (state, acc, first_bad)``: every
    batch of an epoch (or of a stretch of one) in one ``lax.scan``, gathering batch ``s`` as
    the rows ``indices[s]`` of arrays already on the device.

    data: {"x": (N, *input_shape), "y": (N, ...)[, "weight": (N,)]}, each an array or a
    pytree of arrays; indices, mask: (steps, B) from ``epoch_indices``.
    ``acc`` is the running merge of metric states (at an epoch's start, the empty states:
    ``jaxdl.metrics.empty_states``); ``first_bad`` the first step whose loss was not finite,
    or -1; both carry on from an earlier stretch of the same epoch.
    ``constrain(batch) -> batch`` places each gathered batch (a sharding constraint).
    """
    body = accumulate(train_step)

    def run(state, data, indices, mask, acc, first_bad):
        def batch(s):
            b = {**jax.tree.map(lambda a: a[indices[s]], data), "mask": mask[s]}
            return b if constrain is None else constrain(b)

        def scan_body(carry, s):
            return body(*carry, batch(s)), None

        carry, _ = jax.lax.scan(scan_body, (state, acc, first_bad), jnp.arange(indices.shape[0]))
        return carry

    return run
