"""Layers against NumPy references written here: naive loops and the textbook equations."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import cpu_kernels as kernels
from jaxdl import models
from jaxdl.models.layers import pool
from jaxdl.models.rnn import RNNLayer


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# --------------------------------------------------------------------------- convolution


def naive_pool(x, w, kind):
    b, h, wd, c = x.shape
    out = np.zeros((b, h // w, wd // w, c), x.dtype)
    for i in range(h // w):
        for j in range(wd // w):
            window = x[:, i * w : (i + 1) * w, j * w : (j + 1) * w, :]
            out[:, i, j] = window.max(axis=(1, 2)) if kind == "max" else window.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("cpu_kernels", [True, False])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size", [8, 13])
def test_pool_matches_naive_loops(kind, size, cpu_kernels, rng):
    x = rng.normal(size=(2, size, size, 3)).astype(np.float32)
    with kernels.use_cpu_kernels(cpu_kernels):
        np.testing.assert_allclose(pool(x, 2, kind), naive_pool(x, 2, kind), rtol=1e-6)


def naive_conv(x, kernel, bias, padding):
    kh, kw, cin, cout = kernel.shape
    if padding == "SAME":
        x = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    b, h, w, _ = x.shape
    out = np.zeros((b, h - kh + 1, w - kw + 1, cout), np.float64)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = x[:, i : i + kh, j : j + kw, :]
            for o in range(cout):
                out[:, i, j, o] = (patch * kernel[..., o]).sum(axis=(1, 2, 3)) + bias[o]
    return out


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_cnn_convolution_matches_naive_loops(padding, rng):
    model = models.CNN(channels=(4,), dense=(), num_classes=2, padding=padding)
    x = rng.normal(size=(2, 7, 7, 3)).astype(np.float32)
    variables = model.init(jax.random.key(0), x)
    conv = variables["params"]["conv_0"]
    got = nn.Conv(4, (3, 3), padding=padding).apply({"params": conv}, x)
    expected = naive_conv(x, np.asarray(conv["kernel"]), np.asarray(conv["bias"]), padding)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # and the whole network: conv -> relu -> pool -> dense, by hand
    pooled = naive_pool(np.maximum(expected, 0), 2, "max").reshape(2, -1)
    out = variables["params"]["output"]
    np.testing.assert_allclose(
        model.apply(variables, x),
        pooled @ np.asarray(out["kernel"]) + np.asarray(out["bias"]),
        rtol=1e-4,
        atol=1e-5,
    )


# --------------------------------------------------------------------------- recurrences


def run_layer(cell, x, lengths=None, reverse=False, hidden=4):
    layer = RNNLayer(cell, hidden, reverse=reverse)
    variables = layer.init(jax.random.key(0), x, lengths)
    p = jax.tree.map(np.asarray, variables["params"])
    return layer.apply(variables, x, lengths), p


def numpy_recurrence(cell, x, p, hidden=4):
    wx, bx, wh = p["input"]["kernel"], p["input"]["bias"], p["hidden_kernel"]
    bh = p.get("hidden_bias", np.zeros(wh.shape[1]))
    h = np.zeros((x.shape[0], hidden))
    c = np.zeros_like(h)
    outputs = []
    for t in range(x.shape[1]):
        a = x[:, t] @ wx + bx
        if cell == "lstm":
            z = a + h @ wh
            i, f, g, o = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        elif cell == "gru":
            hh = h @ wh + bh
            split = lambda v, k: v[:, k * hidden : (k + 1) * hidden]
            r = sigmoid(split(a, 0) + split(hh, 0))
            z = sigmoid(split(a, 1) + split(hh, 1))
            n = np.tanh(split(a, 2) + r * split(hh, 2))
            h = (1 - z) * n + z * h
        else:
            h = np.tanh(a + h @ wh)
        outputs.append(h)
    return np.stack(outputs, axis=1), h


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_recurrent_layers_follow_their_equations(cell, rng):
    x = rng.normal(size=(3, 5, 2)).astype(np.float32)
    (outputs, last), p = run_layer(cell, x)
    expected_outputs, expected_last = numpy_recurrence(cell, x.astype(np.float64), p)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last, expected_last, rtol=1e-5, atol=1e-6)


def test_lstm_forget_bias_starts_at_one():
    _, p = run_layer("lstm", np.zeros((1, 2, 3), np.float32))
    np.testing.assert_array_equal(p["input"]["bias"], np.r_[np.zeros(4), np.ones(4), np.zeros(8)])


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_recurrent_layers_initialise_from_bfloat16_inputs(cell, rng):
    # float32 parameters, as nn.Dense makes; the float32 result equals the float32 input's
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)
    layer = RNNLayer(cell, 4)
    variables = layer.init(jax.random.key(0), jnp.asarray(x, jnp.bfloat16))
    assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    x16 = np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))
    outputs, _ = layer.apply(variables, jnp.asarray(x16, jnp.bfloat16))
    expected, _ = layer.apply(variables, x16)
    assert outputs.dtype == jnp.float32
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padded_steps_never_change_the_result(cell, rng):
    x = rng.normal(size=(3, 6, 2)).astype(np.float32)
    lengths = np.array([6, 3, 1])
    model = models.RNN(cell, 4, num_layers=2, bidirectional=True, return_sequences=False)
    variables = model.init(jax.random.key(0), x, lengths)
    last = model.apply(variables, x, lengths)
    garbage = x.copy()
    for b, n in enumerate(lengths):
        garbage[b, n:] = 1e3  # whatever sits in the padding
    np.testing.assert_allclose(model.apply(variables, garbage, lengths), last, rtol=1e-6)
    for b, n in enumerate(lengths):  # each sequence alone, cut to its length
        alone = model.apply(variables, x[b : b + 1, :n])
        np.testing.assert_allclose(alone[0], last[b], rtol=1e-5, atol=1e-6)


def test_backward_direction_is_the_reversed_sequence(rng):
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    (outputs, last), p = run_layer("gru", x, reverse=True)
    expected, expected_last = numpy_recurrence("gru", x[:, ::-1].astype(np.float64), p)
    np.testing.assert_allclose(outputs, expected[:, ::-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last, expected_last, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- attention


def numpy_attention(x, p, heads, mask):
    w, b = p["qkv"]["kernel"], p["qkv"]["bias"]  # (D, 3, H, Dh), (3, H, Dh)
    qkv = np.einsum("btd,dshk->btshk", x, w) + b
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    logits = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
    logits = np.where(mask, logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = np.einsum("bhqs,bshk->bqhk", weights, v)
    return np.einsum("bqhk,hkd->bqd", out, p["out"]["kernel"]) + p["out"]["bias"], weights


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_softmax_formula_with_masks(causal, rng):
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    valid = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    mask = valid[:, None, None, :]
    layer = models.MultiHeadAttention(num_heads=2, causal=causal)
    variables = layer.init(jax.random.key(0), x, mask)
    got = layer.apply(variables, x, mask)
    full = mask & (np.tril(np.ones((5, 5), bool)) if causal else True)
    expected, weights = numpy_attention(
        x.astype(np.float64), jax.tree.map(np.asarray, variables["params"]), 2, full
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)
    assert (weights[1, :, :, 3:] == 0).all()  # padding receives no attention


def test_causal_attention_of_64_positions_matches_softmax_formula(rng):
    # 64 causal positions with no mask: on CPU ``attention`` takes the two-halves path
    x = rng.normal(size=(2, 64, 8)).astype(np.float32)
    layer = models.MultiHeadAttention(num_heads=2, causal=True)
    variables = layer.init(jax.random.key(0), x)
    expected, _ = numpy_attention(
        x.astype(np.float64),
        jax.tree.map(np.asarray, variables["params"]),
        2,
        np.tril(np.ones((64, 64), bool)),
    )
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-4, atol=1e-5)


def test_classifier_ignores_padding_tokens(rng):
    model = models.TransformerClassifier(12, 1, 8, 2, 16, max_len=6, num_classes=3, pad_id=0)
    tokens = np.array([[3, 4, 5, 0, 0, 0]], np.int32)
    variables = model.init(jax.random.key(0), tokens)
    a = model.apply(variables, tokens)
    b = model.apply(variables, np.array([[3, 4, 5]], np.int32))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sinusoidal_positions_formula():
    from jaxdl.models.transformer import sinusoidal_positions

    table = sinusoidal_positions(10, 6)
    pos = 7  # feature 4 = 2i (i = 2) is sin(pos / 10000^(4/6)), feature 5 its cosine
    assert table[pos, 4] == pytest.approx(np.sin(pos / 10000 ** (4 / 6)), rel=1e-5)
    assert table[pos, 5] == pytest.approx(np.cos(pos / 10000 ** (4 / 6)), rel=1e-5)


# --------------------------------------------------------------------------- generation


# the learned-positions twin compiles for 18 s on 2 cores: slow session
@pytest.mark.parametrize(
    "positions", [pytest.param("learned", marks=pytest.mark.slow), "sinusoidal"]
)
def test_cached_generation_equals_full_recomputation(positions, rng):
    lm = models.TransformerLM(13, 2, 16, 2, 32, max_len=16, positions=positions)
    prompt = rng.integers(0, 13, size=(2, 4)).astype(np.int32)
    params = lm.init(jax.random.key(0), prompt)["params"]
    params = jax.tree.map(lambda p: p * 3.0, params)  # sharper distributions: fewer near-ties
    cached = np.asarray(lm.generate(params, prompt, 10, temperature=0.0))
    # No cache: the whole sequence again for every new token. The model is causal, so the
    # logits at position t of a zero-padded sequence are those of its first t + 1 tokens,
    # and one fixed length compiles once instead of once per length.
    tokens = np.zeros((2, 4 + 10), np.int32)
    tokens[:, :4] = prompt
    forward = jax.jit(lm.apply)
    for t in range(4, 14):
        logits = forward({"params": params}, tokens)
        tokens[:, t] = np.asarray(logits[:, t - 1].argmax(-1))
    np.testing.assert_array_equal(cached, tokens)


@pytest.mark.slow  # 18 s of compiles; the cached generation test checks the same cache
def test_decode_logits_equal_full_forward(rng):
    lm = models.TransformerLM(13, 2, 16, 2, 32, max_len=12)
    tokens = rng.integers(0, 13, size=(2, 9)).astype(np.int32)
    params = lm.init(jax.random.key(0), tokens)["params"]
    full = lm.apply({"params": params}, tokens)
    decoder = lm.clone(decode=True)
    cache = decoder.init(jax.random.key(0), tokens[:, :1])["cache"]
    cache = jax.tree.map(jnp.zeros_like, cache)
    pieces = []
    for chunk in (tokens[:, :5], tokens[:, 5:6], tokens[:, 6:9]):  # a prefill, then steps
        logits, state = decoder.apply({"params": params, "cache": cache}, chunk, mutable=["cache"])
        cache = state["cache"]
        pieces.append(logits)
    np.testing.assert_allclose(np.concatenate(pieces, 1), full, rtol=1e-4, atol=1e-5)


def test_sampling_respects_top_k_and_is_seeded(rng):
    lm = models.TransformerLM(13, 1, 16, 2, 32, max_len=20)
    prompt = rng.integers(0, 13, size=(3, 2)).astype(np.int32)
    params = lm.init(jax.random.key(0), prompt)["params"]
    a = lm.generate(params, prompt, 8, rng=jax.random.key(5), temperature=1.0, top_k=1)
    greedy = lm.generate(params, prompt, 8, temperature=0.0)
    np.testing.assert_array_equal(a, greedy)  # top-1 sampling is greedy
    s1 = lm.generate(params, prompt, 8, rng=jax.random.key(1), temperature=1.5)
    s2 = lm.generate(params, prompt, 8, rng=jax.random.key(1), temperature=1.5)
    np.testing.assert_array_equal(s1, s2)
    with pytest.raises(ValueError, match="exceeds max_len=20"):
        lm.generate(params, prompt, 19)


def test_sequence_model_is_causal_and_matches_a_causal_lm_shape(rng):
    model = models.RNNSequenceModel("gru", 8, num_outputs=5, vocab_size=7, embed_dim=4)
    tokens = rng.integers(0, 7, size=(2, 6)).astype(np.int32)
    variables = model.init(jax.random.key(0), tokens)
    out = model.apply(variables, tokens)
    assert out.shape == (2, 6, 5)
    changed = tokens.copy()
    changed[:, 4:] = (changed[:, 4:] + 1) % 7  # change the future only
    np.testing.assert_allclose(model.apply(variables, changed)[:, :4], out[:, :4], rtol=1e-6)
    assert not np.allclose(model.apply(variables, changed)[:, 4:], out[:, 4:])
