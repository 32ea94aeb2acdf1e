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

``RNNClassifier`` reads its sequence of outputs in one of ``READOUTS`` ("last", "mean", "max",
"flatten", "attention"), each of which ignores the steps past a sequence's length.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl import cpu_kernels as kernels

GATES = {"simple": 1, "lstm": 4, "gru": 3}
READOUTS = ("last", "mean", "max", "flatten", "attention")


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


def _check_lengths(lengths, batch: int, owner: str) -> None:
    """``lengths`` is None or (B,): its shape is static, so this holds under ``jit`` too."""
    if lengths is not None and jnp.shape(lengths) != (batch,):
        raise ValueError(
            f"{owner}: lengths: expected shape ({batch},), one length per sequence, "
            f"got shape {jnp.shape(lengths)}"
        )


class RNN(nn.Module):
    """Stacked, optionally bidirectional, recurrent layers.

    Input (B, T, F), or (B, T) scalar sequences, read as (B, T, 1) (as ``RNNClassifier``
    reads them); ``lengths`` (B,) optional. Returns the outputs of the top layer,
    (B, T, H * directions), zero at the steps past each sequence's length, or with
    ``return_sequences=False`` its final states (B, H * directions): the state after each
    sequence's last real step (forward) and after its first step (backward).

    Attributes:
      cell: "simple", "lstm" or "gru" (default "lstm").
      hidden_size: H, the state width of each direction (default 128).
      num_layers: stacked layers (default 1).
      bidirectional: a backward layer beside each forward one, outputs concatenated
        (default False).
      dropout_rate: dropout between stacked layers, active only when ``train=True`` (default 0).
      return_sequences: the top layer's outputs (True, default) or its final states.
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
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3:
            raise ValueError(
                f"RNN: x: expected shape (B, T, F) or (B, T), got shape {tuple(x.shape)}"
            )
        _check_lengths(lengths, x.shape[0], "RNN")
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
    """(B, T, F) passes; (B, T) scalar steps become (B, T, 1); (B, H, W, C) images are read
    row by row as (B, H, W * C)."""
    if x.ndim == 4:
        return x.reshape(x.shape[0], x.shape[1], -1)
    if x.ndim == 2:
        return x[..., None]
    return x


class RNNClassifier(nn.Module):
    """A recurrent network whose outputs, read out as one vector, feed a dense output layer.

    Input (B, T, F) sequences, (B, T) scalar sequences, or (B, H, W, C) images read row by row
    (T = H); ``lengths`` (B,) optional. Output (B, num_classes) (``num_classes=1`` for
    regression).

    ``readout`` says how the top layer's outputs ``h`` (B, T, D), D = hidden_size * directions,
    become the (B, D') vector the output layer reads; only the steps before each sequence's
    length count, so steps past it never change the result:

    - "last" (default): the final states (``RNN(return_sequences=False)``): the forward state
      after the last real step, the backward state after the first step.
    - "mean": the mean of ``h`` over the real steps.
    - "max": the element-wise maximum of ``h`` over the real steps.
    - "flatten": ``h`` as (B, T * D), steps past the length set to zero (they add nothing to
      the output layer). The output layer's width depends on T, so T is fixed by the input
      given at ``init``; an input of another T is refused (pad or crop to that T).
    - "attention": a learned score per step, ``s_t = h_t . q`` (``q`` (D,), the parameter
      "attention/kernel" (D, 1)), softmax over the real steps, and the weighted sum
      ``sum_t softmax(s)_t h_t``.

    A sequence of length 0 reads as zeros in every readout (for "last", its initial state).

    Attributes:
      cell: "simple", "lstm" or "gru" (default "lstm").
      hidden_size: H, the state width of each direction (default 256).
      num_layers: stacked recurrent layers (default 1).
      num_classes: outputs (default 10).
      bidirectional: a backward layer beside each forward one (default False).
      dropout_rate: dropout between stacked layers and before the output layer, active only
        when ``train=True`` (default 0).
      readout: one of ``READOUTS`` (default "last").

    Example:
      >>> rnn = jaxdl.models.RNNClassifier("gru", hidden_size=8, num_classes=3, readout="mean")
      >>> x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype(np.float32)  # (B, T, F)
      >>> lengths = np.array([5, 3])  # the second sequence has 3 real steps
      >>> variables = rnn.init(jax.random.key(0), x, lengths)
      >>> rnn.apply(variables, x, lengths).shape
      (2, 3)
      >>> padded = x.copy()
      >>> padded[1, 3:] = 99.0  # what lies past a length changes nothing
      >>> np.allclose(rnn.apply(variables, padded, lengths), rnn.apply(variables, x, lengths))
      True
    """

    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    num_classes: int = 10
    bidirectional: bool = False
    dropout_rate: float = 0.0
    readout: str = "last"

    def __post_init__(self):
        _check_recurrence(self, "hidden_size", "num_layers", "num_classes")
        if self.readout not in READOUTS:
            raise ValueError(
                f"RNNClassifier.readout: expected one of {READOUTS}, got {self.readout!r}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, x, lengths=None, train: bool = False):
        x = _as_sequences(x)
        if x.ndim != 3:
            raise ValueError(
                "RNNClassifier: x: expected shape (B, T, F), (B, T) or (B, H, W, C), "
                f"got shape {tuple(x.shape)}"
            )
        rnn = RNN(
            self.cell,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
            self.dropout_rate,
            return_sequences=self.readout != "last",
            name="rnn",
        )
        if self.readout == "last":
            features = rnn(x, lengths, train)
        else:
            features = self._read(rnn(x, lengths, train), lengths)
        features = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
        return nn.Dense(self.num_classes, name="output")(features)

    def _read(self, h: jax.Array, lengths: jax.Array | None) -> jax.Array:
        """(B, T, D) outputs -> (B, D) (or (B, T * D) for "flatten"), real steps only."""
        batch, steps, width = h.shape
        if lengths is None:
            valid = jnp.ones((batch, steps), bool)
        else:
            valid = jnp.arange(steps)[None, :] < jnp.asarray(lengths)[:, None]
        # The recurrence already outputs zeros past each length; masking here too keeps every
        # readout independent of what the layers put there.
        h = jnp.where(valid[..., None], h, jnp.zeros((), h.dtype))
        if self.readout == "mean":
            count = jnp.maximum(valid.sum(axis=1, keepdims=True), 1).astype(h.dtype)
            return h.sum(axis=1) / count
        if self.readout == "max":
            top = jnp.where(valid[..., None], h, -jnp.inf).max(axis=1)
            return jnp.where(valid.any(axis=1, keepdims=True), top, jnp.zeros((), h.dtype))
        if self.readout == "flatten":
            params = self.variables.get("params", {})
            if "output" in params:  # applying: the output layer was built for init's T
                expected = params["output"]["kernel"].shape[0]
                if expected != steps * width:
                    raise ValueError(
                        "RNNClassifier(readout='flatten'): x: the output layer was initialised "
                        f"for {expected // width} time steps, got {steps}; pad or crop the "
                        f"sequences to {expected // width} steps (lengths mark the real ones)"
                    )
            return h.reshape(batch, steps * width)
        # "attention": padded steps get -inf scores, so exp gives them weight 0 (and gradient
        # 0, where a masked finite score could overflow exp and poison the gradient with nan).
        score = nn.Dense(1, use_bias=False, name="attention")(h)[..., 0]
        score = jnp.where(valid, score, -jnp.inf)
        top = jax.lax.stop_gradient(score.max(axis=1, keepdims=True))
        top = jnp.where(jnp.isfinite(top), top, jnp.zeros((), top.dtype))
        weight = jnp.exp(score - top)
        total = weight.sum(axis=1, keepdims=True)
        weight = weight / jnp.where(total > 0, total, jnp.ones((), total.dtype))
        return jnp.einsum("bt,btd->bd", weight.astype(h.dtype), h)


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
