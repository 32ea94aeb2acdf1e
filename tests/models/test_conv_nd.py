"""Convolutions of any rank: the Conv layer and pooling against NumPy loops over output
positions, and the CNN on signals (B, L, C), images and volumes (B, D, H, W, C)."""

import itertools
import math

import flax.linen as nn
import jax
import numpy as np
import pytest

import jaxdl
from jaxdl import cpu_kernels as kernels
from jaxdl.models import CNN
from jaxdl.models.layers import Conv, global_average_pool, pool
from jaxdl.train.export import export_model, load_model

# --------------------------------------------------------------------------- references


def same_pads(size, kernel, stride, dilation):
    """TensorFlow's "SAME": ceil(size / stride) outputs, the odd zero on the high side."""
    span = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def naive_conv(x, kernel, bias, strides, dilation, pads):
    """x (B, *S, Cin), kernel (*k, Cin, Cout), pads ((low, high), ...): a loop over every
    output position and every tap of the kernel."""
    x = np.pad(x.astype(np.float64), ((0, 0), *pads, (0, 0)))
    k = kernel.shape[:-2]
    out_shape = [
        (x.shape[1 + a] - ((k[a] - 1) * dilation[a] + 1)) // strides[a] + 1 for a in range(len(k))
    ]
    out = np.zeros((x.shape[0], *out_shape, kernel.shape[-1]))
    for position in np.ndindex(*out_shape):
        for tap in np.ndindex(*k):
            where = tuple(p * s + t * d for p, s, t, d in zip(position, strides, tap, dilation))
            out[(slice(None), *position)] += x[(slice(None), *where)] @ kernel[tap]
    return out + bias


