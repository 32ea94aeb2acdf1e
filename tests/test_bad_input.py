"""Bad input at the entry points that take tokens, graphs, labels, sizes and parameters.

Each draw either gives a correct result or is refused by jaxdl's own check (a ValueError or
TypeError raised in jaxdl's source, before anything is compiled) with a message that names
the argument; never an IndexError, a ZeroDivisionError, an XLA error or a NaN result.
``OUTCOMES`` counts the draws per test and outcome; ``max_examples`` is explicit per test, so
the number of bad inputs tried is the sum of them and of the parametrized cases.
"""

import collections
import os
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxdl
from jaxdl import _checks, graphs
from jaxdl.data import augment
from jaxdl.data.adapters import as_source
from jaxdl.data.transforms import MinMaxScaler, Standardizer
from jaxdl.models import (
    CNN,
    GAN,
    GAT,
    GCN,
    MLP,
    RNN,
    VAE,
    Autoencoder,
    Discriminator,
    Generator,
    MessagePassingNet,
    ResNet,
    RNNClassifier,
    RNNSequenceModel,
    TransformerClassifier,
    TransformerLM,
)

OUTCOMES: collections.Counter = collections.Counter()
VOCAB = 7


def examples(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def raised_by_jaxdl(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and f"{os.sep}jaxdl{os.sep}" in frames[-1].filename


def outcome(test: str, call, *names: str, valid: bool | None = None):
    """Run ``call``. Returns its result when it works (then ``valid`` must not be False);
    returns the error when jaxdl refused it by name (then ``valid`` must not be True)."""
    try:
        result = call()
    except (ValueError, TypeError) as error:
        assert raised_by_jaxdl(error), "".join(traceback.format_exception(error))
        message = str(error)
        assert any(name in message for name in names), (names, message)
        assert valid is not True, f"valid input refused: {message}"
        OUTCOMES[test, "refused"] += 1
        return error
    assert valid is not False, "bad input accepted"
    OUTCOMES[test, "correct"] += 1
    return result


def finite(tree) -> bool:
    return all(np.isfinite(np.asarray(a, np.float64)).all() for a in jax.tree.leaves(tree))


# ---------------------------------------------------------------------- token ids

id_dtypes = st.sampled_from(["int32", "int64", "uint8", "float32", "float64", "bool"])


@st.composite
def token_arrays(draw, shape=None):
    shape = draw(st.sampled_from([(2, 4), (1, 4)])) if shape is None else shape
    dtype = np.dtype(draw(id_dtypes))
    low, high = draw(st.sampled_from([(0, VOCAB), (-3, VOCAB), (0, VOCAB + 3)]))
    x = np.random.default_rng(draw(st.integers(0, 999))).integers(low, high, shape)
    x = x.astype(dtype) if dtype.kind != "u" else np.abs(x).astype(dtype)
    if dtype.kind == "f" and draw(st.booleans()):
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([0.5, 2.25, np.nan]))
    return x


def ids_are_valid(x) -> bool:
    values = np.asarray(x, np.float64)
    return bool(
        np.isfinite(values).all()
        and (values == np.round(values)).all()
        and values.min() >= 0
        and values.max() < VOCAB
    )


@examples(60)
@given(x=token_arrays())
def test_check_token_ids(x):
    out = outcome("check_token_ids", lambda: _checks.check_token_ids(x, VOCAB, "tokens"),
                  "tokens", valid=ids_are_valid(x))  # fmt: skip
    if not isinstance(out, Exception):
        assert out.dtype == np.int32 and np.array_equal(out, x.astype(np.int64))


@pytest.fixture(scope="module")
def lm():
    model = TransformerLM(VOCAB, 1, 8, 2, 16, 8)
    return model, model.init(jax.random.key(0), np.zeros((1, 4), np.int32))["params"]


@examples(20)
@given(x=token_arrays(shape=(2, 4)), kind=st.sampled_from(["classifier", "lm", "rnn"]))
def test_token_models_refuse_bad_ids_at_init(x, kind):
    model = {
        "classifier": TransformerClassifier(VOCAB, 1, 8, 2, 16, 8, 3),
        "lm": TransformerLM(VOCAB, 1, 8, 2, 16, 8),
        "rnn": RNNSequenceModel("simple", 4, num_outputs=3, vocab_size=VOCAB, embed_dim=4),
    }[kind]
    name = "x" if kind == "rnn" else "tokens"
    out = outcome(f"{kind} init", lambda: model.init(jax.random.key(0), x), name,
                  valid=ids_are_valid(x))  # fmt: skip
    if not isinstance(out, Exception):
        assert finite(out)


temperatures = st.one_of(
    st.sampled_from([0.0, 1.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1.0, 1e-45, 1e39, "1", None]),
)
top_ks = st.one_of(
    st.sampled_from([None, 1]), st.integers(-2, VOCAB + 3), st.sampled_from([2.0, True])
)
new_tokens = st.one_of(st.sampled_from([0, 2]), st.integers(-3, 12), st.sampled_from([2.0, True]))
prompts = st.one_of(
    token_arrays(shape=(1, 2)),
    st.sampled_from([np.zeros((1, 0), np.int32), np.zeros((0, 2), np.int32), np.zeros(2)]),
)


F32 = np.finfo(np.float32)


def generate_is_valid(prompt, max_new, temperature, top_k) -> bool:
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    return (
        prompt.ndim == 2
        and prompt.size > 0
        and ids_are_valid(prompt)
        and is_int(max_new)
        and 0 <= max_new <= 8 - prompt.shape[1]
        and isinstance(temperature, float)
        and np.isfinite(temperature)
        and (temperature == 0 or float(F32.tiny) <= temperature <= float(F32.max))
        and (top_k is None or (is_int(top_k) and 1 <= top_k <= VOCAB))
    )


@examples(40)
@given(prompt=prompts, max_new=new_tokens, temperature=temperatures, top_k=top_ks)
def test_generate_works_or_refuses_by_name(lm, prompt, max_new, temperature, top_k):
    model, params = lm
    valid = generate_is_valid(prompt, max_new, temperature, top_k)
    tried = ((0.0, None), (1.0, None), (1.0, 1))
    if valid and max_new and (max_new != 2 or (temperature, top_k) not in tried):
        OUTCOMES["generate", "valid, not run"] += 1  # it would compile one more program
        return
    call = lambda: model.generate(
        params, prompt, max_new, rng=jax.random.key(1), temperature=temperature, top_k=top_k
    )
    out = outcome("generate", call, "prompt", "max_new_tokens", "temperature", "top_k", valid=valid)
    if not isinstance(out, Exception):
        out = np.asarray(out)
        assert out.shape == (prompt.shape[0], prompt.shape[1] + max_new)
        assert out.min() >= 0 and out.max() < VOCAB
        np.testing.assert_array_equal(out[:, : prompt.shape[1]], prompt)


def test_generate_by_hand(lm):
    model, params = lm
    with pytest.raises(ValueError, match=r"prompt: token ids must lie in \[0, 7\).*\[1, 9\]"):
        model.generate(params, np.array([[1, 9]]), 2)
    with pytest.raises(ValueError, match=r"prompt: .*\[-1, 1\]"):
        model.generate(params, np.array([[1, -1]]), 2)
    with pytest.raises(TypeError, match="prompt: expected integer token ids"):
        model.generate(params, np.array([[1.5, 2.0]]), 2)
    with pytest.raises(ValueError, match="prompt: expected token ids"):
        model.generate(params, np.zeros((1, 0), np.int32), 2)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(params, np.ones((1, 2), np.int32), 2, temperature=float("nan"))
    with pytest.raises(ValueError, match="temperature"):
        model.generate(params, np.ones((1, 2), np.int32), 2, temperature=-0.5)
    with pytest.raises(ValueError, match=r"top_k: expected an int in \[1, 7\], got 8"):
        model.generate(params, np.ones((1, 2), np.int32), 2, top_k=8)
    with pytest.raises(ValueError, match="max_new_tokens: expected an int >= 0"):
        model.generate(params, np.ones((1, 2), np.int32), -1)
    with pytest.raises(ValueError, match="max_new_tokens: .*exceeds max_len=8"):
        model.generate(params, np.ones((1, 2), np.int32), 7)


def test_token_models_by_hand():
    model = TransformerClassifier(5, 1, 8, 2, 16, 4, 2)
    with pytest.raises(ValueError, match=r"tokens: token ids must lie in \[0, 5\)"):
        model.init(jax.random.key(0), np.array([[0, 1, 5, 2]]))
    with pytest.raises(TypeError, match="tokens: expected integer token ids"):
        model.init(jax.random.key(0), np.array([[0.0, 1.7, 2.0, 3.0]]))
    with pytest.raises(ValueError, match=r"x: token ids must lie in \[0, 5\)"):
        as_source((np.array([[0, 7]]), np.zeros(1)), 1, name="x", vocab_size=5)


# ---------------------------------------------------------------------- model sizes

BUILDERS = {
    "MLP.features": lambda w: MLP((w, 3)),
    "CNN.channels": lambda w: CNN((w,), (4,), 3),
    "CNN.dense": lambda w: CNN((2,), (w,), 3),
    "CNN.num_classes": lambda w: CNN((2,), (4,), w),
    "ResNet.width": lambda w: ResNet(20, 3, width=w, blocks=(1, 1, 1)),
    "RNN.hidden_size": lambda w: RNN("gru", w),
    "RNNClassifier.num_layers": lambda w: RNNClassifier("simple", 4, num_layers=w),
    "TransformerClassifier.d_model": lambda w: TransformerClassifier(VOCAB, 1, w, 2, 8, 4),
    "TransformerClassifier.num_heads": lambda w: TransformerClassifier(VOCAB, 1, 8, w, 8, 4),
    "TransformerLM.mlp_dim": lambda w: TransformerLM(VOCAB, 1, 8, 2, w, 4),
    "TransformerLM.num_layers": lambda w: TransformerLM(VOCAB, w, 8, 2, 8, 4),
    "TransformerLM.vocab_size": lambda w: TransformerLM(w, 1, 8, 2, 8, 4),
    "GCN.features": lambda w: GCN((w,), 2),
    "GAT.num_heads": lambda w: GAT((2,), w, 2),
    "MessagePassingNet.features": lambda w: MessagePassingNet((w,), 2),
    "VAE.latent_dim": lambda w: VAE((6,), w, hidden=(4,)),
    "Autoencoder.hidden": lambda w: Autoencoder((6,), 2, hidden=(w,)),
    "GAN.latent_dim": lambda w: GAN(Generator((8, 8, 1), (4, 2)), Discriminator((2,)), w),
}


def _graph_sample():
    return graphs.make_graph([0, 1], [1, 2], nodes=np.ones((3, 2), np.float32))


SAMPLES = {
    "MLP": np.zeros((1, 4), np.float32),
    "CNN": np.zeros((1, 4, 4, 1), np.float32),
    "ResNet": np.zeros((1, 4, 4, 1), np.float32),
    "RNN": np.zeros((1, 3, 2), np.float32),
    "RNNClassifier": np.zeros((1, 3, 2), np.float32),
    "TransformerClassifier": np.zeros((1, 4), np.int32),
    "TransformerLM": np.zeros((1, 4), np.int32),
    "VAE": np.zeros((1, 6), np.float32),
    "Autoencoder": np.zeros((1, 6), np.float32),
    "GAN": np.zeros((1, 8, 8, 1), np.float32),
}

widths = st.one_of(
    st.integers(-3, 0), st.integers(1, 4), st.sampled_from([2.0, 1.5, None, "4", True])
)


@examples(60)
@given(field=st.sampled_from(sorted(BUILDERS)), width=widths)
def test_model_sizes_are_checked_at_construction(field, width):
    valid = isinstance(width, int) and not isinstance(width, bool) and width >= 1
    if field == "TransformerClassifier.d_model" and valid and width % 2:
        valid = False  # d_model % num_heads
    if field == "TransformerClassifier.num_heads" and valid and 8 % width:
        valid = False
    if field == "ResNet.width" and width is None:
        valid = True  # the depth's own width
    attribute = field.split(".")[1]
    model = outcome("model sizes", lambda: BUILDERS[field](width), attribute, valid=valid)
    if isinstance(model, Exception):
        return
    owner = field.split(".")[0]
    sample = SAMPLES.get(owner, None)
    sample = _graph_sample() if sample is None else sample
    shapes = jax.eval_shape(model.init, jax.random.key(0), sample)  # builds, no compile
    assert jax.tree.leaves(shapes)


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: MLP(()), "MLP.features"),
        (lambda: MLP((0, 3)), "MLP.features"),
        (lambda: MLP((4, 3), dropout_rate=1.0), "MLP.dropout_rate"),
        (lambda: TransformerLM(10, 1, 10, 3, 8, 4), "not divisible by num_heads=3"),
        (lambda: TransformerClassifier(10, 1, 8, 2, 8, 4, pooling="max"), "pooling"),
        (lambda: ResNet(21), "ResNet.depth"),
        (lambda: RNN("tanh"), "RNN.cell"),
        (lambda: Generator((6, 8, 1)), "Generator.output_shape"),
        (lambda: VAE((6,), 0), "VAE.latent_dim"),
        (lambda: GAT((4,), 2, 2, dropout_rate=-0.1), "GAT.dropout_rate"),
    ],
)
def test_model_constructors_by_hand(build, name):
    outcome("constructors by hand", build, name, valid=False)


