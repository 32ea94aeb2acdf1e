"""Pretrained weights of other libraries as jaxdl variables: torchvision's ImageNet ResNets
and Hugging Face's BERT encoders.

:func:`from_torchvision_resnet` turns the ``state_dict`` of ``torchvision.models.resnet18``
(34, 50, 101, 152) into ``{"params": ..., "batch_stats": ...}`` for
``jaxdl.models.ResNet(depth, num_classes)``, which has torchvision's architecture: a 7x7
stride-2 stem (padding 3), 3x3 stride-2 max pooling (padding 1), basic blocks or v1.5
bottlenecks (the stride on the 3x3 convolution), a 1x1 convolution + batch norm on the
shortcut where the shape changes, batch norm with epsilon 1e-5 and momentum 0.1 (Flax's
0.9), global average pooling and a dense head. In eval mode the converted model gives
torchvision's logits; only the layout changes: convolution kernels (Cout, Cin, kh, kw) become
(kh, kw, Cin, Cout), the dense kernel is transposed, and the images are NHWC instead of NCHW.
torchvision's ImageNet weights expect RGB images in [0, 1] normalised by
:data:`IMAGENET_MEAN` and :data:`IMAGENET_STD`.

The arrays may be NumPy arrays or torch tensors (read through ``.detach().cpu().numpy()``);
jaxdl never imports torch.

Fine-tuning ImageNet ResNet-18 on your own image folder (``my_images/<class>/<image>``;
torchvision downloads its weights once)::

    import numpy as np, torchvision, torchvision.transforms as T
    import jaxdl
    from jaxdl.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, from_torchvision_resnet

    prepare = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                         T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    folder = torchvision.datasets.ImageFolder("my_images", prepare)
    x = np.stack([image.numpy().transpose(1, 2, 0) for image, _ in folder])  # (N, 224, 224, 3)
    y, classes = np.array(folder.targets), len(folder.classes)
    resnet = torchvision.models.resnet18(weights="IMAGENET1K_V1")
    variables = from_torchvision_resnet(resnet.state_dict(), 18, num_classes=classes)
    trainer = jaxdl.Trainer(jaxdl.models.ResNet(18, classes), pretrained=variables,
                            optimizer=jaxdl.Optimizer("adam", 1e-3, param_groups={"st*": 1e-4}))
    trainer.fit((x, y), epochs=5, batch_size=32)

``num_classes`` other than 1000 leaves torchvision's head out, so the Trainer gives the new
head its fresh initialisation and copies everything else (``jaxdl.Pretrained``); the
``param_groups`` pattern ``"st*"`` (the stem and the stages) lets the pretrained backbone
learn ten times slower than the head, and ``freeze=("st*",)`` instead trains the head alone.

:func:`from_hf_bert` turns the ``state_dict`` of Hugging Face's ``BertModel`` or
``BertForSequenceClassification`` (transformers 4.x and 5.x name them alike) into
``{"params": ...}`` for ``jaxdl.models.TransformerClassifier(**bert_config(hf.config))``:
post-layer-norm blocks with epsilon 1e-12, learned absolute positions, token-type
embeddings, a layer-normalised embedding, the exact GELU, the ``[CLS]`` (first) token through
BERT's tanh pooler, and padding (``pad_id=0``) masked out of attention as BERT's usual
``attention_mask = input_ids != 0`` does. In eval mode the logits are BERT's; the query, key
and value projections become one ``qkv`` kernel (D, 3, heads, D / heads), and dense weights
are transposed. Fine-tuning ``bert-base-uncased`` on your own sentences (transformers
downloads its weights once)::

    import transformers
    import jaxdl
    from jaxdl.models.pretrained import bert_config, from_hf_bert

    bert = transformers.BertModel.from_pretrained("bert-base-uncased")
    tokenizer = transformers.AutoTokenizer.from_pretrained("bert-base-uncased")
    x = tokenizer(sentences, padding="max_length", truncation=True, max_length=128,
                  return_tensors="np")["input_ids"]  # (N, 128), padded with id 0
    model = jaxdl.models.TransformerClassifier(**bert_config(bert.config, num_classes=2))
    trainer = jaxdl.Trainer(model, pretrained=from_hf_bert(bert),
                            optimizer=jaxdl.Optimizer("adamw", 2e-5))
    trainer.fit((x, labels), epochs=3, batch_size=32)

``BertModel`` has no classifier, so the Trainer gives the head its fresh initialisation and
copies the rest. Sentence pairs pass their ``token_type_ids`` as
``model.apply(variables, input_ids, token_types=token_type_ids)``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl.models.cnn import RESNETS, Bottleneck, ResNet
from jaxdl.optim import parameter_paths

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel (R, G, B) mean of ImageNet, which torchvision's weights were trained with."""

IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel (R, G, B) standard deviation of ImageNet, as :data:`IMAGENET_MEAN`."""

TORCHVISION_RESNETS = (18, 34, 50, 101, 152)
"""The depths of ``torchvision.models.resnet*`` that :func:`from_torchvision_resnet` reads."""

# torchvision batch-norm entry -> (collection, Flax BatchNorm leaf)
_NORM = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
}
_LEAVES = {"conv": ("weight",), "norm": tuple(_NORM), "dense": ("weight", "bias")}


def _resnet_layers(depth: int) -> list[tuple[str, tuple[str, ...], str]]:
    """(torchvision module name, jaxdl module path, kind) of every layer with weights, kind
    being "conv", "norm" or "dense", in the order both networks run them."""
    block, stages, _ = RESNETS[depth]
    bottleneck = block is Bottleneck
    layers = [("conv1", ("stem",), "conv"), ("bn1", ("stem_norm",), "norm")]
    for stage, blocks in enumerate(stages):
        for i in range(blocks):
            torch_block, jax_block = f"layer{stage + 1}.{i}", f"stage{stage}_block{i}"
            for j in range(3 if bottleneck else 2):
                layers.append((f"{torch_block}.conv{j + 1}", (jax_block, f"conv_{j}"), "conv"))
                layers.append((f"{torch_block}.bn{j + 1}", (jax_block, f"norm_{j}"), "norm"))
            # both networks add the projection where the block changes the shape: the first
            # block of every stage but the first, and of the first too with bottlenecks (x4)
            if i == 0 and (stage > 0 or bottleneck):
                layers.append((f"{torch_block}.downsample.0", (jax_block, "shortcut"), "conv"))
                layers.append((f"{torch_block}.downsample.1", (jax_block, "shortcut_norm"), "norm"))
    layers.append(("fc", ("output",), "dense"))
    return layers


def _as_numpy(value, key: str) -> np.ndarray:
    """A torch tensor (duck-typed, so torch is never imported) or array-like -> float32."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16 for torch to give
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.number):  # jnp's knows bfloat16 (ml_dtypes)
        raise TypeError(f"state_dict[{key!r}]: expected a numeric array, got dtype {array.dtype}")
    return array.astype(np.float32)


def _looks_like(keys) -> str:
    """The depth whose torchvision layer names ``keys`` has, as a note for the error of a
    state_dict given with the wrong depth ("" when no depth fits)."""
    blocks = []
    for stage in range(1, 5):
        ids = {k.split(".")[1] for k in keys if k.startswith(f"layer{stage}.")}
        blocks.append(len(ids))
    bottleneck = any(".conv3." in k for k in keys)
    for depth in TORCHVISION_RESNETS:
        block, stages, _ = RESNETS[depth]
        if tuple(blocks) == tuple(stages) and (block is Bottleneck) == bottleneck:
            return f" (it looks like ResNet-{depth})"
    return ""


