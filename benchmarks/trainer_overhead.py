"""Trainer.fit against a plain hand-written ``jax.jit`` loop: the library's overhead.

Same model (a Flax MLP), same optimizer (Adam 1e-3), same loss (softmax cross-entropy),
same batch size, float32. Three ways to run an epoch:

- ``hand_jit_loop``: what a user writes by hand: shuffle on the host, slice a NumPy batch,
  call a jitted, donated ``step(params, opt_state, x, y)``; block at the end of the epoch.
- ``trainer_epoch``: ``Trainer.fit`` with ``steps_per_call="epoch"`` (the default for data
  that fits in memory): the whole epoch is one compiled ``lax.scan`` over data on the device.
- ``trainer_step``: ``Trainer.fit`` with ``steps_per_call=1``: one compiled step per batch.

Each is warmed up with one epoch (which includes compilation, reported as ``first_epoch_s``),
then the three are timed in turn, ``--repeats`` rounds of ``--epochs`` epochs each; steps/s
is the median over rounds and the ratio is the median of the per-round ratios, so a slow
spell of a shared machine does not favour one runner. Trainer timings include everything
``fit`` does (checks, per-epoch metrics, history, host loop).

Command: ``python benchmarks/trainer_overhead.py`` (about 2 minutes; ``--quick``: 20 s).
Last run on 2 cores of an Intel Xeon under a load of 2-4, jax 0.10.2, 2026-12-01, after
the training-engine redesign (results/trainer_overhead.md): trainer_epoch 1.28x the hand
loop on the digits MLP and 1.02x on the 784-512-512-10 MLP; trainer_step 0.69x and 1.02x
(the code before the redesign, in the same hour: 1.22x, 1.08x; 0.65x, 1.05x). On an AMD
EPYC, quiet, 2026-11-21: trainer_epoch 1.00x and 1.05x, trainer_step 0.75x and 0.97x. The
shared machine's speed drifts by up to 40% between rounds, hence the interleaving.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import common  # benchmarks/common.py, beside this script
import jax
import numpy as np
import optax

import jaxdl


def hand_loop(model, x, y, batch_size: int, seed: int = 0):
    """A plain jitted training loop; returns ``run(epochs)`` and the steps per epoch."""
    tx = optax.adam(1e-3)
    params = model.init(jax.random.key(seed), x[:1])["params"]
    carry = {"params": params, "opt_state": tx.init(params)}

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    steps = len(x) // batch_size

    def run(epochs: int):
        for _ in range(epochs):
            order = rng.permutation(len(x))
            loss = None
            for s in range(steps):
                idx = order[s * batch_size : (s + 1) * batch_size]
                carry["params"], carry["opt_state"], loss = step(
                    carry["params"], carry["opt_state"], x[idx], y[idx]
                )
            float(loss)  # a user loop reads the loss once per epoch

    return run, steps


def trainer_runner(model, x, y, batch_size: int, steps_per_call):
    """``Trainer.fit`` as a user calls it: one call for all the epochs."""
    trainer = jaxdl.Trainer(
        model,
        optimizer="adam",
        learning_rate=1e-3,
        metrics=("accuracy",),
        steps_per_call=steps_per_call,
    )

    def run(epochs: int):
        trainer.fit((x, y), epochs=epochs, batch_size=batch_size, verbose=False)
        jax.block_until_ready(trainer.state.params)

    return run, -(-len(x) // batch_size)


def measure(runners: dict, epochs: int, repeats: int) -> dict[str, dict]:
    """Warm each runner up with one epoch (timed: it includes compilation), then time them
    interleaved, ``repeats`` rounds of ``epochs`` epochs each, so that a slow spell of a
    shared machine hits every runner alike. Ratios are medians of per-round ratios."""
    first = {}
    for name, (run, _) in runners.items():
        start = time.perf_counter()
        run(1)
        first[name] = time.perf_counter() - start
    seconds = {name: [] for name in runners}
    for _ in range(repeats):
        for name, (run, _) in runners.items():
            seconds[name] += common.time_repeats(functools.partial(run, epochs), 1)
    base = "hand_jit_loop"
    results = {}
    for name, (_, steps) in runners.items():
        ratios = [
            (steps / s) / (runners[base][1] / b) for s, b in zip(seconds[name], seconds[base])
        ]
        results[name] = {
            "runner": name,
            "first_epoch_s": first[name],
            **common.summarize(seconds[name], steps * epochs),
            "ratio_to_hand": statistics.median(ratios),
        }
    return results


def configurations(quick: bool):
    digits = jaxdl.data.load("digits", seed=0).train
    rng = np.random.default_rng(0)
    n = 6400 if quick else 12800
    x = rng.normal(size=(n, 784)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    return [
        (
            "digits MLP 64-128-128-10, batch 64",
            jaxdl.models.MLP(features=(128, 128, 10)),
            digits.x,
            digits.y,
            64,
        ),
        ("MLP 784-512-512-10, batch 128", jaxdl.models.MLP(features=(512, 512, 10)), x, y, 128),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 10)
    repeats = args.repeats or (3 if args.quick else 7)

    rows = []
    for label, model, x, y, batch in configurations(args.quick):
        runners = {
            "hand_jit_loop": hand_loop(model, x, y, batch),
            "trainer_epoch": trainer_runner(model, x, y, batch, "epoch"),
            "trainer_step": trainer_runner(model, x, y, batch, 1),
        }
        for result in measure(runners, epochs, repeats).values():
            result["config"] = label
            rows.append(result)
            print(
                f"{label:40s} {result['runner']:14s} {result['steps_per_s']:9.1f} steps/s "
                f"({result['ratio_to_hand']:.2f}x hand)  first epoch "
                f"{result['first_epoch_s']:.2f} s"
            )
    path = common.write(
        "trainer_overhead",
        rows,
        [
            "config",
            "runner",
            "steps_per_s",
            "steps_per_s_min",
            "steps_per_s_max",
            "ratio_to_hand",
            "first_epoch_s",
        ],
        args.out,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