# ---------------------------------------------------------------------- graphs


def two_graphs():
    """A batch of a 3-node and a 2-node graph, 3 + 2 edges, 2 features."""
    first = graphs.make_graph([0, 1, 2], [1, 2, 0], nodes=np.ones((3, 2), np.float32))
    second = graphs.make_graph([0, 1], [1, 0], nodes=np.full((2, 2), 2.0, np.float32))
    return graphs.batch([first, second])


def structure_is_valid(g) -> bool:
    n = len(g.nodes)
    n_node, n_edge = np.asarray(g.n_node), np.asarray(g.n_edge)
    if (n_node < 0).any() or (n_edge < 0).any() or n_node.sum() != n:
        return False
    if n_edge.sum() != len(g.senders) or not np.isfinite(g.nodes).all():
        return False
    start = np.concatenate([[0], np.cumsum(n_node)])
    owner = np.repeat(np.arange(len(n_node)), n_edge)
    for ends in (np.asarray(g.senders), np.asarray(g.receivers)):
        if ((ends < start[owner]) | (ends >= start[owner + 1])).any():
            return False
    return True


def one_graph():
    return graphs.make_graph([0, 1, 2], [1, 2, 0], nodes=np.ones((3, 2), np.float32))


@st.composite
def mutated_graphs(draw, base=two_graphs):
    g = base()
    count = len(g.n_node)
    field = draw(st.sampled_from(["none", "senders", "receivers", "n_node", "n_edge", "nodes"]))
    if field in ("senders", "receivers"):
        ends = np.array(getattr(g, field))
        ends[draw(st.integers(0, len(ends) - 1))] = draw(st.integers(-2, 7))
        g = g._replace(**{field: ends})
    elif field in ("n_node", "n_edge"):
        counts = draw(st.lists(st.integers(-1, 5), min_size=count, max_size=count))
        g = g._replace(**{field: np.array(counts, np.int32)})
    elif field == "nodes":
        nodes = np.array(g.nodes)
        nodes[draw(st.integers(0, len(nodes) - 1)), 0] = draw(
            st.sampled_from([np.nan, np.inf, 3.0])
        )
        g = g._replace(nodes=nodes)
    return g


