"""Strategies: how the compiled train, evaluation and prediction functions use the devices,
and ``initialize``, which joins the processes of a multi-host run.

``Trainer(strategy=...)`` takes a name or one of these objects:

- ``Single()`` ("single"): ``jax.jit`` on one device.
- ``Pmap()`` ("pmap"): the classic data-parallel ``jax.pmap`` over the local devices. The
  state goes in and comes out unmapped (``in_axes``/``out_axes`` None: one replicated array
  per leaf, never a stack of copies to gather from); each batch is split on a leading device
  axis; gradients, losses and metric states are summed with ``psum``, batch norm uses the
  global batch's statistics and dropout the global batch's masks
  (``jaxdl.train.cross_device``).
- ``Sharded()`` ("sharded", the default with more than one device): ``jax.jit`` over a
  ``Mesh`` with ``NamedSharding``: batches split over the ``data`` axis, parameters
  replicated; XLA inserts the communication. ``Sharded(fsdp=True)`` ("fsdp") also shards
  the parameters and optimizer state over that axis (each array along its largest
  dimension that divides), for models too big to replicate. It spans every process of a
  ``jax.distributed`` run (``jaxdl.parallel.initialize``).

Every strategy computes the one-device step on the same global batch, so losses and
parameters agree up to the order of floating-point sums. ``initialize`` joins the processes
of a multi-host run through JAX's own distributed runtime, after which
``Trainer(strategy="sharded")`` trains over every device of every process; the same script
runs on one CPU and on a pod slice::

    info = jaxdl.parallel.initialize()     # one process: does nothing
    trainer = jaxdl.Trainer(model)         # "sharded" when more than one device is present
 A training batch size that does
not divide over the devices is refused with a ValueError (choose a multiple); evaluation and
prediction round their batch size up to a multiple, the extra rows padded and masked.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxdl import metrics as metrics_lib
from jaxdl.data.pipeline import global_batch
from jaxdl.train import steps
from jaxdl.train.distributed import ProcessInfo, initialize, process_info

__all__ = [
    "STRATEGIES",
    "Pmap",
    "ProcessInfo",
    "Sharded",
    "Single",
    "get_strategy",
    "initialize",
    "process_info",
]


def _eval_body(eval_step: Callable) -> Callable:
    return lambda state, acc, batch: metrics_lib.merge(acc, eval_step(state, batch))


class Single:
    """``jax.jit`` on one device (the default device, or ``device``)."""

    name = "single"
    axis_name = None

    def __init__(self, device: jax.Device | None = None):
        self.device = device
        self.num_devices = 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    batch_axis = 0  # the axis of the examples in the outputs of ``predict``

    def check_batch_size(self, batch_size: int) -> int:
        """The training batch size, refused with a message when the devices cannot share
        it evenly (one device takes any size)."""
        return batch_size

    def plan(self, adapter, epoch: int):
        """The (indices, mask) of an epoch of data held on the device."""
        return adapter.plan(epoch)

    def per_member(self, tree):
        """A carry of the loop (metric states, ``first_bad``) as the compiled calls take it."""
        return tree

    def compute(self, states) -> dict[str, float]:
        """Metric states -> {name: value}."""
        return metrics_lib.compute(states)

    def inference_batch_size(self, batch_size: int) -> int:
        """``batch_size`` rounded up to a multiple of the device count."""
        return -(-batch_size // self.num_devices) * self.num_devices

    def place_state(self, state):
        """The train state on the strategy's device (as it is, without a device)."""
        return state if self.device is None else jax.device_put(state, self.device)

    def place_data(self, data: dict):
        """The training set ({"x", "y"[, "weight"]}) on the device(s), for epochs that
        gather their batches there."""
        return jax.device_put(data, self.device)

    def place_batch(self, batch: dict) -> dict:
        """A batch on the device(s) ahead of its step; a streaming pipeline's batch holds
        this process's rows of the global batch."""
        return jax.device_put(batch, self.device)

    def compile_epoch(self, train_step: Callable) -> Callable:
        """``(state, data, indices, mask, acc, first_bad) -> (state, acc, first_bad)``."""
        return jax.jit(steps.make_epoch_runner(train_step), donate_argnums=(0,))

    def compile_step(self, train_step: Callable) -> Callable:
        """``(state, acc, first_bad, batch) -> (state, acc, first_bad)``."""
        return jax.jit(steps.accumulate(train_step), donate_argnums=(0, 1, 2))

    def compile_eval(self, eval_step: Callable) -> Callable:
        """``(state, acc, batch) -> acc``."""
        return jax.jit(_eval_body(eval_step), donate_argnums=(1,))

    def compile_predict(self) -> Callable:
        """``(state, x) -> outputs``."""
        return jax.jit(steps.predict_step)