def _listing(names, limit: int = 6) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def from_torchvision_resnet(state_dict, depth: int, num_classes: int | None = None) -> dict:
    """jaxdl variables of ``jaxdl.models.ResNet(depth, num_classes)`` from the weights of
    ``torchvision.models.resnet{depth}``.

    Args:
      state_dict: the torchvision model's ``state_dict()`` ({name: array}, NumPy arrays or
        torch tensors), or the torchvision model itself. Convolution weights are
        (Cout, Cin, kh, kw), ``fc.weight`` (classes, features); ``num_batches_tracked``
        entries are ignored. The stem may take any number of input channels.
      depth: 18, 34 (basic blocks), 50, 101 or 152 (bottlenecks); wide ResNets and ResNeXts
        (other bottleneck widths, grouped convolutions) are not read.
      num_classes: the classes of the jaxdl model. None (default) or the rows of
        ``fc.weight`` (1000 for ImageNet) keep torchvision's head; another count leaves the
        head out (no ``output`` entries), so that ``Trainer(pretrained=variables)`` gives
        the new head its fresh initialisation.

    Returns:
      ``{"params": ..., "batch_stats": ...}`` of float32 NumPy arrays, with the paths and
      shapes ``ResNet(depth, num_classes).init`` makes (``stem/kernel`` (7, 7, Cin, 64),
      ``stage0_block0/conv_0/kernel``, ``output/kernel`` (features, classes), ...), for
      ``model.apply(variables, images)`` on NHWC images (B, H, W, Cin) or for
      ``jaxdl.Trainer(pretrained=variables)``.

    Raises:
      TypeError: ``state_dict`` is not a mapping (or a module with ``state_dict()``).
      ValueError: an unknown ``depth``; a missing or unexpected name (naming the depth the
        names fit, if any), or an array whose shape is not the jaxdl model's.
    """
    if callable(getattr(state_dict, "state_dict", None)):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            "state_dict: expected a torchvision ResNet's state_dict() (a mapping of names to "
            f"arrays) or the model, got {type(state_dict).__name__}"
        )
    if isinstance(depth, bool) or depth not in TORCHVISION_RESNETS:
        raise ValueError(
            f"depth: expected a torchvision ResNet depth {TORCHVISION_RESNETS}, got {depth!r}"
        )
    if num_classes is not None:
        num_classes = _checks.check_int(num_classes, "num_classes")
    layers = _resnet_layers(depth)
    expected = {f"{name}.{leaf}" for name, _, kind in layers for leaf in _LEAVES[kind]}
    given = {str(k) for k in state_dict if not str(k).endswith(".num_batches_tracked")}
    missing, unexpected = expected - given, given - expected
    if missing or unexpected:
        parts = [f"missing {_listing(missing)}"] if missing else []
        parts += [f"unexpected {_listing(unexpected)}"] if unexpected else []
        raise ValueError(
            f"state_dict: not the names of torchvision's ResNet-{depth}{_looks_like(given)}: "
            + "; ".join(parts)
        )
    arrays = {key: _as_numpy(state_dict[key], key) for key in expected}
    head = arrays["fc.weight"].shape[0]
    keep_head = num_classes is None or num_classes == head
    variables, sources = {"params": {}, "batch_stats": {}}, {}
    for name, path, kind in layers:
        if kind == "dense" and not keep_head:
            continue
        if kind == "conv":
            entries = {("params", "kernel", "weight"): _conv_kernel(arrays[f"{name}.weight"], name)}
        elif kind == "norm":
            entries = {(*where, leaf): arrays[f"{name}.{leaf}"] for leaf, where in _NORM.items()}
        else:
            entries = {
                ("params", "kernel", "weight"): _dense_kernel(arrays["fc.weight"]),
                ("params", "bias", "bias"): arrays["fc.bias"],
            }
        for (collection, leaf, torch_leaf), array in entries.items():
            node = variables[collection]
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = array
            sources[f"{collection}/{'/'.join(path)}/{leaf}"] = f"{name}.{torch_leaf}"
    _check_against_model(variables, sources, depth, head if keep_head else num_classes)
    return variables


def _conv_kernel(weight: np.ndarray, name: str) -> np.ndarray:
    if weight.ndim != 4:
        raise ValueError(
            f"state_dict[{name + '.weight'!r}]: expected a convolution weight "
            f"(Cout, Cin, kh, kw), got shape {weight.shape}"
        )
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def _dense_kernel(weight: np.ndarray) -> np.ndarray:
    if weight.ndim != 2:
        raise ValueError(
            f"state_dict['fc.weight']: expected (classes, features), got shape {weight.shape}"
        )
    return np.ascontiguousarray(weight.T)


@functools.lru_cache(maxsize=16)
def _model_shapes(depth: int, classes: int, channels: int) -> dict:
    """{collection: {path: shape}} of ``ResNet(depth, classes).init`` on ``channels``-channel
    images, from shapes alone (nothing is computed); cached, as tracing a deep ResNet takes
    a while and a session may convert several state_dicts of one depth."""
    images = jax.ShapeDtypeStruct((1, 32, 32, channels), jnp.float32)
    model = ResNet(depth, classes)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), images)
    return {
        collection: {
            path: tuple(leaf.shape)
            for path, leaf in zip(parameter_paths(tree), jax.tree.leaves(tree))
        }
        for collection, tree in shapes.items()
    }


