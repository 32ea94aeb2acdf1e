"""The suites of ``run.py``: each is a function ``(options) -> rows`` (dicts) that also prints
one line per row as it goes.

- zoo: every model of ``cases.py`` at each size with each strategy this machine supports
  ("single"; with several devices also "pmap", "sharded", "fsdp"), timed by
  ``harness.time_step`` on the step ``Trainer.fit(steps_per_call=1)`` runs.
- peers: the four shapes of the model-zoo issue: jaxdl's step, a plain hand-written JAX
  step, and with ``--compare torch`` PyTorch's best; ratios printed.
- pipeline: the input pipeline alone on MNIST-shaped data (28x28x1) with augmentation on,
  in memory and streamed through Grain, and its ratio to what the CNN's training step
  consumes.
- end_to_end: ``Trainer.fit`` on the same data with the same augmentation (whole epochs,
  one step per call, and streamed by ``jaxdl.data.Pipeline``) against the step alone.
- tta: time to accuracy: digits CNN to 0.98 test accuracy (CPU); MNIST CNN to 0.99 and
  CIFAR-10 ResNet to 0.94 where a GPU and the prepared TFDS data sets are present (a row
  says plainly why when not).
- quick: the small zoo, pipeline, end_to_end and the digits tta (``nox -s bench``).
"""

from __future__ import annotations

import collections
import statistics
import time
from dataclasses import dataclass

import cases
import common
import harness
import jax
import numpy as np
import peers

import jaxdl
from jaxdl.data import augment as aug


@dataclass
class Options:
    sizes: tuple[str, ...] = cases.SIZES
    models: tuple[str, ...] = cases.MODELS
    strategies: tuple[str, ...] | None = None  # None: every one this machine supports
    compare_torch: bool = False
    repeats: int = 5
    min_round_s: float = 0.5
    quick: bool = False
    precision: str = "float32"  # a policy of jaxdl.train.precision; the peak's dtype


def supported_strategies() -> tuple[str, ...]:
    return ("single",) if jax.device_count() == 1 else ("single", "pmap", "sharded", "fsdp")


def _print(row: dict, text: str) -> dict:
    print(f"{row['case']:<28} {row.get('strategy', ''):<8} {text}", flush=True)
    return row


def ratios(ours: list[float], theirs: list[float], name: str) -> dict:
    """Median, min and max of the per-round ratios of two interleaved runs' rates."""
    return common.summarize_rates([a / b for a, b in zip(ours, theirs)], name)


# ---------------------------------------------------------------- zoo and peers


def zoo_row(case: cases.Case, strategy: str, options: Options, keep: list | None = None) -> dict:
    """The harness's figures for ``case`` trained with ``strategy``; ``keep`` receives a
    ``harness.Runner`` of the warm step, for further rounds."""
    trainer = jaxdl.Trainer(
        case.model, optimizer="adam", learning_rate=1e-3, strategy=strategy,
        precision=options.precision, **case.trainer_options,
    )  # fmt: skip
    trainer.init(case.x if case.single_device_only else case.x[:1])
    batch = jax.device_put(case.batch)
    step, carry, body = trainer.compiled_train_step(batch)
    result, carry = harness.time_step(
        step, carry, (batch,), cost_fn=body, repeats=options.repeats,
        min_round_s=options.min_round_s, items_per_step=case.items_per_step,
        num_devices=trainer.strategy.num_devices,
        dtype=options.precision,
    )  # fmt: skip
    if keep is not None:
        keep.append(harness.Runner(step, carry, (batch,)))
    return {
        "case": f"{case.name}/{case.size}",
        "strategy": strategy,
        "precision": options.precision,
        "devices": trainer.strategy.num_devices,
        "description": case.description,
        "item": case.item,
        **result,
    }


def zoo(options: Options) -> list[dict]:
    rows = []
    strategies = options.strategies or supported_strategies()
    for name in options.models:
        for size in options.sizes:
            case = cases.zoo_case(name, size)
            for strategy in ("single",) if case.single_device_only else strategies:
                row = zoo_row(case, strategy, options)
                rows.append(_print(row, harness.summary_of(row)))
    return rows


