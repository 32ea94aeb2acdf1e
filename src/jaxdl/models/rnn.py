"""Recurrent networks: simple RNN, LSTM and GRU layers, stacked and bidirectional.

Every layer computes the input projection of all time steps in one matrix product before the
time loop, so the loop (``lax.scan``) carries only the ``h @ W_h`` product of each step; the
gates of a cell share one matrix. The equations, for input projection ``a_t = x_t W_x + b_x``:

- simple: ``h' = tanh(a_t + h W_h)``
- LSTM: ``i, f, g, o = split(a_t + h W_h)``, ``c' = s(f) c + s(i) tanh(g)``,
  ``h' = s(o) tanh(c')`` (s = sigmoid; the forget bias starts at 1)
- GRU (as PyTorch and cuDNN): ``r, z = s(a_r + h W_hr + b_hr), s(a_z + h W_hz + b_hz)``,
  ``n = tanh(a_n + r (h W_hn + b_hn))``, ``h' = (1 - z) n + z h``

Variable lengths: pass ``lengths`` (B,). Steps at or past a sequence's length leave its state
unchanged and output zeros, so padding never changes a result; the backward direction of a
bidirectional layer reverses each sequence within its own length.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl import cpu_kernels as kernels

GATES = {"simple": 1, "lstm": 4, "gru": 3}


def _check_recurrence(model, *counts: str) -> None:
    """The cell, the sizes named in ``counts`` and the dropout rate of a recurrent model."""
    name = type(model).__name__
    if model.cell not in GATES:
        raise ValueError(
            f"{name}.cell: unknown cell {model.cell!r}; expected one of {sorted(GATES)}"
        )
    for field in counts:
        _checks.check_int(getattr(model, field), f"{name}.{field}")
    if hasattr(model, "dropout_rate"):
        _checks.check_rate(model.dropout_rate, f"{name}.dropout_rate")


def _cell_step(cell: str, carry, a_t, w_h, b_h):
    """One step of the simple or GRU cell. carry: h (B, H); a_t: (B, G*H)."""
    if cell == "gru":
        h = carry
        a_r, a_z, a_n = jnp.split(a_t, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ w_h + b_h, 3, axis=-1)
        r = jax.nn.sigmoid(a_r + h_r)
        z = jax.nn.sigmoid(a_z + h_z)
        n = jnp.tanh(a_n + r * h_n)
        h = (1.0 - z) * n + z * h
        return h, h
    h = jnp.tanh(a_t + carry @ w_h)
    return h, h


def reverse_within_lengths(x: jax.Array, lengths: jax.Array | None) -> jax.Array:
    """Reverse (B, T, ...) along time, each sequence within its first ``lengths[b]`` steps."""
    if lengths is None:
        return x[:, ::-1]
    t = jnp.arange(x.shape[1])[None, :]
    index = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return jnp.take_along_axis(x, index.reshape(*index.shape, *([1] * (x.ndim - 2))), axis=1)


def _bias_init(cell: str, hidden: int):
    def init(key, shape, dtype=jnp.float32):
        bias = jnp.zeros(shape, dtype)
        if cell == "lstm":  # forget gate starts open, so gradients flow through long sequences
            bias = bias.at[hidden : 2 * hidden].set(1.0)
        return bias

    return init


class InputProjection(nn.Module):
    """``nn.Dense``'s parameters ("kernel", "bias"), returned apart: ``x @ kernel`` and
    ``bias``, for a recurrence that adds the bias inside its time loop."""

    features: int
    bias_init: nn.initializers.Initializer = nn.initializers.zeros
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array):
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features), self.param_dtype
        )
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
        return kernels.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ()))), bias


class RNNLayer(nn.Module):
    """One recurrent layer: (B, T, F) -> (outputs (B, T, H), final hidden state (B, H))."""

    cell: str = "lstm"
    hidden_size: int = 128
    reverse: bool = False

    def __post_init__(self):
        _check_recurrence(self, "hidden_size")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array | None = None):
        if self.cell not in GATES:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {sorted(GATES)}")
        batch, steps, _ = x.shape
        size = GATES[self.cell] * self.hidden_size
        if self.reverse:  # reverse the (small) inputs, not the (4x wider) projections
            x = reverse_within_lengths(x, lengths)
        # Project time-major, so the time loop reads (T, B, G*H) without transposing it.
        init = _bias_init(self.cell, self.hidden_size)
        if self.cell == "lstm":  # the bias is added in the time loop (see cpu_kernels.lstm)
            a, bias = InputProjection(size, init, name="input")(x.swapaxes(0, 1))
        else:
            a = kernels.Dense(size, bias_init=init, name="input")(x.swapaxes(0, 1))
        # Parameters are float32, as nn.Dense's are; the recurrence runs in the dtype of the
        # projections (bfloat16 only when the parameters are bfloat16 too).
        w_h = self.param(
            "hidden_kernel", nn.initializers.orthogonal(), (self.hidden_size, size), jnp.float32
        ).astype(a.dtype)
        b_h = (
            self.param("hidden_bias", nn.initializers.zeros, (size,), jnp.float32).astype(a.dtype)
            if self.cell == "gru"
            else None
        )
        if lengths is None:
            mask = jnp.ones((steps, batch, 1), a.dtype)
        else:
            mask = (jnp.arange(steps)[:, None] < lengths[None, :])[..., None].astype(a.dtype)
        if self.cell == "lstm":
            outputs, (last, _) = kernels.lstm(a, bias, w_h, mask)
            outputs = outputs.swapaxes(0, 1)
            if self.reverse:
                outputs = reverse_within_lengths(outputs, lengths)
            return outputs, last
        carry0 = jnp.zeros((batch, self.hidden_size), a.dtype)

        def step(carry, inputs):
            a_t, m_t = inputs
            new, h = _cell_step(self.cell, carry, a_t, w_h, b_h)
            carry = jax.tree.map(lambda n, o: m_t * n + (1.0 - m_t) * o, new, carry)
            return carry, h * m_t

        last, outputs = jax.lax.scan(step, carry0, (a, mask))
        outputs = outputs.swapaxes(0, 1)
        if self.reverse:
            outputs = reverse_within_lengths(outputs, lengths)
        return outputs, last


class RNN(nn.Module):
    """Stacked, optionally bidirectional, recurrent layers.

    Input (B, T, F); ``lengths`` (B,) optional. Returns the outputs of the top layer,
    (B, T, H * directions), or with ``return_sequences=False`` its final states (B, H *
    directions): the state after each sequence's last real step (forward) and after its first
    step (backward).
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout_rate: float = 0.0
    return_sequences: bool = True

    def __post_init__(self):
        _check_recurrence(self, "hidden_size", "num_layers")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, lengths=None, train: bool = False):
        last = None
        for layer in range(self.num_layers):
            if layer > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            out, last = RNNLayer(self.cell, self.hidden_size, name=f"layer{layer}")(x, lengths)
            if self.bidirectional:
                back, last_back = RNNLayer(
                    self.cell, self.hidden_size, reverse=True, name=f"layer{layer}_reverse"
                )(x, lengths)
                out = jnp.concatenate([out, back], axis=-1)
                last = jnp.concatenate([last, last_back], axis=-1)
            x = out
        return x if self.return_sequences else last


