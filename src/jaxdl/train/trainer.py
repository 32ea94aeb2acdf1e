"""``Trainer``: the thin facade over the loop, the tasks, the strategies and the callbacks.

It holds a run's configuration and its state; ``fit``, ``evaluate`` and ``predict`` each
turn their data into one adapter (``jaxdl.data.adapters.as_source``), checked against the
model (``jaxdl.train.inputs``), then hand it to the free functions of ``jaxdl.train.loop``.
Every side effect is a callback (``jaxdl.train.callbacks``), every objective a task
(``jaxdl.train.tasks``), every way of using the devices a strategy
(``jaxdl.train.parallel``), and the optimizer one description
(``jaxdl.Optimizer``) shared with ``tuning.Sweep``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl.data.adapters import (
    ArrayAdapter,
    as_source,
    is_source,
)
from jaxdl.graphs import GraphsTuple, check_graph
from jaxdl.optimizer import Optimizer, ema_params
from jaxdl.train import inputs, loop, modes, parallel, steps, tasks
from jaxdl.train import precision as precision_lib
from jaxdl.train.callbacks import (
    CallbackList,
    History,
    NonFiniteCheck,
    ProgressBar,
    callbacks_argument,
)
from jaxdl.train.checkpointing import Checkpoint
from jaxdl.train.export import describe_model, export_model
from jaxdl.train.lr_finder import LRFinderResult, find_learning_rate
from jaxdl.train.stablehlo import export_stablehlo
from jaxdl.train.state import TrainState, create_train_state
from jaxdl.train.transfer import Pretrained


class Trainer:
    """Train, evaluate and predict with a Flax model in a few lines.

    Args:
      model: a Flax Linen module mapping (B, *input_shape) to (B, outputs). If its
        ``__call__`` takes ``train``, it is called with ``train=True`` in training.
      loss: a task (``jaxdl.tasks.Supervised``, ``ELBO``, ``GAN``), or what makes one: a
        name of ``jaxdl.losses.LOSSES`` or a custom loss ``loss(outputs, targets) -> (B,)``,
        one value per example of the model's outputs (B, ...) and the targets (B, ...),
        averaged over the batch's real rows by the steps (a ``Supervised`` task); one loss
        per output of a model of several outputs (``{"digit": "cross_entropy", "size":
        "mse"}``; weights with ``jaxdl.tasks.Supervised(loss, loss_weights=...)``); "elbo"
        (a ``VAE``) or "gan" (a ``GAN``). Unlabelled tasks take the features alone.
      optimizer: a name of ``jaxdl.optim.OPTIMIZERS``, a ``jaxdl.Optimizer`` description
        (schedule, penalties, clipping, groups, freezing, accumulation, the non-finite
        policy), or any ``optax.GradientTransformation``.
      learning_rate: with an optimizer by name (default 1e-3).
      metrics: names of ``jaxdl.metrics.METRICS`` and custom metrics: functions
        ``fn(outputs (B, ...), targets (B, ...), mask (B,) bool) -> (total, count)``, two
        scalars summed over the batch's real rows (mask True), reported as the data set's
        sum of ``total`` over its sum of ``count`` under ``fn.__name__``; or metric state
        classes (``empty``, ``from_batch``, ``merge``, ``compute``, reported under their
        ``name``; the protocol is in ``jaxdl.metrics``' docstring). For a loss per output,
        a dict of them per output (``{"digit": ["accuracy"]}``, reported as
        "digit_accuracy"). The loss is always reported. Default: the task's (a
        ``Supervised`` task: accuracy for a classification loss, "cross_entropy",
        "sparse_cross_entropy" or "binary_cross_entropy", none for regression and other
        losses; none for the other tasks).
      seed: fixes initialisation, shuffling, dropout and augmentation.
      steps_per_call: "epoch" runs a whole epoch as one compiled ``lax.scan`` over data held
        on the device; 1 runs one compiled step per batch; "auto" picks "epoch" for array
        data sets up to 1 GiB, except on the CPU for a step that holds convolutions
        (``jaxdl.train.modes``; the choice is logged and kept as ``mode_chosen``). Batch
        sources and streams run one step per call.
      checkpoint: a folder or a ``jaxdl.Checkpoint`` callback: the run is saved there
        (Orbax), ``fit(resume=True)`` continues from it and SIGINT/SIGTERM stop it cleanly.
      strategy: how the steps use the devices (``jaxdl.parallel``): "single", "pmap",
        "sharded", "fsdp", a strategy object, or "auto" ("sharded" with more than one
        device). Every strategy gives the numbers of the one-device run.
      precision: "float32", "bfloat16" or "float16" (``jaxdl.train.precision``).
      pretrained: weights to start from (``jaxdl.train.transfer.Pretrained``, or its
        source: an exported model folder, a checkpoint folder, a variables dict or a
        fitted Trainer).

    Example:
      >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)  # two classes
      >>> trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 2)), learning_rate=1e-2)
      >>> history = trainer.fit(x, y, epochs=2, batch_size=16, verbose=False)
      >>> sorted(history), len(history["loss"])  # one value per epoch
      (['accuracy', 'loss', 'lr'], 2)
      >>> sorted(trainer.evaluate(x, y))
      ['accuracy', 'loss']
      >>> trainer.predict(x[:3]).shape, trainer.predict_classes(x[:3]).shape  # logits, labels
      ((3, 2), (3,))
    """

    def __init__(
        self,
        model: nn.Module,
        loss="cross_entropy",
        optimizer="adam",
        learning_rate: float | None = None,
        metrics: Sequence[str] | None = None,
        seed: int = 0,
        *,
        steps_per_call: int | str = "auto",
        checkpoint: str | os.PathLike | Checkpoint | None = None,
        strategy="auto",
        precision: str = "float32",
        pretrained=None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a Flax Linen module, got {type(model).__name__}")
        self.model, self.task = model, tasks.as_task(loss)
        self.optimizer = Optimizer.of(optimizer, learning_rate)
        metrics = self.task.default_metrics if metrics is None else metrics
        if isinstance(metrics, str):
            raise TypeError(f"metrics: expected a list of metric names, got {metrics!r}")
        self.metrics = self.task.check_metrics(metrics)
        if steps_per_call not in ("auto", "epoch", 1):
            raise ValueError(f"steps_per_call must be 'auto', 'epoch' or 1, got {steps_per_call!r}")
        self.seed, self.steps_per_call = _checks.check_seed(seed), steps_per_call
        if isinstance(checkpoint, str | os.PathLike):
            checkpoint = Checkpoint(checkpoint)
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise TypeError(
                f"checkpoint: expected a folder or a jaxdl.Checkpoint, got {checkpoint!r}"
            )
        self.checkpoint = checkpoint
        self.strategy = parallel.get_strategy(strategy)
        self.precision = precision_lib.check_policy(precision)
        self.pretrained = Pretrained.of(pretrained)
        self.state: TrainState | None = None
        self.broken: str | None = None  # why the state may hold NaN (NonFiniteLossError)
        self.epoch, self.stop_training, self.run = 0, False, None
        self.input_shape: tuple[int, ...] | None = None
        self.mode_chosen: str | int | None = None  # what steps_per_call="auto" took
        self.output_shape: tuple[int, ...] | None = None
        self.output_struct = None  # ShapeDtypeStructs of the model's outputs, once known
        self.num_outputs: int | None = None
        self._compiled: loop.Compiled | None = None
        self.task.check(self)

    @property
    def loss(self):
        """The task's loss (its name for the tasks that ship)."""
        return getattr(self.task, "loss", self.task.name)

    @property
    def num_classes(self) -> int:
        """The class count the metrics are built for: the size of the last axis of the
        model's outputs (``num_outputs``); 2 when that is 1 (a binary classifier's single
        logit), when the outputs are several arrays, or before ``init`` has seen them."""
        return self.num_outputs if self.num_outputs and self.num_outputs > 1 else 2

    # ------------------------------------------------------------------ set-up

    def init(
        self,
        x_sample,
        total_steps: int = 1,
        steps_per_epoch: int = 1,
        learning_rate_factor: bool = False,
    ) -> TrainState:
        """Create the state from one batch of features (B, *input_shape), or from the inputs
        of one batch of a batch source (e.g. a padded ``GraphsTuple``); ``fit`` calls it.
        ``learning_rate_factor``: build in the factor ``ReduceLROnPlateau`` scales."""
        if isinstance(x_sample, np.ndarray | jax.Array | list):
            x_sample = _checks.as_features(x_sample, "x")[:1]
            self.input_shape = tuple(x_sample.shape[1:])
            self._input_kind = x_sample.dtype.kind
        self._input_features = inputs.feature_shapes(x_sample)
        tx = self.optimizer.build(
            total_steps,
            steps_per_epoch,
            per_network=self.task.per_network(self.model),
            learning_rate_factor=learning_rate_factor,
        )
        state = create_train_state(self.model, tx, x_sample, self.seed, self.precision)
        if self.pretrained is not None:
            state = self.pretrained.apply(state)
        self.state = self.strategy.place_state(state.replace(frozen=self.optimizer.freeze))
        self.broken = None
        self._learn_outputs(self.state, x_sample)
        return self.state

    def _learn_outputs(self, state: TrainState, x_sample) -> None:
        """The model's outputs for ``x_sample`` from their shapes alone (no compile): the
        class count and output shape the targets are checked against."""
        out = jax.eval_shape(steps.predict_step, state, x_sample)
        self.output_struct = out  # the outputs' shapes and dtypes, any pytree
        self.num_outputs, self.output_shape = None, None
        if isinstance(out, jax.ShapeDtypeStruct):
            self.num_outputs = int(out.shape[-1]) if out.ndim >= 2 else 1
            self.output_shape = tuple(out.shape[1:])
        self.task.check(self)

    def compiled(self) -> loop.Compiled:
        """The compiled functions, built once per Trainer so that no fit retraces them."""
        if self._compiled is None:
            self._compiled = loop.compile_steps(
                self.task, self.strategy, self.metrics, self.num_classes, self.model
            )
        return self._compiled

    def empty_metrics(self) -> dict:
        """The metric states of no examples, where an epoch's running merge starts."""
        return self.task.empty_metrics(self.metrics, self.num_classes)

    def compiled_train_step(self, batch: dict) -> tuple[Callable, tuple, Callable]:
        """The training step exactly as ``fit(steps_per_call=1)`` runs it, for benchmarks and
        hand-written loops; call ``init`` first.

        ``batch``: {"x", "y", "mask"} of one training batch. Returns ``(step, carry, body)``:
        ``step(*carry, batch) -> carry`` is compiled for this trainer's strategy and donates
        the carry, which starts as (state, empty metric states, -1: no non-finite loss yet);
        ``body`` is the same computation uncompiled, on one device and the global batch.
        The first call donates ``self.state`` (the carry's first element): assign
        ``trainer.state = carry[0]`` before the trainer is used again.
        """
        self._require_state()
        fns = self.compiled()
        carry = (self.state, self.empty_metrics(), jnp.asarray(-1, jnp.int32))
        return fns.step, carry, steps.accumulate(fns.train_step)

    # ------------------------------------------------------------------ training

    def fit(
        self,
        x,
        y=None,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data=None,
        validation_split: float = 0.0,
        validation_freq: int = 1,
        sample_weight=None,
        callbacks: Sequence = (),
        shuffle: bool = True,
        verbose: bool = True,
        resume: bool = False,
        max_steps: int | None = None,
        steps_per_epoch: int | None = None,
        fast_dev_run: bool = False,
    ) -> dict[str, list[float]]:
        """Train for ``epochs`` epochs and return the history.

        Args:
          x: the features (N, *input_shape), or a dict or tuple of feature arrays (a model of
            several inputs), with their targets ``y``. Or, with ``y`` left out: (x, y) arrays
            or a data set with ``.x`` and ``.y`` (features alone for an unlabelled task); a
            batch source that serves its own fixed-shape batches
            (``jaxdl.graphs.GraphDataset``, ``NodeDataset``); or a streaming
            ``jaxdl.data.Pipeline``, read by its threads while the step runs, a resumed run
            reading on from the checkpoint's batch.
          y: the targets (N,) or (N, *target_shape), or a dict or tuple of them (a model of
            several outputs, with a loss per output: ``jaxdl.tasks.Supervised``).
          epochs: epochs to train (with ``resume``, counted from the start of the run).
          validation_data: the same kinds as ``x``, evaluated after every
            ``validation_freq``-th epoch into ``val_*`` entries.
          validation_split: a fraction in (0, 1) of array data held out for validation
            instead. The rows are drawn once, before any shuffling, with the trainer's seed;
            for class labels each class is split on its own (stratified), so the
            validation set keeps the classes' proportions. Their sample weights go with them.
          validation_freq: validate after every this many epochs (the ``val_*`` lists then
            hold one value per validated epoch).
          sample_weight: (N,) non-negative weights of array data's examples: each example's
            loss is multiplied by its weight (the objective is ``sum(w * l) / N``, as with
            ``class_weight``); the history's training numbers stay unweighted.
          callbacks: a list of :class:`Callback`, e.g. ``EarlyStopping``, ``CSVLogger``.
          verbose: show a progress bar and a line of numbers per epoch.
          resume: continue from the newest checkpoint (``Trainer(checkpoint=...)``; start
            fresh when there is none); ``epochs`` then counts from the start of the run, so
            running the same script again after an interruption ends where the
            uninterrupted run would, with the same parameters and history.
          max_steps: stop once the state has taken this many training steps (batches) in
            all, inside an epoch if it comes there; the history holds the complete epochs.
          steps_per_epoch: an epoch is the first this many batches of each epoch's order
            (for a long stream, or to validate more often); at most the data's batches.
          fast_dev_run: a smoke test: one training batch, one validation batch and
            ``predict`` on one batch, with no checkpoint written; returns that history.

        Returns:
          {metric: [value per epoch]}, the loss first, then ``val_`` entries.

        Raises:
          NonFiniteLossError: the loss became NaN or infinite; the message names the step.
        """
        data = inputs.paired(x, y)
        user_callbacks = callbacks_argument(callbacks)
        if resume and self.checkpoint is None:
            raise ValueError("fit(resume=True) needs Trainer(checkpoint=...)")
        if not resume:
            self._require_finite()
        batch_size = _checks.check_inference_batch_size(batch_size)  # an int >= 1
        validation_freq = _checks.check_int(validation_freq, "validation_freq")
        if max_steps is not None:
            max_steps = _checks.check_int(max_steps, "max_steps")
        if fast_dev_run:
            epochs, steps_per_epoch, max_steps = 1, 1, None
        if sample_weight is not None and self.task.unlabelled:
            raise ValueError(f"sample_weight: the {self.task.name} task takes no weights")
        data, validation_data, sample_weight, val_weight = inputs.held_out(
            self, data, validation_data, validation_split, sample_weight
        )
        options = {"shuffle": shuffle, "train": True, "sample_weight": sample_weight}
        adapter = inputs.adapter_for(self, data, batch_size, "data", **options)
        per_epoch = inputs.limited(adapter, steps_per_epoch, "steps_per_epoch").num_batches(0)
        loop.check_epochs(epochs, resume, per_epoch)
        if self.state is None:
            factor = any(getattr(c, "needs_learning_rate_factor", False) for c in user_callbacks)
            self.init(
                adapter.sample(),
                total_steps=epochs * per_epoch,
                steps_per_epoch=per_epoch,
                learning_rate_factor=factor,
            )
            adapter = inputs.adapter_for(self, data, batch_size, "data", **options)
        inputs.check_adapter(self, adapter, "data", training=True)
        adapter = inputs.limited(adapter, steps_per_epoch, "steps_per_epoch")
        val = inputs.validation_adapter(self, validation_data, batch_size, val_weight, fast_dev_run)
        validate = None if val is None else (lambda state: self._evaluate_adapter(val, state))
        self.task.prepare(adapter.targets(), self.num_outputs)
        fns = self.compiled()
        first, last = self._builtin_callbacks(verbose, checkpoint=not fast_dev_run)
        run = loop.Run(
            adapter=adapter,
            epochs=int(epochs) if resume else self.epoch + int(epochs),
            callbacks=CallbackList(first + user_callbacks + last),
            empty=self.empty_metrics,
            resume=resume,
            names=self.task.metric_names(self.metrics),
            validation_freq=validation_freq,
            max_steps=max_steps,
        )
        history = loop.fit(self, run, fns, self._mode(adapter), validate)
        if fast_dev_run and not self.task.unlabelled:
            self.predict(adapter.sample())
        return history

    def _builtin_callbacks(self, verbose: bool, checkpoint: bool = True) -> tuple[list, list]:
        """The callbacks every fit runs: before the user's, the non-finite policy and the
        history; after them, the progress bar and the checkpoint (which saves what the
        others did in the epoch, and on resume restores their state once they began; not
        in a ``fast_dev_run``)."""
        saving = [self.checkpoint] if self.checkpoint and checkpoint else []
        return [NonFiniteCheck(), History()], ([ProgressBar()] if verbose else []) + saving

    def _mode(self, adapter):
        """The loop's mode for ``adapter``: "epoch" or steps per call; "auto" chooses by the
        data's size and the step's program (``jaxdl.train.modes``), and says so."""
        if adapter.kind != "arrays":
            return 1  # a source's batches are built on the host, one call each
        if self.steps_per_call != "auto":
            return self.steps_per_call
        if not adapter.fits_on_device():
            mode, reason = 1, "one compiled step per batch: the data is too large to hold"
        else:
            mode, reason = modes.choose(
                self.compiled().train_step, self.state, next(adapter.batches(0))
            )
        modes.announce(mode, reason)
        self.mode_chosen = mode
        return mode

    def find_learning_rate(self, data, **options) -> LRFinderResult:
        """The learning-rate range test on ``data``; the trainer is left exactly as it was.
        ``jaxdl.train.lr_finder.find_learning_rate`` describes the options (``min_lr``,
        ``max_lr``, ``num_steps``, ``batch_size``, ``smooth``, ``stop_factor``, ``suggest``)
        and the result."""
        return find_learning_rate(self, data, **options)

    # ------------------------------------------------------------------ checkpoints

    def load_checkpoint(self, which: str | int = "latest") -> dict:
        """Put a saved state into this trainer, for ``evaluate``, ``predict`` or ``export``.

        ``which``: "latest", "best" (``Checkpoint(keep_best=...)``) or a step number. The
        trainer needs a state to restore into: call ``fit`` or ``init(x[:1])`` first. Returns
        the checkpoint's metadata (epoch, history, ...).
        """
        self._require_state(finite=False)
        if self.checkpoint is None:
            raise ValueError("load_checkpoint needs Trainer(checkpoint=...)")
        meta = self.checkpoint.restore(self, which)
        self.broken = None
        return meta

    def config(self) -> dict:
        """The run's settings, as written to ``config.json`` beside the checkpoints."""
        return {
            "model": describe_model(self.model),
            **self.task.config(),
            "optimizer": self.optimizer.config(),
            "metrics": [str(m) for m in self.metrics],
            "seed": self.seed,
            "strategy": self.strategy.name,
            "precision": self.precision,
        }

    def export(
        self,
        path: str | os.PathLike,
        format: str = "jaxdl",
        *,
        example=None,
        batch_polymorphic: bool = True,
        platforms: tuple[str, ...] | None = None,
    ) -> str:
        """Write the model and its trained variables for inference (no optimizer state).

        Args:
          path: the export folder (new, empty, or an earlier jaxdl export it replaces).
          format: "jaxdl" writes the model's class and fields as JSON and the variables with
            Orbax; ``jaxdl.load_model(path)`` rebuilds it (classes of ``jaxdl.models``
            only). "stablehlo" writes the compiled inference program (``jax.export``), for
            any Flax module: ``jaxdl.load_exported(path).call(x)`` gives ``predict``'s
            outputs with no model code, on batches of any size.
          example: for "stablehlo", an input batch; needed for inputs other than one array
            (a graph), whose sizes the program then keeps.
          batch_polymorphic: for "stablehlo", compile for a batch of any size.
          platforms: for "stablehlo", lower for these platforms (default: this process's).
        """
        self._require_state()
        if format == "jaxdl":
            return export_model(path, self.model, self.state.variables())
        if format != "stablehlo":
            raise ValueError(f"format: expected 'jaxdl' or 'stablehlo', got {format!r}")
        if example is None:
            if self.input_shape is None:
                raise ValueError(
                    "example: the model takes inputs other than one array (a graph); pass "
                    "example=, a batch of the inputs the program will be called on"
                )
            dtype = np.float32 if self._input_kind == "f" else np.int32
            example = jax.ShapeDtypeStruct((1, *self.input_shape), dtype)
        else:
            inputs.check_features(self, example, "example")
        state = jax.device_get(self.state)  # one copy on the host: constants of the program
        return export_stablehlo(
            path,
            lambda x: steps.predict_step(state, x),
            example,
            batch_polymorphic=batch_polymorphic,
            platforms=platforms,
            model=describe_model(self.model),
        )

    # ------------------------------------------------------------------ inference

    def _require_state(self, finite: bool = True):
        if self.state is None:
            raise RuntimeError("the model has no parameters yet: call fit() (or init()) first")
        if finite:
            self._require_finite()

    def _require_finite(self):
        if self.broken is not None:
            raise RuntimeError(
                f"the state may hold NaN or infinite values ({self.broken}); restore a saved "
                "state (load_checkpoint, or fit(resume=True)) or start again with init()"
            )

    def _evaluate_adapter(self, adapter, state) -> dict:
        values = loop.evaluate(self.strategy, self.compiled(), state, adapter, self.empty_metrics())
        return loop.ordered(values, self.task.metric_names(self.metrics))

    def _state_with(self, weights: str) -> TrainState:
        """The state whose parameters are ``weights``: "current" or "ema" (the average an
        ``Optimizer(ema=...)`` keeps)."""
        if weights == "current":
            return self.state
        if weights != "ema":
            raise ValueError(f"weights: expected 'current' or 'ema', got {weights!r}")
        averaged = ema_params(self.state.opt_state, self.state.params)
        if averaged is None:
            raise ValueError(
                "weights='ema': the optimizer keeps no average of the parameters; give it "
                "one with jaxdl.Optimizer(..., ema=0.999)"
            )
        return self.state.replace(params=averaged)

    def evaluate(
        self, x, y=None, *, batch_size: int = 256, sample_weight=None, weights: str = "current"
    ) -> dict[str, float]:
        """Loss and metrics over every example of the data: ``evaluate(x, y)``, or one
        argument as ``fit`` takes it ((x, y), ``.x``/``.y``, or a batch source such as
        ``jaxdl.graphs.GraphDataset``).

        Batches are padded to ``batch_size`` and masked, so each example counts exactly once.
        ``sample_weight`` (N,): the loss is ``sum(w * l) / N`` and each metric weighs every
        example by its weight, as Keras reports them. ``weights="ema"`` evaluates the
        average of the parameters (``jaxdl.Optimizer(ema=...)``) instead of the current ones;
        the batch statistics are the current ones either way.
        """
        self._require_state()
        state = self._state_with(weights)
        data = inputs.paired(x, y)
        batch_size = _checks.check_inference_batch_size(batch_size)
        if sample_weight is not None and self.task.unlabelled:
            raise ValueError(f"sample_weight: the {self.task.name} task takes no weights")
        adapter = inputs.adapter_for(self, data, batch_size, "data", sample_weight=sample_weight)
        if isinstance(adapter, ArrayAdapter):
            adapter.batch_size = self.strategy.inference_batch_size(
                min(batch_size, adapter.num_examples)
            )
        elif adapter.kind == "stream":
            adapter.batch_size = self.strategy.inference_batch_size(batch_size)
        inputs.check_adapter(self, adapter, "data", training=False)
        return self._evaluate_adapter(adapter, state)

    def predict(
        self, x, batch_size: int = 256, *, weights: str = "current", output: str = "logits"
    ) -> np.ndarray:
        """Model outputs as a NumPy array.

        ``x`` is features (N, *input_shape) -> (N, outputs), or a dict or tuple of feature
        arrays (a model of several inputs); a ``GraphsTuple`` -> the model's output for
        that graph (e.g. (num_nodes, classes)); a ``GraphDataset`` -> one row per graph, in
        order. A model of several outputs gives their pytree, each (N, ...).
        ``weights="ema"``: the outputs of the average of the parameters
        (``jaxdl.Optimizer(ema=...)``) instead of the current ones.

        ``output``: "logits" (default), the outputs as the model gives them; "probabilities"
        (:meth:`predict_proba`): a softmax over the last axis for a multi-class loss
        ("cross_entropy", ...), a sigmoid for "binary_cross_entropy" (a single logit (N, 1)
        -> the positive class's probability (N, 1)); "classes" (:meth:`predict_classes`):
        the arg-max over the last axis, (N, C) -> (N,), or 1 where the probability exceeds
        0.5 for a sigmoid output, (N, 1) -> (N,). A regression loss ("mse", "mae", "msle")
        has no classes: refused with a ValueError before anything runs. The details per
        loss: ``jaxdl.tasks.Supervised.output_transform``.
        """
        self._require_state()
        convert = self.task.output_transform(output)  # refused before anything runs
        state = self._state_with(weights)
        batch_size = _checks.check_inference_batch_size(batch_size)
        if is_source(x):
            adapter = inputs.adapter_for(self, x, batch_size, "x")
            if adapter.kind == "stream":
                adapter.batch_size = self.strategy.inference_batch_size(batch_size)
        elif isinstance(x, GraphsTuple) or not isinstance(
            x, np.ndarray | jax.Array | list | dict | tuple
        ):
            if isinstance(x, GraphsTuple):
                check_graph(x, "x")  # inside the compiled call it could not be checked
            inputs.check_features(self, x, "x")
            return convert(np.asarray(jax.device_get(self.compiled().predict(state, x))))
        else:
            adapter = as_source(
                (x, None), 1, name="x", unlabelled=True, input_shape=self.input_shape
            )
            size = self.strategy.inference_batch_size(min(batch_size, adapter.num_examples))
            adapter.batch_size = size
        inputs.check_adapter(self, adapter, "x", training=False)
        return convert(loop.predict(self.strategy, self.compiled(), state, adapter))

    def predict_proba(self, x, batch_size: int = 256, *, weights: str = "current") -> np.ndarray:
        """``predict(x, output="probabilities")``: class probabilities, (N, C) rows that sum
        to one for a multi-class model, (N, 1) for a single-logit binary one."""
        return self.predict(x, batch_size, weights=weights, output="probabilities")

    def predict_classes(self, x, batch_size: int = 256, *, weights: str = "current") -> np.ndarray:
        """``predict(x, output="classes")``: the predicted class of each example, (N,) int64
        (the arg-max of the logits, or a single logit above 0)."""
        return self.predict(x, batch_size, weights=weights, output="classes")

    def __repr__(self) -> str:
        name = self.optimizer.name if isinstance(self.optimizer.name, str) else "optax"
        return (
            f"Trainer({type(self.model).__name__}, loss={self.loss!r}, optimizer={name!r}, "
            f"learning_rate={self.optimizer.learning_rate}, epoch={self.epoch})"
        )
