"""Shared tests over ``jaxdl.models.ZOO``: a model is tested the moment it is listed."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.test_util import check_grads

from jaxdl import graphs, init_variables, models
from jaxdl.models import ZOO

SPECS = {spec.name: spec for spec in ZOO}


def init(model, x):
    return init_variables(model, x, {"params": jax.random.key(0), "dropout": jax.random.key(1)})


def shapes(model, x):
    """Variables' shapes without computing them."""
    return jax.eval_shape(model.init, jax.random.key(0), x)


def rows(model, x) -> int:
    """Rows of the output: examples, or nodes (graphs when the model has a readout)."""
    if isinstance(x, graphs.GraphsTuple):
        return len(x.n_node) if getattr(model, "readout", None) else len(x.nodes)
    return x.shape[0]


def cast_floats(x, dtype):
    """Float leaves of ``x`` (an array or a graph) in ``dtype``; integer leaves unchanged."""
    return jax.tree.map(lambda a: a.astype(dtype) if np.asarray(a).dtype.kind == "f" else a, x)


IMAGENET = ("resnet18", "resnet50")

# the ImageNet-sized ResNets take about 20 s each in the slowest tests: `nox -s slow` runs
# them there; ResNet-20 covers the same blocks in the default run
ZOO_DEFAULT_RUN = [
    pytest.param(name, marks=pytest.mark.slow) if name in IMAGENET else name
    for name in sorted(SPECS)
]


def count(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def total(out) -> jax.Array:
    """A scalar of every output leaf (a VAE returns a ``VAEOutput`` of four arrays)."""
    return sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(out))


def assert_trees_close(a, b, **tolerances):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **tolerances)


@pytest.mark.parametrize("name", ZOO_DEFAULT_RUN)
def test_output_shape(name):
    spec = SPECS[name]
    model, x = spec.tiny()
    y = jax.jit(model.apply)(init(model, x), x)
    assert {leaf.dtype for leaf in jax.tree.leaves(y)} == {jnp.dtype(jnp.float32)}
    assert {leaf.shape[0] for leaf in jax.tree.leaves(y)} == {rows(model, x)}
    if name == "transformer_lm":
        assert y.shape == (*x.shape, model.vocab_size)
    elif spec.objective == "supervised":
        assert y.shape == (rows(model, x), 3)
    elif spec.objective == "reconstruction":
        assert y.shape == x.shape
    elif spec.objective == "elbo":
        assert y.logits.shape == x.shape and y.mean.shape == y.z.shape == (len(x), 3)
    else:  # gan: the discriminator's logits
        assert y.shape == (len(x),)


def _jit_matches_eager(variant, name):
    # the eager apply is the reference, so only the jitted variant can disagree with it
    model, x = SPECS[name].tiny()
    variables = init(model, x)
    out = variant(lambda v, x: model.apply(v, x))(variables, x)
    assert_trees_close(out, model.apply(variables, x), rtol=1e-5, atol=1e-5)


class JitAndEagerAgree(chex.TestCase):
    @chex.variants(with_jit=True)
    @parameterized.named_parameters(*[(n, n) for n in sorted(SPECS) if n not in IMAGENET])
    def test_variant_matches_eager_apply(self, name):
        _jit_matches_eager(self.variant, name)


@pytest.mark.slow
class JitAndEagerAgreeImageNet(chex.TestCase):
    @chex.variants(with_jit=True)
    @parameterized.named_parameters(*[(n, n) for n in IMAGENET])
    def test_variant_matches_eager_apply(self, name):
        _jit_matches_eager(self.variant, name)


# ResNet-20's gradient compile is the slowest of the zoo (its convolutions are the CNN's,
# checked here; its residual blocks' shapes, jit and bfloat16 are checked by the other
# shared tests): nox -s slow runs it
GRADIENT_RUN = [
    pytest.param(name, marks=pytest.mark.slow) if name == "resnet20" else name
    for name in ZOO_DEFAULT_RUN
]