class _Multi(Single):
    def check_batch_size(self, batch_size: int) -> int:
        n = self.num_devices
        if batch_size % n:
            raise ValueError(
                f"batch_size={batch_size} does not divide over the {n} devices of the "
                f"{self.name!r} strategy; use a multiple of {n}, e.g. "
                f"{max(n, batch_size // n * n)} or {-(-batch_size // n) * n}"
            )
        return batch_size


class Pmap(_Multi):
    """``jax.pmap`` over the local devices (all of them, or ``devices``), one process only."""

    name = "pmap"

    def __init__(self, devices: Sequence[jax.Device] | None = None, axis_name: str = "devices"):
        if jax.process_count() > 1:
            raise ValueError(
                "the 'pmap' strategy maps over one process's devices; across "
                f"{jax.process_count()} processes use strategy='sharded'"
            )
        self.devices = list(devices) if devices is not None else jax.local_devices()
        self.num_devices = len(self.devices)
        self.axis_name = axis_name
        self.replicated = NamedSharding(Mesh(np.array(self.devices), (axis_name,)), P())

    def _split(self, tree, axis: int = 0):
        """Arrays whose ``axis`` (size B) becomes (devices, B / devices)."""
        n = self.num_devices

        def split(a):
            a = np.asarray(a) if isinstance(a, np.ndarray | list) else a
            shape = a.shape
            return a.reshape(*shape[:axis], n, shape[axis] // n, *shape[axis + 1 :])

        return jax.tree.map(split, tree)

    def _pmap(self, fn, in_axes, out_axes=None, donate=()):
        return jax.pmap(
            fn,
            self.axis_name,
            in_axes=in_axes,
            out_axes=out_axes,
            devices=self.devices,
            donate_argnums=donate,
        )

    def place_state(self, state):
        """The train state replicated on every local device."""
        return jax.device_put(state, self.replicated)

    def place_data(self, data):
        return jax.device_put(data, self.replicated)

    def place_batch(self, batch):
        """Rows split over the devices; the step's reshape to (devices, B / devices) keeps
        each device's rows where they are."""
        return jax.device_put(batch, NamedSharding(self.replicated.mesh, P(self.axis_name)))

    def compile_epoch(self, train_step):
        run = self._pmap(
            steps.make_epoch_runner(train_step), (None, None, 1, 1, None, None), donate=(0,)
        )

        def call(state, data, indices, mask, acc, first_bad):
            indices, mask = self._split((indices, mask), axis=1)
            return run(state, data, indices, mask, acc, first_bad)

        return call

    def compile_step(self, train_step):
        body = self._pmap(steps.accumulate(train_step), (None, None, None, 0), donate=(0, 1, 2))
        return lambda state, acc, first_bad, batch: body(state, acc, first_bad, self._split(batch))

    def compile_eval(self, eval_step):
        body = self._pmap(_eval_body(eval_step), (None, None, 0), donate=(1,))
        return lambda state, acc, batch: body(state, acc, self._split(batch))

    def compile_predict(self):
        body = self._pmap(steps.predict_step, (None, 0), out_axes=0)

        def predict(state, x):
            out = body(state, self._split(x))
            return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), out)

        return predict


