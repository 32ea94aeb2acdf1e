"""The loop's two modes side by side, and what ``steps_per_call="auto"`` picks.

For each model: ``Trainer.fit`` with ``steps_per_call="epoch"`` (the epoch as one compiled
``lax.scan`` over device-held data) and with ``steps_per_call=1`` (one compiled step per
batch), warmed up by one epoch (its time, compilation included, reported apart), then timed
interleaved, ``--repeats`` rounds of ``--epochs`` epochs. ``auto`` is the mode "auto"
chose for the same run, and ``auto_vs_best`` the chosen mode's steps/s over the faster
mode's: the check is that it never falls below 0.9 (never more than 10% slower).

The shapes are those of a published 1-D signal benchmark (a 40-long signal, 4000 training
examples, batch 100), with an MLP, a GRU and a small strided 1-D conv net (a custom Flax
module, so the choice is seen to read the program, not the class), plus jaxdl's CNN on the
8x8 digits.

Command: ``python benchmarks/loop_modes.py`` (``--quick``: fewer rounds).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import common  # benchmarks/common.py, beside this script
import flax.linen as nn
import jax
import numpy as np

import jaxdl


class StridedConv1D(nn.Module):
    """conv(5, stride 2) -> conv(5, stride 2) -> dense: a 1-D signal classifier."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x[..., None]  # (B, L) -> (B, L, 1)
        x = nn.relu(nn.Conv(8, (5,), strides=(2,))(x))
        x = nn.relu(nn.Conv(16, (5,), strides=(2,))(x))
        return nn.Dense(4)(x.reshape(len(x), -1))


def signals(n=4000, length=40, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    t = np.linspace(0, 1, length, dtype=np.float32)
    x = np.sin(2 * np.pi * (y[:, None] + 1) * t) + rng.normal(0, 0.5, (n, length))
    return x.astype(np.float32), y


def configurations():
    x, y = signals()
    digits = jaxdl.data.load("digits", seed=0).train
    return [
        ("MLP 40-64-64-4 (signal)", jaxdl.models.MLP(features=(64, 64, 4)), x, y, 100),
        (
            "GRU 32 (signal, 40 steps)",
            jaxdl.models.RNNClassifier(cell="gru", hidden_size=32, num_classes=4),
            x,
            y,
            100,
        ),
        ("conv1d 8-16 stride 2 (signal)", StridedConv1D(), x, y, 100),
        (
            "CNN 16-32 (digits 8x8)",
            jaxdl.models.CNN(channels=(16, 32), dense=(64,)),
            digits.x,
            digits.y,
            64,
        ),
    ]


def runner(model, x, y, batch_size, steps_per_call):
    trainer = jaxdl.Trainer(model, learning_rate=1e-3, steps_per_call=steps_per_call)

    def run(epochs):
        trainer.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=False)
        jax.block_until_ready(trainer.state.params)

    return trainer, run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and rounds")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 3)
    repeats = args.repeats or (3 if args.quick else 5)
    rows = []
    for label, model, x, y, batch in configurations():
        steps = -(-len(x) // batch)
        runs = {"epoch": runner(model, x, y, batch, "epoch"), 1: runner(model, x, y, batch, 1)}
        auto, _ = runner(model, x, y, batch, "auto")
        auto.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, verbose=False)
        first = {}
        for mode, (_, run) in runs.items():
            start = time.perf_counter()
            run(1)
            first[mode] = time.perf_counter() - start
        seconds = {mode: [] for mode in runs}
        for _ in range(repeats):
            for mode, (_, run) in runs.items():
                seconds[mode] += common.time_repeats(functools.partial(run, epochs), 1)
        rates = {mode: steps * epochs / statistics.median(s) for mode, s in seconds.items()}
        best = max(rates.values())
        row = {
            "config": label,
            "epoch_steps_per_s": rates["epoch"],
            "step_steps_per_s": rates[1],
            "epoch_first_s": first["epoch"],
            "step_first_s": first[1],
            "auto": auto.mode_chosen,
            "auto_vs_best": rates[auto.mode_chosen] / best,
        }
        rows.append(row)
        print(
            f"{label:32s} epoch {rates['epoch']:8.1f}  step {rates[1]:8.1f} steps/s  "
            f"auto={auto.mode_chosen!r} ({row['auto_vs_best']:.2f} of the faster)"
        )
    path = common.write(
        "loop_modes",
        rows,
        [
            "config",
            "epoch_steps_per_s",
            "step_steps_per_s",
            "epoch_first_s",
            "step_first_s",
            "auto",
            "auto_vs_best",
        ],
        args.out,
    )
    print(f"wrote {path}")
    slower = [r["config"] for r in rows if r["auto_vs_best"] < 0.9]
    if slower:
        raise SystemExit(f"auto chose a mode more than 10% slower for: {', '.join(slower)}")


if __name__ == "__main__":
    main()
