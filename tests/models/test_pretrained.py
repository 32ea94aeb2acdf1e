"""torchvision ResNet and Hugging Face BERT weights -> jaxdl: the names, the layouts, and the
logits.

The tests without torch build state_dicts from torchvision's layer names and shapes, written
here from torchvision's ``ResNet._make_layer`` and not from the converter, and check the
converted model against a NumPy forward pass in torchvision's layout (NCHW, OIHW). The tests
with torchvision (skipped where it is not installed: ``nox -s weights``) compare the logits
of torchvision's own randomly initialised networks, batch-norm statistics randomised too.
BERT likewise: state_dicts from the names of transformers' ``BertModel`` and a NumPy BERT
without torch; ``BertForSequenceClassification`` itself with transformers.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdl
from jaxdl.models import MultiHeadAttention, ResNet, TransformerBlock, TransformerClassifier
from jaxdl.models.layers import FeedForward
from jaxdl.models.pretrained import bert_config, from_hf_bert, from_torchvision_resnet
from jaxdl.optim import parameter_paths
from jaxdl.train.transfer import transfer_variables

# torchvision: depth -> (bottleneck?, blocks per stage)
ARCHS = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
}


def torchvision_shapes(depth: int, classes: int = 1000, channels: int = 3) -> dict:
    """{state_dict name: shape} of ``torchvision.models.resnet{depth}()``, in its order."""
    bottleneck, stages = ARCHS[depth]
    expansion = 4 if bottleneck else 1
    shapes = {}

    def bn(name, c):
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{leaf}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, channels, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for s, blocks in enumerate(stages):
        planes = 64 * 2**s
        for i in range(blocks):
            p = f"layer{s + 1}.{i}"
            if bottleneck:
                convs = [(planes, inplanes, 1), (planes, planes, 3), (planes * 4, planes, 1)]
            else:
                convs = [(planes, inplanes, 3), (planes, planes, 3)]
            for j, (cout, cin, k) in enumerate(convs):
                shapes[f"{p}.conv{j + 1}.weight"] = (cout, cin, k, k)
                bn(f"{p}.bn{j + 1}", cout)
            stride = 2 if s > 0 and i == 0 else 1
            if i == 0 and (stride != 1 or inplanes != planes * expansion):
                shapes[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    shapes["fc.weight"] = (classes, 512 * expansion)
    shapes["fc.bias"] = (classes,)
    return shapes


def fake_state_dict(depth: int, seed: int = 0, classes: int = 1000, channels: int = 3) -> dict:
    """Random weights with torchvision's names and shapes; batch-norm variances positive and
    scales near one so that the logits stay of order one."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in torchvision_shapes(depth, classes, channels).items():
        if name.endswith("num_batches_tracked"):
            out[name] = np.asarray(7, np.int64)
        elif name.endswith("running_var"):
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        elif name.endswith("running_mean") or name.endswith(".bias"):
            out[name] = rng.normal(0.0, 0.1, shape).astype(np.float32)
        elif len(shape) == 1:  # batch-norm scale
            out[name] = rng.uniform(0.5, 1.0, shape).astype(np.float32)
        else:  # He initialisation over the fan-in
            fan_in = int(np.prod(shape[1:]))
            out[name] = (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return out


def names_only(depth: int) -> dict:
    """torchvision's names and shapes with zeros (which take no time to make)."""
    return {k: np.zeros(shape, np.float32) for k, shape in torchvision_shapes(depth).items()}


# ----------------------------------------------------------------- a NumPy torchvision ResNet


def _conv(x, w, stride=1, pad=0):
    """PyTorch's Conv2d (no bias): x (B, Cin, H, W), w (Cout, Cin, k, k)."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (B, Cin, H', W', k, k)
    return np.einsum("bchwij,ocij->bohw", windows, w, optimize=True)


def _bn(x, sd, name, eps=1e-5):
    c = lambda leaf: sd[f"{name}.{leaf}"][None, :, None, None]
    return (x - c("running_mean")) / np.sqrt(c("running_var") + eps) * c("weight") + c("bias")


def _max_pool(x):
    """MaxPool2d(3, stride 2, padding 1): the padding never wins a maximum."""
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))
    return windows[:, :, ::2, ::2].max(axis=(-2, -1))


def numpy_resnet(sd: dict, depth: int, x: np.ndarray) -> np.ndarray:
    """torchvision's ResNet forward pass in eval mode, in float64: (B, 3, H, W) -> logits."""
    sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    relu = lambda v: np.maximum(v, 0.0)
    bottleneck, stages = ARCHS[depth]
    x = relu(_bn(_conv(x.astype(np.float64), sd["conv1.weight"], 2, 3), sd, "bn1"))
    x = _max_pool(x)
    for s, blocks in enumerate(stages):
        for i in range(blocks):
            p, stride = f"layer{s + 1}.{i}", 2 if s > 0 and i == 0 else 1
            if bottleneck:
                y = relu(_bn(_conv(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                y = relu(_bn(_conv(y, sd[f"{p}.conv2.weight"], stride, 1), sd, f"{p}.bn2"))
                y = _bn(_conv(y, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            else:
                y = relu(_bn(_conv(x, sd[f"{p}.conv1.weight"], stride, 1), sd, f"{p}.bn1"))
                y = _bn(_conv(y, sd[f"{p}.conv2.weight"], 1, 1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _bn(_conv(x, sd[f"{p}.downsample.0.weight"], stride), sd, f"{p}.downsample.1")
            x = relu(x + y)
    return x.mean(axis=(2, 3)) @ sd["fc.weight"].T + sd["fc.bias"]


def _model_shapes(depth, classes, channels=3):
    images = jax.ShapeDtypeStruct((1, 32, 32, channels), jnp.float32)
    return jax.eval_shape(lambda x: ResNet(depth, classes).init(jax.random.key(0), x), images)


# ----------------------------------------------------------------- without torch


def test_names_and_layouts_land_where_the_model_has_them():
    sd = fake_state_dict(18)
    variables = from_torchvision_resnet(sd, 18)
    shapes = _model_shapes(18, 1000)
    assert jax.tree.structure(variables) == jax.tree.structure(shapes)
    for got, want in zip(jax.tree.leaves(variables), jax.tree.leaves(shapes)):
        assert got.shape == want.shape and got.dtype == np.float32
    # every array read once: the entries but num_batches_tracked are the leaves
    assert len(jax.tree.leaves(variables)) == sum(not k.endswith("num_batches_tracked") for k in sd)
    p, stats = variables["params"], variables["batch_stats"]
    np.testing.assert_array_equal(p["stem"]["kernel"], sd["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(p["stem"]["kernel"][6, 0, 2, 5], sd["conv1.weight"][5, 2, 6, 0])
    np.testing.assert_array_equal(p["stem_norm"]["scale"], sd["bn1.weight"])
    np.testing.assert_array_equal(stats["stem_norm"]["var"], sd["bn1.running_var"])
    np.testing.assert_array_equal(
        p["stage3_block1"]["conv_1"]["kernel"], sd["layer4.1.conv2.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        p["stage1_block0"]["shortcut"]["kernel"][0, 0],
        sd["layer2.0.downsample.0.weight"][:, :, 0, 0].T,
    )
    np.testing.assert_array_equal(
        stats["stage2_block0"]["shortcut_norm"]["mean"], sd["layer3.0.downsample.1.running_mean"]
    )
    assert "shortcut" not in p["stage0_block0"]  # 64 -> 64 channels at stride 1
    np.testing.assert_array_equal(p["output"]["kernel"], sd["fc.weight"].T)
    np.testing.assert_array_equal(p["output"]["bias"], sd["fc.bias"])


def test_bottleneck_names_land_where_the_model_has_them():
    sd = fake_state_dict(50)
    p = from_torchvision_resnet(sd, 50)["params"]
    block = p["stage0_block0"]  # 64 -> 256 channels: a projection even at stride 1
    for jax_name, torch_name in [
        ("conv_0", "conv1"),
        ("conv_1", "conv2"),
        ("conv_2", "conv3"),
        ("shortcut", "downsample.0"),
    ]:
        np.testing.assert_array_equal(
            block[jax_name]["kernel"], sd[f"layer1.0.{torch_name}.weight"].transpose(2, 3, 1, 0)
        )
    np.testing.assert_array_equal(block["norm_2"]["scale"], sd["layer1.0.bn3.weight"])
    assert p["output"]["kernel"].shape == (2048, 1000)


# ResNet-50 is compared with torchvision itself in the weights session
@pytest.mark.parametrize("depth", [18, pytest.param(50, marks=pytest.mark.slow)])
def test_logits_match_a_numpy_torchvision_forward_pass(depth):
    sd = fake_state_dict(depth, seed=depth, classes=7)
    # odd, non-square images: every stride-2 layer meets an odd size and H != W
    x = np.random.default_rng(1).normal(size=(2, 3, 37, 44)).astype(np.float32)
    want = numpy_resnet(sd, depth, x)
    variables = from_torchvision_resnet(sd, depth)
    got = ResNet(depth, 7).apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
    assert np.abs(want).max() > 0.1  # the comparison is not between near-zeros
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_another_class_count_leaves_the_head_to_the_trainer():
    sd = fake_state_dict(18)
    variables = from_torchvision_resnet(sd, 18, num_classes=5)
    assert "output" not in variables["params"]
    np.testing.assert_array_equal(
        from_torchvision_resnet(sd, 18, num_classes=1000)["params"]["output"]["kernel"],
        sd["fc.weight"].T,
    )
    # what Trainer(pretrained=variables) does to its fresh state (jaxdl.Pretrained.apply)
    fresh = jax.tree.map(lambda s: np.full(s.shape, 0.5, s.dtype), _model_shapes(18, 5))
    state, copied = transfer_variables(fresh, variables)
    assert len(copied) == len(jax.tree.leaves(variables))
    np.testing.assert_array_equal(
        np.asarray(state["params"]["stage3_block1"]["conv_1"]["kernel"]),
        sd["layer4.1.conv2.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        np.asarray(state["batch_stats"]["stage0_block0"]["norm_0"]["var"]),
        sd["layer1.0.bn1.running_var"],
    )
    np.testing.assert_array_equal(
        state["params"]["output"]["kernel"], fresh["params"]["output"]["kernel"]
    )


@pytest.mark.slow
def test_a_trainer_fine_tunes_from_converted_weights():
    sd = fake_state_dict(18)
    trainer = jaxdl.Trainer(
        ResNet(18, 3),
        pretrained=from_torchvision_resnet(sd, 18, num_classes=3),
        optimizer=jaxdl.Optimizer("adam", 1e-3, freeze=("st*",)),
        seed=0,
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 32, 32, 3)).astype(np.float32), np.arange(8) % 3
    trainer.fit((x, y), epochs=1, batch_size=4, verbose=False)
    # frozen: the backbone and its batch statistics are torchvision's, the head has learnt
    np.testing.assert_array_equal(
        np.asarray(trainer.state.params["stem"]["kernel"]),
        sd["conv1.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        np.asarray(trainer.state.batch_stats["stem_norm"]["mean"]), sd["bn1.running_mean"]
    )
    assert trainer.state.params["output"]["kernel"].shape == (512, 3)


def test_stem_takes_other_channel_counts():
    sd = fake_state_dict(18, channels=1)
    variables = from_torchvision_resnet(sd, 18)
    assert variables["params"]["stem"]["kernel"].shape == (7, 7, 1, 64)


def test_a_model_object_is_read_through_its_state_dict():
    class Module:
        def state_dict(self):
            return fake_state_dict(18)

    direct = from_torchvision_resnet(fake_state_dict(18), 18)
    via = from_torchvision_resnet(Module(), 18)
    jax.tree.map(np.testing.assert_array_equal, via, direct)


def test_bfloat16_arrays_are_read_as_float32():
    sd = {k: v.astype(jnp.bfloat16) for k, v in fake_state_dict(18).items()}  # ml_dtypes
    rounded = {k: v.astype(np.float32) for k, v in sd.items()}
    jax.tree.map(
        np.testing.assert_array_equal,
        from_torchvision_resnet(sd, 18),
        from_torchvision_resnet(rounded, 18),
    )


def test_bad_arguments_are_named():
    sd = fake_state_dict(18)
    with pytest.raises(TypeError, match="state_dict: expected"):
        from_torchvision_resnet([1, 2], 18)
    for depth in (20, 19, True, "18"):
        with pytest.raises(ValueError, match="depth: expected a torchvision ResNet depth"):
            from_torchvision_resnet(sd, depth)
    with pytest.raises(ValueError, match="num_classes"):
        from_torchvision_resnet(sd, 18, num_classes=0)
    with pytest.raises(ValueError, match=r"ResNet-18 \(it looks like ResNet-34\)"):
        from_torchvision_resnet(names_only(34), 18)
    with pytest.raises(ValueError, match=r"ResNet-50 \(it looks like ResNet-101\).*unexpected"):
        from_torchvision_resnet(names_only(101), 50)
    partial = {k: v for k, v in sd.items() if k != "layer2.0.bn1.running_var"}
    with pytest.raises(ValueError, match=r"missing layer2\.0\.bn1\.running_var"):
        from_torchvision_resnet(partial, 18)
    # a wide ResNet's names with other widths: the array is named before anything is built
    wide = dict(sd, **{"layer1.0.conv1.weight": np.zeros((128, 64, 3, 3), np.float32)})
    with pytest.raises(
        ValueError, match=r"state_dict\['layer1\.0\.conv1\.weight'\].*\(3, 3, 64, 64\)"
    ):
        from_torchvision_resnet(wide, 18)
    flat = dict(sd, **{"fc.weight": np.zeros((1000,), np.float32)})
    with pytest.raises(ValueError, match=r"state_dict\['fc\.weight'\]: expected \(classes"):
        from_torchvision_resnet(flat, 18)
    text = dict(sd, **{"fc.bias": np.array(["a"] * 1000)})
    with pytest.raises(TypeError, match=r"state_dict\['fc\.bias'\]: expected a numeric"):
        from_torchvision_resnet(text, 18)


# ----------------------------------------------------------------- against torchvision


def _random_torchvision(depth: int, seed: int):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(seed)
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.0)
                module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
        model.fc.bias.normal_(0.0, 0.1)
    return torch, model.eval()


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_logits_match_torchvision(depth):
    torch, model = _random_torchvision(depth, seed=depth)
    sd = model.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == torchvision_shapes(depth)
    x = np.random.default_rng(depth).normal(size=(2, 3, 65, 80)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    variables = from_torchvision_resnet(sd, depth)  # torch tensors, as state_dict() gives
    got = ResNet(depth, 1000).apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_torchvision_101_names_and_bfloat16_tensors():
    torch, model = _random_torchvision(101, seed=0)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == torchvision_shapes(101)
    variables = from_torchvision_resnet(model, 101)
    assert "stage2_block22" in variables["params"] and "stage2_block23" not in variables["params"]
    _, small = _random_torchvision(18, seed=1)
    sd = {k: v.bfloat16() if v.is_floating_point() else v for k, v in small.state_dict().items()}
    rounded = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    jax.tree.map(
        np.testing.assert_array_equal,
        from_torchvision_resnet(sd, 18),
        from_torchvision_resnet(rounded, 18),
    )


# ----------------------------------------------------------------- BERT: NumPy references

# a small BERT: 2 layers of width 8 in 2 heads, 3 classes
BERT = dict(vocab=23, d=8, heads=2, layers=2, mlp=16, max_len=9, types=2, classes=3)


def bert_shapes(prefix="bert.", classifier=True, pooler=True, **sizes) -> dict:
    """{state_dict name: shape} of transformers' ``BertForSequenceClassification``
    (``prefix="bert."``) or ``BertModel`` (``prefix=""``, no classifier), written from its
    ``BertEmbeddings``, ``BertLayer`` (``BertAttention``, ``BertIntermediate``,
    ``BertOutput``) and ``BertPooler``."""
    c = {**BERT, **sizes}
    d, e = c["d"], f"{prefix}embeddings."
    shapes = {
        f"{e}word_embeddings.weight": (c["vocab"], d),
        f"{e}position_embeddings.weight": (c["max_len"], d),
        f"{e}token_type_embeddings.weight": (c["types"], d),
        f"{e}LayerNorm.weight": (d,),
        f"{e}LayerNorm.bias": (d,),
    }
    for i in range(c["layers"]):
        layer = f"{prefix}encoder.layer.{i}."
        for name, out, inp in [
            ("attention.self.query", d, d),
            ("attention.self.key", d, d),
            ("attention.self.value", d, d),
            ("attention.output.dense", d, d),
            ("attention.output.LayerNorm", d, None),
            ("intermediate.dense", c["mlp"], d),
            ("output.dense", d, c["mlp"]),
            ("output.LayerNorm", d, None),
        ]:
            shapes[f"{layer}{name}.weight"] = (out, inp) if inp else (out,)
            shapes[f"{layer}{name}.bias"] = (out,)
    if pooler:
        shapes[f"{prefix}pooler.dense.weight"] = (d, d)
        shapes[f"{prefix}pooler.dense.bias"] = (d,)
    if classifier:
        shapes["classifier.weight"] = (c["classes"], d)
        shapes["classifier.bias"] = (c["classes"],)
    return shapes


def fake_bert(seed=0, **kwargs) -> dict:
    """Random weights with BERT's names and shapes; layer norms away from (1, 0) so that
    where each sits matters, weights of fan-in scale so that the logits are of order one."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in bert_shapes(**kwargs).items():
        if "LayerNorm.weight" in name:
            out[name] = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(".bias"):
            out[name] = rng.normal(0.0, 0.1, shape)
        elif "embeddings" in name:
            out[name] = rng.normal(0.0, 0.5, shape)
        else:
            out[name] = rng.normal(size=shape) * (1.5 / np.sqrt(shape[1]))
    return {k: v.astype(np.float32) for k, v in out.items()}


def bert_batch(seed=0):
    """Token ids (3, 7) with id 0 padding two rows, and two segments (types 0 and 1)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, BERT["vocab"], (3, 7))
    ids[1, 5:] = 0
    ids[2, 3:] = 0
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    types[ids == 0] = 0
    return ids, types


def bert_dict_config(**kwargs) -> dict:
    """The ``config.json`` fields of the small BERT."""
    c = {**BERT, **kwargs}
    return {
        "model_type": "bert",
        "vocab_size": c["vocab"],
        "hidden_size": c["d"],
        "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"],
        "intermediate_size": c["mlp"],
        "max_position_embeddings": c["max_len"],
        "type_vocab_size": c["types"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "id2label": {str(i): f"LABEL_{i}" for i in range(c["classes"])},
    }


_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _softmax(s):
    s = s - s.max(-1, keepdims=True)
    return np.exp(s) / np.exp(s).sum(-1, keepdims=True)


def _norm(x, scale, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def numpy_bert(sd, ids, types, heads, eps=1e-12, prefix="bert.") -> np.ndarray:
    """transformers' BertForSequenceClassification in eval mode, in float64, from its
    state_dict: (B, T) ids and types -> logits; ``attention_mask = ids != 0``."""
    g = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    lin = lambda x, n: x @ g[f"{n}.weight"].T + g[f"{n}.bias"]
    ln = lambda x, n: _norm(x, g[f"{n}.weight"], g[f"{n}.bias"], eps)
    e = f"{prefix}embeddings."
    b, t = ids.shape
    x = g[f"{e}word_embeddings.weight"][ids] + g[f"{e}position_embeddings.weight"][:t]
    x = ln(x + g[f"{e}token_type_embeddings.weight"][types], f"{e}LayerNorm")
    d = x.shape[-1]
    dh = d // heads
    i = 0
    while f"{prefix}encoder.layer.{i}.output.dense.weight" in g:
        layer = f"{prefix}encoder.layer.{i}."
        q, k, v = (
            lin(x, f"{layer}attention.self.{n}").reshape(b, t, heads, dh)
            for n in ("query", "key", "value")
        )
        scores = np.einsum("bthe,bshe->bhts", q, k) / math.sqrt(dh)
        scores = np.where((ids != 0)[:, None, None, :], scores, -np.inf)
        a = np.einsum("bhts,bshe->bthe", _softmax(scores), v).reshape(b, t, d)
        x = ln(x + lin(a, f"{layer}attention.output.dense"), f"{layer}attention.output.LayerNorm")
        h = _gelu(lin(x, f"{layer}intermediate.dense"))
        x = ln(x + lin(h, f"{layer}output.dense"), f"{layer}output.LayerNorm")
        i += 1
    pooled = np.tanh(lin(x[:, 0], f"{prefix}pooler.dense"))
    return lin(pooled, "classifier")


def numpy_block(p, x, valid, norm="pre", eps=1e-6) -> np.ndarray:
    """jaxdl's TransformerBlock from its params (float64): "pre" is
    ``x + Attn(LN(x))``, ``x + MLP(LN(x))``; "post" ``LN(x + Attn(x))``, ``LN(x + MLP(x))``."""
    ln = lambda v, name: _norm(v, p[name]["scale"], p[name]["bias"], eps)
    dense = lambda v, q: v @ q["kernel"] + q["bias"]

    def attention(v):
        qkv = np.einsum("btd,dkhe->btkhe", v, p["attention"]["qkv"]["kernel"])
        qkv = qkv + p["attention"]["qkv"]["bias"]
        q, k, val = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scores = np.einsum("bthe,bshe->bhts", q, k) / math.sqrt(q.shape[-1])
        scores = np.where(valid[:, None, None, :], scores, -np.inf)
        out = np.einsum("bhts,bshe->bthe", _softmax(scores), val)
        return (
            np.einsum("bthe,hed->btd", out, p["attention"]["out"]["kernel"])
            + (p["attention"]["out"]["bias"])
        )

    mlp = lambda v: dense(_gelu(dense(v, p["mlp"]["up"])), p["mlp"]["down"])
    if norm == "post":
        x = ln(x + attention(x), "norm_0")
        return ln(x + mlp(x), "norm_1")
    x = x + attention(ln(x, "norm_0"))
    return x + mlp(ln(x, "norm_1"))


def _randomised(variables, seed, scale=0.5):
    """The variables with random values (layer-norm scales near one), as float32 and float64."""
    rng = np.random.default_rng(seed)
    paths = parameter_paths(variables)
    leaves = [
        rng.uniform(0.5, 1.5, leaf.shape) if path.endswith("scale") else
        rng.normal(0.0, scale, leaf.shape)
        for path, leaf in zip(paths, jax.tree.leaves(variables))
    ]  # fmt: skip
    tree = jax.tree.unflatten(jax.tree.structure(variables), leaves)
    return jax.tree.map(lambda a: a.astype(np.float32), tree), tree


# ----------------------------------------------------------------- BERT: the jaxdl options

# TransformerClassifier(13, 1, 8, 2, 16, 6, 3) as it was before the BERT options
DEFAULT_CLASSIFIER_SHAPES = {
    "params/block0/attention/out/bias": (8,),
    "params/block0/attention/out/kernel": (2, 4, 8),
    "params/block0/attention/qkv/bias": (3, 2, 4),
    "params/block0/attention/qkv/kernel": (8, 3, 2, 4),
    "params/block0/mlp/down/bias": (8,),
    "params/block0/mlp/down/kernel": (16, 8),
    "params/block0/mlp/up/bias": (16,),
    "params/block0/mlp/up/kernel": (8, 16),
    "params/block0/norm_0/bias": (8,),
    "params/block0/norm_0/scale": (8,),
    "params/block0/norm_1/bias": (8,),
    "params/block0/norm_1/scale": (8,),
    "params/embed/positions": (6, 8),
    "params/embed/tokens/embedding": (13, 8),
    "params/norm/bias": (8,),
    "params/norm/scale": (8,),
    "params/output/bias": (3,),
    "params/output/kernel": (8, 3),
}


def test_bert_options_leave_the_default_classifier_as_it_was():
    model = TransformerClassifier(13, 1, 8, 2, 16, 6, 3, pad_id=0)
    ids = np.array([[3, 1, 4, 1, 5, 9], [2, 6, 5, 0, 0, 0]])
    init = jax.eval_shape(lambda: model.init(jax.random.key(0), ids))
    got_shapes = dict(zip(parameter_paths(init), (x.shape for x in jax.tree.leaves(init))))
    assert got_shapes == DEFAULT_CLASSIFIER_SHAPES
    variables, p = _randomised(init, seed=1)
    p = p["params"]
    # the pre-norm formula, flax's epsilon 1e-6, a final norm, the mean over real tokens
    valid = ids != 0
    x = p["embed"]["tokens"]["embedding"][ids] + p["embed"]["positions"][None]
    x = numpy_block(p["block0"], x, valid, "pre", 1e-6)
    x = _norm(x, p["norm"]["scale"], p["norm"]["bias"], 1e-6)
    x = (x * valid[..., None]).sum(1) / valid.sum(1, keepdims=True)
    want = x @ p["output"]["kernel"] + p["output"]["bias"]
    got = np.asarray(jax.jit(model.apply)(variables, ids))
    assert np.abs(want).max() > 0.5
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


class _BlockAsItWas(nn.Module):
    """TransformerBlock as it was before the norm option, kept to pin its dropout streams."""

    num_heads: int
    mlp_dim: int
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x, mask=None, train: bool = False):
        y = MultiHeadAttention(self.num_heads, name="attention")(
            nn.LayerNorm(name="norm_0")(x), mask
        )
        x = x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        y = FeedForward(self.mlp_dim, x.shape[-1], self.dropout_rate, name="mlp")(
            nn.LayerNorm(name="norm_1")(x), train
        )
        return x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)


def test_bert_options_leave_the_pre_norm_dropout_streams_as_they_were():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32)
    block, old = TransformerBlock(2, 16, 0.4), _BlockAsItWas(2, 16, 0.4)
    variables, _ = _randomised(jax.eval_shape(lambda: block.init(jax.random.key(0), x)), seed=0)
    # the streams come from module paths and call counts, whatever the key's kind; "rbg"
    # keys compile faster on XLA:CPU than threefry ones
    rngs = {"dropout": jax.random.key(3, impl="rbg")}
    train = lambda module, v: module.apply(v, x, None, True, rngs=rngs)
    got, want, plain = jax.jit(
        lambda v: (train(block, v), train(old, v), block.apply(v, x))
    )(variables)  # fmt: skip
    assert not np.allclose(got, plain)  # dropout did act
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("norm, epsilon", [("post", 1e-12), ("post", 0.5), ("pre", 0.5)])
def test_bert_post_norm_block_matches_numpy(norm, epsilon):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 8))
    valid = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    block = TransformerBlock(2, 16, norm=norm, epsilon=epsilon)
    shapes = jax.eval_shape(lambda: block.init(jax.random.key(0), x.astype(np.float32)))
    variables, p = _randomised(shapes, seed=3)
    assert set(p["params"]) == {"attention", "mlp", "norm_0", "norm_1"}
    mask = jnp.asarray(valid)[:, None, None, :]
    got = np.asarray(jax.jit(block.apply)(variables, x.astype(np.float32), mask))
    want = numpy_block(p["params"], x, valid, norm, epsilon)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if norm == "post":  # the layouts differ enough for the comparison to tell them apart
        other = numpy_block(p["params"], x, valid, "pre", epsilon)
        assert np.abs(other - want).max() > 0.1


def test_bert_token_types_and_embedding_norm():
    model = TransformerClassifier(
        11, 1, 8, 2, 16, 6, 2, type_vocab_size=3, embed_norm=True, epsilon=1e-12,
        norm="post", pooling="first", pooler=True, pad_id=0, remat=True,
    )  # fmt: skip
    ids = np.array([[2, 3, 4, 5, 0, 0]])
    types = np.array([[0, 0, 1, 2, 0, 0]])
    variables, p = _randomised(jax.eval_shape(lambda: model.init(jax.random.key(0), ids)), seed=4)
    p = p["params"]
    assert "norm" not in p  # post-norm blocks: no final norm
    assert p["embed"]["token_types"]["embedding"].shape == (3, 8)

    def numpy_model(types):
        e = p["embed"]
        x = e["tokens"]["embedding"][ids] + e["positions"][None]
        x = x + e["token_types"]["embedding"][types]
        x = _norm(x, e["norm"]["scale"], e["norm"]["bias"], 1e-12)
        x = numpy_block(p["block0"], x, ids != 0, "post", 1e-12)[:, 0]
        x = np.tanh(x @ p["pooler"]["kernel"] + p["pooler"]["bias"])
        return x @ p["output"]["kernel"] + p["output"]["bias"]

    apply = jax.jit(model.apply)
    got = apply(variables, ids, token_types=types)
    np.testing.assert_allclose(np.asarray(got), numpy_model(types), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(  # no types given: type 0 everywhere
        np.asarray(apply(variables, ids)), numpy_model(0 * types), rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(numpy_model(types), numpy_model(0 * types))


def test_bert_options_bad_arguments_are_named():
    sizes = dict(vocab_size=11, num_layers=1, d_model=8, num_heads=2, mlp_dim=16, max_len=6)
    with pytest.raises(ValueError, match=r"TransformerClassifier\.norm: expected one of"):
        TransformerClassifier(**sizes, norm="middle")
    with pytest.raises(ValueError, match=r"TransformerBlock\.norm: expected one of"):
        TransformerBlock(2, 16, norm="Post")
    with pytest.raises(ValueError, match=r"TransformerClassifier\.epsilon"):
        TransformerClassifier(**sizes, epsilon=0.0)
    with pytest.raises(ValueError, match=r"TransformerClassifier\.type_vocab_size"):
        TransformerClassifier(**sizes, type_vocab_size=-1)
    with pytest.raises(TypeError, match=r"TransformerClassifier\.embed_norm: expected a bool"):
        TransformerClassifier(**sizes, embed_norm=1)
    with pytest.raises(ValueError, match=r"TransformerClassifier\.pooler.*pooling='none'"):
        TransformerClassifier(**sizes, pooler=True, pooling="none")
    ids = np.ones((2, 4), np.int32)
    plain = TransformerClassifier(**sizes)
    with pytest.raises(ValueError, match=r"token_types: given, but .*type_vocab_size=0"):
        plain.init(jax.random.key(0), ids, token_types=np.zeros_like(ids))
    typed = TransformerClassifier(**sizes, type_vocab_size=2)
    with pytest.raises(ValueError, match=r"token_types: expected the shape of tokens \(2, 4\)"):
        typed.init(jax.random.key(0), ids, token_types=np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match=r"token_types: token ids must lie in \[0, 2\)"):
        typed.init(jax.random.key(0), ids, token_types=np.full_like(ids, 2))


# ----------------------------------------------------------------- BERT weights without torch


def test_bert_names_land_where_the_model_has_them():
    sd = fake_bert()
    fields = bert_config(bert_dict_config())
    assert fields == dict(
        vocab_size=23, num_layers=2, d_model=8, num_heads=2, mlp_dim=16, max_len=9,
        num_classes=3, dropout_rate=0.1, positions="learned", pooling="first", pad_id=0,
        norm="post", epsilon=1e-12, type_vocab_size=2, embed_norm=True, pooler=True,
    )  # fmt: skip
    variables = from_hf_bert(sd, num_heads=2)
    ids, _ = bert_batch()
    shapes = jax.eval_shape(
        lambda: TransformerClassifier(**fields).init(jax.random.key(0), ids)
    )  # fmt: skip
    assert jax.tree.structure(variables) == jax.tree.structure(shapes)
    for got, want in zip(jax.tree.leaves(variables), jax.tree.leaves(shapes)):
        assert got.shape == want.shape and got.dtype == np.float32
    p = variables["params"]
    layer = "bert.encoder.layer.1."
    qkv = p["block1"]["attention"]["qkv"]
    # head 1, feature 2 of the key = row 1 * 4 + 2 of BERT's key weight (out, in)
    np.testing.assert_array_equal(
        qkv["kernel"][:, 1, 1, 2], sd[f"{layer}attention.self.key.weight"][6]
    )
    np.testing.assert_array_equal(qkv["bias"][2, 0], sd[f"{layer}attention.self.value.bias"][:4])
    np.testing.assert_array_equal(
        p["block1"]["attention"]["out"]["kernel"][1, 3],
        sd[f"{layer}attention.output.dense.weight"][:, 7],
    )
    np.testing.assert_array_equal(
        p["block1"]["norm_0"]["scale"], sd[f"{layer}attention.output.LayerNorm.weight"]
    )
    np.testing.assert_array_equal(
        p["block1"]["mlp"]["down"]["kernel"], sd[f"{layer}output.dense.weight"].T
    )
    np.testing.assert_array_equal(
        p["embed"]["positions"], sd["bert.embeddings.position_embeddings.weight"]
    )
    np.testing.assert_array_equal(p["pooler"]["kernel"], sd["bert.pooler.dense.weight"].T)
    np.testing.assert_array_equal(p["output"]["bias"], sd["classifier.bias"])


def test_bert_logits_match_a_numpy_bert():
    sd = fake_bert(seed=5)
    ids, types = bert_batch()
    model = TransformerClassifier(**bert_config(bert_dict_config()))
    variables = from_hf_bert(sd, num_heads=2)
    apply = jax.jit(model.apply)
    for t in (types, np.zeros_like(types)):
        want = numpy_bert(sd, ids, t, heads=2)
        assert np.abs(want).max() > 0.5  # logits of order one: the tolerance means something
        got = np.asarray(apply(variables, ids, token_types=t))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_bert_model_names_legacy_names_and_a_new_head():
    sd = fake_bert(seed=6, prefix="", classifier=False)  # BertModel: no prefix, no head
    p = from_hf_bert(sd, num_heads=2)["params"]
    assert "output" not in p and "pooler" in p
    # the TensorFlow names, the buffers and the pretraining heads of a raw checkpoint
    legacy = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v
        for k, v in sd.items()
    }
    legacy["embeddings.position_ids"] = np.arange(9)[None]
    legacy["cls.predictions.bias"] = np.zeros(23, np.float32)
    jax.tree.map(np.testing.assert_array_equal, from_hf_bert(legacy, num_heads=2)["params"], p)
    # a task model with another class count: the head is left to the Trainer
    sd = fake_bert(seed=6)
    variables = from_hf_bert(sd, num_heads=2, num_classes=5)
    assert "output" not in variables["params"]
    model = TransformerClassifier(**bert_config(bert_dict_config(), num_classes=5))
    ids, _ = bert_batch()
    fresh = jax.tree.map(
        lambda s: np.full(s.shape, 0.5, s.dtype),
        jax.eval_shape(lambda: model.init(jax.random.key(0), ids)),
    )
    state, copied = transfer_variables(fresh, variables)
    assert len(copied) == len(jax.tree.leaves(variables))
    np.testing.assert_array_equal(state["params"]["output"]["kernel"], np.full((8, 5), 0.5))
    np.testing.assert_array_equal(
        np.asarray(state["params"]["embed"]["tokens"]["embedding"]),
        sd["bert.embeddings.word_embeddings.weight"],
    )


def test_bert_bad_arguments_are_named():
    sd = fake_bert()
    with pytest.raises(TypeError, match="state_dict: expected a Hugging Face BERT"):
        from_hf_bert([1, 2], num_heads=2)
    with pytest.raises(ValueError, match="num_heads: expected the number of attention heads"):
        from_hf_bert(sd)
    with pytest.raises(ValueError, match="num_heads: hidden size 8 is not divisible"):
        from_hf_bert(sd, num_heads=3)
    with pytest.raises(ValueError, match="num_classes"):
        from_hf_bert(sd, num_heads=2, num_classes=0)
    partial = {k: v for k, v in sd.items() if k != "bert.encoder.layer.1.output.dense.bias"}
    with pytest.raises(ValueError, match=r"missing bert\.encoder\.layer\.1\.output\.dense\.bias"):
        from_hf_bert(partial, num_heads=2)
    extra = dict(sd, **{"bert.encoder.layer.0.attention.self.rotary": np.zeros(3)})
    with pytest.raises(
        ValueError, match=r"unexpected bert\.encoder\.layer\.0\.attention\.self\.rotary"
    ):
        from_hf_bert(extra, num_heads=2)
    gap = {k: v for k, v in sd.items() if ".layer.0." not in k}  # layers 1.. without 0
    with pytest.raises(ValueError, match=r"missing bert\.encoder\.layer\.0\."):
        from_hf_bert(gap, num_heads=2)
    wide = dict(sd, **{"bert.encoder.layer.1.output.dense.weight": np.zeros((8, 32), np.float32)})
    with pytest.raises(
        ValueError, match=r"state_dict\['bert\.encoder\.layer\.1\.output\.dense\.weight'\]: "
        r"expected shape \(8, 16\)"
    ):  # fmt: skip
        from_hf_bert(wide, num_heads=2)
    text = dict(sd, **{"classifier.bias": np.array(["a", "b", "c"])})
    with pytest.raises(TypeError, match=r"state_dict\['classifier\.bias'\]: expected a numeric"):
        from_hf_bert(text, num_heads=2)
    both = dict(sd, **{"bert.embeddings.LayerNorm.gamma": sd["bert.embeddings.LayerNorm.weight"]})
    with pytest.raises(ValueError, match=r"both .*LayerNorm\.weight.* and .*LayerNorm\.gamma"):
        from_hf_bert(both, num_heads=2)
    for field, value, match in [
        ("hidden_act", "gelu_new", "hidden_act: jaxdl's blocks use the exact GELU"),
        ("position_embedding_type", "relative_key", "position_embedding_type"),
        ("model_type", "roberta", "expected model_type 'bert'"),
        ("is_decoder", True, "is_decoder"),
    ]:
        with pytest.raises(ValueError, match=match):
            bert_config(bert_dict_config() | {field: value})
    with pytest.raises(TypeError, match="hf_config: expected .* without intermediate_size"):
        bert_config({k: v for k, v in bert_dict_config().items() if k != "intermediate_size"})


# ----------------------------------------------------------------- against transformers


def _random_transformers_bert(seed: int, **kwargs):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=BERT["vocab"], hidden_size=BERT["d"], num_hidden_layers=BERT["layers"],
        num_attention_heads=BERT["heads"], intermediate_size=BERT["mlp"],
        max_position_embeddings=BERT["max_len"], num_labels=BERT["classes"], **kwargs,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():  # layer norms away from (1, 0), logits of order one
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
        model.classifier.weight.normal_(0.0, 1.0)
        model.bert.pooler.dense.weight.normal_(0.0, 0.5)
    return torch, transformers, model


def test_bert_names_match_transformers():
    _, transformers, model = _random_transformers_bert(0)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == bert_shapes()
    bare = transformers.BertModel(model.config, add_pooling_layer=False)
    assert {k: tuple(v.shape) for k, v in bare.state_dict().items()} == bert_shapes(
        "", classifier=False, pooler=False
    )
    assert "pooler" not in from_hf_bert(bare)["params"]


def test_bert_logits_match_transformers():
    torch, _, model = _random_transformers_bert(1)
    ids, types = bert_batch(seed=1)
    jax_model = TransformerClassifier(**bert_config(model.config))
    variables = from_hf_bert(model)  # the heads from model.config
    assert jax.tree.structure(variables) == jax.tree.structure(
        jax.eval_shape(lambda: jax_model.init(jax.random.key(0), ids))
    )
    apply = jax.jit(jax_model.apply)
    for t in (types, None):
        with torch.no_grad():
            want = model(
                torch.from_numpy(ids),
                attention_mask=torch.from_numpy((ids != 0).astype(np.int64)),
                token_type_ids=None if t is None else torch.from_numpy(t),
            ).logits.numpy()
        got = np.asarray(apply(variables, ids, token_types=t))
        assert np.abs(want).max() > 0.5
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the state_dict of torch tensors and the dict config give the same
    again = from_hf_bert(model.state_dict(), num_heads=BERT["heads"])
    jax.tree.map(np.testing.assert_array_equal, again, variables)
    assert bert_config(model.config.to_dict()) == bert_config(model.config)