def _as_sequences(x: jax.Array) -> jax.Array:
    """(B, T, F) passes; (B, H, W, C) images are read row by row as (B, H, W * C)."""
    if x.ndim == 4:
        return x.reshape(x.shape[0], x.shape[1], -1)
    if x.ndim == 2:
        return x[..., None]
    return x


class RNNClassifier(nn.Module):
    """A recurrent network whose final state feeds a dense output layer.

    Input (B, T, F) sequences, (B, T) scalar sequences, or (B, H, W, C) images read row by row;
    ``lengths`` (B,) optional. Output (B, num_classes) (``num_classes=1`` for regression).
    """

    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    num_classes: int = 10
    bidirectional: bool = False
    dropout_rate: float = 0.0

    def __post_init__(self):
        _check_recurrence(self, "hidden_size", "num_layers", "num_classes")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, lengths=None, train: bool = False):
        last = RNN(
            self.cell,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
            self.dropout_rate,
            return_sequences=False,
            name="rnn",
        )(_as_sequences(x), lengths, train)
        last = nn.Dropout(self.dropout_rate, deterministic=not train)(last)
        return nn.Dense(self.num_classes, name="output")(last)


class RNNSequenceModel(nn.Module):
    """Sequence to sequence of the same length: one output per step (next-step prediction).

    Input (B, T) token ids when ``vocab_size`` is set, else (B, T, F) features; output
    (B, T, num_outputs). Only the forward direction is used, so step t sees steps <= t.
    """

    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    num_outputs: int = 10
    vocab_size: int | None = None
    embed_dim: int = 64
    dropout_rate: float = 0.0

    def __post_init__(self):
        _check_recurrence(self, "hidden_size", "num_layers", "num_outputs", "embed_dim")
        if self.vocab_size is not None:
            _checks.check_int(self.vocab_size, "RNNSequenceModel.vocab_size")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, lengths=None, train: bool = False):
        if self.vocab_size is not None:
            if _checks.is_concrete(x):  # traced ids were checked where they entered
                x = jnp.asarray(_checks.check_token_ids(x, self.vocab_size, "x"))
            x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(x)
        x = RNN(
            self.cell, self.hidden_size, self.num_layers, dropout_rate=self.dropout_rate, name="rnn"
        )(_as_sequences(x), lengths, train)
        return kernels.Dense(self.num_outputs, name="output")(x)
