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
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import cases  # benchmarks/cases.py, beside this module
import common
import harness
import jax
import jax.numpy as jnp
import optax

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
    row = {"torch": torch.__version__, "torch_best": best}
    row.update({f"torch_{k}": v for k, v in rates[best].items()})
    row.update({f"torch_{v}_steps_per_s": r["steps_per_s"] for v, r in rates.items()})
    return row, runs[best]