def peers_suite(options: Options) -> list[dict]:
    """jaxdl against the hand-written JAX step (and PyTorch's best variant) on the four peer
    shapes. Each is first timed alone (compile time, FLOPs, the best PyTorch variant); then
    rounds of each are taken in turn and the ratios are medians of per-round ratios."""
    rows = []
    for name in peers.SHAPES:
        keep = []
        row = zoo_row(cases.zoo_case(name, "medium"), "single", options, keep)
        step, carry, inputs = peers.hand_step(name)
        hand, carry = harness.time_step(
            step, carry, inputs, repeats=options.repeats, min_round_s=options.min_round_s
        )
        row["hand_compile_s"] = hand["compile_s"]
        runs = {"jaxdl": keep[0], "hand": harness.Runner(step, carry, inputs)}
        if options.compare_torch:
            figures, runs["torch"] = peers.torch_best(name, options.repeats, options.min_round_s)
            row.update(figures)
        rates, _ = harness.interleaved(runs, options.repeats, options.min_round_s)
        row["interleaved_steps_per_s"] = statistics.median(rates["jaxdl"])
        text = f"jaxdl {row['interleaved_steps_per_s']:.1f} steps/s"
        for peer in [name for name in runs if name != "jaxdl"]:
            row[f"{peer}_steps_per_s"] = statistics.median(rates[peer])
            row.update(ratios(rates["jaxdl"], rates[peer], f"ratio_to_{peer}"))
            text += f"; {peer} {row[f'{peer}_steps_per_s']:.1f}: {row[f'ratio_to_{peer}']:.2f}x"
        rows.append(_print(row, text))
    return rows


# ---------------------------------------------------------------- pipeline

MNIST_AUGMENT = aug.compose(
    aug.random_translate(2), aug.random_rotation(10.0), aug.gaussian_noise(0.05), aug.cutout(8)
)


def mnist_shaped(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), np.float32), rng.integers(0, 10, n).astype(np.int32)


class MnistRecords:
    """MNIST-shaped examples as a TFDS data source serves them: one record at a time, a
    dict of a uint8 (28, 28, 1) image and a label."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.images, self.labels = (x * 255).astype(np.uint8), y

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i]}


def streamed_epochs(stream, batch_size: int):
    """run(epochs): the next ``epochs`` shuffled, augmented epochs of the pipeline
    ``stream``, each batch copied to the device ahead (as ``fit`` feeds them); warmed up by
    one epoch (augmentation compiled, workers started)."""
    done = [0]

    def run(epochs: int) -> None:
        for _ in range(epochs):
            batches = stream.batches(batch_size, shuffle=True, epoch=done[0], train=True)
            done[0] += 1
            placed = jaxdl.data.prefetch_to_device(batches, jax.device_put)
            jax.block_until_ready(collections.deque(placed, maxlen=1)[0])  # the last

    run(1)
    return run


def pipeline(options: Options) -> list[dict]:
    """Batches of MNIST-shaped data as ``Trainer.fit`` feeds them, epochs of each way taken
    in turn:

    - gather+copy(+augment): ``steps_per_call=1`` on arrays: host shuffle and gather, copy
      to the device, augmentation compiled on the device;
    - grain ...: the streaming ``jaxdl.data.Pipeline`` (Grain reader threads) decoding and
      augmenting on the host, each batch copied to the device ahead
      (``prefetch_to_device``): from arrays, and from records read one by one.
    """
    n, batch_size = (4096 if options.quick else 16384), 128
    x, y = mnist_shaped(n)
    augment = jax.jit(MNIST_AUGMENT)
    key = jax.random.key(0)

    def epochs_of(augmented: bool):
        done = [0]

        def run(epochs: int) -> None:
            for _ in range(epochs):
                indices, mask = jaxdl.data.epoch_indices(n, batch_size, shuffle=True, epoch=done[0])
                done[0] += 1
                for s, (idx, m) in enumerate(zip(indices, mask)):
                    batch = jax.device_put({"x": x[idx], "y": y[idx], "mask": m})
                    if augmented:
                        batch["x"] = augment(jax.random.fold_in(key, s), batch["x"])
                jax.block_until_ready(batch)

        run(1)  # warm-up: compiles the augmentation
        return run

    def streamed(source):
        return streamed_epochs(jaxdl.data.Pipeline(source, augment=MNIST_AUGMENT), batch_size)

    step = zoo_row(cases.zoo_case("cnn", "medium"), "single", options)
    runs = {
        "gather+copy": epochs_of(False),
        "gather+copy+augment": epochs_of(True),
        "grain arrays+augment": streamed((x, y)),
        "grain records+decode+augment": streamed(MnistRecords(x, y)),
    }
    rates, _ = harness.interleaved(runs, options.repeats, options.min_round_s)
    rows = []
    for name, epochs_per_s in rates.items():
        row = {"case": f"pipeline/{name}", "strategy": "single", "item": "examples",
               "description": f"MNIST-shaped {n} examples, batch {batch_size}",
               **common.summarize_rates([n * r for r in epochs_per_s], "items_per_s"),
               "cnn_step_items_per_s": step["items_per_s"]}  # fmt: skip
        row["ratio_to_step"] = row["items_per_s"] / step["items_per_s"]
        text = f"{row['items_per_s']:10.0f} examples/s, {row['ratio_to_step']:.1f}x the CNN "
        rows.append(_print(row, text + f"step's {step['items_per_s']:.0f}"))
    return rows


def end_to_end(options: Options) -> list[dict]:
    """``Trainer.fit`` with augmentation on MNIST-shaped data, whole epochs compiled, one
    step per call, and streamed from records by ``jaxdl.data.Pipeline`` (augmented in its
    threads), each against the same trainer's compiled step alone on one fixed batch."""
    return [_fit_against_step(mode, options) for mode in ("epoch", 1, "stream")]


