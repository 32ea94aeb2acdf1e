"""Run a benchmark suite and write its figures with the machine, versions, date and command.

Command: ``python benchmarks/run.py --suite NAME [--compare torch] [--out DIR]``; suites are
described in ``suites.py`` (zoo, peers, pipeline, end_to_end, tta, quick). Results go to
``DIR/NAME.jsonl`` (one JSON line per figure row, appended) and ``DIR/NAME.md`` (the table of
this run), DIR defaulting to benchmarks/results/. ``--host-devices 8`` simulates 8 CPU
devices, so that the zoo also runs "pmap", "sharded" and "fsdp". ``compare.py OLD NEW``
compares two runs' JSON lines.

Last run on 2 cores of an AMD EPYC (no GPU; jax/jaxlib 0.10.2, flax 0.12.8, optax 0.2.8,
torch 2.13.0 CPU), 2026-11-22, one run per suite (results/NAME.md has every figure):

- zoo: compile 0.9 s (MLP) to 13 s (ResNet-20); medium sizes at 23% (CNN, ResNet-20) to
  69% (VAE) of the measured CPU peak (97 GFLOP/s); e.g. the LM 1.1 steps/s (2277 tokens/s).
- peers (interleaved rounds, a later run): jaxdl against hand-written JAX 0.97x MLP, 1.01x
  CNN, 1.00x LSTM, 0.98x LM; against PyTorch's best 1.02x, 1.53x, 0.90x, 0.95x (eager with
  fused Adam, plain eager for the LSTM). Ratios near 1 move by a few hundredths between
  runs (MLP 0.98x and 1.02x in two others). On 2 cores of an Intel Xeon (AVX-512), whose
  run results/peers.md holds: 0.94x, 1.17x, 0.73x, 0.84x of PyTorch's best, where XLA's
  matrix products reach 0.60-0.77x of PyTorch's (``gemm.py``). See benchmarks/README.md.
- pipeline: 56.0k augmented MNIST-shaped examples/s, 25.8x what the CNN step consumes.
- end_to_end: ``Trainer.fit`` 1.19x (whole epochs compiled: no host loop) and 0.91x (a
  step per call: host batching) the examples/s of its step alone on one fixed batch.
- tta: the digits CNN reaches 0.9806 test accuracy after 5 epochs, 8.2 s; MNIST and
  CIFAR-10 not run (no GPU, no prepared TFDS data here).
- quick: 2 min 45 s to 4 min; ``nox -s bench`` (quick, then the four older scripts) took
  8 min 34 s including its 2.5 min install.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suite", required=True, help="zoo, peers, pipeline, end_to_end, tta, quick"
    )
    parser.add_argument("--compare", choices=["torch"], help="add PyTorch's step beside jaxdl's")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    parser.add_argument("--models", nargs="+", help="zoo models to run (default: all)")
    parser.add_argument("--sizes", nargs="+", choices=["small", "medium"])
    parser.add_argument("--strategies", nargs="+", choices=["single", "pmap", "sharded", "fsdp"])
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "bfloat16", "float16"],
        help="the zoo's compute dtype (parameters stay float32); the peak is this dtype's",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per figure")
    parser.add_argument("--min-round-s", type=float, default=0.5, help="shortest timed round")
    parser.add_argument("--host-devices", type=int, help="simulate this many CPU devices")
    args = parser.parse_args(argv)
    if args.host_devices:  # must be set before JAX starts
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={args.host_devices}"
        )

    import common
    import suites

    if args.suite not in suites.SUITES:
        parser.error(f"--suite: expected one of {', '.join(suites.SUITES)}, got {args.suite!r}")
    options = suites.Options(compare_torch=args.compare == "torch", repeats=args.repeats,
                             min_round_s=args.min_round_s, precision=args.precision)  # fmt: skip
    if args.models:
        unknown = sorted(set(args.models) - set(suites.cases.MODELS))
        if unknown:
            parser.error(f"--models: unknown {unknown}; expected some of {suites.cases.MODELS}")
        options.models = tuple(args.models)
    if args.sizes:
        options.sizes = tuple(args.sizes)
    if args.strategies:
        options.strategies = tuple(args.strategies)
    env = common.environment()
    print(f"suite {args.suite} on {env['cpu']} ({env['cores']} cores), {env['device']} "
          f"x{env['device_count']}, jax {env['jax']}", flush=True)  # fmt: skip
    start = time.perf_counter()
    rows = suites.SUITES[args.suite](options)
    for row in rows:
        row["suite"] = args.suite
    path = common.write(args.suite, rows, suites.COLUMNS[args.suite], args.out or common.RESULTS)
    print(f"wrote {path} and its .jsonl ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
