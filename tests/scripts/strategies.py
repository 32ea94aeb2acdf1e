"""Train three models with every strategy on simulated CPU devices; print JSON.

Run by tests/test_parallel.py in a process of its own, since the device count is fixed
when JAX starts:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/scripts/strategies.py [PARTS]

PARTS is a comma-separated subset of mlp,cnn_batch_norm,transformer_dropout,fit,zoo,errors
(default: all).

For each model (an MLP, a CNN with batch norm, a Transformer classifier with dropout) and
each strategy it records the loss of each of 20 steps on the same global batches (32 rows:
4 per device), and the largest parameter difference from the single-device run after them;
then a Trainer fit of the CNN (an epoch per compiled call, one step per call, and from a
streaming Pipeline) per strategy, with augmentation and accumulation of 2 batches per
update.
"""

import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import metrics as jaxdl_metrics
from jaxdl.data import Pipeline, augment
from jaxdl.models import CNN, MLP, TransformerClassifier
from jaxdl.optimizer import Optimizer
from jaxdl.train import Trainer, create_train_state, parallel, steps
from jaxdl.train.tasks import Supervised

STEPS, BATCH = 20, 32


def data(kind: str, rng: np.random.Generator):
    n = STEPS * BATCH
    if kind == "tokens":
        x = rng.integers(1, 20, size=(n, 12)).astype(np.int32)
        y = (x[:, 0] > 10).astype(np.int32)
    else:
        x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
        y = (x.sum(axis=(1, 2, 3)) > 0).astype(np.int32)
    return x, y


MODELS = {
    "mlp": (lambda: MLP(features=(64, 64, 2)), "image"),
    "cnn_batch_norm": (
        lambda: CNN(channels=(8, 16), dense=(32,), num_classes=2, batch_norm=True),
        "image",
    ),
    "transformer_dropout": (
        lambda: TransformerClassifier(
            vocab_size=20,
            num_layers=1,
            d_model=16,
            num_heads=2,
            mlp_dim=32,
            max_len=12,
            num_classes=2,
            dropout_rate=0.1,
        ),
        "tokens",
    ),
}


def steps_run(model, x, y, strategy):
    state = create_train_state(model, optax.adam(1e-2), x[:1], seed=0)
    state = strategy.place_state(state)
    step = strategy.compile_step(steps.make_train_step(axis_name=strategy.axis_name))
    losses = []
    for s in range(STEPS):
        batch = {
            "x": x[s * BATCH : (s + 1) * BATCH],
            "y": y[s * BATCH : (s + 1) * BATCH],
            "mask": np.ones(BATCH, np.float32),
        }
        acc = jaxdl_metrics.empty_states((), None)
        state, acc, _ = step(state, acc, jnp.asarray(-1, jnp.int32), batch)
        loss = jax.device_get(acc["loss"])
        losses.append(float(loss.total / loss.count))
    return losses, jax.device_get(state.params)


ZOO_TASKS = {"supervised": "cross_entropy", "reconstruction": "mse", "elbo": "elbo", "gan": "gan"}


def zoo_outputs(strategies=("sharded",)) -> dict:
    """For each model of the ZOO (not the ImageNet ResNets; graphs run on one device): the
    largest difference of its outputs on 8 rows under each multi-device strategy from those
    of the plain ``model.apply`` on one device, with the same variables."""
    from jaxdl.models import ZOO

    found = {}
    for spec in ZOO:
        if spec.inputs == "graph" or spec.name in ("resnet18", "resnet50"):
            continue
        module, x = spec.tiny()
        x8 = np.concatenate([x] * -(-8 // len(x)))[:8]
        found[spec.name] = {}
        for name in strategies:
            if name == "pmap" and spec.objective != "supervised":
                continue  # the unlabelled tasks refuse pmap
            trainer = Trainer(module, loss=ZOO_TASKS[spec.objective], strategy=name, seed=0)
            trainer.init(x8[:1])
            variables = jax.device_get(trainer.state.variables())
            mode = {"train": False} if trainer.state.mode_argument == "train" else {}
            expected = jax.tree.leaves(
                jax.jit(functools.partial(module.apply, **mode))(variables, x8)
            )
            got = jax.tree.leaves(trainer.predict(x8, batch_size=8))
            found[spec.name][name] = max(
                float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(got, expected)
            )
    return found


def main(parts):
    rng = np.random.default_rng(0)
    out = {"devices": jax.device_count(), "steps": {}, "fit": {}}
    names = ["single", "pmap", "sharded", "fsdp"]
    for model_name, (make, kind) in MODELS.items():
        x, y = data(kind, rng)
        if model_name not in parts:
            continue
        runs = {name: steps_run(make(), x, y, parallel.get_strategy(name)) for name in names}
        base = runs["single"][1]
        out["steps"][model_name] = {
            name: {
                "losses": losses,
                "param_diff": {
                    jax.tree_util.keystr(path): float(np.max(np.abs(a - b)))
                    for (path, a), b in zip(
                        jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(base)
                    )
                },
            }
            for name, (losses, params) in runs.items()
        }
    x, y = data("image", rng)
    for name in names if "fit" in parts else ():
        for per_call in ("epoch", 1, "stream"):
            streamed = per_call == "stream"  # a Pipeline: batches placed by the strategy
            trainer = Trainer(
                MODELS["cnn_batch_norm"][0](),
                strategy=name,
                steps_per_call=1 if streamed else per_call,
                loss=Supervised(
                    augment=augment.compose(augment.random_flip(), augment.gaussian_noise(0.1))
                ),
                optimizer=Optimizer("adam", accumulate_steps=2),
                seed=1,
            )
            train, test = (x[:200], y[:200]), (x[200:300], y[200:300])
            if streamed:
                train, test = Pipeline(train), Pipeline(test)
            history = trainer.fit(train, epochs=2, batch_size=BATCH, verbose=False)
            evaluation = trainer.evaluate(test, batch_size=50)
            predictions = trainer.predict(x[300:337], batch_size=20)
            out["fit"][f"{name}/{per_call}"] = {
                "history": history,
                "evaluate": evaluation,
                "predictions": np.asarray(predictions).tolist(),
                "params": [
                    np.asarray(p).ravel()[:50].tolist()
                    for p in jax.tree.leaves(trainer.state.params)
                ],
            }
    if "zoo" in parts:
        out["zoo"] = zoo_outputs(("sharded", "pmap") if "pmap" in parts else ("sharded",))
    if "errors" in parts:
        out["errors"] = {}
        for name in ("pmap", "sharded"):
            try:
                Trainer(MLP(features=(4, 2)), strategy=name).fit(
                    (x[:60], y[:60]), batch_size=30, verbose=False
                )
            except ValueError as error:
                out["errors"][name] = str(error)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else [*MODELS, "fit", "zoo", "errors"])