def _fit_against_step(mode, options: Options) -> dict:
    """Rounds of ``fit`` and of the step alone taken in turn, so that a slow spell of a
    shared machine hits both alike."""
    n, batch_size = (4096 if options.quick else 16384), 128
    x, y = mnist_shaped(n)
    case = cases.zoo_case("cnn", "medium")
    batch = jax.device_put({"x": x[:batch_size], "y": y[:batch_size],
                            "mask": np.ones(batch_size, bool)})  # fmt: skip
    streamed = mode == "stream"
    data = jaxdl.data.Pipeline(MnistRecords(x, y), augment=MNIST_AUGMENT) if streamed else (x, y)
    task = jaxdl.tasks.Supervised("cross_entropy", augment=None if streamed else MNIST_AUGMENT)
    trainer = jaxdl.Trainer(
        case.model, loss=task, optimizer="adam", learning_rate=1e-3,
        steps_per_call=1 if streamed else mode,
    )  # fmt: skip

    def fit(epochs: int) -> None:
        trainer.fit(data, epochs=epochs, batch_size=batch_size, verbose=False)
        jax.block_until_ready(trainer.state.params)

    start = time.perf_counter()
    fit(1)
    first = time.perf_counter() - start
    step = harness.Runner(*trainer.compiled_train_step(batch)[:2], (batch,))

    def steps_alone(k: int) -> None:
        step.carry = (trainer.state, *step.carry[1:])
        step(k)
        trainer.state = step.carry[0]  # the step donated the trainer's state

    steps_alone(1)  # compiles the step
    rates, _ = harness.interleaved(
        {"fit": fit, "step": steps_alone}, options.repeats, options.min_round_s
    )
    fit_rates = [n * r for r in rates["fit"]]  # examples/s
    step_rates = [batch_size * r for r in rates["step"]]
    name = "pipeline" if streamed else f"steps_per_call={mode}"
    row = {"case": f"end_to_end/{name}", "strategy": "single",
           "item": "examples", "description": f"{case.description}, augmented, {n} per epoch",
           "first_epoch_s": first, **common.summarize_rates(fit_rates, "items_per_s"),
           "step_items_per_s": statistics.median(step_rates),
           **ratios(fit_rates, step_rates, "ratio_to_step")}  # fmt: skip
    text = f"{row['items_per_s']:10.0f} examples/s, {row['ratio_to_step']:.2f}x the step "
    text += f"alone ({row['step_items_per_s']:.0f}; first epoch {first:.1f} s)"
    return _print(row, text)


# ---------------------------------------------------------------- time to accuracy


class _UntilAccuracy(jaxdl.train.Callback):
    """Evaluate the test split after every epoch (off the clock); stop at ``target``."""

    def __init__(self, test, target: float):
        self.test, self.target = test, target
        self.paused, self.accuracy, self.epochs = 0.0, 0.0, 0

    def on_epoch_end(self, trainer, epoch, logs):
        start = time.perf_counter()
        self.accuracy = trainer.evaluate(self.test)["accuracy"]
        self.epochs = epoch + 1
        trainer.stop_training = self.accuracy >= self.target
        self.paused += time.perf_counter() - start


