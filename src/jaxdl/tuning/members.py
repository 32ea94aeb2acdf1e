"""``Members``: the strategy of a sweep, every compiled function mapped over a member axis.

The state is stacked along a leading axis of K members; the data is shared, and each
member reads its own batch order (its seed's). The loop is the ``Trainer``'s: only how
its functions are compiled, and how their metric states are read, differ.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import metrics as metrics_lib
from jaxdl.train import steps
from jaxdl.train.parallel import Single


class Members(Single):
    """``jax.jit(jax.vmap(...))`` over the members of a sweep, one per seed of ``seeds``."""

    name = "members"
    batch_axis = 1  # predict's outputs are (K, N, ...)

    def __init__(self, seeds):
        super().__init__()
        self.seeds = [int(s) for s in seeds]

    def __repr__(self) -> str:
        return f"Members({len(self.seeds)})"

    def plan(self, adapter, epoch: int):
        plans = [adapter.plan(epoch, seed) for seed in self.seeds]
        return np.stack([p[0] for p in plans]), np.stack([p[1] for p in plans])

    def per_member(self, tree):
        k = len(self.seeds)
        return jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (k, *jnp.shape(leaf))), tree)

    def compute(self, states) -> dict[str, np.ndarray]:
        """{name: (K,) values}, one per member."""
        states = jax.device_get(states)
        get = lambda k: metrics_lib.compute(jax.tree.map(operator.itemgetter(k), states))
        per_member = [get(k) for k in range(len(self.seeds))]
        return {name: np.array([m[name] for m in per_member]) for name in per_member[0]}

    def compile_epoch(self, train_step):
        run = jax.vmap(steps.make_epoch_runner(train_step), in_axes=(0, None, 0, 0, 0, 0))
        return jax.jit(run, donate_argnums=(0,))

    def compile_step(self, train_step):
        def refuse(*args):
            raise ValueError("a sweep runs whole epochs of array data (steps_per_call='epoch')")

        return refuse

    def compile_eval(self, eval_step):
        body = lambda state, acc, batch: metrics_lib.merge(acc, eval_step(state, batch))
        return jax.jit(jax.vmap(body, in_axes=(0, 0, None)))

    def compile_predict(self):
        return jax.jit(jax.vmap(steps.predict_step, in_axes=(0, None)))
