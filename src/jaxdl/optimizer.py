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
per group: penalty gradients, clipping, the optimizer with its schedule.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
      l1, l2: penalties on the weight matrices (``jaxdl.optim.add_penalty_gradients``).
      clip_norm, clip_value: clip the gradients by global norm, or each value.
      param_groups: {path pattern: learning rate or "frozen"} (``jaxdl.optim``).
      freeze: path patterns of parameters (and their batch statistics) left unchanged.
      accumulate_steps: average that many batches' gradients per update
        (``optax.MultiSteps``); schedules count updates, not batches.
      skip_nonfinite: skip updates whose gradients hold a NaN or infinity
        (``optax.apply_if_finite``) instead of stopping; more than
        ``max_skipped_in_a_row`` in a row still stops the run.
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
    ) -> optax.GradientTransformation:
        """The optax transformation for a run of ``total_steps`` batches of
        ``steps_per_epoch`` per epoch.

        ``per_network(make) -> tx`` combines several copies of the inner optimizer (a GAN's
        two networks: ``jaxdl.train.tasks.gan_optimizer``). ``learning_rate`` and
        ``options`` override the description's (a sweep member's values, possibly arrays).
        """
        k = self.accumulate_steps
        updates, per_epoch = -(-total_steps // k), max(steps_per_epoch // k, 1)
        make = lambda: self._inner(updates, per_epoch, learning_rate, options)
        tx = per_network(make) if per_network is not None else make()
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