def time_to_accuracy(name, data, model, target, *, max_epochs, batch_size, **trainer_kw) -> dict:
    trainer = jaxdl.Trainer(model, metrics=("accuracy",), seed=0, **trainer_kw)
    until = _UntilAccuracy(data.test, target)
    start = time.perf_counter()
    trainer.fit(data.train, epochs=max_epochs, batch_size=batch_size, callbacks=[until],
                verbose=False)  # fmt: skip
    seconds = time.perf_counter() - start - until.paused
    return {"case": f"tta/{name}", "strategy": trainer.strategy.name, "target": target,
            "reached": until.accuracy >= target, "test_accuracy": until.accuracy,
            "epochs": until.epochs, "seconds_to_target": seconds}  # fmt: skip


def _not_run(name: str, target: float, why: str) -> dict:
    return {"case": f"tta/{name}", "target": target, "reached": None, "not_run": why}


def tta(options: Options) -> list[dict]:
    m = jaxdl.models
    rows = []
    digits = jaxdl.data.load("digits", seed=0, image=True)
    row = time_to_accuracy(
        "digits_cnn", digits, m.CNN((32, 64), (128,), 10, dropout_rate=0.3), 0.98,
        max_epochs=30, batch_size=64, optimizer=jaxdl.Optimizer("adamw", 2e-3, schedule="cosine"),
    )  # fmt: skip
    rows.append(row)
    gpu = jax.devices()[0].platform == "gpu"
    recipes = {
        "mnist_cnn": ("mnist", 0.99, lambda: m.CNN((32, 64), (256,), 10, dropout_rate=0.25),
                      {"max_epochs": 10, "batch_size": 256,
                       "optimizer": jaxdl.Optimizer("adamw", 3e-3, schedule="warmup_cosine")}),
        "cifar10_resnet": ("cifar10", 0.94, lambda: m.ResNet(20, 10),
                           {"max_epochs": 40, "batch_size": 512,
                            "optimizer": jaxdl.Optimizer("nesterov", 0.4, schedule="warmup_cosine"),
                            "loss": jaxdl.tasks.Supervised(
                                "cross_entropy",
                                augment=aug.compose(aug.random_flip(), aug.random_crop(4)))}),
    }  # fmt: skip
    for name, (data_name, target, make_model, recipe) in recipes.items():
        if not gpu:
            rows.append(_not_run(name, target, "no GPU on this machine"))
            continue
        try:
            data = jaxdl.data.load(data_name, seed=0)
        except FileNotFoundError as error:
            rows.append(_not_run(name, target, f"{data_name} not prepared: {error}"))
            continue
        rows.append(time_to_accuracy(name, data, make_model(), target, **recipe))
    for row in rows:
        if row.get("not_run"):
            _print(row, f"not run: {row['not_run']}")
        else:
            _print(
                row,
                f"test accuracy {row['test_accuracy']:.4f} after {row['epochs']} epochs,"
                f" {row['seconds_to_target']:.1f} s"
                + ("" if row["reached"] else f" (target {row['target']} NOT reached)"),
            )
    return rows


def quick(options: Options) -> list[dict]:
    options.sizes, options.quick = ("small",), True
    options.min_round_s, options.repeats = min(options.min_round_s, 0.2), min(options.repeats, 3)
    return zoo(options) + pipeline(options) + end_to_end(options) + tta(options)


SUITES = {
    "zoo": zoo,
    "peers": peers_suite,
    "pipeline": pipeline,
    "end_to_end": end_to_end,
    "tta": tta,
    "quick": quick,
}

# What each suite's Markdown table shows (every figure is in the JSON lines).
COLUMNS = {
    "zoo": ["case", "strategy", "steps_per_s", "steps_per_s_min", "steps_per_s_max",
            "items_per_s", "item", "trace_s", "lower_s", "compile_s", "flops_per_step",
            "flops_source", "achieved_flops", "fraction_of_peak", "temp_bytes"],
    "peers": ["case", "interleaved_steps_per_s", "hand_steps_per_s", "ratio_to_hand",
              "torch_steps_per_s", "torch_best", "ratio_to_torch", "ratio_to_torch_min",
              "ratio_to_torch_max", "compile_s", "hand_compile_s", "achieved_flops"],
    "pipeline": ["case", "items_per_s", "items_per_s_min", "items_per_s_max",
                 "cnn_step_items_per_s", "ratio_to_step"],
    "end_to_end": ["case", "items_per_s", "items_per_s_min", "items_per_s_max",
                   "step_items_per_s", "ratio_to_step", "first_epoch_s"],
    "tta": ["case", "target", "reached", "test_accuracy", "epochs", "seconds_to_target",
            "not_run"],
}  # fmt: skip
COLUMNS["quick"] = COLUMNS["zoo"] + ["ratio_to_step", "test_accuracy", "seconds_to_target"]
