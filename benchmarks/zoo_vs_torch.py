"""jaxdl's training step against PyTorch's on the same CPU, for the four shapes of the zoo.

A step is forward, backward and an Adam update, float32, on a fixed synthetic batch:

- mlp: 784-512-512-10, batch 128
- cnn: 28x28x1, conv 32 3x3 -> max-pool 2 -> conv 64 3x3 -> max-pool 2 -> dense 256 -> 10,
  batch 128 (VALID convolutions, as PyTorch's default)
- lstm: 64 steps of 32 inputs, 256 hidden, the last state classified into 10, batch 64
- lm: Transformer LM, 4 layers, d_model 256, 4 heads, MLP 1024, 128 tokens, vocabulary
  1000, causal, batch 16

jaxdl runs its models under ``jax.jit`` with a donated state (compile time reported apart);
PyTorch runs eager, eager with ``Adam(fused=True)``, and ``torch.compile`` (each when it
works here), and its best is the reference. Steps/s is the median of ``--repeats`` rounds
of ``--steps`` steps after warm-up; GFLOP/s uses XLA's cost analysis of the jaxdl step.

Command: ``python benchmarks/zoo_vs_torch.py`` (needs ``pip install torch==2.13.0``, the
``bench`` extra; about 6 minutes on 2 cores). Results: results/zoo_vs_torch.md. Last run on
2 cores of an AMD EPYC, jax 0.10.2, torch 2.13.0, 2026-11-21: ratio to PyTorch's best
MLP 1.02x, CNN 0.91x (0.99x in the run before), LSTM 0.64x, Transformer LM 0.64x.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import common  # benchmarks/common.py, beside this script
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdl

SHAPES = ("mlp", "cnn", "lstm", "lm")


def jax_case(name: str):
    rng = np.random.default_rng(0)
    if name == "mlp":
        model, x = jaxdl.models.MLP((512, 512, 10)), rng.normal(size=(128, 784))
    elif name == "cnn":
        model = jaxdl.models.CNN((32, 64), (256,), 10, padding="VALID")
        x = rng.normal(size=(128, 28, 28, 1))
    elif name == "lstm":
        model = jaxdl.models.RNNClassifier("lstm", 256, num_classes=10)
        x = rng.normal(size=(64, 64, 32))
    else:
        model = jaxdl.models.TransformerLM(1000, 4, 256, 4, 1024, 128)
        x = rng.integers(0, 1000, size=(16, 128))
    if name == "lm":
        y = rng.integers(0, 1000, size=(16, 128)).astype(np.int32)
        x = x.astype(np.int32)
    else:
        y = rng.integers(0, 10, size=len(x)).astype(np.int32)
        x = x.astype(np.float32)
    return model, jnp.asarray(x), jnp.asarray(y)


def bench_jax(name: str, steps: int, repeats: int) -> dict:
    model, x, y = jax_case(name)
    tx = optax.adam(1e-3)
    params = jaxdl.init_variables(model, x[:1], {"params": jax.random.key(0)})["params"]
    carry = (params, tx.init(params))

    @functools.partial(jax.jit, donate_argnums=(0,))
    def step(carry, x, y):
        params, opt_state = carry

        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    start = time.perf_counter()
    lowered = step.lower(carry, x, y)
    trace_s = time.perf_counter() - start
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    for _ in range(3):
        carry, loss = compiled(carry, x, y)
    loss.block_until_ready()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            carry, loss = compiled(carry, x, y)
        loss.block_until_ready()
        rates.append(steps / (time.perf_counter() - start))
    rate = statistics.median(rates)
    return {
        "steps_per_s": rate,
        "trace_s": trace_s,
        "compile_s": compile_s,
        "gflop_per_step": flops / 1e9,
        "gflop_per_s": flops * rate / 1e9,
    }


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


def bench_torch(name: str, variant: str, steps: int, repeats: int) -> dict:
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
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps / (time.perf_counter() - start))
    return {"steps_per_s": statistics.median(rates), "warmup_s": warmup_s}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--out", default=common.RESULTS)
    args = parser.parse_args(argv)
    import torch

    rows = []
    variants = ["eager", "eager_fused"] + ([] if args.no_compile else ["compile"])
    for name in args.shapes:
        ours = bench_jax(name, args.steps, args.repeats)
        theirs = {}
        for variant in variants:
            try:
                theirs[variant] = bench_torch(name, variant, args.steps, args.repeats)
            except Exception as error:  # e.g. no C++ toolchain for torch.compile
                print(f"{name}: torch {variant} failed: {type(error).__name__}: {error}")
        best_variant = max(theirs, key=lambda v: theirs[v]["steps_per_s"])
        best = theirs[best_variant]["steps_per_s"]
        row = {
            "shape": name,
            "jaxdl_steps_per_s": ours["steps_per_s"],
            "torch_best_steps_per_s": best,
            "torch_best": best_variant,
            "ratio": ours["steps_per_s"] / best,
            "jaxdl_gflop_per_s": ours["gflop_per_s"],
            "jaxdl_compile_s": ours["compile_s"],
            "jaxdl_trace_s": ours["trace_s"],
            **{f"torch_{v}_steps_per_s": r["steps_per_s"] for v, r in theirs.items()},
            "torch": torch.__version__,
        }
        rows.append(row)
        print(
            f"{name:5s} jaxdl {ours['steps_per_s']:7.1f} steps/s "
            f"({ours['gflop_per_s']:.0f} GFLOP/s, compile {ours['compile_s']:.1f} s)  "
            f"torch best {best:7.1f} ({best_variant})  ratio {row['ratio']:.2f}x  "
            + " ".join(f"{v}={r['steps_per_s']:.1f}" for v, r in theirs.items())
        )
    columns = [
        "shape",
        "jaxdl_steps_per_s",
        "torch_best_steps_per_s",
        "torch_best",
        "ratio",
        "jaxdl_gflop_per_s",
        "jaxdl_compile_s",
        "torch_eager_steps_per_s",
        "torch_eager_fused_steps_per_s",
    ]
    if not args.no_compile:
        columns.append("torch_compile_steps_per_s")
    for row in rows:
        for c in columns:
            row.setdefault(c, float("nan"))
    print(f"wrote {common.write('zoo_vs_torch', rows, columns, args.out)}")


if __name__ == "__main__":
    main()