def _check_against_model(variables: dict, sources: dict, depth: int, classes: int) -> None:
    """Every converted array has the path and shape ``ResNet(depth, classes).init`` gives,
    so a wide ResNet or a ResNeXt with torchvision's names fails here, naming the array,
    not later inside ``apply``."""
    channels = variables["params"]["stem"]["kernel"].shape[2]
    shapes = _model_shapes(depth, classes, channels)
    for collection in ("params", "batch_stats"):
        want = shapes[collection]
        if "output" not in variables[collection]:
            want = {k: v for k, v in want.items() if not k.startswith("output/")}
        got = variables[collection]
        got = dict(zip(parameter_paths(got), jax.tree.leaves(got)))
        if set(want) != set(got):
            raise ValueError(
                f"jaxdl's ResNet-{depth} {collection} and the converted ones differ: model only "
                f"{_listing(set(want) - set(got))}; converted only {_listing(set(got) - set(want))}"
            )
        for path, array in got.items():
            if array.shape != want[path]:
                key = sources[f"{collection}/{path}"]
                raise ValueError(
                    f"state_dict[{key!r}]: becomes {collection}/{path} of shape {array.shape}, "
                    f"but jaxdl's ResNet-{depth} has {want[path]} there (wide ResNets and "
                    "ResNeXts are not read)"
                )


# ----------------------------------------------------------------- Hugging Face BERT

# buffers that BertEmbeddings keeps (persisted by some transformers 4.x versions), and the
# pretraining heads of BertForPreTraining / BertForMaskedLM checkpoints ("bert-base-uncased"),
# which have no place in a classifier
_BERT_SKIPPED_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")
_BERT_SKIPPED_PREFIXES = ("cls.",)
# checkpoints converted from the original TensorFlow BERT name layer-norm leaves gamma, beta
_BERT_LEGACY_LEAVES = {"LayerNorm.gamma": "LayerNorm.weight", "LayerNorm.beta": "LayerNorm.bias"}


_BERT_SIZES = (
    "vocab_size",
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)


def _hf_get(config, name: str, default=None):
    """A field of a transformers config object or of its dict form (``config.json``)."""
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def bert_config(hf_config, num_classes: int | None = None) -> dict:
    """The ``jaxdl.models.TransformerClassifier`` fields of a Hugging Face BERT.

    Args:
      hf_config: a ``transformers.BertConfig`` (``model.config``) or its dict form (the
        ``config.json`` of a checkpoint, ``BertConfig.to_dict()``).
      num_classes: the classes of the jaxdl model; None (default) takes the config's
        ``num_labels`` (2 unless the config says otherwise).

    Returns:
      A dict for ``TransformerClassifier(**fields)``: ``vocab_size``, ``num_layers``
      (``num_hidden_layers``), ``d_model`` (``hidden_size``), ``num_heads``, ``mlp_dim``
      (``intermediate_size``), ``max_len`` (``max_position_embeddings``), ``num_classes``,
      ``dropout_rate`` (``hidden_dropout_prob``; jaxdl drops on the same branch outputs,
      plus inside the MLP and not on attention probabilities: training differs, eval does
      not), ``positions="learned"``, ``pooling="first"``, ``pad_id`` (``pad_token_id``),
      ``norm="post"``, ``epsilon`` (``layer_norm_eps``), ``type_vocab_size``,
      ``embed_norm=True`` and ``pooler=True``.

    Raises:
      TypeError: ``hf_config`` lacks one of BERT's sizes (naming it).
      ValueError: a BERT variant jaxdl's classifier does not express: another
        ``model_type``, a ``hidden_act`` other than the exact "gelu", relative position
        embeddings, or a decoder (``is_decoder``, ``add_cross_attention``).
    """
    absent = [field for field in _BERT_SIZES if _hf_get(hf_config, field) is None]
    if absent:
        raise TypeError(
            "hf_config: expected a transformers BertConfig or its dict form (config.json), "
            f"got a {type(hf_config).__name__} without {', '.join(absent)}"
        )
    model_type = _hf_get(hf_config, "model_type", "bert")
    if model_type != "bert":
        raise ValueError(f"hf_config: expected model_type 'bert', got {model_type!r}")
    act = _hf_get(hf_config, "hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(
            f"hf_config.hidden_act: jaxdl's blocks use the exact GELU ('gelu'), got {act!r}"
        )
    positions = _hf_get(hf_config, "position_embedding_type", "absolute")
    if positions != "absolute":
        raise ValueError(
            "hf_config.position_embedding_type: jaxdl reads absolute (learned) positions, "
            f"got {positions!r}"
        )
    for field in ("is_decoder", "add_cross_attention"):
        if _hf_get(hf_config, field, False):
            raise ValueError(f"hf_config.{field}: jaxdl reads BERT encoders, got a decoder")
    if num_classes is None:
        num_classes = _hf_get(hf_config, "num_labels")
        if num_classes is None:  # config.json keeps the labels, not their count
            num_classes = len(_hf_get(hf_config, "id2label", None) or range(2))
    num_classes = _checks.check_int(num_classes, "num_classes")
    return {
        "vocab_size": int(_hf_get(hf_config, "vocab_size")),
        "num_layers": int(_hf_get(hf_config, "num_hidden_layers")),
        "d_model": int(_hf_get(hf_config, "hidden_size")),
        "num_heads": int(_hf_get(hf_config, "num_attention_heads")),
        "mlp_dim": int(_hf_get(hf_config, "intermediate_size")),
        "max_len": int(_hf_get(hf_config, "max_position_embeddings")),
        "num_classes": num_classes,
        "dropout_rate": float(_hf_get(hf_config, "hidden_dropout_prob", 0.0)),
        "positions": "learned",
        "pooling": "first",
        "pad_id": _hf_get(hf_config, "pad_token_id", 0),
        "norm": "post",
        "epsilon": float(_hf_get(hf_config, "layer_norm_eps", 1e-12)),
        "type_vocab_size": int(_hf_get(hf_config, "type_vocab_size", 2)),
        "embed_norm": True,
        "pooler": True,
    }


