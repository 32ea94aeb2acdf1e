"""The checks that need a GPU, in one short run: correctness first, then speed.

1. Every small model of ``jaxdl.models.ZOO`` (graphs aside) gives on the GPU the outputs it
   gives on the CPU of the same machine (float32 matrix products at full precision, so a
   difference is the code's, not TF32's).
2. The digits MLP and CNN train to the same test accuracy as on the CPU, in both loop modes;
   ``steps_per_call="auto"`` takes the whole-epoch scan on a GPU.
3. A bfloat16 run stays finite, and ``Trainer.export(format="stablehlo")`` reloads and
   matches ``predict`` on the GPU.
4. Steps/s of both loop modes after warm-up, with the first epoch (compilation included)
   apart.

Command (on the machine with the GPU): ``python benchmarks/gpu_check.py --out DIR``;
``benchmarks/gpu_check.sh`` is the whole command for the device tool, installing what the
machine lacks from carried wheels first (see benchmarks/README.md). It exits non-zero when
a check fails, after writing what it measured. ``--allow-cpu`` runs it on a CPU-only machine,
to try the script itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback

import common  # benchmarks/common.py, beside this script
import jax
import numpy as np

import jaxdl
from jaxdl.models import ZOO

TASKS = {"supervised": "cross_entropy", "reconstruction": "mse", "elbo": "elbo", "gan": "gan"}


def same_outputs_as_the_cpu(rows: list) -> None:
    cpu = jax.devices("cpu")[0]
    for spec in ZOO:
        if spec.inputs == "graph" or spec.name in ("resnet18", "resnet50"):
            continue
        model, x = spec.tiny()
        trainer = jaxdl.Trainer(model, loss=TASKS[spec.objective], seed=0)
        trainer.init(x)
        variables = jax.device_get(trainer.state.variables())
        apply = lambda v, x, model=model: model.apply(v, x, rngs={"sample": jax.random.key(0)})
        with jax.default_matmul_precision("highest"):
            on_gpu = jax.device_get(jax.jit(apply)(variables, x))
            with jax.default_device(cpu):
                on_cpu = jax.device_get(jax.jit(apply)(variables, x))
        gap = max(
            float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
            for a, b in zip(jax.tree.leaves(on_gpu), jax.tree.leaves(on_cpu), strict=True)
        )
        rows.append({"check": f"outputs {spec.name}: gpu vs cpu", "value": gap, "ok": gap < 1e-4})


def trains_in_both_modes(rows: list, epochs: int) -> None:
    data = jaxdl.data.load("digits", seed=0)
    models = {
        "mlp": lambda: jaxdl.models.MLP(features=(128, 128, 10)),
        "cnn": lambda: jaxdl.models.CNN(channels=(16, 32), dense=(64,)),
    }
    for name, make in models.items():
        for mode in ("epoch", 1):
            trainer = jaxdl.Trainer(make(), learning_rate=1e-3, seed=0, steps_per_call=mode)
            start = time.perf_counter()
            trainer.fit(data.train, epochs=1, batch_size=64, verbose=False)
            jax.block_until_ready(trainer.state.params)
            first = time.perf_counter() - start
            start = time.perf_counter()
            trainer.fit(data.train, epochs=epochs - 1, batch_size=64, verbose=False)
            jax.block_until_ready(trainer.state.params)
            steps = (epochs - 1) * -(-len(data.train.x) // 64)
            rate = steps / (time.perf_counter() - start)
            accuracy = trainer.evaluate(data.test)["accuracy"]
            label = f"{name} steps_per_call={mode!r}"
            rows.append({"check": f"{label}: first epoch s", "value": first, "ok": True})
            rows.append({"check": f"{label}: steps/s after it", "value": rate, "ok": True})
            rows.append(
                {"check": f"{label}: test accuracy", "value": accuracy, "ok": accuracy > 0.9}
            )
        auto = jaxdl.Trainer(make(), seed=0)
        auto.fit(data.train, epochs=1, batch_size=64, verbose=False)
        rows.append(
            {
                "check": f"{name}: auto chose",
                "value": repr(auto.mode_chosen),
                "ok": auto.mode_chosen == "epoch",
            }
        )


def bfloat16_and_export(rows: list) -> None:
    data = jaxdl.data.load("digits", seed=0)
    trainer = jaxdl.Trainer(jaxdl.models.MLP(features=(64, 10)), precision="bfloat16", seed=0)
    history = trainer.fit(data.train, epochs=3, batch_size=64, verbose=False)
    finite = bool(np.all(np.isfinite(history["loss"])))
    rows.append({"check": "bfloat16 loss finite", "value": history["loss"][-1], "ok": finite})
    with tempfile.TemporaryDirectory() as folder:
        trainer.export(folder, format="stablehlo")
        got = np.asarray(jaxdl.load_exported(folder).call(data.test.x))
    gap = float(np.max(np.abs(got - trainer.predict(data.test.x))))
    rows.append({"check": "stablehlo export vs predict", "value": gap, "ok": gap < 1e-5})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each digits run")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU too")
    args = parser.parse_args(argv)
    backend = jax.default_backend()
    print(f"backend {backend}: {jax.devices()}")
    if backend == "cpu" and not args.allow_cpu:
        print("no GPU here: nothing to check (--allow-cpu runs the script anyway)")
        return 2
    rows = []
    for check in (same_outputs_as_the_cpu, trains_in_both_modes, bfloat16_and_export):
        try:
            check(rows) if check is not trains_in_both_modes else check(rows, args.epochs)
        except Exception:  # one broken check must not hide the others' numbers
            rows.append({"check": check.__name__, "value": traceback.format_exc(), "ok": False})
    for row in rows:
        value = row["value"]
        shown = f"{value:.4g}" if isinstance(value, float) else str(value).splitlines()[-1]
        print(f"{'ok ' if row['ok'] else 'BAD'}  {row['check']}: {shown}")
    print(f"wrote {common.write('gpu_check', rows, ['check', 'value', 'ok'], args.out)}")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
