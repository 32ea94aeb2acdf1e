"""Keras 3 on its JAX backend as a peer of jaxdl's step: the four shapes of ``peers.py`` and
the digits MLP and CNN of ``peers.DIGITS``, built from Keras layers.

Keras picks its backend once, when it is first imported: ``import_keras`` sets
``KERAS_BACKEND=jax`` in this process just before that import (never on importing this
module), and refuses a Keras already imported on another backend. Models are channels-last
with VALID convolutions, Adam with Optax's epsilon, and integer labels.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import numpy as np


def import_keras():
    """Keras 3 on the JAX backend; ``ImportError`` when Keras is not installed.

    Returns:
        The ``keras`` module.
    """
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "jax"
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"keras: expected the JAX backend, got {keras.backend.backend()!r} (keras was "
            "imported before KERAS_BACKEND=jax could be set)"
        )
    return keras


def _lm(keras, layers: int = 4, d: int = 256, heads: int = 4, mlp: int = 1024, n: int = 128):
    """The pre-norm causal Transformer LM of ``peers.SHAPES`` (vocabulary 1000)."""
    L = keras.layers
    tokens = keras.Input((n,), dtype="int32")
    h = L.Embedding(1000, d)(tokens)

    class AddPositions(L.Layer):
        def build(self, shape):
            self.table = self.add_weight((n, d), initializer="random_normal")

        def call(self, h):
            return h + self.table[None, : h.shape[1]]

    h = AddPositions()(h)
    for _ in range(layers):
        a = L.LayerNormalization(epsilon=1e-5)(h)
        h = h + L.MultiHeadAttention(heads, d // heads)(a, a, use_causal_mask=True)
        a = L.LayerNormalization(epsilon=1e-5)(h)
        h = h + L.Dense(d)(L.Dense(mlp, activation="gelu")(a))
    logits = L.Dense(1000)(L.LayerNormalization(epsilon=1e-5)(h))
    return keras.Model(tokens, logits)


def model(name: str):
    """A Keras model of one of ``peers.SHAPES`` or ``peers.DIGITS`` (``"digits_mlp"``,
    ``"digits_cnn"``), compiled with Adam (1e-3) and sparse cross-entropy on logits.

    Args:
        name: "mlp", "cnn", "lstm", "lm", "digits_mlp" or "digits_cnn".

    Returns:
        A compiled ``keras.Model``.
    """
    keras = import_keras()
    L = keras.layers
    keras.utils.set_random_seed(0)
    if name == "mlp":
        net = keras.Sequential([keras.Input((784,)), L.Dense(512, activation="relu"),
                                L.Dense(512, activation="relu"), L.Dense(10)])  # fmt: skip
    elif name in ("cnn", "digits_cnn"):
        shape, dense, pad = (
            ((28, 28, 1), 256, "valid") if name == "cnn" else ((8, 8, 1), 128, "same")
        )
        net = keras.Sequential([
            keras.Input(shape), L.Conv2D(32, 3, padding=pad, activation="relu"), L.MaxPooling2D(2),
            L.Conv2D(64, 3, padding=pad, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
            L.Dense(dense, activation="relu"), L.Dense(10),
        ])  # fmt: skip
    elif name == "lstm":
        net = keras.Sequential([keras.Input((64, 32)), L.LSTM(256), L.Dense(10)])
    elif name == "lm":
        net = _lm(keras)
    elif name == "digits_mlp":
        net = keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(),
                                L.Dense(256, activation="relu"), L.Dense(256, activation="relu"),
                                L.Dense(10)])  # fmt: skip
    else:
        raise ValueError(f"name: expected a peers shape or digits_mlp/digits_cnn, got {name!r}")
    net.compile(
        optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"] if name.startswith("digits") else None,
    )
    return net


def runner(name: str, x: np.ndarray, y: np.ndarray) -> tuple[Callable[[int], None], float]:
    """``(run, warmup_s)``: ``run(n)`` takes ``n`` ``train_on_batch`` steps of ``name`` on the
    fixed batch ``(x, y)``; three warm-up steps (the first compiles) are timed first.

    Args:
        name: one of ``peers.SHAPES``.
        x: the batch's inputs, channels-last (e.g. ``(128, 28, 28, 1)`` for the CNN).
        y: integer labels, ``(batch,)`` (``(16 * 128,)`` for the LM).

    Returns:
        ``run`` and the warm-up seconds.
    """
    net = model(name)
    # train_on_batch returns the loss as a NumPy value: every step ends synchronised, as a
    # Keras user's per-batch loop does.
    start = time.perf_counter()
    for _ in range(3):
        net.train_on_batch(x, y)
    warmup_s = time.perf_counter() - start

    def run(n: int) -> None:
        for _ in range(n):
            net.train_on_batch(x, y)

    return run, warmup_s


class DigitsTrainer:
    """A Keras model of ``peers.DIGITS`` trained an epoch per call with ``model.fit``.

    Args:
        name: "digits_mlp" or "digits_cnn".
        batch_size: examples per step.

    Attributes:
        net: the compiled ``keras.Model``.
    """

    def __init__(self, name: str, batch_size: int):
        self.net, self.batch_size = model(name), batch_size

    def epoch(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        """One epoch over ``(x, y)`` (``(n, 8, 8, 1)``, ``(n,)``) in the order ``seed``
        gives, the last partial batch included."""
        order = np.random.default_rng(seed).permutation(len(x))
        self.net.fit(x[order], y[order], batch_size=self.batch_size, epochs=1, shuffle=False,
                     verbose=0)  # fmt: skip

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Test accuracy on ``(x, y)``."""
        logits = self.net.predict(x, batch_size=512, verbose=0)
        return float(np.mean(np.argmax(logits, -1) == y))