def _bert_layers(prefix: str, num_layers: int, pooler: bool, classifier: bool):
    """(Hugging Face module name, jaxdl module path, kind) of every BERT module with weights,
    kind being "embed", "positions" (the bare table), "norm", "dense", "attention" (the
    query, key and value together) or "out" (attention's output projection)."""
    e = f"{prefix}embeddings."
    layers = [
        (f"{e}word_embeddings", ("embed", "tokens"), "embed"),
        (f"{e}position_embeddings", ("embed", "positions"), "positions"),
        (f"{e}token_type_embeddings", ("embed", "token_types"), "embed"),
        (f"{e}LayerNorm", ("embed", "norm"), "norm"),
    ]
    for i in range(num_layers):
        hf, block = f"{prefix}encoder.layer.{i}.", f"block{i}"
        layers += [
            (f"{hf}attention.self", (block, "attention", "qkv"), "attention"),
            (f"{hf}attention.output.dense", (block, "attention", "out"), "out"),
            (f"{hf}attention.output.LayerNorm", (block, "norm_0"), "norm"),
            (f"{hf}intermediate.dense", (block, "mlp", "up"), "dense"),
            (f"{hf}output.dense", (block, "mlp", "down"), "dense"),
            (f"{hf}output.LayerNorm", (block, "norm_1"), "norm"),
        ]
    if pooler:
        layers.append((f"{prefix}pooler.dense", ("pooler",), "dense"))
    if classifier:
        layers.append(("classifier", ("output",), "dense"))
    return layers


