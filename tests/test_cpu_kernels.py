"""``jaxdl.cpu_kernels``: each XLA:CPU formulation against the plain one of the library
(and against references written here), and every model of the zoo with the switch on and off."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import cpu_kernels as kernels
from jaxdl import models
from jaxdl.models.layers import pool

# --------------------------------------------------------------------------- dense


@pytest.mark.parametrize(
    "features, axis, x_shape, equation",
    [
        (6, -1, (2, 3, 5), "btd,do->bto"),  # Dense on a sequence
        ((3, 2, 4), -1, (2, 3, 5), "btd,dshk->btshk"),  # attention's qkv projection
        (6, (-2, -1), (2, 3, 2, 4), "bthk,hko->bto"),  # attention's output projection
    ],
)
def test_flat_dense_product_equals_einsum(features, axis, x_shape, equation, rng):
    x = rng.normal(size=x_shape).astype(np.float32)
    flat = kernels.DenseGeneral(features, axis=axis)
    variables = flat.init(jax.random.key(0), x)
    kernel, bias = (np.asarray(variables["params"][n], np.float64) for n in ("kernel", "bias"))
    np.testing.assert_allclose(
        flat.apply(variables, x), np.einsum(equation, x, kernel) + bias, rtol=1e-5, atol=1e-5
    )
    # the gradients of the 2-D product equal those of lax.dot_general's own N-D product
    plain = nn.DenseGeneral(features, axis=axis)
    g = jnp.asarray(rng.normal(size=flat.apply(variables, x).shape), jnp.float32)

    def grads(module):
        return jax.grad(lambda v, x: jnp.sum(module.apply(v, x) * g), (0, 1))(variables, x)

    with kernels.use_cpu_kernels(True):  # the 2-D product on every backend
        flat_grads = grads(flat)
    for a, b in zip(jax.tree.leaves(flat_grads), jax.tree.leaves(grads(plain)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_flat_dense_product_leaves_batched_products_to_lax(rng):
    a = rng.normal(size=(4, 3, 5)).astype(np.float32)
    b = rng.normal(size=(4, 5, 2)).astype(np.float32)
    numbers = (((2,), (1,)), ((0,), (0,)))
    with kernels.use_cpu_kernels(True):
        product = kernels.dot_general(a, b, numbers)
    np.testing.assert_allclose(product, np.einsum("btd,bdo->bto", a, b), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- pooling


def test_max_pool_gradient_equals_reduce_window(rng):
    x = jnp.asarray(rng.normal(size=(2, 13, 13, 3)).astype(np.float32))
    with kernels.use_cpu_kernels(True):  # the hand-written gradient
        ours = jax.grad(lambda x: jnp.sum(jnp.sin(pool(x, 2, "max"))))(x)
    flax_ref = jax.grad(lambda x: jnp.sum(jnp.sin(nn.max_pool(x, (2, 2), (2, 2)))))(x)
    np.testing.assert_allclose(ours, flax_ref, rtol=1e-6)


# --------------------------------------------------------------------------- attention


@pytest.mark.parametrize("cpu_kernels", ["auto", True])
def test_causal_halves_gradient_equals_one_call(cpu_kernels, rng):
    q, k, v, g = (jnp.asarray(rng.normal(size=(2, 64, 2, 4)), jnp.float32) for _ in range(4))
    one_call = functools.partial(jax.nn.dot_product_attention, is_causal=True)

    def grads(fn):
        return jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v) * g), (0, 1, 2))(q, k, v)

    with kernels.use_cpu_kernels(cpu_kernels):
        split = grads(functools.partial(kernels.attention, causal=True))
    for a, b in zip(split, grads(one_call), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask_shape", [(3, 1, 1, 6), (3, 2, 6, 6), (6, 6)])
def test_cpu_attention_with_masks_equals_jax_attention(causal, mask_shape, rng):
    # values and gradients of the merged-heads layout against jax.nn.dot_product_attention
    q, k, v, g = (jnp.asarray(rng.normal(size=(3, 6, 2, 4)), jnp.float32) for _ in range(4))
    mask = jnp.asarray(rng.random(mask_shape) < 0.7) | jnp.eye(6, dtype=bool)

    def run(fn):
        out, vjp = jax.vjp(lambda q, k, v: fn(q, k, v, mask=mask, is_causal=causal), q, k, v)
        return (out, *vjp(g))

    with kernels.use_cpu_kernels(True):  # the merged-heads layout on every backend
        ours = run(lambda q, k, v, mask, is_causal: kernels.attention(q, k, v, mask, is_causal))
    for a, b in zip(ours, run(jax.nn.dot_product_attention), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_causal_attention_on_cpu_skips_a_quarter_of_the_work():
    # halves of T/2 queries attend to T/2 and T keys: (T/2 * T/2 + T/2 * T) / T^2 = 3/4
    q = jnp.ones((2, 128, 2, 16), jnp.float32)

    def flops(fn):
        return jax.jit(fn).lower(q, q, q).compile().cost_analysis()["flops"]

    with kernels.use_cpu_kernels(True):
        split = flops(functools.partial(kernels.attention, causal=True))
    one_call = flops(functools.partial(jax.nn.dot_product_attention, is_causal=True))
    assert split == pytest.approx(0.75 * one_call, rel=0.02)


# --------------------------------------------------------------------------- LSTM


def test_lstm_hand_written_gradient_equals_autodiff(rng):
    steps, batch, hidden = 6, 3, 4
    a = jnp.asarray(rng.normal(size=(steps, batch, 4 * hidden)).astype(np.float32))
    b = jnp.asarray(rng.normal(size=(4 * hidden,)).astype(np.float32))
    w = jnp.asarray(0.5 * rng.normal(size=(hidden, 4 * hidden)).astype(np.float32))
    lengths = np.array([6, 2, 4])
    mask = (np.arange(steps)[:, None] < lengths[None, :])[..., None].astype(np.float32)

    def reference(a, b, w):  # the textbook LSTM, left to autodiff
        def step(carry, inputs):
            (h, c), (a_t, m) = carry, inputs
            i, f, g, o = jnp.split(a_t + b + h @ w, 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            return (m * h_new + (1 - m) * h, m * c_new + (1 - m) * c), m * h_new

        zeros = jnp.zeros((batch, hidden))
        (h, c), out = jax.lax.scan(step, (zeros, zeros), (a, mask))
        return out, (h, c)

    weights = [
        jnp.asarray(rng.normal(size=s).astype(np.float32))
        for s in [(steps, batch, hidden), (batch, hidden), (batch, hidden)]
    ]

    def loss(fn):
        def total(a, b, w):
            out, (h, c) = fn(a, b, w)
            return (out * weights[0]).sum() + (h * weights[1]).sum() + (c * weights[2]).sum()

        return total

    with kernels.use_cpu_kernels(True):  # the hand-written backward pass
        ours = jax.grad(loss(lambda a, b, w: kernels.lstm(a, b, w, mask)), argnums=(0, 1, 2))(
            a, b, w
        )
        outputs = kernels.lstm(a, b, w, mask)[0]
    expected = jax.grad(loss(reference), argnums=(0, 1, 2))(a, b, w)
    for got, want in zip(ours, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs, reference(a, b, w)[0], rtol=1e-6)


# --------------------------------------------------------------------------- the CPU switch


def test_cpu_kernel_switch_settings():
    assert kernels.enabled() == (jax.default_backend() == "cpu")  # "auto", the default
    with kernels.use_cpu_kernels(False):
        assert not kernels.enabled()
        with kernels.use_cpu_kernels(True):
            assert kernels.enabled()
        assert not kernels.enabled()  # each block restores the setting it found
    assert kernels.enabled() == (jax.default_backend() == "cpu")
    with pytest.raises(ValueError, match="expected True, False or 'auto', got 'on'"):
        kernels.use_cpu_kernels("on")
    assert kernels.enabled() == (jax.default_backend() == "cpu")  # a refused setting: none
    with kernels.use_cpu_kernels("auto"):
        kernels.use_cpu_kernels(False)  # called alone, the setting stays ...
        assert not kernels.enabled()
    assert kernels.enabled() == (jax.default_backend() == "cpu")  # ... until the block ends


def projected(fn, *args):
    """``fn``'s outputs summed against a fixed random projection: a scalar to differentiate."""
    out = jax.eval_shape(fn, *args)
    g = jax.tree.map(
        lambda s: jnp.asarray(np.random.default_rng(9).normal(size=s.shape), s.dtype), out
    )
    return lambda *a: sum(jnp.sum(u * w) for u, w in zip(*map(jax.tree.leaves, (fn(*a), g))))


