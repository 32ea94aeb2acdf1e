"""A GCN training step on padded batches of random graphs: compile time, steps/s, and proof
that new batches never recompile.

Data: random graphs of 20-40 nodes (about 30; edge probability 0.15, both directions
stored), 16 node features, two classes; batches of 128 graphs packed under fixed node and
edge budgets by ``GraphDataset``. Model: ``GCN((64, 64), 2, readout="mean")``, Adam 1e-3.

- ``hand_jit_loop``: a plain jitted, donated step over the same padded batches (packed once,
  beforehand): the arithmetic alone.
- ``trainer``: ``Trainer.fit`` on the ``GraphDataset``, which reshuffles and packs new batches
  on the host every epoch, and merges metrics on the device.

Compile time is the first call of the hand step less one steady-state step (so: trace + XLA
compile); steps/s are medians over interleaved rounds after a warm-up epoch. The trace
counts are taken over every epoch: 1 for the hand step and 1 for the trainer's (its empty metric
states come from ``jaxdl.metrics.empty_states``, not from a trace) means no batch recompiled.

Command: ``python benchmarks/gnn_step.py`` (about a minute; ``--quick``: 20 s).
Last run on 2 cores of an AMD EPYC, jax 0.10.2, 2026-11-21 (results/gnn_step.md): the hand
step 346 steps/s (44k graphs/s), compile 0.8 s; Trainer.fit 288 steps/s (0.82x: it packs
freshly shuffled batches on the host every epoch, about 0.4 ms of a 2.9 ms step, which the
hand loop did once beforehand); 1 and 2 traces over 6 epochs of 32 different batches (the
second trainer trace read the metric structure, which the redesigned loop no longer needs).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import common  # benchmarks/common.py, beside this script
import jax
import jax.numpy as jnp
import optax
from cases import random_graphs  # benchmarks/cases.py

import jaxdl
from jaxdl.train import steps as steps_lib


def hand_loop(model, data, batch_size: int, traces: list):
    batches = list(data.batches(batch_size, shuffle=True, seed=0, epoch=0))
    tx = optax.adam(1e-3)
    params = model.init(jax.random.key(0), batches[0]["x"])["params"]
    carry = {"params": params, "opt_state": tx.init(params)}

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, batch):
        traces.append(1)

        def loss_fn(p):
            logits = model.apply({"params": p}, batch["x"])
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
            return jnp.sum(losses * batch["mask"]) / jnp.sum(batch["mask"])

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def run(epochs: int):
        for _ in range(epochs):
            for b in batches:
                carry["params"], carry["opt_state"], loss = step(
                    carry["params"], carry["opt_state"], b
                )
            float(loss)

    start = time.perf_counter()
    carry["params"], carry["opt_state"], loss = step(
        carry["params"], carry["opt_state"], batches[0]
    )
    float(loss)
    first_call = time.perf_counter() - start  # trace + XLA compile + one step
    start = time.perf_counter()
    run(1)
    return run, len(batches), time.perf_counter() - start + first_call, first_call


def trainer_runner(model, data, batch_size: int):
    trainer = jaxdl.Trainer(model, learning_rate=1e-3, metrics=("accuracy",))
    epoch_steps = []

    def run(epochs: int):
        for _ in range(epochs):
            epoch_steps.append(
                data.num_batches(batch_size, shuffle=True, seed=0, epoch=trainer.epoch)
            )
            trainer.fit(data, epochs=1, batch_size=batch_size, verbose=False)
        jax.block_until_ready(trainer.state.params)

    start = time.perf_counter()
    run(1)
    return run, epoch_steps, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer graphs and rounds")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    args = parser.parse_args(argv)
    count = 1024 if args.quick else 4096
    repeats = args.repeats or (3 if args.quick else 5)
    batch_size = 128
    data = random_graphs(count)
    n_node, n_edge, n_graph = data.budgets(batch_size)
    model = jaxdl.models.GCN((64, 64), 2, readout="mean")

    hand_traces: list = []
    trainer_traces: list = []
    real_make = steps_lib.make_train_step

    def counted_make(*a, **kw):
        step = real_make(*a, **kw)

        def traced(state, batch):
            trainer_traces.append(1)
            return step(state, batch)

        return traced

    steps_lib.make_train_step = counted_make
    hand_run, hand_steps, hand_first, first_call = hand_loop(model, data, batch_size, hand_traces)
    trainer_run, trainer_steps, trainer_first = trainer_runner(model, data, batch_size)

    seconds = {"hand_jit_loop": [], "trainer": []}
    steps_done = {"hand_jit_loop": [], "trainer": []}
    for _ in range(repeats):
        seconds["hand_jit_loop"] += common.time_repeats(functools.partial(hand_run, 1), 1)
        steps_done["hand_jit_loop"].append(hand_steps)
        before = len(trainer_steps)
        seconds["trainer"] += common.time_repeats(functools.partial(trainer_run, 1), 1)
        steps_done["trainer"].append(sum(trainer_steps[before:]))
    rates = {k: [n / s for n, s in zip(steps_done[k], seconds[k])] for k in seconds}
    ratio = statistics.median(t / h for t, h in zip(rates["trainer"], rates["hand_jit_loop"]))
    compile_s = first_call - 1 / statistics.median(rates["hand_jit_loop"])
    config = (
        f"GCN 64-64 mean readout, {batch_size} graphs/batch "
        f"(budgets: {n_node} nodes, {n_edge} edges)"
    )
    rows = [
        {
            "config": config,
            "runner": "hand_jit_loop",
            "steps_per_s": statistics.median(rates["hand_jit_loop"]),
            "graphs_per_s": statistics.median(rates["hand_jit_loop"]) * count / hand_steps,
            "ratio_to_hand": 1.0,
            "compile_s": compile_s,
            "first_epoch_s": hand_first,
            "epochs": repeats + 1,
            "traces": len(hand_traces),
        },
        {
            "config": config,
            "runner": "trainer",
            "steps_per_s": statistics.median(rates["trainer"]),
            "graphs_per_s": statistics.median(
                r * count / n for r, n in zip(rates["trainer"], steps_done["trainer"])
            ),
            "ratio_to_hand": ratio,
            "compile_s": float("nan"),
            "first_epoch_s": trainer_first,
            "epochs": repeats + 1,
            "traces": len(trainer_traces),
        },
    ]
    assert len(hand_traces) == 1, f"the hand step was traced {len(hand_traces)} times"
    assert len(trainer_traces) == 1, f"the trainer step was traced {len(trainer_traces)} times"
    for row in rows:
        print(
            f"{row['runner']:14s} {row['steps_per_s']:8.1f} steps/s "
            f"({row['graphs_per_s']:.0f} graphs/s, {row['ratio_to_hand']:.2f}x hand), "
            f"{row['traces']} traces over {row['epochs']} epochs, first epoch "
            f"{row['first_epoch_s']:.2f} s"
        )
    print(f"compile (trace + XLA) of the step: {compile_s:.2f} s")
    columns = ["config", "runner", "steps_per_s", "graphs_per_s", "ratio_to_hand"]
    columns += ["compile_s", "first_epoch_s", "epochs", "traces"]
    print(f"wrote {common.write('gnn_step', rows, columns, args.out)}")


if __name__ == "__main__":
    main()