def from_hf_bert(state_dict, num_heads: int | None = None, num_classes: int | None = None) -> dict:
    """jaxdl variables of ``TransformerClassifier(**bert_config(config))`` from the weights of
    a Hugging Face ``BertModel`` or ``BertForSequenceClassification``.

    Args:
      state_dict: the model's ``state_dict()`` ({name: array}, NumPy arrays or torch
        tensors, e.g. read with ``safetensors.numpy.load_file``), or the model itself (its
        ``config`` then gives ``num_heads``). Names are transformers' (4.x and 5.x alike):
        ``bert.embeddings.word_embeddings.weight``, ``bert.encoder.layer.{i}.attention.self
        .query.weight``, ... with the ``bert.`` prefix of a task model, without it for a
        ``BertModel``. Dense weights are (out, in). The ``position_ids`` buffers and the
        pretraining heads (``cls.*``) are skipped; TensorFlow-converted ``LayerNorm.gamma``
        and ``LayerNorm.beta`` are read as ``weight`` and ``bias``. The pooler
        (``pooler.dense``) and the head (``classifier``) may be absent.
      num_heads: attention heads (``config.num_attention_heads``, 12 for BERT-base), which
        the arrays do not tell; None (default) reads it from the model's config, and is an
        error for a plain state_dict.
      num_classes: the classes of the jaxdl model. None (default) or the rows of
        ``classifier.weight`` keep the head; another count leaves it out (no ``output``
        entries), so that ``Trainer(pretrained=variables)`` gives the new head its fresh
        initialisation. Without a ``classifier`` there is no head either way.

    Returns:
      ``{"params": ...}`` of float32 NumPy arrays with the paths and shapes
      ``TransformerClassifier(**bert_config(config)).init`` makes: ``embed/tokens/embedding``
      (vocab, D), ``embed/positions`` (max_len, D), ``embed/token_types/embedding``,
      ``embed/norm``, ``block{i}/attention/qkv/kernel`` (D, 3, heads, D / heads) and ``bias``
      (3, heads, D / heads), ``block{i}/attention/out/kernel`` (heads, D / heads, D),
      ``block{i}/norm_0``, ``block{i}/mlp/up``, ``block{i}/mlp/down``, ``block{i}/norm_1``,
      ``pooler`` (D, D) and ``output`` (D, classes), where the state_dict has them.

    Raises:
      TypeError: ``state_dict`` is not a mapping (or a module with ``state_dict()``), or an
        array is not numeric.
      ValueError: ``num_heads`` missing, not dividing the hidden size or not the model
        config's; a missing or unexpected name; an array whose shape is not BERT's for the
        sizes the embeddings give.
    """
    config = getattr(state_dict, "config", None)
    if callable(getattr(state_dict, "state_dict", None)):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            "state_dict: expected a Hugging Face BERT's state_dict() (a mapping of names to "
            f"arrays) or the model, got {type(state_dict).__name__}"
        )
    config_heads = None if config is None else _hf_get(config, "num_attention_heads")
    if num_heads is None:
        if config_heads is None:
            raise ValueError(
                "num_heads: expected the number of attention heads "
                "(config.num_attention_heads), which a state_dict does not tell; got None"
            )
        num_heads = config_heads
    num_heads = _checks.check_int(num_heads, "num_heads")
    if config_heads is not None and num_heads != config_heads:
        raise ValueError(
            f"num_heads: the model's config has num_attention_heads={config_heads}, got {num_heads}"
        )
    if num_classes is not None:
        num_classes = _checks.check_int(num_classes, "num_classes")
    sources = {}  # the name a leaf is read by -> the state_dict's own key
    for key in map(str, state_dict):
        if key.endswith(_BERT_SKIPPED_SUFFIXES) or key.startswith(_BERT_SKIPPED_PREFIXES):
            continue
        name = key
        for legacy, leaf in _BERT_LEGACY_LEAVES.items():
            if key.endswith(legacy):
                name = key[: -len(legacy)] + leaf
        if name in sources:
            raise ValueError(f"state_dict: both {sources[name]!r} and {key!r} give {name!r}")
        sources[name] = key
    given = set(sources)
    prefix = "bert." if any(k.startswith("bert.") for k in given) else ""
    layer_ids = set()
    for k in given:
        if k.startswith(f"{prefix}encoder.layer."):
            index = k[len(f"{prefix}encoder.layer.") :].split(".")[0]
            if index.isdigit():
                layer_ids.add(int(index))
    num_layers = max(layer_ids) + 1 if layer_ids else 1  # none at all: layer 0 is missing
    pooler = any(k.startswith(f"{prefix}pooler.") for k in given)
    classifier = any(k.startswith("classifier.") for k in given)
    layers = _bert_layers(prefix, num_layers, pooler, classifier)
    expected = set(_bert_shapes(prefix, num_layers, pooler, classifier, (0,) * 6))
    missing, unexpected = expected - given, given - expected
    if missing or unexpected:
        parts = [f"missing {_listing(missing)}"] if missing else []
        parts += [f"unexpected {_listing(unexpected)}"] if unexpected else []
        raise ValueError(
            "state_dict: not the names of a Hugging Face BertModel or "
            "BertForSequenceClassification: " + "; ".join(parts)
        )
    arrays = {name: _as_numpy(state_dict[sources[name]], sources[name]) for name in expected}
    _check_bert_shapes(arrays, sources, prefix, num_layers, pooler, classifier, num_heads)
    keep_head = classifier and (
        num_classes is None or num_classes == arrays["classifier.weight"].shape[0]
    )
    params = {}
    for module, path, kind in layers:
        if module == "classifier" and not keep_head:
            continue
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _bert_leaves(arrays, module, kind, num_heads)
    return {"params": params}


