"""K models at once with ``vmap`` against the same K trained one after another.

K = 8 MLPs on the digits (64 -> hidden -> 10), AdamW, each member with its own learning
rate, weight decay and seed. ``sequential``: 8 ``Trainer`` runs one after another, each
already compiled (warmed up by one epoch) so that only training is timed. ``vmapped``: one
``jaxdl.tuning.Sweep`` of the same 8, also warmed up; its members end where the Trainer
runs do (tests/tuning/test_tuning.py). Rounds alternate the two, ``--repeats`` rounds of
``--epochs`` epochs; the ratio (sequential time / vmapped time, above 1 when vmap is faster)
is the median of the per-round ratios, since the shared machine's speed drifts.

Command: ``python benchmarks/sweep.py`` (about 1 minute; ``--quick``: 15 s).
Last run on 2 cores of an AMD EPYC, jax 0.10.2, 2026-11-22 (results/sweep.md): the vmapped
sweep is 1.68x faster than the 8 compiled runs one after another with 64 hidden units and
1.57x with 256, and compiles once instead of 8 times (5.8 s against 10.9 s for the first
epoch). No GPU was lent, so the GPU figure is not measured.
"""

from __future__ import annotations

import argparse
import statistics
import time

import common  # benchmarks/common.py, beside this script
import jax

import jaxdl


def configs(k: int) -> list[dict]:
    rates = [1e-3, 2e-3, 3e-3, 5e-3]
    decays = [1e-4, 1e-3]
    return [
        {"learning_rate": rates[i % 4], "weight_decay": decays[(i // 4) % 2], "seed": i}
        for i in range(k)
    ]


def measure(hidden: int, data, args) -> dict:
    """Time the K members one after another and vmapped, for one hidden width."""
    model = jaxdl.models.MLP((hidden, 10))
    members = configs(args.members)
    trainers = [
        jaxdl.Trainer(
            model,
            optimizer=jaxdl.Optimizer(
                "adamw", c["learning_rate"], options={"weight_decay": c["weight_decay"]}
            ),
            seed=c["seed"],
        )
        for c in members
    ]
    sweep = jaxdl.tuning.Sweep(model, members, optimizer="adamw")
    start = time.perf_counter()
    for trainer in trainers:
        trainer.fit(data, epochs=1, batch_size=args.batch_size, verbose=False)
    first_sequential = time.perf_counter() - start
    start = time.perf_counter()
    sweep.fit(data, epochs=1, batch_size=args.batch_size)
    first_vmapped = time.perf_counter() - start

    def run_sequential():
        for trainer in trainers:
            trainer.fit(data, epochs=args.epochs, batch_size=args.batch_size, verbose=False)
        jax.block_until_ready(trainers[-1].state.params)

    def run_vmapped():
        sweep.fit(data, epochs=args.epochs, batch_size=args.batch_size)
        jax.block_until_ready(sweep.state.params)

    sequential, vmapped = [], []
    for _ in range(args.repeats):
        sequential += common.time_repeats(run_sequential, 1)
        vmapped += common.time_repeats(run_vmapped, 1)
    steps = args.epochs * -(-len(data) // args.batch_size) * args.members
    return {
        "model": f"MLP 64-{hidden}-10",
        "members": args.members,
        "sequential_s": statistics.median(sequential),
        "vmapped_s": statistics.median(vmapped),
        "member_steps_per_s_sequential": steps / statistics.median(sequential),
        "member_steps_per_s_vmapped": steps / statistics.median(vmapped),
        "speedup": statistics.median(s / v for s, v in zip(sequential, vmapped)),
        "first_epoch_sequential_s": first_sequential,
        "first_epoch_vmapped_s": first_vmapped,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=common.RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats, args.hidden = 2, 2, args.hidden[:1]
    data = jaxdl.data.load("digits", seed=0).train
    rows = []
    for hidden in args.hidden:
        rows.append(measure(hidden, data, args))
        row = rows[-1]
        print(
            f"{row['model']}: {args.members} sequential {row['sequential_s']:.2f} s, "
            f"vmapped {row['vmapped_s']:.2f} s, speedup {row['speedup']:.2f}x (first epoch "
            f"incl. compile: {row['first_epoch_sequential_s']:.1f} s vs "
            f"{row['first_epoch_vmapped_s']:.1f} s)"
        )
    path = common.write("sweep", rows, list(rows[0]), args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