@examples(40)
@given(g=mutated_graphs(), entry=st.sampled_from(["gcn", "batch", "pad", "node_dataset"]))
def test_graphs_entering_anywhere_are_checked(g, entry):
    valid = structure_is_valid(g)
    names = ("senders", "receivers", "n_node", "n_edge", "nodes")
    if entry == "gcn":
        model = GCN((4,), 2)
        out = outcome("graph into GCN", lambda: model.init(jax.random.key(0), g), *names,
                      valid=valid)  # fmt: skip
        if not isinstance(out, Exception):
            assert finite(model.apply(out, g))
    elif entry == "batch":
        out = outcome("graph into batch", lambda: graphs.batch([g, two_graphs()]), *names,
                      valid=valid)  # fmt: skip
    elif entry == "pad":
        out = outcome("graph into pad_graphs_to", lambda: graphs.pad_graphs_to(g, 8, 8, 3),
                      *names, valid=valid)  # fmt: skip
        if not isinstance(out, Exception):
            assert structure_is_valid(out)
    else:
        labels = np.zeros(5, np.int32)
        outcome("graph into NodeDataset", lambda: graphs.NodeDataset(g, labels), *names,
                valid=valid)  # fmt: skip


@examples(30)
@given(
    n=st.integers(0, 4),
    senders=st.lists(st.integers(-2, 5), max_size=4),
    receivers=st.lists(st.integers(-2, 5), max_size=4),
    floats=st.booleans(),
)
def test_make_graph(n, senders, receivers, floats):
    k = min(len(senders), len(receivers))
    senders, receivers = np.array(senders[:k]), np.array(receivers[:k])
    if floats:
        senders = senders + 0.5
    valid = not (floats and k) and all(0 <= v < n for v in [*senders, *receivers])
    out = outcome("make_graph", lambda: graphs.make_graph(senders, receivers, num_nodes=n),
                  "senders", "receivers", valid=valid)  # fmt: skip
    if not isinstance(out, Exception):
        assert structure_is_valid(out._replace(nodes=np.zeros((n, 1))))


