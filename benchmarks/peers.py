"""Peers of jaxdl's training step for the four shapes of the model zoo: a plain hand-written
JAX step (the library's overhead) and PyTorch's (the reference, when the ``bench`` extra
installed it).

A step is forward, backward and an Adam update, float32, on a fixed synthetic batch:

- mlp: 784-512-512-10, batch 128
- cnn: 28x28x1, conv 32 3x3 -> max-pool 2 -> conv 64 3x3 -> max-pool 2 -> dense 256 -> 10,
  batch 128 (VALID convolutions, as PyTorch's default)
- lstm: 64 steps of 32 inputs, 256 hidden, the last state classified into 10, batch 64
- lm: Transformer LM, 4 layers, d_model 256, 4 heads, MLP 1024, 128 tokens, vocabulary
  1000, causal, batch 16

These are the "medium" sizes of ``suites.py``. The hand step is ``jax.jit`` with a donated
(params, opt_state); PyTorch runs eager, eager with ``Adam(fused=True)`` and
``torch.compile`` (each when it works here), and its best is the reference. Both are timed
the way ``harness.time_step`` times jaxdl: warm-up, rounds of at least ``min_round_s``,
median of the rounds. Run them through ``python benchmarks/run.py --suite peers --compare
torch``.

``python benchmarks/peers.py --peer keras|torch [--quick]`` runs one framework pair in one
process: the four shapes (jaxdl, the hand step and Keras 3 on JAX, ``keras_peer.py``, or
PyTorch's best, in interleaved rounds) and the digits MLP and CNN of ``DIGITS`` trained to
the same test accuracy, with the load average beside every row (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable

import cases  # benchmarks/cases.py, beside this module
import common
import harness
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

import jaxdl

SHAPES = ("mlp", "cnn", "lstm", "lm")


def jax_case(name: str):
    """The model and the batch of ``cases.zoo_case(name, "medium")``, on the device."""
    case = cases.zoo_case(name, "medium")
    return case.model, jnp.asarray(case.x), jnp.asarray(case.y)


def hand_step(name: str):
    """``(step, carry, inputs)`` of a plain jitted Adam step: ``step(params, opt_state, x, y)
    -> (params, opt_state)``, the state donated."""
    model, x, y = jax_case(name)
    tx = optax.adam(1e-3)
    params = jaxdl.init_variables(model, x[:1], {"params": jax.random.key(0)})["params"]

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, x, y):
        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        grads = jax.grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step, (params, tx.init(params)), (x, y)


def torch_case(name: str):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )
        x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
    elif name == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(1600, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
        x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    elif name == "lstm":

        class LSTMClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm, self.out = nn.LSTM(32, 256, batch_first=True), nn.Linear(256, 10)

            def forward(self, x):
                return self.out(self.lstm(x)[1][0][-1])

        model = LSTMClassifier()
        x, y = torch.randn(64, 64, 32), torch.randint(0, 10, (64,))
    else:

        class LM(nn.Module):
            def __init__(self):
                super().__init__()
                self.tokens, self.positions = nn.Embedding(1000, 256), nn.Embedding(128, 256)
                layer = nn.TransformerEncoderLayer(
                    256, 4, 1024, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
                )
                self.blocks = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
                self.norm, self.out = nn.LayerNorm(256), nn.Linear(256, 1000)
                self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(128))

            def forward(self, t):
                h = self.tokens(t) + self.positions.weight[None, : t.shape[1]]
                h = self.blocks(h, mask=self.mask, is_causal=True)
                return self.out(self.norm(h)).reshape(-1, 1000)

        model = LM()
        x, y = torch.randint(0, 1000, (16, 128)), torch.randint(0, 1000, (16 * 128,))
    return model, x, y


def torch_runner(name: str, variant: str) -> tuple[Callable[[int], None], float]:
    """``(run, warmup_s)``: ``run(n)`` takes ``n`` PyTorch steps of ``name``; ``variant``
    "eager", "eager_fused" (``Adam(fused=True)``) or "compile" (``torch.compile``). Three
    warm-up steps (with compilation) are taken and timed first."""
    import torch

    model, x, y = torch_case(name)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, fused=(variant == "eager_fused"))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    if variant == "compile":
        step = torch.compile(step)
    start = time.perf_counter()
    for _ in range(3):
        step()
    warmup_s = time.perf_counter() - start

    def run(n: int) -> None:
        for _ in range(n):
            step()

    return run, warmup_s


def torch_rate(name: str, variant: str, repeats: int, min_round_s: float):
    """PyTorch's steps/s for ``name`` and ``variant``, timed like ``harness.time_step``, and
    the warm ``run(n)``."""
    run, warmup_s = torch_runner(name, variant)
    rates, _ = harness.interleaved({variant: run}, repeats, min_round_s)
    return {**common.summarize_rates(rates[variant]), "warmup_s": warmup_s}, run


def torch_best(name: str, repeats: int, min_round_s: float, compile: bool = True):
    """The best of PyTorch's variants that work here (``torch.compile`` needs a C++
    toolchain): ({"torch_best", "torch_steps_per_s", "torch_<variant>_steps_per_s", ...},
    the best variant's warm ``run(n)``)."""
    import torch

    variants = ["eager", "eager_fused"] + (["compile"] if compile else [])
    rates, runs = {}, {}
    for variant in variants:
        try:
            rates[variant], runs[variant] = torch_rate(name, variant, repeats, min_round_s)
        except Exception as error:  # e.g. no C++ compiler for torch.compile
            print(f"  torch {variant} failed on {name}: {type(error).__name__}: {error}")
    best = max(rates, key=lambda v: rates[v]["steps_per_s"])
    row = {"torch": torch.__version__, "torch_best": best, "torch_threads": torch_threads()}
    row.update({f"torch_{k}": v for k, v in rates[best].items()})
    row.update({f"torch_{v}_steps_per_s": r["steps_per_s"] for v, r in rates.items()})
    return row, runs[best]


def torch_threads() -> int:
    """PyTorch's intra-op thread count (``torch.get_num_threads()``): its rate on a shared
    machine depends on it, so every PyTorch figure is written beside it."""
    import torch

    return torch.get_num_threads()


# ---------------------------------------------------------------- digits, end to end

# The test accuracy each framework trains the digits models to (``jaxdl.data.load("digits",
# seed=0, image=True)``: 8x8x1 images, 1168 train, 360 test), with Adam (1e-3) and batch 64.
DIGITS = {"digits_mlp": 0.97, "digits_cnn": 0.97}
DIGITS_BATCH = 64


class DigitsMLP(nn.Module):
    """64-256-256-10 on the flattened 8x8x1 image."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(256)(x))
        return nn.Dense(10)(nn.relu(nn.Dense(256)(x)))


class DigitsCNN(nn.Module):
    """conv 32 3x3 -> max-pool 2 -> conv 64 3x3 -> max-pool 2 -> dense 128 -> 10, SAME."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        for features in (32, 64):
            x = nn.max_pool(nn.relu(nn.Conv(features, (3, 3))(x)), (2, 2), (2, 2))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def _flax_digits(name: str) -> nn.Module:
    return DigitsMLP() if name == "digits_mlp" else DigitsCNN()


class HandDigits:
    """A hand-written loop: one ``jax.jit`` Adam step per batch, from Python.

    Args:
        name: "digits_mlp" or "digits_cnn".
        batch_size: examples per step.
    """

    def __init__(self, name: str, batch_size: int):
        self.model, self.batch_size, tx = _flax_digits(name), batch_size, optax.adam(1e-3)
        params = self.model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
        self.carry = (params, tx.init(params))

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(params, opt_state, x, y):
            def loss_fn(p):
                logits = self.model.apply({"params": p}, x)
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

            updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        self.step = step
        self.logits = jax.jit(lambda p, x: self.model.apply({"params": p}, x))

    def epoch(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        """One epoch over ``(x, y)`` in the order ``seed`` gives, the last partial batch in."""
        order = np.random.default_rng(seed).permutation(len(x))
        xs, ys = jnp.asarray(x[order]), jnp.asarray(y[order])
        carry = self.carry
        for i in range(0, len(x), self.batch_size):
            carry = self.step(*carry, xs[i : i + self.batch_size], ys[i : i + self.batch_size])
        self.carry = jax.block_until_ready(carry)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Test accuracy on ``(x, y)``."""
        return float(np.mean(np.argmax(self.logits(self.carry[0], x), -1) == y))


class JaxdlDigits:
    """``jaxdl.Trainer.fit``, an epoch per call, the flax model of ``HandDigits``.

    Args:
        name: "digits_mlp" or "digits_cnn".
        batch_size: examples per step.
    """

    def __init__(self, name: str, batch_size: int):
        self.trainer = jaxdl.Trainer(_flax_digits(name), optimizer="adam", learning_rate=1e-3,
                                     metrics=("accuracy",), seed=0)  # fmt: skip
        self.batch_size = batch_size

    def epoch(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        """One epoch of ``Trainer.fit`` (its own shuffling)."""
        self.trainer.fit(x, y, epochs=1, batch_size=self.batch_size, verbose=False)
        jax.block_until_ready(self.trainer.state)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Test accuracy on ``(x, y)``."""
        return self.trainer.evaluate(x, y)["accuracy"]


class TorchDigits:
    """PyTorch's loop, eager with ``Adam(fused=True)``, NCHW.

    Args:
        name: "digits_mlp" or "digits_cnn".
        batch_size: examples per step.
    """

    def __init__(self, name: str, batch_size: int):
        import torch
        from torch import nn as tnn

        torch.manual_seed(0)
        if name == "digits_mlp":
            self.net = tnn.Sequential(
                tnn.Flatten(), tnn.Linear(64, 256), tnn.ReLU(),
                tnn.Linear(256, 256), tnn.ReLU(), tnn.Linear(256, 10),
            )  # fmt: skip
        else:
            self.net = tnn.Sequential(
                tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                tnn.Linear(256, 128), tnn.ReLU(), tnn.Linear(128, 10),
            )  # fmt: skip
        self.optimizer = torch.optim.Adam(self.net.parameters(), 1e-3, fused=True)
        self.loss_fn, self.batch_size, self.torch = tnn.CrossEntropyLoss(), batch_size, torch

    def _tensors(self, x, y=None):
        x = self.torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return x if y is None else (x, self.torch.from_numpy(y.astype(np.int64)))

    def epoch(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        """One epoch over ``(x, y)`` in the order ``seed`` gives, the last partial batch in."""
        order = np.random.default_rng(seed).permutation(len(x))
        xs, ys = self._tensors(x[order], y[order])
        for i in range(0, len(x), self.batch_size):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.net(xs[i : i + self.batch_size]), ys[i : i + self.batch_size])
            loss.backward()
            self.optimizer.step()

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Test accuracy on ``(x, y)``."""
        with self.torch.no_grad():
            logits = self.net(self._tensors(x)).numpy()
        return float(np.mean(np.argmax(logits, -1) == y))


def digits_time_to_accuracy(make, data, target: float, max_epochs: int, rate_epochs: int):
    """Seconds from building ``make()`` to ``target`` test accuracy (compilation included,
    evaluation after each epoch off the clock), then steps/s over ``rate_epochs`` more
    epochs (warm). Returns a dict of figures."""
    x, y = data.train.x, data.train.y
    start, paused, epochs, accuracy = time.perf_counter(), 0.0, 0, 0.0
    trainer = make()
    while epochs < max_epochs and accuracy < target:
        trainer.epoch(x, y, seed=epochs)
        epochs += 1
        pause = time.perf_counter()
        accuracy = trainer.accuracy(data.test.x, data.test.y)
        paused += time.perf_counter() - pause
    seconds = time.perf_counter() - start - paused
    start = time.perf_counter()
    for k in range(rate_epochs):
        trainer.epoch(x, y, seed=epochs + k)
    steps = rate_epochs * -(-len(x) // DIGITS_BATCH)
    return {"seconds_to_target": seconds, "epochs": epochs, "test_accuracy": accuracy,
            "reached": accuracy >= target,
            "steps_per_s": steps / (time.perf_counter() - start)}  # fmt: skip


# ---------------------------------------------------------------- one process per pair


def _load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1m": one, "loadavg_5m": five, "loadavg_15m": fifteen}


def _loads(before: dict, after: dict) -> dict:
    # More runnable threads than cores: the figures were taken with the machine shared.
    loaded = max(before["loadavg_1m"], after["loadavg_1m"]) > (os.cpu_count() or 1) + 0.5
    return {**{f"{k}_before": v for k, v in before.items()},
            **{f"{k}_after": v for k, v in after.items()}, "loaded": loaded}  # fmt: skip


def jaxdl_runner(name: str) -> tuple[harness.Runner, float]:
    """jaxdl's compiled step of ``name`` (``Trainer``, Adam 1e-3) as a warm ``Runner``, and
    its first call's seconds (compilation included)."""
    case = cases.zoo_case(name, "medium")
    trainer = jaxdl.Trainer(case.model, optimizer="adam", learning_rate=1e-3,
                            **case.trainer_options)  # fmt: skip
    trainer.init(case.x[:1])
    batch = jax.device_put(case.batch)
    step, carry, _ = trainer.compiled_train_step(batch)
    start = time.perf_counter()
    carry = jax.block_until_ready(step(*carry, batch))
    return harness.Runner(step, carry, (batch,)), time.perf_counter() - start


def shape_row(name: str, peer: str, repeats: int, min_round_s: float, torch_compile: bool):
    """One shape: jaxdl, the hand-written step and ``peer`` ("keras" or "torch") in
    interleaved rounds, after each one's warm-up (timed apart)."""
    before = _load()
    runs, row = {}, {"case": f"{name}/medium", "peer": peer}
    runs["jaxdl"], row["jaxdl_warmup_s"] = jaxdl_runner(name)
    step, carry, inputs = hand_step(name)
    start = time.perf_counter()
    carry = jax.block_until_ready(step(*carry, *inputs))
    row["hand_warmup_s"] = time.perf_counter() - start
    runs["hand"] = harness.Runner(step, carry, inputs)
    if peer == "keras":
        import keras_peer

        case = cases.zoo_case(name, "medium")
        runs["keras"], row["keras_warmup_s"] = keras_peer.runner(name, case.x, case.y)
    else:
        figures, runs["torch"] = torch_best(name, repeats, min_round_s, compile=torch_compile)
        row.update(figures, torch_warmup_s=figures["torch_warmup_s"])
    rates, _ = harness.interleaved(runs, repeats, min_round_s)
    for key, r in rates.items():
        row[f"{key}_steps_per_s"] = statistics.median(r)
    for other in ("hand", peer):
        ratio = [a / b for a, b in zip(rates["jaxdl"], rates[other])]
        row.update(common.summarize_rates(ratio, f"ratio_to_{other}"))
    return {**row, **_loads(before, _load())}


def digits_rows(peer: str, repeats: int, max_epochs: int, rate_epochs: int) -> list[dict]:
    """The digits MLP and CNN to ``DIGITS``' accuracy: jaxdl, the hand loop and ``peer``,
    taken in turn ``repeats`` times; medians of each."""
    data = jaxdl.data.load("digits", seed=0, image=True)
    if peer == "keras":
        import keras_peer

        peer_cls = keras_peer.DigitsTrainer
    else:
        peer_cls = TorchDigits
    makers = {"jaxdl": JaxdlDigits, "hand": HandDigits, peer: peer_cls}
    rows = []
    for name, target in DIGITS.items():
        before = _load()
        figures = {key: [] for key in makers}
        for _ in range(repeats):
            for key, cls in makers.items():
                make = functools.partial(cls, name, DIGITS_BATCH)
                figures[key].append(digits_time_to_accuracy(make, data, target, max_epochs,
                                                            rate_epochs))  # fmt: skip
        row = {"case": name, "peer": peer, "target": target, "batch_size": DIGITS_BATCH}
        for key, runs in figures.items():
            row[f"{key}_reached"] = all(r["reached"] for r in runs)
            row[f"{key}_epochs"] = statistics.median(r["epochs"] for r in runs)
            row[f"{key}_test_accuracy"] = statistics.median(r["test_accuracy"] for r in runs)
            row[f"{key}_seconds_to_target"] = statistics.median(
                r["seconds_to_target"] for r in runs
            )
            row[f"{key}_steps_per_s"] = statistics.median(r["steps_per_s"] for r in runs)
        rows.append({**row, **_loads(before, _load())})
    return rows


COLUMNS = ["case", "peer", "jaxdl_steps_per_s", "hand_steps_per_s", "keras_steps_per_s",
           "torch_steps_per_s", "torch_best", "torch_threads", "ratio_to_hand", "ratio_to_keras",
           "ratio_to_torch", "jaxdl_warmup_s", "keras_warmup_s", "torch_warmup_s", "target",
           "jaxdl_seconds_to_target", "hand_seconds_to_target", "keras_seconds_to_target",
           "torch_seconds_to_target", "keras_epochs", "loadavg_1m_before", "loadavg_1m_after",
           "loaded"]  # fmt: skip


def main(argv=None) -> int:
    """``python benchmarks/peers.py --peer keras|torch [--quick]``: the four shapes and the
    digits end to end, jaxdl and the hand-written JAX loop against one peer framework in this
    one process; writes ``results/peers_PEER.{jsonl,md}``."""
    parser = argparse.ArgumentParser(description=main.__doc__.split(";")[0])
    parser.add_argument("--peer", required=True, choices=["keras", "torch"])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--no-digits", action="store_true", help="the four shapes only")
    parser.add_argument(
        "--torch-threads", type=int, help="torch.set_num_threads (default: its own)"
    )
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    try:
        if args.peer == "keras":
            import keras_peer

            version = {"keras": keras_peer.import_keras().__version__}
        else:
            import torch

            if args.torch_threads:
                torch.set_num_threads(args.torch_threads)
            version = {"torch": torch.__version__, "torch_threads": torch_threads()}
    except ImportError as error:
        print(f"peer {args.peer} skipped: not installed ({error}); pip install -e .[bench]")
        return 0
    repeats, min_round_s = (3, 0.2) if args.quick else (5, 0.5)
    rows = []
    for name in args.shapes:
        row = shape_row(name, args.peer, repeats, min_round_s, not args.no_torch_compile)
        rows.append({**row, **version})
        print(f"{name:<6} jaxdl {row['jaxdl_steps_per_s']:.1f} hand {row['hand_steps_per_s']:.1f} "
              f"{args.peer} {row[f'{args.peer}_steps_per_s']:.1f} steps/s: "
              f"{row[f'ratio_to_{args.peer}']:.2f}x; load {row['loadavg_1m_after']:.2f}"
              + (" (machine loaded)" if row["loaded"] else ""), flush=True)  # fmt: skip
    if not args.no_digits:
        for row in digits_rows(args.peer, 1 if args.quick else 3, 60, 2 if args.quick else 5):
            rows.append({**row, **version})
            print(f"{row['case']:<10} to {row['target']}: " + ", ".join(
                f"{k} {row[f'{k}_seconds_to_target']:.2f} s ({row[f'{k}_epochs']} ep, "
                f"{row[f'{k}_steps_per_s']:.0f} steps/s)" for k in ("jaxdl", "hand", args.peer)
            ) + (" (machine loaded)" if row["loaded"] else ""), flush=True)  # fmt: skip
    path = common.write(f"peers_{args.peer}", rows, COLUMNS, args.out or common.RESULTS)
    print(f"wrote {path} and its .jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
