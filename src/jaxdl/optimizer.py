"""``Optimizer``: one description of how a run updates its parameters.

The same description serves ``Trainer`` and ``tuning.Sweep``, so a configuration valid for one
is valid for the other. It names the optimizer of ``jaxdl.optim.OPTIMIZERS`` (or holds a
ready ``optax.GradientTransformation``), its learning rate and schedule, the constructor's
options, penalties, clipping, parameter groups, frozen parameters, gradient accumulation and
the policy for non-finite gradients; ``build`` turns it into one optax transformation once the
run's length is known::

    opt = jaxdl.Optimizer("adamw", 3e-4, schedule="warmup_cosine", clip_norm=1.0,
                          options={"weight_decay": 1e-2})
    trainer = jaxdl.Trainer(model, optimizer=opt)

The chain, outermost first: ``apply_if_finite`` (``skip_nonfinite``), ``MultiSteps``
(``accumulate_steps``), the frozen and grouped parameters (``optax.multi_transform``), then
per group: penalty gradients, clipping, the optimizer with its schedule; last, with
``ema``, the average of the parameters (:func:`ema_tracker`), inside the accumulation and the
non-finite policy so that only updates that happen count.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks, optim


def _positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value}")
    return value


def _non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{name}: expected a finite number >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return float(value)


def _learning_rate(value) -> float | Callable:
    if callable(value):  # an optax schedule
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"learning_rate: expected a positive number or an optax schedule, got {value!r}"
        )
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"learning_rate: expected a finite number > 0, got {value}")
    return float(value)


def _decay(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a decay in (0, 1) such as 0.999, got {value!r}")
    if not 0 < value < 1:
        raise ValueError(f"{name}: expected a decay in (0, 1) such as 0.999, got {value}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """How parameters are updated: everything but the run's length, checked when made.

    Args:
      name: a name of ``jaxdl.optim.OPTIMIZERS`` ("adam", "sgd", ...), or an
        ``optax.GradientTransformation`` used as it is (then only ``freeze``,
        ``accumulate_steps`` and ``skip_nonfinite`` apply).
      learning_rate: a positive number, shaped by ``schedule``, or an optax schedule.
      schedule: a name of ``jaxdl.optim.SCHEDULES``; sized to the run's updates.
      options: keyword arguments of the optimizer's constructor (``momentum``,
        ``weight_decay``, ...).
      l1: L1 penalty on the weight matrices (``jaxdl.optim.add_penalty_gradients``).
      l2: L2 penalty on the weight matrices.
      clip_norm: clip the gradients to this global norm.
      clip_value: clip each gradient value to ``[-clip_value, clip_value]``.
      param_groups: {path pattern: learning rate or "frozen"} (``jaxdl.optim``).
      freeze: path patterns of parameters (and their batch statistics) left unchanged.
      accumulate_steps: average that many batches' gradients per update
        (``optax.MultiSteps``); schedules count updates, not batches.
      skip_nonfinite: skip updates whose gradients hold a NaN or infinity
        (``optax.apply_if_finite``) instead of stopping; more than
        ``max_skipped_in_a_row`` in a row still stops the run.
      ema: a decay in (0, 1), e.g. 0.999: keep an exponential moving average of the
        parameters in the optimizer state (:func:`ema_tracker`), for
        ``Trainer.evaluate(weights="ema")`` and ``predict(weights="ema")``; None (the
        default) keeps none and leaves the chain as it is.

    Example:
      >>> opt = jaxdl.Optimizer("adam", 1e-3, schedule="cosine", clip_norm=1.0, l2=1e-4)
      >>> opt.name, opt.schedule, opt.clip_norm
      ('adam', 'cosine', 1.0)

      ``jaxdl.Trainer(model, optimizer=opt)`` sizes the cosine to the run's updates.
    """

    name: str | optax.GradientTransformation = "adam"
    learning_rate: float | Callable = 1e-3
    schedule: str = "constant"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    l1: float = 0.0
    l2: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None
    param_groups: Mapping[str, float | str] = dataclasses.field(default_factory=dict)
    freeze: Sequence[str] = ()
    accumulate_steps: int = 1
    skip_nonfinite: bool = False
    max_skipped_in_a_row: int = 10
    ema: float | None = None

    def __post_init__(self):
        set_ = lambda field, value: object.__setattr__(self, field, value)
        ready = isinstance(self.name, optax.GradientTransformation)
        if not ready:
            _checks.lookup("optimizer", self.name, optim.OPTIMIZERS)
        set_("learning_rate", _learning_rate(self.learning_rate))
        _checks.lookup("schedule", self.schedule, {s: s for s in optim.SCHEDULES})
        if not isinstance(self.options, Mapping):
            raise TypeError(f"options: expected a dict of keyword arguments, got {self.options!r}")
        set_("options", dict(self.options))
        set_("l1", _non_negative("l1", self.l1))
        set_("l2", _non_negative("l2", self.l2))
        for name in ("clip_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None and not _non_negative(name, value) > 0:
                raise ValueError(f"{name}: expected a number > 0 or None, got {value}")
        if not isinstance(self.param_groups, Mapping):
            raise TypeError(
                f"param_groups: expected {{path pattern: learning rate}}, got {self.param_groups!r}"
            )
        set_("param_groups", dict(self.param_groups))
        freeze = (self.freeze,) if isinstance(self.freeze, str) else tuple(self.freeze)
        for pattern in freeze:
            if not isinstance(pattern, str):
                raise TypeError(f"freeze: expected path patterns (str), got {pattern!r}")
        set_("freeze", freeze)
        _positive_int("accumulate_steps", self.accumulate_steps)
        _positive_int("max_skipped_in_a_row", self.max_skipped_in_a_row, low=0)
        if self.ema is not None:
            set_("ema", _decay("ema", self.ema))
        if ready and (self.param_groups or self.options or self.l1 or self.l2):
            raise ValueError(
                "param_groups, options and penalties need an optimizer by name; wrap your "
                "transformation with optax yourself"
            )
        if not ready:
            try:  # unknown options fail here, not at the first step
                self._inner(total_steps=1, steps_per_epoch=1)
            except TypeError as error:
                raise TypeError(f"options for optimizer {self.name!r}: {error}") from None

    @classmethod
    def of(cls, optimizer="adam", learning_rate: float | None = None) -> Optimizer:
        """The description ``Trainer(optimizer=, learning_rate=)`` means: a name, an
        ``Optimizer`` (then ``learning_rate`` must be left out) or an optax transformation."""
        if isinstance(optimizer, Optimizer):
            if learning_rate is not None:
                raise ValueError(
                    "learning_rate: give it inside Optimizer(...), not beside it "
                    f"(got learning_rate={learning_rate!r} and {optimizer!r})"
                )
            return optimizer
        if learning_rate is None:
            return cls(optimizer)
        return cls(optimizer, learning_rate)

    def replace(self, **changes) -> Optimizer:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    @property
    def ready(self) -> bool:
        """Whether ``name`` is an optax transformation given as it is."""
        return isinstance(self.name, optax.GradientTransformation)

    def _inner(self, total_steps: int, steps_per_epoch: int, learning_rate=None, options=None):
        if self.ready:
            return optim.freeze(self.name, self.freeze) if self.freeze else self.name
        groups = {**dict.fromkeys(self.freeze, optim.FROZEN), **self.param_groups}
        return optim.make_optimizer(
            self.name,
            self.learning_rate if learning_rate is None else learning_rate,
            schedule=self.schedule,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            l1=self.l1,
            l2=self.l2,
            clip_norm=self.clip_norm,
            clip_value=self.clip_value,
            param_groups=groups or None,
            **{**self.options, **(options or {})},
        )

    def build(
        self,
        total_steps: int,
        steps_per_epoch: int,
        *,
        per_network: Callable | None = None,
        learning_rate=None,
        options: Mapping | None = None,
        learning_rate_factor: bool = False,
    ) -> optax.GradientTransformation:
        """The optax transformation for a run of ``total_steps`` batches of
        ``steps_per_epoch`` per epoch.

        ``per_network(make) -> tx`` combines several copies of the inner optimizer (a GAN's
        two networks: ``jaxdl.train.tasks.gan_optimizer``). ``learning_rate`` and
        ``options`` override the description's (a sweep member's values, possibly arrays).
        ``learning_rate_factor`` puts ``jaxdl.optim.learning_rate_factor`` after the
        optimizer (before the average of ``ema``): the factor ``ReduceLROnPlateau`` sets
        between epochs; off by default, as it changes the last bits of some updates.
        """
        k = self.accumulate_steps
        updates, per_epoch = -(-total_steps // k), max(steps_per_epoch // k, 1)
        make = lambda: self._inner(updates, per_epoch, learning_rate, options)
        tx = per_network(make) if per_network is not None else make()
        if learning_rate_factor:
            tx = optax.chain(tx, optim.learning_rate_factor())
        if self.ema is not None:
            tx = optax.chain(tx, ema_tracker(self.ema))
        if k > 1:
            tx = optax.MultiSteps(tx, k).gradient_transformation()
        if self.skip_nonfinite:
            tx = optax.apply_if_finite(tx, self.max_skipped_in_a_row)
        return tx

    def config(self) -> dict:
        """The description as JSON values (a transformation or schedule by its repr)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if callable(value) or isinstance(value, optax.GradientTransformation):
                value = repr(value)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out