@examples(30)
@given(
    n=st.integers(1, 4),
    seed=st.integers(0, 99),
    poison=st.sampled_from([None, np.nan, np.inf, -np.inf]),
)
def test_from_adjacency(n, seed, poison):
    a = (np.random.default_rng(seed).random((n, n)) < 0.5).astype(np.float64)
    if poison is not None:
        a[seed % n, (seed // 7) % n] = poison
    out = outcome("from_adjacency", lambda: graphs.from_adjacency(a), "adjacency",
                  valid=poison is None)  # fmt: skip
    if not isinstance(out, Exception):
        assert finite(out.edges) and len(out.senders) == int((a != 0).sum())


@examples(30)
@given(values=st.lists(st.sampled_from([0, 1, 0.0, 1.0, 0.5, 2, -1, np.nan, True]), min_size=5,
                       max_size=5))  # fmt: skip
def test_node_dataset_masks(values):
    g = two_graphs()
    mask = np.array(values)
    valid = bool(np.isin(mask.astype(np.float64), (0.0, 1.0)).all() and (mask != 0).any())
    outcome("NodeDataset mask", lambda: graphs.NodeDataset(g, np.zeros(5, np.int32), mask),
            "mask", valid=valid)  # fmt: skip


@examples(20)
@given(g=mutated_graphs(base=one_graph))
def test_graph_dataset(g):
    valid = structure_is_valid(g) and int(g.n_node[0]) > 0
    out = outcome("GraphDataset", lambda: graphs.GraphDataset([g, one_graph()], [0, 1]),
                  "graphs[0]", "graph 0", valid=valid)  # fmt: skip
    if not isinstance(out, Exception):
        batch = next(out.batches(2))
        assert structure_is_valid(batch["x"])


def test_graphs_by_hand():
    with pytest.raises(ValueError, match=r"receivers: edge endpoints must lie in \[0, 3\).*5"):
        graphs.make_graph([0, 1], [1, 5], num_nodes=3)
    with pytest.raises(ValueError, match=r"senders: edge endpoints must lie in \[0, 3\).*-1"):
        graphs.make_graph([-1, 1], [1, 2], num_nodes=3)
    g = two_graphs()
    with pytest.raises(ValueError, match=r"graph.senders: node indices must lie in \[0, 5\)"):
        GCN((4,), 2).init(jax.random.key(0), g._replace(senders=np.array([0, 1, 9, 3, 4])))
    with pytest.raises(ValueError, match="graph.n_node: the node counts sum to 6 but"):
        graphs.pad_graphs_to(g._replace(n_node=np.array([3, 3])), 8, 8, 3)
    with pytest.raises(ValueError, match="graph.receivers: edge 2 belongs to graph 0"):
        graphs.pad_graphs_to(g._replace(receivers=np.array([1, 2, 3, 4, 3])), 8, 8, 3)
    with pytest.raises(ValueError, match="adjacency: entries must be finite numbers, got nan"):
        graphs.from_adjacency([[0, np.nan], [1, 0]])
    with pytest.raises(ValueError, match="mask: expected booleans or 0/1 weights, got the"):
        graphs.NodeDataset(g, np.zeros(5, np.int32), [1, 0.5, 0, 0, 1])


# ---------------------------------------------------------------------- labels and scalers


@st.composite
def label_arrays(draw):
    n = draw(st.integers(0, 12))
    labels = np.random.default_rng(draw(st.integers(0, 99))).integers(0, 3, n)
    kind = draw(st.sampled_from(["int", "float", "one_hot", "nan", "fraction", "negative"]))
    if kind == "float":
        return labels.astype(np.float32), n > 0
    if kind == "one_hot":
        return np.eye(3, dtype=np.float32)[labels], False
    if kind == "nan" and n:
        out = labels.astype(np.float64)
        out[0] = np.nan
        return out, False
    if kind == "fraction" and n:
        return labels + 0.5, False
    if kind == "negative" and n:
        return labels - 1, None  # valid for splits, not for class_weights
    return labels, n > 0


SAMPLERS = {
    "stratified_split": lambda y: jaxdl.data.stratified_split(y, (0.5, 0.5)),
    "stratified_kfold": lambda y: jaxdl.data.stratified_kfold(y, 2),
    "class_weights": lambda y: jaxdl.data.class_weights(y),
    "oversample": lambda y: jaxdl.data.oversample(y),
    "undersample": lambda y: jaxdl.data.undersample(y),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@examples(20)
@given(drawn=label_arrays())
def test_sampling_takes_integer_labels(name, drawn):
    labels, valid = drawn
    if valid is None:  # labels shifted down by one: negative ones only class_weights refuses
        valid = name != "class_weights" or labels.min() >= 0
    if name == "stratified_kfold" and valid and len(labels) < 2:
        valid = False  # k=2 folds need 2 examples
    out = outcome(name, lambda: SAMPLERS[name](labels), "labels", "k=", valid=valid)
    if isinstance(out, Exception):
        return
    everything = np.arange(len(labels))
    if name == "class_weights":
        assert finite(out) and len(out) == int(labels.max()) + 1
    elif name in ("oversample", "undersample"):
        assert out.min() >= 0 and out.max() < len(labels)
    elif name == "stratified_kfold":
        for train, validation in out:
            assert np.array_equal(np.sort(np.concatenate([train, validation])), everything)
    else:
        assert np.array_equal(np.sort(np.concatenate(out)), everything)


@examples(30)
@given(
    rows=st.integers(0, 4),
    poison=st.sampled_from([None, np.nan, np.inf]),
    scaler=st.sampled_from([Standardizer, MinMaxScaler]),
)
def test_scalers_fit_on_finite_data_only(rows, poison, scaler):
    x = np.arange(rows * 3, dtype=np.float64).reshape(rows, 3)
    if poison is not None and rows:
        x[rows - 1, 1] = poison
    valid = rows > 0 and (poison is None)
    out = outcome("scaler fit", lambda: scaler.fit(x), "x", valid=valid)
    if not isinstance(out, Exception):
        assert finite(out(x))


def test_labels_and_scalers_by_hand():
    one_hot = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    with pytest.raises(ValueError, match=r"labels: .*\(N,\), got shape \(4, 3\).*argmax"):
        jaxdl.data.stratified_split(one_hot)
    with pytest.raises(ValueError, match="labels: expected integer class labels, got NaN"):
        jaxdl.data.oversample(np.array([0.0, 1.0, np.nan]))
    with pytest.raises(ValueError, match=r"labels: expected class labels in \[0, 2\)"):
        jaxdl.data.class_weights([0, 1, 2], num_classes=2)
    with pytest.raises(ValueError, match="Standardizer.fit: x contains 1 NaN"):
        Standardizer.fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="MinMaxScaler.fit: x must hold at least one value"):
        MinMaxScaler.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"seed: expected an int in \[0, 2\*\*63 - 1\]"):
        _checks.check_seed(2**64)
    with pytest.raises(ValueError, match="x: expected a rectangular array, got a ragged"):
        _checks.as_features([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"x: expected at least one feature per example"):
        _checks.as_features(np.zeros((4, 0)))


# ---------------------------------------------------------------------- augmentation

AUGMENTS = {
    "p": (augment.random_flip, [0.0, 0.5, 1.0]),
    "max_shift": (augment.random_translate, [0, 2]),
    "padding": (augment.random_crop, [1]),
    "max_degrees": (augment.random_rotation, [0.0, 30.0]),
    "std": (augment.gaussian_noise, [0.0, 0.1]),
    "size": (augment.cutout, [1, 3]),
}
parameters = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 12),
    st.sampled_from([None, "1", True]),
)