def _bert_leaves(arrays: dict, module: str, kind: str, heads: int):
    """The Flax leaves of one BERT module, in jaxdl's layout."""
    a = lambda leaf: arrays[f"{module}.{leaf}"]
    if kind == "embed":
        return {"embedding": a("weight")}
    if kind == "positions":
        return a("weight")
    if kind == "norm":
        return {"scale": a("weight"), "bias": a("bias")}
    if kind == "dense":
        return {"kernel": np.ascontiguousarray(a("weight").T), "bias": a("bias")}
    if kind == "out":  # (D, D) out x in -> (heads, D / heads, D)
        d = a("weight").shape[0]
        kernel = a("weight").T.reshape(heads, d // heads, d)
        return {"kernel": np.ascontiguousarray(kernel), "bias": a("bias")}
    # query, key, value (D, D) each -> one (D, 3, heads, D / heads) kernel, as DenseGeneral
    # with features (3, heads, head) has it; the heads are consecutive blocks of features
    parts = ("query", "key", "value")
    d = a("query.weight").shape[0]
    kernel = np.stack([a(f"{p}.weight").T.reshape(d, heads, d // heads) for p in parts], 1)
    bias = np.stack([a(f"{p}.bias").reshape(heads, d // heads) for p in parts])
    return {"kernel": np.ascontiguousarray(kernel), "bias": bias}


def _bert_shapes(prefix: str, num_layers: int, pooler: bool, classifier: bool, sizes) -> dict:
    """{state_dict name: shape} of Hugging Face's BERT (``BertEmbeddings``, ``BertLayer``,
    ``BertPooler``, the sequence classifier's ``classifier``) of the given sizes."""
    vocab, d, positions, types, mlp, classes = sizes
    e = f"{prefix}embeddings."
    shapes = {
        f"{e}word_embeddings.weight": (vocab, d),
        f"{e}position_embeddings.weight": (positions, d),
        f"{e}token_type_embeddings.weight": (types, d),
        f"{e}LayerNorm.weight": (d,),
        f"{e}LayerNorm.bias": (d,),
    }

    def dense(name, out, inp):
        shapes.update({f"{name}.weight": (out, inp), f"{name}.bias": (out,)})

    for i in range(num_layers):
        hf = f"{prefix}encoder.layer.{i}."
        for p in ("query", "key", "value"):
            dense(f"{hf}attention.self.{p}", d, d)
        dense(f"{hf}attention.output.dense", d, d)
        dense(f"{hf}intermediate.dense", mlp, d)
        dense(f"{hf}output.dense", d, mlp)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes.update({f"{hf}{norm}.weight": (d,), f"{hf}{norm}.bias": (d,)})
    if pooler:
        dense(f"{prefix}pooler.dense", d, d)
    if classifier:
        dense("classifier", classes, d)
    return shapes


def _check_bert_shapes(arrays, sources, prefix, num_layers, pooler, classifier, heads) -> None:
    """Every array has BERT's shape for the sizes that the embeddings, the first
    feed-forward layer and the classifier give, so a mismatch names its array before
    anything is reshaped."""
    words = f"{prefix}embeddings.word_embeddings.weight"
    if arrays[words].ndim != 2:
        raise ValueError(
            f"state_dict[{sources[words]!r}]: expected (vocab_size, hidden_size), got shape "
            f"{arrays[words].shape}"
        )
    vocab, d = arrays[words].shape
    if d % heads:
        raise ValueError(f"num_heads: hidden size {d} is not divisible by num_heads={heads}")

    def rows(name):  # -1 for a 0-d array, whose shape the comparison below then names
        return arrays[name].shape[0] if name in arrays and arrays[name].ndim else -1

    sizes = (
        vocab,
        d,
        rows(f"{prefix}embeddings.position_embeddings.weight"),
        rows(f"{prefix}embeddings.token_type_embeddings.weight"),
        rows(f"{prefix}encoder.layer.0.intermediate.dense.weight"),
        rows("classifier.weight"),
    )
    for name, shape in _bert_shapes(prefix, num_layers, pooler, classifier, sizes).items():
        if arrays[name].shape != shape:
            raise ValueError(
                f"state_dict[{sources[name]!r}]: expected shape {shape} (hidden_size {d}, "
                f"intermediate_size {sizes[4]}), got {arrays[name].shape}"
            )
