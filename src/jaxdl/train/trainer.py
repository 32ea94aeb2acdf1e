"""``Trainer``: a thin host loop over the pure steps of ``jaxdl.train.steps``.

The loop owns every side effect (progress bar, callbacks, history); the compiled functions
own the arithmetic. Each is compiled once per run: batches have a fixed shape (the last one is
padded and masked), and the state is donated so XLA updates it in place.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import threading
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxdl import _checks, optim
from jaxdl import losses as losses_lib
from jaxdl import metrics as metrics_lib
from jaxdl.data.dataset import epoch_indices
from jaxdl.data.pipeline import prefetch_to_device
from jaxdl.data.sampling import class_weights
from jaxdl.train import objectives, parallel, steps
from jaxdl.train import precision as precision_lib
from jaxdl.train.callbacks import Callback, NonFiniteLossError
from jaxdl.train.state import TrainState, create_train_state
from jaxdl.train.transfer import read_variables, transfer_variables

# Data sets up to this size are copied to the device once and run a whole epoch per call.
_ON_DEVICE_BYTES = 1 << 30


def _is_source(data) -> bool:
    """Whether ``data`` serves its own fixed-shape batches (e.g. ``jaxdl.graphs.GraphDataset``)."""
    return hasattr(data, "batches") and hasattr(data, "num_batches")


def _streams(data) -> bool:
    """Whether ``data`` is a streaming pipeline (``jaxdl.data.Pipeline``): batches of arrays,
    each process's rows of the global batch, that start at any batch of an epoch."""
    return _is_source(data) and getattr(data, "per_process", False)