@pytest.mark.parametrize("name", GRADIENT_RUN)
def test_gradients_are_finite_and_match_finite_differences(name):
    model, x = SPECS[name].tiny()
    if isinstance(model, models.ResNet):
        # ReLU zeros tie inside the 7x7 stem's max pool, where a finite difference is one-sided
        model = model.clone(small_inputs=True)
    variables = init(model, x)
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    def loss(params):
        return total(model.apply({"params": params, **rest}, x))

    grads = jax.jit(jax.grad(loss))(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    with jax.enable_x64(True):
        # a random point near the initialisation: at init, bias-free convolutions over dead
        # channels sit exactly on ReLU kinks, where finite differences are one-sided
        noise = np.random.default_rng(1)
        params64 = jax.tree.map(
            lambda p: p.astype(jnp.float64) + 0.05 * noise.normal(size=p.shape), params
        )
        x64 = cast_floats(x, np.float64)
        rest64 = jax.tree.map(lambda p: p.astype(jnp.float64), rest)

        @jax.jit
        def loss64(params):
            return total(model.apply({"params": params, **rest64}, x64))

        # Flax's normalisation layers reduce in float32 even here, which limits agreement to
        # about 1e-3; a wrong gradient is off by order one
        check_grads(loss64, (params64,), order=1, modes=("rev",), eps=1e-6, atol=1e-3, rtol=1e-2)


@pytest.mark.parametrize("name", ZOO_DEFAULT_RUN)
def test_bfloat16_forward_stays_close_to_float32(name):
    model, x = SPECS[name].tiny()
    variables = init(model, x)
    apply = jax.jit(model.apply)
    y32 = apply(variables, x)
    half = jax.tree.map(lambda p: p.astype(jnp.bfloat16), variables)
    x16 = cast_floats(x, jnp.bfloat16)
    y16 = apply(half, x16)
    for a32, a16 in zip(jax.tree.leaves(y32), jax.tree.leaves(y16), strict=True):
        scale = float(jnp.abs(a32).max()) + 1.0
        assert float(jnp.abs(a16.astype(jnp.float32) - a32).max()) < 0.05 * scale


# --------------------------------------------------------------- parameter counts by hand


def dense(i, o):
    return i * o + o


def test_parameter_counts_by_hand():
    # MLP 4 -> 6 -> 3
    model, x = SPECS["mlp"].tiny()
    assert count(init(model, x)["params"]) == dense(4, 6) + dense(6, 3)
    # CNN on 6x6x1, SAME convs with bias, pool 2: 6 -> 3 -> 1, then 3 features -> 4 -> 3
    model, x = SPECS["cnn"].tiny()
    assert count(init(model, x)["params"]) == (9 * 1 * 2 + 2) + (9 * 2 * 3 + 3) + dense(
        3, 4
    ) + dense(4, 3)


def basic_block(cin, cout):
    shortcut = cin * cout + 2 * cout if cin != cout else 0
    return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout + shortcut


def bottleneck(cin, width):
    out = 4 * width
    shortcut = cin * out + 2 * out if cin != out else 0
    return (
        cin * width + 2 * width + 9 * width * width + 2 * width + width * out + 2 * out + shortcut
    )


def test_resnet_parameter_counts_by_hand():
    # ResNet-20 at width 2 (2/4/8 channels), 1 input channel, 3 classes
    x = np.zeros((1, 8, 8, 1), np.float32)
    model = models.ResNet(20, 3, width=2)
    stem = 9 * 1 * 2 + 2 * 2
    stages = (
        sum(basic_block(2, 2) for _ in range(3))
        + basic_block(2, 4)
        + 2 * basic_block(4, 4)
        + basic_block(4, 8)
        + 2 * basic_block(8, 8)
    )
    assert count(shapes(model, x)["params"]) == stem + stages + dense(8, 3)
    # ResNet-50 at width 2: 7x7 stem, bottlenecks (3, 4, 6, 3) of widths 2, 4, 8, 16
    x = np.zeros((1, 16, 16, 3), np.float32)
    model = models.ResNet(50, 3, width=2)
    total, cin = 49 * 3 * 2 + 2 * 2, 2
    for width, blocks in zip((2, 4, 8, 16), (3, 4, 6, 3)):
        for _ in range(blocks):
            total += bottleneck(cin, width)
            cin = 4 * width
    assert count(shapes(model, x)["params"]) == total + dense(64, 3)
    # the standard ResNet-50 has 25.56 M parameters with 1000 classes
    full = jax.eval_shape(
        lambda: models.ResNet(50, 1000).init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
    )
    assert count(full["params"]) == 25_557_032


def test_recurrent_parameter_counts_by_hand():
    f, h = 3, 5
    lstm_layer = lambda i: dense(i, 4 * h) + h * 4 * h
    model, x = SPECS["lstm"].tiny()  # 2 layers, bidirectional
    expected = 2 * lstm_layer(f) + 2 * lstm_layer(2 * h) + dense(2 * h, 3)
    assert count(init(model, x)["params"]) == expected
    model, x = SPECS["gru"].tiny()
    assert count(init(model, x)["params"]) == dense(f, 3 * h) + h * 3 * h + 3 * h + dense(h, 3)
    model, x = SPECS["rnn"].tiny()
    assert count(init(model, x)["params"]) == dense(f, h) + h * h + dense(h, 3)


def test_transformer_parameter_counts_by_hand():
    v, layers, d, mlp, max_len = 11, 2, 8, 16, 6
    block = 2 * d + dense(d, 3 * d) + dense(d, d) + 2 * d + dense(d, mlp) + dense(mlp, d)
    model, x = SPECS["transformer_lm"].tiny()
    expected = v * d + max_len * d + layers * block + 2 * d + dense(d, v)
    assert count(init(model, x)["params"]) == expected
    # the benchmark LM: 4 layers, d 256, MLP 1024, vocabulary 1000, 128 positions
    lm = models.TransformerLM(1000, 4, 256, 4, 1024, 128)
    shapes = jax.eval_shape(lambda: lm.init(jax.random.key(0), jnp.zeros((1, 128), jnp.int32)))
    d, mlp, v = 256, 1024, 1000
    block = 4 * d + dense(d, 3 * d) + dense(d, d) + dense(d, mlp) + dense(mlp, d)
    assert count(shapes["params"]) == v * d + 128 * d + 4 * block + 2 * d + dense(d, v)


def test_generative_parameter_counts_by_hand():
    # VAE 6 -> 5 -> (mean, logvar) 2 x 3; decoder 3 -> 5 -> 6
    model, x = SPECS["vae"].tiny()
    assert count(init(model, x)["params"]) == dense(6, 5) + dense(5, 6) + dense(3, 5) + dense(5, 6)
    # convolutional autoencoder on 4x4x1: 3x3 stride-2 convs of 32, 64 channels (4 -> 2 -> 1),
    # 64 -> 5 -> 3; back 3 -> 5 -> 1x1x64, transposed convs of 32 and 1 channels
    model, x = SPECS["autoencoder"].tiny()
    conv = lambda i, o: 9 * i * o + o
    encoder = conv(1, 32) + conv(32, 64) + dense(64, 5) + dense(5, 3)
    decoder = dense(3, 5) + dense(5, 64) + conv(64, 32) + conv(32, 1)
    assert count(init(model, x)["params"]) == encoder + decoder
    # GAN: generator 4 -> 2x2x4 map (batch norm), conv to 4 x 2 channels, shuffle to 4x4x2
    # (batch norm), conv to 4 x 1, shuffle to 8x8x1; discriminator convs of 2 and 3 channels,
    # each pooled (8 -> 4 -> 2), the standard-deviation channel, 2x2x4 -> 1
    model, x = SPECS["gan"].tiny()
    generator = dense(4, 16) + 2 * 16 + conv(4, 8) + 2 * 2 + conv(2, 4)
    discriminator = conv(1, 2) + conv(2, 3) + dense(16, 1)
    params = init(model, x)["params"]
    assert (count(params["generator"]), count(params["discriminator"])) == (
        generator,
        discriminator,
    )


def test_unknown_resnet_depth():
    with pytest.raises(ValueError, match="unknown ResNet depth 21"):
        init(models.ResNet(21), np.zeros((1, 8, 8, 1), np.float32))


def test_every_listed_model_builds_by_name():
    for spec in ZOO:
        classes = (4,) if spec.objective == "supervised" else ()
        assert isinstance(models.get(spec.name, *classes), nn.Module)
    with pytest.raises(ValueError, match="model 'mlp' needs num_classes"):
        models.get("mlp")
    with pytest.raises(ValueError, match="model 'vae' is trained with the 'elbo' objective"):
        models.get("vae", 4)
    assert {spec.objective for spec in ZOO} == set(models.OBJECTIVES)