@examples(40)
@given(name=st.sampled_from(sorted(AUGMENTS)), value=parameters, data=st.data())
def test_augmentations_check_their_parameters(name, value, data):
    make, good = AUGMENTS[name]
    if data.draw(st.booleans()):
        value = data.draw(st.sampled_from(good))
    images = np.linspace(0, 1, 2 * 6 * 6).reshape(2, 6, 6, 1).astype(np.float32)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_num = (is_int or isinstance(value, float)) and np.isfinite(value)
    valid = {
        "p": is_num and 0 <= value <= 1,
        "max_shift": is_int and 0 <= value <= 6,
        "padding": is_int and 0 <= value <= 6,
        "max_degrees": is_num and value >= 0,
        "std": is_num and value >= 0,
        "size": is_int and 1 <= value <= 6,
    }[name]
    if valid and value not in good:
        OUTCOMES[f"augment {name}", "valid, not run"] += 1  # it would compile another program
        return
    out = outcome(f"augment {name}", lambda: make(value)(jax.random.key(0), images), name,
                  valid=valid)  # fmt: skip
    if not isinstance(out, Exception):
        assert out.shape == images.shape and finite(out)


def test_augmentations_by_hand():
    images = jnp.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match=r"p: expected a finite number in \[0, 1\], got 1.5"):
        augment.random_flip(1.5)
    with pytest.raises(ValueError, match="max_shift=5 is larger than the 4x4 images"):
        augment.random_translate(5)(jax.random.key(0), images)
    with pytest.raises(ValueError, match="std: expected a finite number in"):
        augment.gaussian_noise(-1.0)