# Each setting traces fresh functions: jit and make_jaxpr reuse a trace of the same function.


def jaxprs(fn, *args):
    """The programs of ``fn``'s projection and gradient, with the CPU kernels and without."""
    grads = jax.grad(projected(fn, *args), range(len(args)))
    programs = []
    for setting in (True, False):
        with kernels.use_cpu_kernels(setting):
            programs.append(str(jax.make_jaxpr(lambda *a: grads(*a))(*args)))
    return programs


def on_and_off(fn, *args):
    """``(fn(*args), gradients of its projection)``, with the CPU kernels and without."""
    grads = jax.grad(projected(fn, *args), range(len(args)))
    results = []
    for setting in (True, False):
        with kernels.use_cpu_kernels(setting):
            results.append(jax.jit(lambda *a: (fn(*a), grads(*a)))(*args))
    return results


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    """Leaf by leaf; ``atol`` relative to each leaf's largest entry, as float32 sums in another
    order differ by a rounding of the largest terms."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype
        scale = 1.0 + float(np.abs(np.asarray(y, np.float64)).max(initial=0.0))
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol * scale)


def normal(rng, *shape):
    return jnp.asarray(rng.normal(size=shape), jnp.float32)


KERNELS = {
    "dense": lambda r: (
        lambda x, w: kernels.dot_general(x, w, (((2,), (0,)), ((), ()))),
        normal(r, 2, 3, 5),
        normal(r, 5, 4),
    ),
    "conv2d": lambda r: (  # 3x3 into 32 channels over 10x10 positions: the windows' product
        lambda x, k: kernels.conv2d(x, k, (1, 1), ((1, 1), (1, 1))),
        normal(r, 2, 10, 10, 3),
        normal(r, 3, 3, 3, 32),
    ),
    "conv2d_1x1": lambda r: (
        lambda x, k: kernels.conv2d(x, k, (1, 1), ((0, 0), (0, 0))),
        normal(r, 2, 3, 5, 6),
        normal(r, 1, 1, 6, 4),
    ),
    "max_pool": lambda r: (lambda x: kernels.max_pool(x, 2), normal(r, 2, 9, 9, 3)),
    "avg_pool": lambda r: (lambda x: kernels.avg_pool(x, 3), normal(r, 2, 9, 9, 3)),
    "gelu": lambda r: (kernels.gelu, normal(r, 5, 7)),
    "attention_causal_halves": lambda r: (
        lambda q, k, v: kernels.attention(q, k, v, causal=True),
        *(normal(r, 2, 64, 2, 4) for _ in range(3)),
    ),
    "attention_masked": lambda r: (
        lambda q, k, v: kernels.attention(
            q, k, v, jnp.asarray(np.tri(6, dtype=bool) | (np.arange(6) == 5)), causal=False
        ),
        *(normal(r, 3, 6, 2, 4) for _ in range(3)),
    ),
    "lstm": lambda r: (
        lambda a, b, w: kernels.lstm(
            a, b, w, jnp.asarray((np.arange(5)[:, None] < [5, 2, 4])[..., None], jnp.float32)
        ),
        normal(r, 5, 3, 16),
        normal(r, 16),
        0.5 * normal(r, 4, 16),
    ),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_each_cpu_kernel_equals_its_plain_formulation(name, rng):
    fn, *args = KERNELS[name](rng)
    on_program, off_program = jaxprs(fn, *args)
    assert on_program != off_program  # the switch chose another formulation ...
    (on, on_grads), (off, off_grads) = on_and_off(fn, *args)
    assert_trees_close(on, off)  # ... of the same numbers
    assert_trees_close(on_grads, off_grads)


@pytest.mark.parametrize(
    "x_shape, kernel_shape, strides, padding, windows",
    [
        ((2, 10, 10, 3), (3, 3, 3, 32), (1, 1), 1, True),  # 3x3, 32 channels, 100 positions
        ((2, 3, 3, 5), (1, 1, 5, 2), (1, 1), 0, True),  # 1x1: a plain matrix product
        ((2, 4, 4, 3), (3, 3, 3, 32), (1, 1), 1, False),  # 16 positions: too few
        ((2, 10, 10, 3), (3, 3, 3, 16), (1, 1), 1, False),  # 16 channels: too few
        ((2, 12, 12, 3), (5, 5, 3, 32), (1, 1), 2, False),  # 5x5: wider than 3x3
        ((2, 10, 10, 3), (3, 3, 3, 32), (2, 2), 1, False),  # strided
    ],
)
def test_conv2d_takes_the_windows_product_only_where_the_rule_says(
    x_shape, kernel_shape, strides, padding, windows, rng
):
    x, kernel = normal(rng, *x_shape), normal(rng, *kernel_shape)
    pad = ((padding, padding),) * 2
    with kernels.use_cpu_kernels(True):
        program = str(jax.make_jaxpr(lambda x, k: kernels.conv2d(x, k, strides, pad))(x, kernel))
        y = kernels.conv2d(x, kernel, strides, pad)
    assert ("custom_vjp" in program) == windows
    reference = jax.lax.conv_general_dilated(
        x, kernel, strides, pad, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    assert_trees_close(y, reference)


ZOO_SPECS = {spec.name: spec for spec in models.ZOO if spec.name not in ("resnet18", "resnet50")}
# one model per kernel in the default run (each kernel is also tested alone above): the CNN's
# convolutions and pooling, the LSTM's recurrence and dense products, the Transformers'
# masked and causal attention with the GELU; every other model in nox -s slow
ZOO_DEFAULT_RUN = [
    name
    if name in ("cnn", "lstm", "transformer", "transformer_lm")
    else pytest.param(name, marks=pytest.mark.slow)
    for name in sorted(ZOO_SPECS)
]


@pytest.mark.parametrize("name", ZOO_DEFAULT_RUN)
def test_every_model_computes_the_same_with_cpu_kernels_on_and_off(name):
    model, x = ZOO_SPECS[name].tiny()
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    shapes = []
    for setting in (True, False):
        with kernels.use_cpu_kernels(setting):
            shapes.append(jax.eval_shape(lambda rngs: model.init(rngs, x), rngs))
    assert shapes[0] == shapes[1]  # the same variables: names, shapes, dtypes
    split = lambda v: ({"params": v["params"]}, {k: w for k, w in v.items() if k != "params"})
    apply = lambda params, rest: model.apply({**params, **rest}, x)
    on_program, off_program = jaxprs(apply, *split(shapes[0]))
    if on_program == off_program:  # nothing of it goes through cpu_kernels: the same program
        # resnet20's tiny net: 2-channel convolutions, below the windows' product's bounds
        same = ("mlp", "linear", "vae", "autoencoder", "gcn", "gat", "graph_network", "resnet20")
        assert name in same
        return
    (on, on_grads), (off, off_grads) = on_and_off(apply, *split(model.init(rngs, x)))
    assert_trees_close(on, off)
    assert_trees_close(on_grads, off_grads)
