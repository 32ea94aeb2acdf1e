"""Layers that see the global batch when a step runs per device under ``jax.pmap``.

Inside ``pmap`` each device holds its slice of the global batch. Two layers would then
compute something other than the one-device step on the whole batch:

- ``nn.BatchNorm`` would normalise with the statistics of the device's slice. Here it gets
  ``axis_name``, so mean and variance are averaged over the devices (what Flax's own
  cross-device batch norm does).
- ``nn.Dropout`` would draw a mask of the slice's shape from the same key on every device,
  so every device would drop the same rows. Here it draws the mask of the global batch from
  the key the one-device step would use and keeps its own rows: the masks are those of the
  one-device run, at the cost of drawing ``devices`` times more random bits.

Both work for any Linen model, through ``nn.intercept_methods``; the batch is the leading
axis of a dropout's input.
"""

from __future__ import annotations

import contextlib

import flax.linen as nn
import jax
import jax.numpy as jnp


def _dropout(module: nn.Dropout, axis_name: str, args, kwargs):
    inputs = args[0] if args else kwargs["inputs"]
    deterministic = args[1] if len(args) > 1 else kwargs.get("deterministic")
    deterministic = nn.merge_param("deterministic", module.deterministic, deterministic)
    if deterministic or module.rate == 0.0:
        return inputs
    if module.rate == 1.0:
        return jnp.zeros_like(inputs)
    rng = args[2] if len(args) > 2 else kwargs.get("rng")
    if rng is None:
        rng = module.make_rng(module.rng_collection)
    keep = 1.0 - module.rate
    local = inputs.shape[0]
    shape = [local * jax.lax.psum(1, axis_name), *inputs.shape[1:]]
    broadcast = [d % inputs.ndim for d in module.broadcast_dims]
    for d in broadcast:
        shape[d] = 1
    mask = jax.random.bernoulli(rng, keep, shape)
    if 0 not in broadcast:
        start = jax.lax.axis_index(axis_name) * local
        mask = jax.lax.dynamic_slice_in_dim(mask, start, local, axis=0)
    mask = jnp.broadcast_to(mask, inputs.shape)
    return jax.lax.select(mask, inputs / keep, jnp.zeros_like(inputs))


@contextlib.contextmanager
def global_batch_layers(axis_name: str | None):
    """Within this context (and a ``pmap`` over ``axis_name``), batch norm and dropout
    behave as on the whole global batch; with ``axis_name=None`` it does nothing."""
    if axis_name is None:
        yield
        return

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == "__call__":
            if isinstance(module, nn.BatchNorm) and module.axis_name is None:
                # the module is this trace's own bound copy; the user's definition is untouched
                object.__setattr__(module, "axis_name", axis_name)
            elif isinstance(module, nn.Dropout):
                return _dropout(module, axis_name, args, kwargs)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        yield
