"""One ``peers`` shape split into its parts, to see where a step's time goes: the forward
(the loss alone), the forward and backward (the gradient) and the whole step with Adam, for
the hand-written JAX step and for PyTorch (no-grad forward, forward with autograd, forward
and backward, and the fused-Adam step).

Each side runs in a process of its own, one after the other, so that neither library's
warm-up or allocations are in the other's figures; the parts of one side are interleaved
round by round (``harness.interleaved``), so a slow spell of the shared machine hits them
alike.

Command: ``python benchmarks/parts.py lm`` (about a minute; mlp, cnn, lstm or lm). Last run,
2 cores of an AMD EPYC, jax 0.10.2, torch 2.13.0, 2026-11-22, medians in ms:

- mlp: jax forward 1.35, gradient 2.90, step 3.40; torch 1.07, 2.76, 3.23.
- lstm: jax forward 18.6, gradient 54.7, step 55.6; torch 17.8, 51.0, 51.3.
- lm: jax forward 95, gradient 305, step 309; torch 96, 295, 298.

On 2 cores of an Intel Xeon (AVX-512), the same day: lstm jax 29.9, 83.3, 81.3, torch 15.4,
54.3, 52.4; mlp jax 2.30, 4.90, 6.02, torch 1.26, 3.93, 5.29; lm jax 132, 385, 394, torch
130, 394, 381. The two sides run minutes apart there, so the machine's drift is in the
ratio; interleaved round by round in ``peers``, the LM was 0.84x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import common
import harness

SIDES = ("jax", "torch")


def jax_parts(name: str) -> dict:
    """``run(n)`` of the hand step's forward, gradient and step, each warm."""
    import jax
    import optax
    import peers

    step, (params, opt_state), (x, y) = peers.hand_step(name)
    model, _, _ = peers.jax_case(name)
    fixed = jax.tree.map(lambda a: a.copy(), params)

    def loss_fn(p):
        logits = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    forward, gradient = jax.jit(loss_fn), jax.jit(jax.grad(loss_fn))
    carry = [params, opt_state]

    def repeat(fn):
        def run(n):
            for _ in range(n):
                out = fn()
            jax.block_until_ready(out)

        return run

    def one_step():
        carry[0], carry[1] = step(carry[0], carry[1], x, y)
        return carry[0]

    return {
        "forward": repeat(lambda: forward(fixed)),
        "gradient": repeat(lambda: gradient(fixed)),
        "step": repeat(one_step),
    }


def torch_parts(name: str) -> dict:
    import peers
    import torch

    model, x, y = peers.torch_case(name)
    loss_fn = torch.nn.CrossEntropyLoss()
    step, _ = peers.torch_runner(name, "eager_fused")

    def forward(n):
        with torch.no_grad():
            for _ in range(n):
                loss_fn(model(x), y)

    def recorded(n):
        for _ in range(n):
            loss_fn(model(x), y)

    def gradient(n):
        for _ in range(n):
            model.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()

    return {"forward": forward, "forward_autograd": recorded, "gradient": gradient, "step": step}


def measure(name: str, side: str, repeats: int, min_round_s: float) -> dict:
    runs = jax_parts(name) if side == "jax" else torch_parts(name)
    for run in runs.values():
        run(2)
    rates, _ = harness.interleaved(runs, repeats, min_round_s)
    return {part: 1e3 / statistics.median(r) for part, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", choices=("mlp", "cnn", "lstm", "lm"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-round-s", type=float, default=0.5)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.side:
        print(json.dumps(measure(args.shape, args.side, args.repeats, args.min_round_s)))
        return
    print(json.dumps(common.environment()))
    for side in SIDES:
        command = [sys.executable, __file__, args.shape, "--side", side]
        command += ["--repeats", str(args.repeats), "--min-round-s", str(args.min_round_s)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"{side}: failed\n{done.stderr[-2000:]}")
            continue
        parts = json.loads(done.stdout.strip().splitlines()[-1])
        print(side, "  ".join(f"{part} {ms:.2f} ms" for part, ms in parts.items()))


if __name__ == "__main__":
    main()