# ---------------------------------------------------------------------- features, seeds, streams


ragged_or_empty = st.sampled_from(
    [
        [[1.0, 2.0], [3.0]],
        [[1, 2], [3, 4, 5]],
        np.zeros((4, 0), np.float32),
        np.zeros((3, 2, 0)),
        [[1.0, 2.0], [3.0, 4.0]],
        np.ones((2, 3)),
    ]
)


@examples(12)
@given(x=ragged_or_empty)
def test_as_features_refuses_ragged_and_empty_features(x):
    try:
        arr = np.asarray(x)
        valid = arr.ndim >= 2 and 0 not in arr.shape
    except ValueError:
        valid = False
    out = outcome("as_features", lambda: _checks.as_features(x, "x"), "x", valid=valid)
    if not isinstance(out, Exception):
        assert out.shape == np.asarray(x).shape


@examples(30)
@given(seed=st.one_of(st.integers(-5, 2**64 + 5), st.sampled_from([2**63 - 1, 2**63, 1.0, None])))
def test_seeds(seed):
    valid = isinstance(seed, int) and 0 <= seed <= 2**63 - 1
    out = outcome("check_seed", lambda: _checks.check_seed(seed), "seed", valid=valid)
    if not isinstance(out, Exception):
        jax.random.key(out)  # JAX takes every seed the check lets through
        np.random.default_rng(out)