class Sharded(_Multi):
    """``jax.jit`` over a one-axis ``Mesh`` of ``devices`` (default: every device of every
    process): batches split over ``axis_name``, parameters replicated, or sharded with
    ``fsdp=True`` (arrays of fewer than ``fsdp_min_size`` values stay replicated)."""

    name = "sharded"

    def __init__(
        self,
        devices: Sequence[jax.Device] | None = None,
        *,
        fsdp: bool = False,
        axis_name: str = "data",
        fsdp_min_size: int = 1024,
    ):
        self.devices = list(devices) if devices is not None else jax.devices()
        self.num_devices = len(self.devices)
        self.axis_name = None  # collectives come from XLA, not from the step
        self.data_axis, self.fsdp, self.fsdp_min_size = axis_name, bool(fsdp), int(fsdp_min_size)
        self.mesh = Mesh(np.array(self.devices), (axis_name,))
        self.replicated = NamedSharding(self.mesh, P())
        self.rows = NamedSharding(self.mesh, P(axis_name))
        self.columns = NamedSharding(self.mesh, P(None, axis_name))  # (steps, B) indices
        self._state_shardings = None

    def __repr__(self) -> str:
        return f"Sharded(fsdp={self.fsdp})" if self.fsdp else "Sharded()"

    # placement ------------------------------------------------------------

    def _spec(self, shape: tuple[int, ...]) -> P:
        """FSDP: shard the largest dimension that divides over the devices."""
        n = self.num_devices
        fits = [d for d, size in enumerate(shape) if size % n == 0 and size >= n]
        if not fits or math.prod(shape) < self.fsdp_min_size:
            return P()
        axis = max(fits, key=lambda d: shape[d])
        return P(*[self.data_axis if d == axis else None for d in range(len(shape))])

    def state_shardings(self, state):
        """One ``NamedSharding`` per leaf of ``state``: replicated, or FSDP-sharded
        parameters and optimizer state."""
        replicate = lambda tree: jax.tree.map(lambda _: self.replicated, tree)
        if not self.fsdp:
            return replicate(state)
        shard = lambda tree: jax.tree.map(
            lambda a: NamedSharding(self.mesh, self._spec(tuple(np.shape(a)))), tree
        )
        return replicate(state).replace(
            params=shard(state.params), opt_state=shard(state.opt_state)
        )

    def _put(self, tree, shardings):
        """Place ``tree`` (host or device arrays, the same in every process) with
        ``shardings`` (one, or a tree of them); each process supplies its own shards."""
        if jax.process_count() == 1:
            return jax.device_put(tree, shardings)
        if not isinstance(shardings, NamedSharding | jax.sharding.Sharding):
            return jax.tree.map(self._put_one, tree, shardings)
        return jax.tree.map(lambda a: self._put_one(a, shardings), tree)

    @staticmethod
    def _put_one(a, sharding):
        if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            data = Sharded._put_one(jax.random.key_data(a), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
        if isinstance(a, jax.Array) and a.sharding == sharding:
            return a  # placed already (e.g. assembled from the processes' rows)
        host = np.asarray(jax.device_get(a))
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def place_state(self, state):
        """The train state on the mesh: replicated, or sharded for "fsdp"."""
        self._state_shardings = self.state_shardings(state)
        return self._put(state, self._state_shardings)

    def place_data(self, data):
        return self._put(data, self.replicated)

    def place_batch(self, batch):
        """The global batch from each process's rows, split over the mesh's data axis."""
        return global_batch(batch, self.rows)

    # compiled functions ---------------------------------------------------------

    def _keep_state_sharding(self, state):
        return jax.lax.with_sharding_constraint(state, self._state_shardings)

    def compile_epoch(self, train_step):
        run = steps.make_epoch_runner(
            train_step, constrain=lambda b: jax.lax.with_sharding_constraint(b, self.rows)
        )

        def epoch(state, data, indices, mask, acc, first_bad):
            state, acc, first_bad = run(state, data, indices, mask, acc, first_bad)
            return self._keep_state_sharding(state), acc, first_bad

        compiled = jax.jit(epoch, donate_argnums=(0,))

        def call(state, data, indices, mask, acc, first_bad):
            indices, mask = self._put((indices, mask), self.columns)
            acc, first_bad = self._put((acc, first_bad), self.replicated)
            return compiled(state, data, indices, mask, acc, first_bad)

        return call

    def compile_step(self, train_step):
        body = steps.accumulate(train_step)

        def step(state, acc, first_bad, batch):
            state, acc, first_bad = body(state, acc, first_bad, batch)
            return self._keep_state_sharding(state), acc, first_bad

        compiled = jax.jit(step, donate_argnums=(0, 1, 2))

        def call(state, acc, first_bad, batch):
            acc, first_bad = self._put((acc, first_bad), self.replicated)
            return compiled(state, acc, first_bad, self._put(batch, self.rows))

        return call

    def compile_eval(self, eval_step):
        compiled = jax.jit(_eval_body(eval_step), donate_argnums=(1,))
        return lambda state, acc, batch: compiled(
            state, self._put(acc, self.replicated), self._put(batch, self.rows)
        )

    def compile_predict(self):
        def predict(state, x):
            out = steps.predict_step(state, x)
            return jax.lax.with_sharding_constraint(out, self.replicated)

        compiled = jax.jit(predict)
        return lambda state, x: compiled(state, self._put(x, self.rows))


STRATEGIES = ("auto", "single", "pmap", "sharded", "fsdp")
"""The names ``Trainer(strategy=...)`` and :func:`get_strategy` take."""


def get_strategy(strategy="auto", devices: Sequence[jax.Device] | None = None):
    """A strategy object from a name of ``STRATEGIES`` (or the object itself). "auto" is
    "sharded" when more than one device is present, else "single"."""
    if isinstance(strategy, Single):
        return copy.copy(strategy)  # a Sharded one records its state's shardings
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy: expected one of {', '.join(map(repr, STRATEGIES))} or a strategy "
            f"object (jaxdl.parallel.Single/Pmap/Sharded), got {strategy!r}"
        )
    count = len(devices) if devices is not None else jax.device_count()
    if strategy == "auto":
        strategy = "sharded" if count > 1 else "single"
    if strategy == "single":
        return Single(devices[0] if devices else None)
    if strategy == "pmap":
        return Pmap(devices)
    return Sharded(devices, fsdp=strategy == "fsdp")