class EmaParamsState(NamedTuple):
    """The state of :func:`ema_tracker`.

    Attributes:
      count: () int32, the updates averaged so far.
      params: the debiased average of the parameters after each of those updates, a pytree
        like the parameters (zeros before the first update).
    """

    count: jax.Array
    params: Any


def ema_tracker(decay: float) -> optax.GradientTransformation:
    """An optax transformation that passes the updates through unchanged and keeps, in its
    state, the exponential moving average of the parameters they lead to.

    With ``p_t = params + updates`` the parameters after update t, the average is that of
    ``optax.ema`` with ``debias=True``: ``m_t = decay * m_{t-1} + (1 - decay) * p_t`` from
    ``m_0 = 0``, divided by ``1 - decay**t``. It is kept debiased, through the equivalent
    recurrence ``a_t = a_{t-1} + (1 - decay) / (1 - decay**t) * (p_t - a_{t-1})`` (whose
    first weight is exactly 1), so reading it needs no decay: ``a_1 = p_1``, and every later
    update weighs in with ``1 - decay`` as ``t`` grows. It must run last in a chain, on the
    updates that are applied, and needs ``update(updates, state, params)``.

    Args:
      decay: in (0, 1); the average's horizon is about ``1 / (1 - decay)`` updates.
    """
    decay = _decay("decay", decay)

    def init(params):
        return EmaParamsState(
            count=jnp.zeros((), jnp.int32), params=jax.tree.map(jnp.zeros_like, params)
        )

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(
                "ema: the average of the parameters needs them: call tx.update(g, s, params)"
            )
        count = optax.safe_increment(state.count)
        # both terms in float32, so that the first weight is exactly 1
        d = jnp.asarray(decay, jnp.float32)
        weight = (1 - d) / (1 - d ** count.astype(jnp.float32))

        def step(average, p, u):
            new = (p + u).astype(p.dtype)  # what optax.apply_updates makes of them
            return (average + weight.astype(average.dtype) * (new - average)).astype(p.dtype)

        averaged = jax.tree.map(step, state.params, params, updates)
        return updates, EmaParamsState(count=count, params=averaged)

    return optax.GradientTransformation(init, update)


def ema_params(opt_state, params):
    """The averaged parameters an ``Optimizer(ema=...)`` keeps in ``opt_state`` (the state
    of the transformation ``build`` made), or None when it keeps none.

    ``params``: the current parameters, returned while no update has been averaged yet.
    A sweep's state holds its members' averages along their leading axis.
    """
    found = [
        leaf
        for leaf in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, EmaParamsState))
        if isinstance(leaf, EmaParamsState)
    ]
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(
            f"the optimizer state holds {len(found)} averages of the parameters; expected one"
        )
    state = found[0]
    if not np.any(np.asarray(jax.device_get(state.count)) > 0):
        return params
    return state.params