@pytest.mark.parametrize("poison", [np.nan, np.inf, None])
def test_pipeline_batches_are_checked_for_nan(poison):
    x = np.ones((6, 3), np.float32)
    if poison is not None:
        x[4, 1] = poison
    pipeline = jaxdl.data.Pipeline((x, np.zeros(6, np.int32)), num_threads=1, buffer=1)
    out = outcome("Pipeline", lambda: list(pipeline.batches(2)), "Pipeline", valid=poison is None)
    if isinstance(out, Exception):
        assert "example 4" in str(out)


@pytest.fixture(scope="module", autouse=True)
def tally():
    """After the module: the count of draws per test and outcome, printed when asked
    (``JAXDL_PRINT_TALLY=1 pytest -s -p no:xdist tests/test_bad_input.py``)."""
    yield
    if os.environ.get("JAXDL_PRINT_TALLY"):
        for (test, result), count in sorted(OUTCOMES.items()):
            print(f"{test:32s} {result:14s} {count}")
        print("total", sum(OUTCOMES.values()))


def test_the_trainer_checks_every_token_id_and_a_graph_given_to_predict():
    """Found after the boundary checks went in: fit's data reached the step unchecked past
    its first row, and a hand-built graph reached predict's compiled call."""
    x = np.random.default_rng(0).integers(0, VOCAB, size=(16, 5)).astype(np.int32)
    x[9, 2] = VOCAB  # one id out of range, past the row that initialises the model
    model = TransformerClassifier(VOCAB, 1, 8, 2, 16, max_len=5, num_classes=2)
    trainer = jaxdl.Trainer(model)
    with pytest.raises(ValueError, match=r"data\.x: token ids must lie in \[0, 7\)"):
        trainer.fit((x, np.zeros(16, np.int32)), batch_size=8, verbose=False)
    graph = graphs.make_graph([0, 1], [1, 0], nodes=np.ones((2, 3), np.float32))
    gcn = jaxdl.Trainer(GCN((4,), 2))
    gcn.init(graph)
    broken = graph._replace(senders=np.array([0, 5], np.int32))
    with pytest.raises(ValueError, match="senders"):
        gcn.predict(broken)