def naive_pool(x, window, kind):
    out_shape = [s // w for s, w in zip(x.shape[1:-1], window)]
    out = np.zeros((x.shape[0], *out_shape, x.shape[-1]))
    for position in np.ndindex(*out_shape):
        block = x[(slice(None), *(slice(p * w, (p + 1) * w) for p, w in zip(position, window)))]
        axes = tuple(range(1, x.ndim - 1))
        out[(slice(None), *position)] = block.max(axes) if kind == "max" else block.mean(axes)
    return out


def layout(model, x):
    """The variables' shapes (ShapeDtypeStructs), traced without running or compiling."""
    return jax.eval_shape(model.init, jax.random.key(0), np.asarray(x))


def init(model, x, rng):
    """Variables of ``model``'s layout drawn by NumPy: no random-number program to compile."""
    return jax.tree.map(
        lambda a: (0.5 * rng.normal(size=a.shape)).astype(a.dtype), layout(model, x)
    )


def full_float32():
    """Float32 products within the block: on GPUs the default rounds convolutions to TF32,
    about 1e-3, which a comparison at 1e-5 with a float64 reference would not survive."""
    return jax.default_matmul_precision("float32")


def count(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def dense(i, o):
    return i * o + o


# --------------------------------------------------------------------------- the Conv layer

CONVS = {
    # name: (input shape, kernel size, strides, dilation, padding)
    "1d_same": ((2, 11, 3), (5,), (1,), (1,), "SAME"),
    "1d_strided_dilated_valid": ((2, 17, 2), (3,), (2,), (3,), "VALID"),
    "1d_pairs": ((2, 9, 2), (4,), (1,), (1,), ((2, 0),)),
    "2d_stride1_same": ((2, 7, 6, 3), (3, 3), (1, 1), (1, 1), "SAME"),
    "2d_strided_same": ((2, 9, 8, 3), (3, 3), (2, 2), (1, 1), "SAME"),
    "2d_strided_mixed": ((2, 10, 7, 2), (3, 2), (3, 1), (1, 1), ((1, 0), (0, 2))),
    "2d_dilated": ((2, 9, 9, 2), (3, 3), (1, 1), (2, 2), "SAME"),
    "2d_strided_dilated": ((1, 12, 10, 2), (2, 3), (2, 1), (3, 2), 1),
    "3d_same": ((2, 5, 6, 4, 2), (3, 3, 3), (1, 1, 1), (1, 1, 1), "SAME"),
    "3d_strided_valid": ((1, 7, 6, 5, 2), (3, 2, 2), (2, 1, 2), (1, 2, 1), "VALID"),
}


def pads_of(shape, size, strides, dilation, padding):
    spatial = shape[1:-1]
    if padding == "SAME":
        return [same_pads(*args) for args in zip(spatial, size, strides, dilation)]
    if padding == "VALID":
        return [(0, 0)] * len(spatial)
    if isinstance(padding, int):
        return [(padding, padding)] * len(spatial)
    return list(padding)


@pytest.mark.parametrize("case", sorted(CONVS))
def test_conv_matches_naive_loops_and_flax_conv(case, rng):
    shape, size, strides, dilation, padding = CONVS[case]
    x = rng.normal(size=shape).astype(np.float32)
    layer = Conv(4, size, strides, padding=padding, kernel_dilation=dilation)
    # the parameters of flax.linen.Conv: an exported Conv loads into nn.Conv
    flax_conv = nn.Conv(4, size, strides, padding=padding, kernel_dilation=dilation)
    layout = jax.eval_shape(layer.init, jax.random.key(0), x)
    assert layout == jax.eval_shape(flax_conv.init, jax.random.key(0), x)
    assert layout["params"]["kernel"].shape == (*size, shape[-1], 4)
    params = {
        "kernel": rng.normal(size=(*size, shape[-1], 4)).astype(np.float32),
        "bias": rng.normal(size=4).astype(np.float32),
    }
    expected = naive_conv(
        x,
        params["kernel"].astype(np.float64),
        params["bias"],
        strides,
        dilation,
        pads_of(shape, size, strides, dilation, padding),
    )
    # 2-D kernels without dilation have a CPU formulation of their own: both, with the switch
    fast_path = len(size) == 2 and dilation == (1, 1)
    with full_float32():
        for cpu_kernels in (True, False) if fast_path else (True,):
            with kernels.use_cpu_kernels(cpu_kernels):
                got = jax.jit(layer.apply)({"params": params}, x)
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        theirs = jax.jit(flax_conv.apply)({"params": params}, x)
    np.testing.assert_allclose(theirs, expected, rtol=1e-5, atol=1e-5)


def test_conv_refuses_sizes_that_do_not_match_the_input():
    x = np.zeros((1, 8, 3), np.float32)
    with pytest.raises(ValueError, match=r"Conv.kernel_size: \(3, 3\) gives 2 sizes.*1 spatial"):
        layout(Conv(2, (3, 3)), x)
    with pytest.raises(ValueError, match="Conv.strides: expected ints >= 1"):
        Conv(2, 3, (0,))
    with pytest.raises(ValueError, match="Conv.padding: expected 'SAME', 'VALID'"):
        Conv(2, 3, padding="same")
    with pytest.raises(ValueError, match="does not fit spatial axis 0"):
        layout(Conv(2, 9, padding="VALID"), x)


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    ("shape", "window"),
    [((2, 9, 3), 2), ((2, 10, 3), (3,)), ((2, 7, 6, 2), (2, 3)), ((2, 5, 4, 7, 2), 2)],
)
def test_pool_of_any_rank_matches_naive_loops(shape, window, kind, rng):
    x = rng.normal(size=shape).astype(np.float32)
    full = (window,) * (len(shape) - 2) if isinstance(window, int) else window
    np.testing.assert_allclose(pool(x, window, kind), naive_pool(x, full, kind), rtol=1e-6)


def test_global_average_pool_averages_every_spatial_axis(rng):
    for shape in ((2, 7, 3), (2, 4, 5, 3), (2, 3, 4, 2, 3)):
        x = rng.normal(size=shape).astype(np.float32)
        expected = x.reshape(2, -1, 3).mean(axis=1)
        np.testing.assert_allclose(global_average_pool(x), expected, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- the CNN's inputs


def test_cnn_on_signals_of_40_counts_its_parameters_by_hand():
    # 1-D, k=5, SAME, pool 2: 40 -> 20 -> 10 positions of 8 channels, then 80 -> 16 -> 3
    model = CNN((4, 8), (16,), 3, kernel_size=5)
    params = layout(model, np.zeros((2, 40, 1), np.float32))["params"]
    assert params["conv_0"]["kernel"].shape == (5, 1, 4)
    assert params["conv_1"]["kernel"].shape == (5, 4, 8)
    assert count(params) == (5 * 1 * 4 + 4) + (5 * 4 * 8 + 8) + dense(10 * 8, 16) + dense(16, 3)
    # (N, 40) signals without a channel axis are the same network on one channel
    assert layout(model, np.zeros((2, 40), np.float32))["params"] == params


def test_cnn_on_signals_is_the_1d_convolution_by_hand(rng):
    # one convolution, no pooling, the pooled head: mean over positions of relu(conv) -> dense
    x = rng.normal(size=(3, 12, 2)).astype(np.float32)
    model = CNN((4,), (), 2, kernel_size=3, pooling="none", head="pooled", spatial_dims=1)
    variables = init(model, x, rng)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    conv = naive_conv(
        x, p["conv_0"]["kernel"], p["conv_0"]["bias"], (1,), (1,), [same_pads(12, 3, 1, 1)]
    )
    expected = np.maximum(conv, 0).mean(axis=1) @ p["output"]["kernel"] + p["output"]["bias"]
    with full_float32():
        got = jax.jit(model.apply)(variables, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_cnn_picks_the_rank_from_its_input():
    def first_kernel(model, shape):
        x = np.zeros(shape, np.float32)
        return layout(model, x)["params"]["conv_0"]["kernel"].shape

    model = CNN((2,), (3,), 2)
    assert first_kernel(model, (1, 40)) == (3, 1, 2)  # (B, L)
    assert first_kernel(model, (1, 40, 1)) == (3, 1, 2)  # (B, L, 1)
    assert first_kernel(model, (1, 8, 8)) == (3, 3, 1, 2)  # grey (B, H, W), as before
    assert first_kernel(model, (1, 8, 8, 3)) == (3, 3, 3, 2)
    assert first_kernel(model, (1, 6, 6, 6, 1)) == (3, 3, 3, 1, 2)
    assert first_kernel(CNN((2,), (3,), 2, spatial_dims=1), (1, 40, 3)) == (3, 3, 2)
    assert first_kernel(CNN((2,), (3,), 2, spatial_dims=2), (1, 40, 3)) == (3, 3, 1, 2)
    with pytest.raises(ValueError, match=r"\(B, 40, 3\) is ambiguous.*CNN.spatial_dims=1"):
        first_kernel(model, (1, 40, 3))
    with pytest.raises(ValueError, match=r"spatial_dims=2, expected inputs \(B, H, W, C\)"):
        first_kernel(CNN((2,), (3,), 2, spatial_dims=2), (1, 40))
    with pytest.raises(ValueError, match="CNN.spatial_dims: expected an int in"):
        CNN(spatial_dims=4)


def test_grey_images_give_the_numbers_of_one_channel_images(rng):
    x = rng.normal(size=(2, 6, 6)).astype(np.float32)
    model = CNN((3,), (), 2)
    variables = init(model, x, rng)
    apply = jax.jit(model.apply)
    np.testing.assert_array_equal(apply(variables, x), apply(variables, x[..., None]))


def test_default_cnn_keeps_its_parameter_tree():
    params = layout(CNN(), np.zeros((1, 8, 8, 1), np.float32))["params"]
    assert jax.tree.map(np.shape, params) == {
        "conv_0": {"kernel": (3, 3, 1, 32), "bias": (32,)},
        "conv_1": {"kernel": (3, 3, 32, 64), "bias": (64,)},
        "dense_0": {"kernel": (2 * 2 * 64, 256), "bias": (256,)},  # 8 -> 4 -> 2
        "output": {"kernel": (256, 10), "bias": (10,)},
    }


# --------------------------------------------------------------------------- per-layer values


def test_per_layer_sizes_shape_the_network_as_worked_by_hand():
    # L = 40: conv_0 k=7 stride 2 SAME -> 20, max pool 2 -> 10; conv_1 k=3 dilation 2 VALID
    # spans 5 -> 6, no pooling; flatten 6 x 3 = 18
    model = CNN(
        (2, 3),
        (4,),
        2,
        kernel_size=((7,), (3,)),
        strides=(2, (1,)),
        dilation=(1, (2,)),
        padding=("SAME", "VALID"),
        pooling=("max", None),
    )
    params = layout(model, np.zeros((1, 40, 1), np.float32))["params"]
    assert params["conv_0"]["kernel"].shape == (7, 1, 2)
    assert params["conv_1"]["kernel"].shape == (3, 2, 3)
    assert params["dense_0"]["kernel"].shape == (18, 4)


def test_a_flat_kernel_size_is_one_kernel_shape():
    # (5, 1) is a 5 x 1 kernel in every layer, as flax.linen.Conv reads it
    model = CNN((2, 3), (4,), 2, kernel_size=(5, 1), pool_size=(2, 1))
    params = layout(model, np.zeros((1, 8, 4, 1), np.float32))["params"]
    assert params["conv_0"]["kernel"].shape == (5, 1, 1, 2)
    assert params["conv_1"]["kernel"].shape == (5, 1, 2, 3)
    assert params["dense_0"]["kernel"].shape == (2 * 4 * 3, 4)  # 8 -> 4 -> 2 rows, 4 columns
    # mixed per-layer entries: an int is the same size on every axis
    mixed = CNN((2, 3), (4,), 2, kernel_size=(5, (3, 1)))
    params = layout(mixed, np.zeros((1, 8, 8, 1), np.float32))["params"]
    assert params["conv_0"]["kernel"].shape == (5, 5, 1, 2)
    assert params["conv_1"]["kernel"].shape == (3, 1, 2, 3)


def test_flat_sizes_for_1d_layers_are_refused_with_the_nested_spelling():
    model = CNN((2, 3, 4), (4,), 2, kernel_size=(7, 5, 3), pooling="none")
    with pytest.raises(ValueError, match=r"1 spatial axis.*kernel_size=\(\(7,\), \(5,\), \(3,\)\)"):
        layout(model, np.zeros((1, 40, 1), np.float32))


def test_per_layer_values_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match=r"CNN.kernel_size: expected one value .* \(2, as "):
        CNN((2, 3), kernel_size=((3,), (3,), (3,)))
    with pytest.raises(ValueError, match=r"CNN.pooling: expected one value .* got 3"):
        CNN((2, 3), pooling=("max", "avg", "max"))
    with pytest.raises(ValueError, match=r"CNN.pooling\[1\]: expected 'max', 'avg', 'none'"):
        CNN((2, 3), pooling=("max", "mean"))
    with pytest.raises(ValueError, match=r"CNN.strides\[1\]: expected ints >= 1"):
        CNN((2, 3), strides=(1, (0,)))
    with pytest.raises(ValueError, match=r"CNN.padding\[0\]: expected 'SAME', 'VALID'"):
        CNN((2, 3), padding=("same", "VALID"))
    with pytest.raises(ValueError, match="CNN.head: expected 'flatten' or 'pooled'"):
        CNN(head="gap")


def test_pooled_head_does_not_depend_on_the_input_length():
    model = CNN((2, 3), (4,), 2, head="pooled")
    short = layout(model, np.zeros((1, 16, 1), np.float32))
    assert layout(model, np.zeros((1, 64, 1), np.float32)) == short
    assert short["params"]["dense_0"]["kernel"].shape == (3, 4)
    out = jax.eval_shape(model.apply, short, np.ones((2, 64, 1), np.float32))
    assert out.shape == (2, 2)


# --------------------------------------------------------------------------- refusals by size


def test_a_pooling_window_larger_than_its_input_is_refused():
    # 8 -> conv_0 8 -> pool 3 -> 2 -> conv_1 2: a window of 3 has nothing to pool
    model = CNN((2, 2), (3,), 2, pool_size=3)
    with pytest.raises(
        ValueError,
        match=r"pooling after conv_1 has window \(3,\), larger than "
        r"the \(2,\) feature map.*input \(B, 8, 1\) -> conv_0 \(8,\) -> pool "
        r"\(2,\) -> conv_1 \(2,\)",
    ):
        layout(model, np.zeros((1, 8, 1), np.float32))
    # four poolings of 8 x 8 images: the last one used to be skipped without a word
    with pytest.raises(ValueError, match=r"after conv_3 has window \(2, 2\).*\(1, 1\) feature"):
        layout(CNN((2, 2, 2, 2)), np.zeros((1, 8, 8, 1), np.float32))
    # without the last pooling it builds: 8 -> 4 -> 2 -> 1, 1 x 1 x 2 features
    ok = CNN((2, 2, 2, 2), (3,), 2, pooling=("max", "max", "max", "none"))
    params = layout(ok, np.zeros((1, 8, 8, 1), np.float32))["params"]
    assert params["dense_0"]["kernel"].shape == (2, 3)


def test_a_kernel_that_does_not_fit_is_refused():
    with pytest.raises(
        ValueError,
        match=r"conv_1 .* spans 5 positions on spatial axis 0, but "
        r"its input there has 3",
    ):
        layout(
            CNN((2, 2), (3,), 2, kernel_size=5, padding="VALID", pooling="none"),
            np.zeros((1, 7, 1), np.float32),
        )


# --------------------------------------------------------------------------- export, training


def test_export_round_trip_of_a_1d_cnn_keeps_its_tuples(tmp_path, rng):
    model = CNN(
        (3, 4),
        (5,),
        2,
        kernel_size=((5,), (3,)),
        strides=(1, (2,)),
        dilation=((2,), 1),
        padding=(((2, 2),), "VALID"),
        pooling=("avg", None),
        pool_size=(2,),
        head="pooled",
        spatial_dims=1,
    )
    x = rng.normal(size=(3, 20, 2)).astype(np.float32)
    variables = init(model, x, rng)
    export_model(tmp_path / "cnn1d", model, variables)
    loaded, loaded_variables = load_model(tmp_path / "cnn1d")
    assert loaded == model  # every field, tuples within tuples and the None included
    assert loaded.padding == (((2, 2),), "VALID") and loaded.pooling == ("avg", None)
    assert loaded.kernel_size == ((5,), (3,)) and loaded.strides == (1, (2,))
    apply = jax.jit(model.apply)
    np.testing.assert_array_equal(apply(loaded_variables, x), apply(variables, x))


def separable_signals(n, rng, length=40):
    """Class 1 holds a bump (+1, +2, +1) at a random place, class 0 a dip (-1, -2, -1)."""
    y = rng.integers(0, 2, n)
    x = 0.3 * rng.normal(size=(n, length))
    for i, where in enumerate(rng.integers(0, length - 3, n)):
        x[i, where : where + 3] += (2 * y[i] - 1) * np.array([1.0, 2.0, 1.0])
    return x.astype(np.float32), y.astype(np.int32)


def test_a_tiny_1d_cnn_learns_to_tell_bumps_from_dips(rng):
    x, y = separable_signals(512, rng)
    x_test, y_test = separable_signals(256, rng)
    model = CNN((8,), (), 2, kernel_size=5, pooling="max", head="pooled")
    trainer = jaxdl.Trainer(model, learning_rate=1e-2, seed=0)
    trainer.fit((x, y), epochs=6, batch_size=32, verbose=False)
    assert trainer.evaluate((x_test, y_test))["accuracy"] >= 0.95


def test_summary_of_a_1d_cnn_shows_signal_shapes():
    table = jaxdl.summary(CNN((4,), (8,), 3, kernel_size=5), np.zeros((1, 40, 1), np.float32))
    rows = {r.path: r for r in table.rows}
    assert rows["conv_0"].output == "(1, 40, 4) float32"
    assert rows["conv_0"].params == 5 * 1 * 4 + 4
    assert table.total_params == 24 + dense(20 * 4, 8) + dense(8, 3)


def test_all_padding_forms_agree_with_each_other(rng):
    # "SAME" at stride 1 and k = 3 is one zero on each side: the int 1 and the pairs ((1, 1),)
    x = rng.normal(size=(2, 9, 2)).astype(np.float32)
    models = [CNN((3,), (4,), 2, padding=p, spatial_dims=1) for p in ("SAME", 1, ((1, 1),), (1,))]
    variables = init(models[0], x, rng)  # one parameter tree serves them all
    outs = [jax.jit(model.apply)(variables, x) for model in models]
    for a, b in itertools.pairwise(outs):
        np.testing.assert_array_equal(a, b)