def _as_arrays(data, name: str, unlabelled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a tuple or a data set with ``.x``/``.y``. Unlabelled objectives take x
    alone too, and get placeholder labels (zeros) that their steps never read."""
    if unlabelled:
        if isinstance(data, np.ndarray | jax.Array):
            x = np.asarray(data)
        elif isinstance(data, tuple | list) and len(data) == 2:
            x = np.asarray(data[0])
        elif hasattr(data, "x"):
            x = np.asarray(data.x)
        else:
            raise TypeError(
                f"{name}: expected features x (N, ...), an (x, y) tuple or a data set with .x, "
                f"got {type(data).__name__}"
            )
        return x, np.zeros(len(x) if x.ndim else 0, np.int32)
    if isinstance(data, tuple | list) and len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1])
    if hasattr(data, "x") and hasattr(data, "y"):
        return np.asarray(data.x), np.asarray(data.y)
    raise TypeError(
        f"{name}: expected an (x, y) tuple or a data set with .x and .y, got {type(data).__name__}"
    )


class Trainer:
    """Train, evaluate and predict with a Flax model in a few lines.

    Args:
      model: a Flax Linen module mapping (B, *input_shape) to (B, outputs). If its
        ``__call__`` takes ``train``, it is called with ``train=True`` in training.
      loss: a name from ``jaxdl.losses.LOSSES`` or a callable returning per-example values
        (B,). ``"cross_entropy"`` takes integer labels (B,) or one-hot rows (B, C). Or an
        objective of ``jaxdl.train.objectives`` for unlabelled data: ``"elbo"`` (a ``VAE``) or
        ``"gan"`` (a ``GAN``, its two networks updated by their own optimizers); ``fit`` then
        takes the features alone (labels, if given, are ignored).
      optimizer: a name from ``jaxdl.optim.OPTIMIZERS`` or any ``optax.GradientTransformation``.
      learning_rate: base learning rate (ignored when ``optimizer`` is a transformation).
      metrics: names from ``jaxdl.metrics.METRICS``; the loss is always reported. Default:
        accuracy, or none for an objective (which reports its own terms).
      seed: fixes initialisation, shuffling and dropout.
      schedule: a name from ``jaxdl.optim.SCHEDULES``; sized to the steps of the first ``fit``.
      l1, l2, clip_norm: penalties and clipping (see ``jaxdl.optim.make_optimizer``).
      steps_per_call: "epoch" runs a whole epoch as one compiled ``lax.scan`` over data held on
        the device; 1 runs one compiled step per call; "auto" picks "epoch" for data sets up
        to 1 GiB.
      loss_options: keyword arguments for the loss (e.g. ``from_logits=False``).
      optimizer_options: keyword arguments for the optax constructor (e.g. ``momentum=0.8``).
      checkpoint_dir: save a checkpoint there (Orbax) every ``checkpoint_every`` epochs and
        at the end of ``fit``, keeping the ``keep_checkpoints`` newest; ``fit(resume=True)``
        continues from the newest. While checkpointing, SIGINT and SIGTERM stop the run
        after the running compiled call (one step, or one stretch of an epoch held on the
        device) with a checkpoint of where it stopped.
      checkpoint_every_steps: also save every that many steps inside an epoch, with the
        position in the epoch and its partial metrics, so a kill loses at most that many
        steps; data held on the device then runs in stretches of that many steps per call.
      keep_best: a metric of the history (e.g. ``"val_loss"``): the checkpoint of the epoch
        where it was best is kept beside the newest ones (min for losses and errors, max
        otherwise, or ``keep_best_mode``); ``load_checkpoint("best")`` restores it.
      skip_nonfinite: skip every update whose gradients hold a NaN or infinity (optax's
        ``apply_if_finite``) and count them in the history as ``skipped_updates``, instead of
        stopping; more than ``max_skipped_in_a_row`` in a row still stops the run.
      freeze: path patterns (``"conv_*"``, ``"encoder/*"``; see ``jaxdl.optim``) of
        parameters that training leaves unchanged, with their batch statistics.
      param_groups: {path pattern: learning rate} for parameters that learn at a rate of
        their own (e.g. a pretrained backbone at a tenth of the head's), through
        ``optax.multi_transform``; the other parameters use ``learning_rate``.
      pretrained: weights to start from: an exported model folder, a checkpoint folder, a
        variables dict or a fitted Trainer (``jaxdl.train.transfer.read_variables``). The
        parameters and batch statistics whose paths match ``pretrained_include`` and not
        ``pretrained_exclude`` are copied in when the model is initialised; the rest (a new
        head) keep their fresh initialisation.
      augment: ``augment(key, x) -> x`` applied to every training batch inside the compiled
        step, e.g. ``jaxdl.data.augment.compose(random_flip(), random_crop(4))``; never to
        validation, evaluation or prediction.
      class_weight: "balanced" (``jaxdl.data.class_weights`` of the first ``fit``'s labels)
        or one weight per class: each example's loss is multiplied by its class's weight in
        training (the reported metrics and ``evaluate`` stay unweighted).
      strategy: how the steps use the devices (``jaxdl.train.parallel``): "single",
        "pmap", "sharded" (batches split over a device mesh), "fsdp" (also the parameters
        and optimizer state), a strategy object, or "auto": "sharded" when more than one
        device is present, else "single". Every strategy gives the numbers of the
        one-device run; ``batch_size`` must be a multiple of the device count.
      devices: the devices the strategy uses (default: all of them).
      precision: "float32", "bfloat16" (parameters float32, computation bfloat16) or
        "float16" (the same with a dynamic loss scale); see ``jaxdl.train.precision``.
      accumulate_steps: average the gradients of that many consecutive batches before each
        update (``optax.MultiSteps``), an update as if the batch were that many times
        larger; schedules count updates, not batches.
    """

    def __init__(
        self,
        model: nn.Module,
        loss="cross_entropy",
        optimizer: str | optax.GradientTransformation = "adam",
        learning_rate: float = 1e-3,
        metrics: Sequence[str] | None = None,
        seed: int = 0,
        *,
        schedule: str = "constant",
        l1: float = 0.0,
        l2: float = 0.0,
        clip_norm: float | None = None,
        steps_per_call: int | str = "auto",
        loss_options: dict | None = None,
        optimizer_options: dict | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        keep_checkpoints: int = 3,
        checkpoint_every_steps: int | None = None,
        keep_best: str | None = None,
        keep_best_mode: str = "auto",
        skip_nonfinite: bool = False,
        max_skipped_in_a_row: int = 10,
        freeze: Sequence[str] = (),
        param_groups: dict[str, float | str] | None = None,
        pretrained=None,
        pretrained_include: Sequence[str] = ("*",),
        pretrained_exclude: Sequence[str] = (),
        augment=None,
        class_weight=None,
        strategy="auto",
        devices=None,
        precision: str = "float32",
        accumulate_steps: int = 1,
    ):
        self.objective = loss if isinstance(loss, str) and loss in objectives.OBJECTIVES else None
        if self.objective is None:
            losses_lib.get(loss)
        if metrics is None:
            metrics = () if self.objective else ("accuracy",)
        if self.objective and metrics:
            raise ValueError(
                f"the {loss!r} objective reports its own terms; metrics= must be empty, "
                f"got {tuple(metrics)}"
            )
        for name in metrics:
            metrics_lib.get(name)
        if not isinstance(optimizer, optax.GradientTransformation):
            _checks.lookup("optimizer", optimizer, optim.OPTIMIZERS)
        _checks.lookup("schedule", schedule, {s: s for s in optim.SCHEDULES})
        if steps_per_call not in ("auto", "epoch", 1):
            raise ValueError(f"steps_per_call must be 'auto', 'epoch' or 1, got {steps_per_call!r}")
        _checks.check_seed(seed)
        self.freeze = (freeze,) if isinstance(freeze, str) else tuple(freeze)
        self.param_groups = dict(param_groups or {})
        if (self.freeze or self.param_groups) and self.objective == "gan":
            raise ValueError("freeze and param_groups are not supported with the 'gan' objective")
        if self.param_groups and isinstance(optimizer, optax.GradientTransformation):
            raise ValueError(
                "param_groups needs an optimizer by name (their learning rates build one "
                "optimizer per group); wrap your transformation with optax.multi_transform"
            )
        self.pretrained = pretrained
        if (augment is not None or class_weight is not None) and self.objective:
            raise ValueError(f"augment and class_weight are not supported with {loss!r}")
        if isinstance(class_weight, str) and class_weight != "balanced":
            raise ValueError(
                f"class_weight: expected 'balanced' or one weight per class, got {class_weight!r}"
            )
        self.augment, self.class_weight = augment, class_weight
        self.strategy = parallel.get_strategy(strategy, devices)
        if self.strategy.name == "pmap" and self.objective:
            raise ValueError(
                f"the {loss!r} objective runs with strategy='single' or 'sharded', not 'pmap'"
            )
        self.precision = precision_lib.check_policy(precision)
        if self.objective and precision != "float32":
            raise ValueError(f"the {loss!r} objective computes in float32; precision={precision!r}")
        if isinstance(accumulate_steps, bool) or not isinstance(accumulate_steps, int):
            raise TypeError(f"accumulate_steps: expected an int >= 1, got {accumulate_steps!r}")
        if accumulate_steps < 1:
            raise ValueError(f"accumulate_steps: expected an int >= 1, got {accumulate_steps}")
        if accumulate_steps > 1 and self.objective == "gan":
            raise ValueError("accumulate_steps is not supported with the 'gan' objective")
        self.accumulate_steps = accumulate_steps
        self._class_weights = None
        self.pretrained_include, self.pretrained_exclude = pretrained_include, pretrained_exclude
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.learning_rate, self.metrics, self.seed = learning_rate, tuple(metrics), seed
        self.schedule, self.l1, self.l2, self.clip_norm = schedule, l1, l2, clip_norm
        self.steps_per_call = steps_per_call
        self.loss_options, self.optimizer_options = loss_options, dict(optimizer_options or {})
        self.checkpoint_dir, self.checkpoint_every = checkpoint_dir, int(checkpoint_every)
        self.keep_checkpoints = int(keep_checkpoints)
        if checkpoint_every_steps is not None and int(checkpoint_every_steps) < 1:
            raise ValueError(
                "checkpoint_every_steps must be a positive int or None, "
                f"got {checkpoint_every_steps!r}"
            )
        self.checkpoint_every_steps = checkpoint_every_steps and int(checkpoint_every_steps)
        self.keep_best = keep_best
        self.keep_best_mode = _checks.monitor_mode(keep_best, keep_best_mode) if keep_best else None
        self._checkpointer = None
        self.skip_nonfinite, self.max_skipped_in_a_row = skip_nonfinite, int(max_skipped_in_a_row)
        self.state: TrainState | None = None
        self.epoch = 0
        self.stop_training = False
        self.input_shape: tuple[int, ...] | None = None
        self._output_shape: tuple[int, ...] | None = None
        self.num_outputs: int | None = None
        self._compiled: dict = {}

    # ------------------------------------------------------------------ set-up

    def _make_tx(self, total_steps: int, steps_per_epoch: int) -> optax.GradientTransformation:
        k = self.accumulate_steps
        tx = self._make_inner_tx(-(-total_steps // k), max(steps_per_epoch // k, 1))
        if k > 1:
            tx = optax.MultiSteps(tx, k).gradient_transformation()
        if self.skip_nonfinite:
            return optax.apply_if_finite(tx, self.max_skipped_in_a_row)
        return tx

    def _make_inner_tx(self, total_steps: int, steps_per_epoch: int):
        if isinstance(self.optimizer, optax.GradientTransformation):
            return optim.freeze(self.optimizer, self.freeze) if self.freeze else self.optimizer
        groups = {**dict.fromkeys(self.freeze, optim.FROZEN), **self.param_groups}
        make = lambda: optim.make_optimizer(
            self.optimizer,
            self.learning_rate,
            schedule=self.schedule,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            l1=self.l1,
            l2=self.l2,
            clip_norm=self.clip_norm,
            param_groups=groups or None,
            **self.optimizer_options,
        )
        if self.objective == "gan":  # one optimizer state per network
            return objectives.gan_optimizer(make(), make())
        return make()

    def init(self, x_sample, total_steps: int = 1, steps_per_epoch: int = 1) -> TrainState:
        """Create the state from one batch of features (B, *input_shape), or from the inputs
        of one batch of a batch source (e.g. a padded ``GraphsTuple``); ``fit`` calls it."""
        if isinstance(x_sample, np.ndarray | jax.Array | list):
            x_sample = _checks.as_features(x_sample, "x")[:1]
            self.input_shape = tuple(x_sample.shape[1:])
            self._input_kind = x_sample.dtype.kind
        tx = self._make_tx(total_steps, steps_per_epoch)
        state = create_train_state(self.model, tx, x_sample, self.seed, self.precision)
        if self.pretrained is not None:
            variables, _ = transfer_variables(
                state.variables(),
                read_variables(self.pretrained),
                self.pretrained_include,
                self.pretrained_exclude,
            )
            state = state.replace(
                params=variables["params"],
                batch_stats=variables.get("batch_stats", state.batch_stats),
                opt_state=tx.init(variables["params"]),
            )
        self.state = self.strategy.place_state(state.replace(frozen=self.freeze))
        out = jax.eval_shape(lambda s, x: steps.predict_step(s, x), self.state, x_sample)
        self._output_shape = None
        if isinstance(out, jax.ShapeDtypeStruct):
            self.num_outputs = int(out.shape[-1]) if out.ndim >= 2 else 1
            self._output_shape = tuple(out.shape[1:])
        else:  # several outputs (e.g. a VAE's): no class count
            self.num_outputs = None
        return self.state

    def _check(self, data, name: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = _as_arrays(data, name, self.objective is not None)
        x = _checks.as_features(x, f"{name}.x" if name != "x" else "x", self.input_shape)
        if self.input_shape is not None and x.dtype.kind != self._input_kind:
            expected = "float32" if self._input_kind == "f" else "int32"
            raise TypeError(f"{name}.x: expected {expected} features as in training, got {x.dtype}")
        classification = self.loss in losses_lib.CLASSIFICATION_LOSSES
        y = _checks.as_labels(y, len(x), self.num_outputs if classification else None, f"{name}.y")
        if classification and self._output_shape:
            _checks.check_class_targets(y, self._output_shape, f"{name}.y")
        return x, y

    def _functions(self):
        """The compiled functions, built once per Trainer so that no fit retraces them."""
        if not self._compiled:
            num_classes = self.num_outputs if self.num_outputs and self.num_outputs > 1 else 2
            args = (self.loss, self.metrics, num_classes, self.loss_options)
            options = {"augment": self.augment, "class_weights": self._class_weights}
            if self.objective == "elbo":
                train_step, eval_step = objectives.make_elbo_steps()
            elif self.objective == "gan":
                train_step, eval_step = objectives.make_gan_steps(self.model.latent_dim)
            else:
                train_step = steps.make_train_step(*args, **options)
                eval_step = steps.make_eval_step(*args)
            device_train_step, device_eval_step = train_step, eval_step
            axis = self.strategy.axis_name
            if axis is not None:  # pmap: steps that sum over the devices
                device_train_step = steps.make_train_step(*args, **options, axis_name=axis)
                device_eval_step = steps.make_eval_step(*args, axis_name=axis)
            strategy = self.strategy
            self._compiled = {
                "train_step": train_step,  # for the shapes of the metric states
                "eval_step": eval_step,
                "epoch": strategy.compile_epoch(device_train_step),
                "step": strategy.compile_step(device_train_step),
                "eval": strategy.compile_eval(device_eval_step),
                "predict": strategy.compile_predict(),
            }
        return self._compiled

    def compiled_train_step(self, batch: dict) -> tuple[Callable, tuple, Callable]:
        """The training step exactly as ``fit(steps_per_call=1)`` runs it, for benchmarks and
        hand-written loops; call ``init`` first.

        ``batch``: {"x", "y", "mask"} of one training batch. Returns ``(step, carry, body)``:
        ``step(*carry, batch) -> carry`` is compiled for this trainer's strategy and donates
        the carry, which starts as (state, zero metric states, -1: no non-finite loss yet);
        ``body`` is the same computation uncompiled, on one device and the global batch.
        The first call donates ``self.state`` (the carry's first element): assign
        ``trainer.state = carry[0]`` before the trainer is used again.
        """
        self._require_state()
        fns = self._functions()
        carry = (self.state, self._zero_metrics("train_step", batch), jnp.asarray(-1, jnp.int32))
        return fns["step"], carry, steps.accumulate(fns["train_step"])

    def _zero_metrics(self, step_name: str, batch: dict) -> dict:
        """Fresh zero metric states; their structure is traced once and then cached."""
        key = f"{step_name}_metric_shapes"
        if key not in self._compiled:
            self._compiled[key] = steps.metric_shapes(self._compiled[step_name], self.state, batch)
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), self._compiled[key])

    # ------------------------------------------------------------------ training

    def fit(
        self,
        data,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data=None,
        callbacks: Sequence[Callback] = (),
        shuffle: bool = True,
        verbose: bool = True,
        resume: bool = False,
    ) -> dict[str, list[float]]:
        """Train for ``epochs`` epochs and return the history.

        Args:
          data: (x, y) arrays or a data set with ``.x`` (N, *input_shape) and ``.y`` (N,) or
            (N, *target_shape); or a batch source that serves its own fixed-shape batches
            (``batches(batch_size, shuffle=, seed=, epoch=)`` and ``num_batches(...)``), such
            as ``jaxdl.graphs.GraphDataset`` or ``NodeDataset``, run one compiled step per batch;
            or a streaming ``jaxdl.data.Pipeline`` (e.g. ``jaxdl.data.stream("mnist")``), read
            by its threads while the step runs, each batch copied to the devices ahead of its
            step, a resumed run reading on from the checkpoint's batch; with several
            processes each reads its own rows of every batch.
          validation_data: the same kind, evaluated after every epoch into ``val_*`` entries.
          callbacks: :class:`Callback` objects, e.g. ``EarlyStopping``, ``CSVLogger``.
          resume: continue from the newest checkpoint in ``checkpoint_dir`` (start fresh when
            there is none); ``epochs`` then counts from the start of the run, so running the
            same script again after an interruption ends where the uninterrupted run would,
            with the same parameters and history.

        Returns:
          A dict from each metric name (``"loss"``, ``"accuracy"``, ..., and ``"val_"`` + name)
          to its per-epoch values.

        Raises:
          NonFiniteLossError: the loss became NaN or infinite; the message names the step.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer):
            raise TypeError(f"epochs: expected an int, got {type(epochs).__name__}: {epochs!r}")
        if epochs < (0 if resume else 1):  # a resumed run may have nothing left to do
            raise ValueError(f"epochs: expected a positive int, got {epochs}")
        source = _is_source(data)
        self._one_device_source(data)
        if self.state is None:
            if source:
                steps_per_epoch = data.num_batches(batch_size)
                if _streams(data):
                    sample = data.first()[0]  # one example, not a reader's first batches
                else:
                    sample = next(iter(data.batches(batch_size)))["x"]
            else:
                x, _ = _as_arrays(data, "data", self.objective is not None)
                x = _checks.as_features(x, "data.x")
                steps_per_epoch = -(-len(x) // max(int(batch_size), 1))
                sample = x[:1]
            self.init(sample, total_steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch)
        if source:
            self._check_source(data, "data")  # the source checks batch_size where it uses one
            if _streams(data):
                self.strategy.check_batch_size(batch_size)
        else:
            x, y = self._check(data, "data")
            batch_size = _checks.check_batch_size(batch_size, len(x))
            self.strategy.check_batch_size(batch_size)
        if validation_data is not None:
            if _is_source(validation_data):
                self._check_source(validation_data, "validation_data")
            else:
                validation_data = self._check(validation_data, "validation_data")
        if self.class_weight is not None and self._class_weights is None:
            labels = (data.targets() if hasattr(data, "targets") else None) if source else y
            if labels is None:
                raise ValueError(
                    "class_weight needs labels: this batch source has no targets() (give a "
                    "Pipeline its labels=)"
                )
            self._class_weights = self._resolve_class_weights(labels)
        fns = self._functions()
        mode = self.steps_per_call
        if source:
            mode = 1  # a source's batches are built on the host, one call each
        elif mode == "auto":
            mode = "epoch" if x.nbytes + y.nbytes <= _ON_DEVICE_BYTES else 1
        if mode == "epoch":
            x_device, y_device = self.strategy.place_data(x, y)

        def epoch_batches(epoch: int, start: int):
            """The batches of ``epoch`` from batch ``start`` on."""
            if _streams(data):  # read from ``start`` on, copied to the devices ahead
                batches = data.batches(
                    batch_size, shuffle=shuffle, seed=self.seed, epoch=epoch, start=start,
                    train=True,
                )  # fmt: skip
                return prefetch_to_device(batches, self.strategy.place_batch)
            if source:
                batches = data.batches(batch_size, shuffle=shuffle, seed=self.seed, epoch=epoch)
                return itertools.islice(batches, start, None)
            indices, mask = epoch_indices(
                len(x), batch_size, shuffle=shuffle, seed=self.seed, epoch=epoch
            )
            rest = zip(indices[start:], mask[start:])
            return ({"x": x[i], "y": y[i], "mask": m} for i, m in rest)

        def epoch_steps(epoch: int) -> int:
            if source:
                return data.num_batches(batch_size, shuffle=shuffle, seed=self.seed, epoch=epoch)
            return -(-len(x) // batch_size)

        history: dict[str, list[float]] = {}
        checkpointer = self._get_checkpointer()
        saved = None  # the meta of the checkpoint a resumed run starts from
        if resume:
            if checkpointer is None:
                raise ValueError("fit(resume=True) needs Trainer(checkpoint_dir=...)")
            if checkpointer.latest_step() is not None:
                self.state, saved = checkpointer.restore(self.state)
                self.epoch, history = int(saved["epoch"]), saved["history"]
            epochs = max(epochs - self.epoch, 0)
        elif checkpointer is not None and checkpointer.latest_step() is not None:
            # a new run must not mix with the checkpoints of an old one
            if checkpointer.latest_step() > int(jax.device_get(self.state.step)):
                raise FileExistsError(
                    f"{self.checkpoint_dir} already holds checkpoints up to step "
                    f"{checkpointer.latest_step()}; pass resume=True to continue that run, or "
                    "choose another checkpoint_dir"
                )
        position = saved.get("position") if saved else None  # a run saved inside an epoch
        self.stop_training = False
        bar = tqdm(
            total=sum(epoch_steps(self.epoch + e) for e in range(epochs))
            - (position["batch"] if position and epochs else 0),
            disable=not verbose,
            unit="step",
            dynamic_ncols=True,
            leave=True,
        )
        step_before = int(jax.device_get(self.state.step))
        skipped_before = (
            int(jax.device_get(self.state.opt_state.total_notfinite)) if self.skip_nonfinite else 0
        )
        received = self._catch_stop_signals() if checkpointer is not None else None
        for callback in callbacks:
            callback.on_train_begin(self)
        if saved is not None:
            self._load_callbacks(callbacks, saved)
        stopped_inside = None  # (epoch, batch, batches) where a signal stopped the run

        def pause(state, acc, first_bad, done: int, n: int) -> bool:
            """After a compiled call inside an epoch: save when a checkpoint is due or a stop
            signal came, with the position in the epoch; True when the run must stop here."""
            signalled = bool(received and received["signals"])
            every = self.checkpoint_every_steps
            due = signalled or (every is not None and done % every == 0)
            if done >= n or checkpointer is None or not due:
                return False
            self.state = state
            self._raise_if_nonfinite(first_bad, self.epoch, step_before)
            leaves = jax.device_get(jax.tree.leaves(acc))
            here = {
                "batch": done,
                "acc": [np.asarray(leaf).tolist() for leaf in leaves],
                "first_bad": int(jax.device_get(first_bad)),
                "epoch_start_step": step_before,
                "skipped_before": skipped_before,
            }
            self._save(checkpointer, history, callbacks, position=here)
            return signalled

        try:
            for index in range(epochs):
                epoch, state, n = self.epoch, self.state, epoch_steps(self.epoch)
                done, acc, first_bad, saved_acc = 0, None, jnp.asarray(-1, jnp.int32), None
                if position is not None:  # continue inside the epoch that was saved
                    done, saved_acc = position["batch"], position["acc"]
                    first_bad = jnp.asarray(position["first_bad"], jnp.int32)
                    step_before = position["epoch_start_step"]
                    skipped_before = position["skipped_before"]
                    position = None
                if mode == "epoch":
                    indices, mask = epoch_indices(
                        len(x), batch_size, shuffle=shuffle, seed=self.seed, epoch=epoch
                    )
                    first = {"x": x[indices[0]], "y": y[indices[0]], "mask": mask[0]}
                    acc = self._start_metrics(first, saved_acc)
                    every = self.checkpoint_every_steps or n  # one compiled call per stretch
                    ends = [*range((done // every + 1) * every, n, every), n]
                    for start, end in zip([done, *ends[:-1]], ends):
                        state, acc, first_bad = fns["epoch"](
                            state, x_device, y_device, indices[start:end], mask[start:end],
                            acc, first_bad,
                        )  # fmt: skip
                        bar.update(end - start)
                        done = end
                        if pause(state, acc, first_bad, done, n):
                            break
                else:
                    for batch in epoch_batches(epoch, done):
                        if acc is None:
                            acc = self._start_metrics(batch, saved_acc)
                        state, acc, first_bad = fns["step"](state, acc, first_bad, batch)
                        bar.update(1)
                        done += 1
                        if pause(state, acc, first_bad, done, n):
                            break
                self.state = state
                if done < n:
                    stopped_inside = (epoch, done, n)
                    break
                self.epoch += 1
                skipped = state.opt_state.total_notfinite if self.skip_nonfinite else None
                acc, step_after, skipped, in_a_row = jax.device_get(
                    (acc, state.step, skipped, self._skipped_in_a_row(state))
                )
                if self.skip_nonfinite and in_a_row > self.max_skipped_in_a_row:
                    raise NonFiniteLossError(
                        f"{in_a_row} updates in a row had NaN or infinite gradients (epoch "
                        f"{epoch}); lower the learning rate, clip gradients or check the data"
                    )
                self._raise_if_nonfinite(first_bad, epoch, step_before)
                step_before = int(step_after)
                logs = self._ordered(metrics_lib.compute(acc))
                if self.skip_nonfinite:
                    logs["skipped_updates"] = float(skipped - skipped_before)
                    skipped_before = skipped
                if validation_data is not None:
                    val = self._evaluate_data(validation_data, batch_size)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                if self.keep_best is not None and self.keep_best not in logs:
                    raise ValueError(
                        f"keep_best={self.keep_best!r} is not a metric of this run; "
                        f"available: {', '.join(logs)}"
                    )
                for k, v in logs.items():
                    history.setdefault(k, []).append(v)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
                if verbose:
                    bar.write(
                        f"epoch {epoch + 1}: " + "  ".join(f"{k}={v:.4f}" for k, v in logs.items())
                    )
                for callback in callbacks:
                    callback.on_epoch_end(self, epoch, logs)
                signalled = bool(received and received["signals"])
                last = index == epochs - 1 or self.stop_training or signalled
                if checkpointer is not None and (self.epoch % self.checkpoint_every == 0 or last):
                    value = logs.get(self.keep_best) if self.keep_best else None
                    self._save(checkpointer, history, callbacks, value=value)
                if self.stop_training or signalled:
                    break
        finally:
            if received is not None:
                for number, handler in received["previous"].items():
                    signal.signal(number, handler)
            if checkpointer is not None:
                checkpointer.wait()
            bar.close()
            for callback in callbacks:
                callback.on_train_end(self)
        if received and received["signals"]:
            number = received["signals"][0]
            where = f"after epoch {self.epoch}"
            if stopped_inside is not None:
                epoch, done, n = stopped_inside
                where = f"in epoch {epoch + 1} after batch {done} of {n}"
            message = (
                f"{signal.Signals(number).name} received: training stopped {where} and its "
                f"checkpoint is saved in {self.checkpoint_dir}; run fit(..., resume=True) to "
                "continue"
            )
            if number == signal.SIGINT:
                raise KeyboardInterrupt(message)
            raise SystemExit(message)  # exit status 1, the message on stderr
        return history

    def _resolve_class_weights(self, labels) -> np.ndarray:
        classes = self.num_outputs if self.num_outputs and self.num_outputs > 1 else 2
        if isinstance(self.class_weight, str):
            labels = np.asarray(labels)
            if labels.ndim == 2:
                labels = labels.argmax(axis=-1)
            return class_weights(labels.astype(np.int64), classes)
        weights = np.asarray(self.class_weight, np.float32)
        if weights.shape != (classes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"class_weight: expected {classes} finite weights >= 0 (one per class), got "
                f"{self.class_weight!r}"
            )
        return weights

    def _raise_if_nonfinite(self, first_bad, epoch: int, step_before: int) -> None:
        bad = int(jax.device_get(first_bad))
        if bad >= 0 and not self.skip_nonfinite:
            raise NonFiniteLossError(
                f"the training loss became NaN or infinite at step {bad} "
                f"(epoch {epoch}, batch {bad - step_before}); lower the "
                "learning rate, clip gradients (clip_norm=) or check the data"
            )

    def _start_metrics(self, batch: dict, saved: list | None) -> dict:
        """Zero metric states for a new epoch, or those saved inside it (``saved``: leaves as
        nested lists, restored to their dtypes bit for bit)."""
        zero = self._zero_metrics("train_step", batch)
        if saved is None:
            return zero
        leaves, tree = jax.tree.flatten(zero)
        return jax.tree.unflatten(
            tree, [jnp.asarray(np.asarray(v, leaf.dtype)) for v, leaf in zip(saved, leaves)]
        )

    def _catch_stop_signals(self):
        """While checkpointing, SIGINT and SIGTERM let the running epoch finish (one compiled
        call when the data is on the device), save a checkpoint, then stop ``fit``."""
        if threading.current_thread() is not threading.main_thread():
            return None  # handlers can only be set from the main thread
        received = {"signals": [], "previous": {}}
        for number in (signal.SIGINT, signal.SIGTERM):
            received["previous"][number] = signal.signal(
                number, lambda signum, frame: received["signals"].append(signum)
            )
        return received

    def _skipped_in_a_row(self, state):
        return state.opt_state.notfinite_count if self.skip_nonfinite else 0

    # ------------------------------------------------------------------ checkpoints

    def _get_checkpointer(self):
        if self.checkpoint_dir is None:
            return None
        if self._checkpointer is None:
            from jaxdl.train.checkpoint import Checkpointer

            self._checkpointer = Checkpointer(
                self.checkpoint_dir, keep=self.keep_checkpoints, best=self.keep_best_mode
            )
        return self._checkpointer

    def _save(self, checkpointer, history, callbacks, position=None, value=None) -> None:
        """Checkpoint the run at the state's step. ``position`` says where inside an epoch
        (None at its end); ``value`` is the ``keep_best`` metric of the epoch."""
        step = int(jax.device_get(self.state.step))
        if checkpointer.latest_step() == step:
            return  # nothing ran since it was saved
        states = [c.state_dict() if hasattr(c, "state_dict") else None for c in callbacks]
        arrays = {}  # what callbacks keep as arrays (EarlyStopping's best weights)
        for i, callback in enumerate(callbacks):
            tree = callback.array_state() if hasattr(callback, "array_state") else None
            if tree is not None:
                arrays[str(i)] = tree
        meta = {"epoch": self.epoch, "history": history, "callbacks": states}
        if position is not None:
            meta["position"] = position
        if value is not None and not math.isfinite(value):
            value = None
        checkpointer.save(step, self.state, meta, arrays=arrays, value=value)
        if not os.path.exists(os.path.join(checkpointer.directory, "config.json")):
            checkpointer.write_config(self.config())

    @staticmethod
    def _load_callbacks(callbacks, saved: dict) -> None:
        """Give each callback the state (JSON) and arrays it had when ``saved`` was written."""
        states = saved.get("callbacks") or []
        arrays = saved.get("callback_arrays") or {}
        for i, callback in enumerate(callbacks):
            if i < len(states) and states[i] is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(states[i])
            if str(i) in arrays and hasattr(callback, "load_array_state"):
                callback.load_array_state(arrays[str(i)])

    def load_checkpoint(self, which: str | int = "latest") -> dict:
        """Put a saved state into this trainer, for ``evaluate``, ``predict`` or ``export``.

        ``which``: "latest", "best" (the ``keep_best`` checkpoint) or a step number. The
        trainer needs a state to restore into: call ``fit`` or ``init(x[:1])`` first. Returns
        the checkpoint's metadata (epoch, history, ...).
        """
        self._require_state()
        checkpointer = self._get_checkpointer()
        if checkpointer is None:
            raise ValueError("load_checkpoint needs Trainer(checkpoint_dir=...)")
        if which == "latest":
            step = checkpointer.latest_step()
        elif which == "best":
            if self.keep_best is None:
                raise ValueError('load_checkpoint("best") needs Trainer(keep_best=METRIC)')
            step = checkpointer.best_step()
        elif isinstance(which, int):
            step = which
        else:
            raise ValueError(f'which must be "latest", "best" or a step number, got {which!r}')
        if step is None:
            raise FileNotFoundError(f"no {which} checkpoint in {self.checkpoint_dir}")
        self.state, meta = checkpointer.restore(self.state, step)
        self.epoch = int(meta["epoch"])
        return meta

    def config(self) -> dict:
        """The run's settings, as written to ``config.json`` beside the checkpoints."""
        optimizer = self.optimizer if isinstance(self.optimizer, str) else repr(self.optimizer)
        return {
            "model": repr(self.model),
            "loss": self.loss if isinstance(self.loss, str) else getattr(self.loss, "__name__", ""),
            "optimizer": optimizer,
            "learning_rate": self.learning_rate,
            "optimizer_options": self.optimizer_options,
            "schedule": self.schedule,
            "metrics": list(self.metrics),
            "seed": self.seed,
            "l1": self.l1,
            "l2": self.l2,
            "clip_norm": self.clip_norm,
            "freeze": list(self.freeze),
            "param_groups": self.param_groups,
            "strategy": self.strategy.name,
            "precision": self.precision,
            "accumulate_steps": self.accumulate_steps,
        }

    def export(self, path: str | os.PathLike) -> str:
        """Write the model and its trained variables for inference (no optimizer state);
        ``jaxdl.load_model(path)`` reads them back, in any process."""
        from jaxdl.train.export import export_model

        self._require_state()
        return export_model(path, self.model, self.state.variables())

    # ------------------------------------------------------------------ inference

    def _require_state(self):
        if self.state is None:
            raise RuntimeError("the model has no parameters yet: call fit() (or init()) first")

    def _check_source(self, data, name: str) -> None:
        """Labels of a batch source against the model's outputs, before any compile."""
        if self.loss not in losses_lib.CLASSIFICATION_LOSSES or not hasattr(data, "targets"):
            return
        targets = data.targets()
        if targets is not None:  # a streaming pipeline may not know its labels ahead
            classes = self.num_outputs if self.num_outputs and self.num_outputs > 1 else None
            _checks.as_labels(targets, len(targets), classes, name)

    def _one_device_source(self, data) -> None:
        if _is_source(data) and not _streams(data) and self.strategy.num_devices > 1:
            raise ValueError(
                f"a batch source ({type(data).__name__}) builds its batches on the host and "
                f"runs on one device; use Trainer(strategy='single'), not "
                f"{self.strategy.name!r}"
            )

    def _evaluate_data(self, data, batch_size: int) -> dict[str, float]:
        """Metrics over ``data``: checked (x, y) arrays or a batch source."""
        self._one_device_source(data)
        fns = self._functions()
        if _streams(data):
            batches = data.batches(self.strategy.inference_batch_size(batch_size))
            batches = prefetch_to_device(batches, self.strategy.place_batch)
        elif _is_source(data):
            batches = data.batches(batch_size, shuffle=False)
        else:
            x, y = data
            indices, mask = epoch_indices(len(x), batch_size, shuffle=False)
            batches = ({"x": x[i], "y": y[i], "mask": m} for i, m in zip(indices, mask))
        acc = None
        for batch in batches:
            if acc is None:
                acc = self._zero_metrics("eval_step", batch)
            acc = fns["eval"](self.state, acc, batch)
        return self._ordered(metrics_lib.compute(acc))

    def _ordered(self, values: dict[str, float]) -> dict[str, float]:
        first = ("loss", *self.metrics)
        return {
            **{k: values[k] for k in first},
            **{k: v for k, v in values.items() if k not in first},
        }

    def evaluate(self, data, batch_size: int = 256) -> dict[str, float]:
        """Loss and metrics over every example of ``data`` ((x, y), ``.x``/``.y``, or a batch
        source such as ``jaxdl.graphs.GraphDataset``).

        Batches are padded to ``batch_size`` and masked, so each example counts exactly once.
        """
        self._require_state()
        if _is_source(data):
            self._check_source(data, "data")
            return self._evaluate_data(data, _checks.check_inference_batch_size(batch_size))
        x, y = self._check(data, "data")
        batch_size = _checks.check_inference_batch_size(batch_size, len(x))
        return self._evaluate_data((x, y), self.strategy.inference_batch_size(batch_size))

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Model outputs as a NumPy array.

        ``x`` is features (N, *input_shape) -> (N, outputs); a ``GraphsTuple`` -> the model's
        output for that graph (e.g. (num_nodes, classes)); a ``GraphDataset`` -> one row per
        graph, in order.
        """
        self._require_state()
        self._one_device_source(x)
        fns = self._functions()
        if _is_source(x):
            batch_size = _checks.check_inference_batch_size(batch_size)
            if _streams(x):
                batch_size = self.strategy.inference_batch_size(batch_size)
            outputs = [
                (fns["predict"](self.state, b["x"]), b["mask"])
                for b in x.batches(batch_size, shuffle=False)
            ]
            outputs = jax.device_get(outputs)
            return np.concatenate([out[mask > 0] for out, mask in outputs])
        if not isinstance(x, np.ndarray | jax.Array | list):  # a pytree such as a graph
            return np.asarray(jax.device_get(fns["predict"](self.state, x)))
        x = _checks.as_features(x, "x", self.input_shape)
        batch_size = _checks.check_inference_batch_size(batch_size, len(x))
        batch_size = self.strategy.inference_batch_size(batch_size)
        indices, _ = epoch_indices(len(x), batch_size, shuffle=False)
        outputs = jax.device_get([fns["predict"](self.state, x[idx]) for idx in indices])
        # several outputs (a tuple such as a VAE's) are concatenated field by field
        return jax.tree.map(lambda *parts: np.concatenate(parts)[: len(x)], *outputs)

    def __repr__(self) -> str:
        name = self.optimizer if isinstance(self.optimizer, str) else "optax"
        return (
            f"Trainer({type(self.model).__name__}, loss={self.loss!r}, optimizer={name!r}, "
            f"learning_rate={self.learning_rate}, epoch={self.epoch})"
        )
