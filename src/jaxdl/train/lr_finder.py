"""The learning-rate range test (Smith, 2017; fastai's ``lr_find``): where to set the rate.

``find_learning_rate(trainer, data)`` (or ``trainer.find_learning_rate(data)``) trains from
the trainer's parameters (initialised from the data's first batch if it has none) while the
learning rate grows exponentially from ``min_lr`` to ``max_lr``, one batch per step, and
records each step's loss. The loss first barely moves, then falls, then blows up once the
rate passes what the problem can take; the test stops there. A good rate lies on the steep
fall, well below the blow-up.

The run is the trainer's own: its task's step, compiled by its strategy, with its
optimizer description (penalties, clipping, accumulation, frozen parameters) whose learning
rate is replaced by the exponential schedule. It works on copies: afterwards the trainer's
parameters, optimizer state, RNG, step count, epoch and history are exactly as they were,
and a trainer that had no parameters has none again::

    result = trainer.find_learning_rate(data.train, batch_size=64)
    result.plot("lr_range.png")
    trainer = jaxdl.Trainer(model, optimizer=jaxdl.Optimizer("adam", result.suggestion))
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl.train import inputs, loop

SUGGESTIONS = ("steepest", "minimum")


@dataclasses.dataclass(frozen=True)
class LRFinderResult:
    """What a learning-rate range test recorded.

    Attributes:
      learning_rates: (S,) float64, the rate of each step's update, growing exponentially.
      losses: (S,) the smoothed losses: the debiased exponential moving average (factor
        ``smooth``) of the finite ``raw_losses``, run forwards and then backwards, which
        does not lag behind the rate as a one-way average does (NaN where the loss was
        not finite).
      raw_losses: (S,) each step's loss on its batch, computed before that step's update
        (so from the parameters every earlier rate made); NaN where it was not finite.
      suggestion: the suggested learning rate (see ``method``).
      method: "steepest": the rate where ``losses`` fall fastest against ``log(lr)``, over
        the steps before their minimum, leaving out the first tenth; or "minimum": a tenth
        of the rate at their minimum (fastai's ``lr_min``).
      stopped_early: whether the loss diverged (above ``stop_factor`` times its best, or
        not finite) before the last step.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    method: str
    stopped_early: bool

    def plot(self, path_or_ax=None):
        """The smoothed loss against the learning rate (log scale), the suggestion marked.

        Args:
          path_or_ax: a PNG path to write (returned), or a matplotlib ``Axes`` to draw on
            (returned); None: a new ``matplotlib.figure.Figure`` (returned), drawn with no
            display and no pyplot.
        """
        from matplotlib.figure import Figure

        figure = None
        if path_or_ax is None or isinstance(path_or_ax, str | os.PathLike):
            figure = Figure(figsize=(6, 3.5))
            ax = figure.subplots()
        else:
            ax = path_or_ax
        finite = np.isfinite(self.raw_losses)
        rates = self.learning_rates[finite]
        ax.plot(rates, self.raw_losses[finite], alpha=0.3, label="loss")
        ax.plot(rates, self.losses[finite], label="smoothed")
        ax.axvline(self.suggestion, color="k", linestyle="--", linewidth=1)
        ax.annotate(
            f"{self.method}: {self.suggestion:.2g}",
            (self.suggestion, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
        )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        shown = self.losses[np.isfinite(self.losses)]
        if shown.size:  # the blow-up at the end would squash the rest of the curve
            low, first = float(np.min(shown)), float(shown[0])
            ax.set_ylim(low - 0.1 * abs(first - low) - 1e-12, first + 0.5 * abs(first - low))
        ax.grid(alpha=0.3)
        ax.legend()
        if figure is None:
            return ax
        if path_or_ax is None:
            return figure
        figure.tight_layout()
        figure.savefig(path_or_ax, dpi=110)
        return os.fspath(path_or_ax)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a finite number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value}")
    return float(value)


def _check_options(min_lr, max_lr, num_steps, smooth, stop_factor, suggest) -> tuple:
    min_lr, max_lr = _positive("min_lr", min_lr), _positive("max_lr", max_lr)
    if not max_lr > min_lr:
        raise ValueError(f"max_lr: expected more than min_lr={min_lr}, got {max_lr}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int | np.integer):
        raise TypeError(f"num_steps: expected an int >= 10, got {num_steps!r}")
    if num_steps < 10:
        raise ValueError(f"num_steps: expected an int >= 10, got {num_steps}")
    if isinstance(smooth, bool) or not isinstance(smooth, int | float) or not 0 <= smooth < 1:
        raise ValueError(f"smooth: expected a factor in [0, 1), got {smooth!r}")
    if stop_factor is not None and not (
        isinstance(stop_factor, int | float) and not isinstance(stop_factor, bool)
    ):
        raise TypeError(f"stop_factor: expected a number > 1 or None, got {stop_factor!r}")
    if stop_factor is not None and not stop_factor > 1:
        raise ValueError(f"stop_factor: expected a number > 1 or None, got {stop_factor}")
    if suggest not in SUGGESTIONS:
        raise ValueError(f"suggest: expected one of {SUGGESTIONS}, got {suggest!r}")
    return min_lr, max_lr, int(num_steps), float(smooth)


def _check_optimizer(optimizer) -> None:
    if optimizer.ready:
        raise ValueError(
            "find_learning_rate sets the learning rate, so it needs an optimizer by name "
            "(jaxdl.Optimizer('adam', ...)), not a ready optax transformation"
        )
    rates = [p for p, rate in optimizer.param_groups.items() if not isinstance(rate, str)]
    if rates:
        raise ValueError(
            "find_learning_rate varies one learning rate; the parameter groups "
            f"{', '.join(map(repr, rates))} have rates of their own (only 'frozen' groups "
            "can stay)"
        )


def _copy(state):
    """A state with buffers of its own, so that donating it to the step leaves the
    trainer's state untouched."""
    return jax.tree.map(lambda a: a.copy() if isinstance(a, jax.Array) else a, state)


def _smoothed(values: np.ndarray, smooth: float) -> np.ndarray:
    """The debiased exponential moving average of ``values`` up to each index."""
    out, average = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        average = smooth * average + (1 - smooth) * v
        out[i] = average / (1 - smooth ** (i + 1))
    return out


def _two_way(raw: np.ndarray, smooth: float) -> np.ndarray:
    """The finite values of ``raw`` smoothed forwards, then backwards (NaN elsewhere)."""
    finite = np.isfinite(raw)
    out = np.full(len(raw), np.nan)
    if finite.any():
        out[finite] = _smoothed(_smoothed(raw[finite], smooth)[::-1], smooth)[::-1]
    return out


def _suggest(rates: np.ndarray, curve: np.ndarray, method: str) -> float:
    finite = np.isfinite(curve)
    rates, curve = rates[finite], curve[finite]
    if len(curve) < 3:
        raise ValueError(
            "find_learning_rate: the loss diverged within the first steps; lower min_lr"
        )
    low = int(np.argmin(curve))
    if method == "minimum":
        return float(rates[low] / 10)
    start = len(curve) // 10
    if low - start < 2:  # the minimum comes first: nothing falls, take the start
        return float(rates[start])
    slopes = np.gradient(curve[start : low + 1], np.log(rates[start : low + 1]))
    return float(rates[start + int(np.argmin(slopes))])


def find_learning_rate(
    trainer,
    data,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 32,
    smooth: float = 0.9,
    stop_factor: float | None = 4.0,
    suggest: str = "steepest",
    shuffle: bool = True,
) -> LRFinderResult:
    """Run the learning-rate range test with ``trainer`` on ``data``.

    Step ``i`` (of ``num_steps``) trains on one batch with the learning rate
    ``min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))`` (with ``accumulate_steps`` k,
    the rate of update ``i // k``, sized to the updates), going through the epochs of
    ``data`` as ``fit`` does. The optimizer is the trainer's description with a constant
    schedule (its ``schedule`` is replaced by this one) and fresh state.

    Args:
      trainer: a ``jaxdl.Trainer``; left exactly as it was.
      data: what ``Trainer.fit`` takes: (x, y), a data set with ``.x``/``.y``, a batch
        source or a stream.
      min_lr: the first step's rate, > 0.
      max_lr: the last step's rate, > ``min_lr``.
      num_steps: the number of steps (batches), >= 10; 100 to 300 resolve the curve.
      batch_size: the training batch size, as in ``fit``.
      smooth: the factor in [0, 1) of the exponential moving average of the losses (0: the
        raw losses).
      stop_factor: stop once the smoothed loss exceeds this multiple (> 1) of its best so
        far, or a loss is not finite; None: run every step unless a loss is not finite.
      suggest: "steepest" or "minimum": how ``suggestion`` is read off the curve
        (``LRFinderResult.method``).
      shuffle: shuffle the data as ``fit`` does.

    Returns:
      An :class:`LRFinderResult`: ``learning_rates``, ``losses``, ``raw_losses`` (S,) for
      the S <= ``num_steps`` steps run, ``suggestion``, ``plot(path or ax)``.
    """
    min_lr, max_lr, num_steps, smooth = _check_options(
        min_lr, max_lr, num_steps, smooth, stop_factor, suggest
    )
    batch_size = _checks.check_inference_batch_size(batch_size)  # an int >= 1
    _check_optimizer(trainer.optimizer)
    trainer._require_finite()
    saved = dict(trainer.__dict__)
    # the strategy records its state's shardings and a task what it learnt from the
    # targets: the test works on copies of both, and leaves the trainer's as they were
    trainer.strategy, trainer.task = copy.copy(trainer.strategy), copy.copy(trainer.task)
    try:
        return _range_test(
            trainer,
            data,
            min_lr,
            max_lr,
            num_steps,
            batch_size,
            smooth,
            stop_factor,
            suggest,
            shuffle,
        )
    finally:
        trainer.__dict__.clear()
        trainer.__dict__.update(saved)


def _range_test(
    trainer, data, min_lr, max_lr, num_steps, batch_size, smooth, stop_factor, suggest, shuffle
) -> LRFinderResult:
    adapter = inputs.adapter_for(trainer, data, batch_size, "data", shuffle=shuffle, train=True)
    if trainer.state is None:  # parameters as fit would make them; dropped afterwards
        trainer.init(adapter.sample())
        adapter = inputs.adapter_for(trainer, data, batch_size, "data", shuffle=shuffle, train=True)
    inputs.check_adapter(trainer, adapter, "data", training=True)
    task, strategy = trainer.task, trainer.strategy
    task.prepare(adapter.targets(), trainer.num_outputs)

    k = trainer.optimizer.accumulate_steps
    updates = -(-num_steps // k)
    log_ratio = math.log(max_lr / min_lr)
    last = max(updates - 1, 1)

    def schedule(count):
        fraction = jnp.minimum(count, last) / last
        return min_lr * jnp.exp(fraction * log_ratio)

    description = trainer.optimizer.replace(schedule="constant")
    per_epoch = max(adapter.num_batches(0), 1)
    tx = description.build(
        num_steps,
        min(per_epoch, num_steps),
        per_network=task.per_network(trainer.model),
        learning_rate=schedule,
    )
    state = _copy(trainer.state)
    state = strategy.place_state(state.replace(tx=tx, opt_state=tx.init(state.params)))
    fns = loop.compile_steps(task, strategy, (), trainer.num_classes, trainer.model)
    empty = lambda: strategy.per_member(task.empty_metrics((), trainer.num_classes))

    counts = np.minimum(np.arange(num_steps) // k, last)
    all_rates = min_lr * np.exp(counts / last * log_ratio)
    raw, best, average, epoch = [], math.inf, 0.0, 0
    stopped = False
    while len(raw) < num_steps and not stopped:
        if adapter.num_batches(epoch) == 0:
            raise ValueError("data: expected at least one batch, got none")
        for batch in adapter.batches(epoch):
            bad = strategy.per_member(jnp.asarray(-1, jnp.int32))
            state, acc, bad = fns.step(state, empty(), bad, batch)
            acc, bad = jax.device_get((acc, bad))  # one copy to the host per step
            if np.max(bad) >= 0:
                loss = math.inf  # the loss was not finite: the accumulated states skip it
            else:
                loss = float(np.mean(strategy.compute(acc)["loss"]))
            raw.append(loss)
            # the early stop watches the one-way average, the only one known as it runs
            average = smooth * average + (1 - smooth) * loss
            smoothed = average / (1 - smooth ** len(raw))
            best = min(best, smoothed)
            diverged = stop_factor is not None and smoothed > stop_factor * best
            if not math.isfinite(loss) or diverged:
                stopped = len(raw) < num_steps
                break
            if len(raw) == num_steps:
                break
        epoch += 1
    rates = all_rates[: len(raw)]
    raw = np.asarray(raw, np.float64)
    raw = np.where(np.isfinite(raw), raw, np.nan)
    curve = _two_way(raw, smooth)
    return LRFinderResult(
        learning_rates=rates,
        losses=curve,
        raw_losses=raw,
        suggestion=_suggest(rates, curve, suggest),
        method=suggest,
        stopped_early=stopped,
    )
