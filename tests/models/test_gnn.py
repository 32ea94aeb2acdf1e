"""Graph neural networks: dense NumPy references, symmetry properties, learning, TFDS."""

from pathlib import Path

import chex
import jax
import numpy as np
import pytest
from graph_helpers import random_graph
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxdl
from jaxdl import graphs
from jaxdl.data import graph_sets
from jaxdl.models import GAT, GCN, GATLayer, GCNLayer, GraphNetwork, MessagePassingNet
from jaxdl.train import steps


def init(model, graph):
    return model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, graph)


def dense_adjacency(g) -> np.ndarray:
    """A[r, s] = number of edges from s to r."""
    n = g.nodes.shape[0]
    a = np.zeros((n, n))
    np.add.at(a, (g.receivers, g.senders), 1)
    return a


# ---------------------------------------------------------------------- references


@pytest.mark.parametrize("seed", range(4))
def test_gcn_layer_equals_the_dense_formula(seed):
    g = random_graph(9, p=0.35, features=4, seed=seed)
    layer = GCNLayer(5)
    variables = init(layer, g)
    variables = jax.tree.map(lambda p: p + 0.1, variables)  # a nonzero bias
    w = np.asarray(variables["params"]["linear"]["kernel"])
    b = np.asarray(variables["params"]["bias"])
    a_hat = dense_adjacency(g) + np.eye(9)
    d = np.diag(a_hat.sum(1) ** -0.5)
    expected = d @ a_hat @ d @ g.nodes @ w + b
    np.testing.assert_allclose(layer.apply(variables, g), expected, rtol=1e-5, atol=1e-5)


def test_gcn_layer_on_a_directed_graph_with_a_repeated_edge():
    g = graphs.make_graph([0, 0, 2, 1], [1, 1, 1, 2], nodes=np.eye(3, dtype=np.float32))
    layer = GCNLayer(2)
    variables = init(layer, g)
    a_hat = dense_adjacency(g) + np.eye(3)
    assert a_hat[1, 0] == 2  # the repeated edge counts twice
    d = np.diag(a_hat.sum(1) ** -0.5)
    expected = d @ a_hat @ d @ np.asarray(variables["params"]["linear"]["kernel"])
    np.testing.assert_allclose(layer.apply(variables, g), expected, rtol=1e-5, atol=1e-6)


def test_gat_layer_matches_a_naive_loop_and_its_weights_sum_to_one():
    g = random_graph(7, p=0.4, features=3, seed=5)
    layer = GATLayer(4, num_heads=3)
    variables = init(layer, g)
    out, state = layer.apply(variables, g, mutable=["intermediates"])
    weights = np.asarray(state["intermediates"]["attention"][0])
    p = variables["params"]
    h = np.einsum("nf,fhk->nhk", g.nodes, np.asarray(p["linear"]["kernel"]))
    a_s, a_r = np.asarray(p["attend_sender"]), np.asarray(p["attend_receiver"])
    a = dense_adjacency(g) + np.eye(7)
    expected = np.zeros((7, 3, 4))
    for r in range(7):
        sources = np.flatnonzero(a[r])
        for k in range(3):
            e = h[sources, k] @ a_s[k] + h[r, k] @ a_r[k]
            e = np.where(e > 0, e, 0.2 * e)
            alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
            expected[r, k] = alpha @ h[sources, k]
    np.testing.assert_allclose(out, expected.reshape(7, 12), rtol=1e-4, atol=1e-5)
    receivers = np.concatenate([g.receivers, np.arange(7)])
    per_node = np.zeros((7, 3))
    np.add.at(per_node, receivers, weights)
    np.testing.assert_allclose(per_node, 1.0, rtol=1e-5)


def test_graph_network_updates_edges_nodes_and_globals_as_documented():
    class Sum(jaxdl.models.MLP):  # a fixed function: the sum of its inputs, one column
        def __call__(self, x, train=False):
            return x.sum(-1, keepdims=True)

    g = random_graph(5, p=0.5, features=2, seed=3, edge_features=1)
    g = g._replace(globals=np.array([[10.0]], np.float32))
    net = GraphNetwork(edge_fn=Sum(), node_fn=Sum(), global_fn=Sum(), aggregate="sum")
    out = net.apply({}, g)
    x = g.nodes.sum(1)
    edges = g.edges[:, 0] + x[g.senders] + x[g.receivers] + 10.0
    received, sent = np.zeros(5), np.zeros(5)
    np.add.at(received, g.receivers, edges)
    np.add.at(sent, g.senders, edges)
    nodes = x + received + sent + 10.0
    np.testing.assert_allclose(out.edges[:, 0], edges, rtol=1e-5)
    np.testing.assert_allclose(out.nodes[:, 0], nodes, rtol=1e-5)
    np.testing.assert_allclose(out.globals, [[nodes.sum() + edges.sum() + 10.0]], rtol=1e-5)


def test_models_refuse_what_is_not_a_graph():
    with pytest.raises(TypeError, match="expected a jaxdl.graphs.GraphsTuple, got ndarray"):
        init(GCN(), np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="unknown readout 'median'; expected one of: attention"):
        init(GCN(readout="median"), random_graph(4))


# ---------------------------------------------------------------------- symmetry properties

NODE_MODELS = {
    "gcn": GCN((8,), 3),
    "gat": GAT((4,), 2, 3),
    "mpnn": MessagePassingNet((8,), 3, readout=None),
}
GRAPH_MODELS = {
    "gcn_mean": GCN((8,), 3, readout="mean"),
    "gat_attention": GAT((4,), 2, 3, readout="attention"),
    "mpnn_sum": MessagePassingNet((8, 8), 3, readout="sum"),
    "mpnn_max": MessagePassingNet((8,), 3, aggregate="max", readout="max"),
}
ALL = {**NODE_MODELS, **GRAPH_MODELS}
VARIABLES = {name: init(m, random_graph(4, edge_features=2)) for name, m in ALL.items()}
graph_args = st.tuples(st.integers(1, 9), st.floats(0.0, 0.8), st.integers(0, 10_000))


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@settings(max_examples=6, deadline=None)
@given(graph_args, st.sampled_from(sorted(ALL)))
def test_permuting_nodes_permutes_node_outputs_and_keeps_graph_outputs(args, name):
    n, p, seed = args
    g = random_graph(n, p, seed=seed, edge_features=2)
    rng = np.random.default_rng(seed)
    perm, edge_perm = rng.permutation(n), rng.permutation(len(g.senders))
    inverse = np.argsort(perm)  # old node perm[i] becomes node i
    shuffled = g._replace(
        nodes=g.nodes[perm],
        edges=g.edges[edge_perm],
        senders=inverse[g.senders[edge_perm]].astype(np.int32),
        receivers=inverse[g.receivers[edge_perm]].astype(np.int32),
    )
    model, variables = ALL[name], VARIABLES[name]
    before, after = model.apply(variables, g), model.apply(variables, shuffled)
    close(after, before[perm] if name in NODE_MODELS else before)


@settings(max_examples=6, deadline=None)
@given(graph_args, st.sampled_from(sorted(ALL)))
def test_padding_leaves_real_outputs_unchanged(args, name):
    n, p, seed = args
    g = random_graph(n, p, seed=seed, edge_features=2)
    # fixed budgets (at most 9 nodes and 72 edges come in), as a training run would use
    padded = graphs.pad_graphs_to(g, n_node=16, n_edge=80, n_graph=3)
    model, variables = ALL[name], VARIABLES[name]
    out = model.apply(variables, padded)
    rows = n if name in NODE_MODELS else 1
    close(out[:rows], model.apply(variables, g))


@settings(max_examples=3, deadline=None)
@given(graph_args, graph_args, st.sampled_from(sorted(ALL)))
def test_batching_two_graphs_equals_running_each_alone(first, second, name):
    a = random_graph(first[0], first[1], seed=first[2], edge_features=2)
    b = random_graph(second[0], second[1], seed=second[2] + 1, edge_features=2)
    model, variables = ALL[name], VARIABLES[name]
    together = model.apply(variables, graphs.batch([a, b]))
    alone = np.concatenate([model.apply(variables, a), model.apply(variables, b)])
    close(together, alone)


# ---------------------------------------------------------------------- training


def test_graph_batches_compile_once(monkeypatch):
    made = {}
    real_train = steps.make_train_step

    def counted(*args, **kwargs):
        # n=1: the compile is the only trace (the metric states come from their empty())
        made["train"] = chex.assert_max_traces(real_train(*args, **kwargs), n=1)
        return made["train"]

    monkeypatch.setattr(steps, "make_train_step", counted)
    data = graph_sets.cycles_or_trees(120, seed=0)
    assert data.num_batches(16, shuffle=True, seed=0, epoch=0) > 7  # many different batches
    trainer = jaxdl.Trainer(MessagePassingNet((8,), 2))
    trainer.fit(data, epochs=3, batch_size=16, verbose=False)
    assert "train" in made


def test_trainer_predict_and_evaluate_on_graph_data():
    data = graph_sets.cycles_or_trees(40, seed=1)
    model = GCN((8,), 2, readout="sum")
    trainer = jaxdl.Trainer(model, seed=0)
    trainer.fit(data, epochs=1, batch_size=8, verbose=False)
    logits = trainer.predict(data, batch_size=8)
    variables = {"params": trainer.state.params}
    # one unpadded batch of every graph in order (batching is tested to change nothing)
    close(logits, model.apply(variables, graphs.batch(data.graphs)))
    accuracy = np.mean(logits.argmax(1) == data.labels)
    assert trainer.evaluate(data)["accuracy"] == pytest.approx(accuracy)
    with pytest.raises(ValueError, match=r"data: labels must lie in \[0, 2\)"):
        trainer.evaluate(graphs.GraphDataset(data.graphs[:3], [0, 1, 2]))


@pytest.mark.parametrize("seed", range(3))
def test_gcn_learns_the_karate_club_split_from_one_label_per_faction(seed):
    graph, labels = graph_sets.karate_club()
    labelled = np.zeros(34, bool)
    labelled[[0, 33]] = True  # the instructor and the administrator
    trainer = jaxdl.Trainer(
        GCN((16,), 2, dropout_rate=0.5), optimizer=jaxdl.Optimizer("adam", 0.01, l2=5e-4), seed=seed
    )
    trainer.fit(graphs.NodeDataset(graph, labels, labelled), epochs=100, verbose=False)
    scores = trainer.evaluate(graphs.NodeDataset(graph, labels, ~labelled))
    assert scores["accuracy"] >= 0.9
    # the same trainer predicts every node of the graph
    predicted = trainer.predict(graph).argmax(1)
    assert np.mean(predicted[~labelled] == labels[~labelled]) == pytest.approx(scores["accuracy"])


def test_graph_network_finds_cycles_where_an_mlp_on_mean_features_cannot():
    data = graph_sets.cycles_or_trees(800, seed=0)
    train, test = data.subset(range(600)), data.subset(range(600, 800))
    gnn = jaxdl.Trainer(
        MessagePassingNet((32, 32), 2),
        optimizer=jaxdl.Optimizer("adam", 1e-3, schedule="cosine"),
        seed=0,
    )
    gnn.fit(train, epochs=20, batch_size=32, verbose=False)
    assert gnn.evaluate(test)["accuracy"] >= 0.95

    def mean_features(d):
        return np.stack([g.nodes.mean(0) for g in d.graphs]), d.labels

    mlp = jaxdl.Trainer(jaxdl.models.MLP((32, 2)), learning_rate=1e-2, seed=0)
    mlp.fit(mean_features(train), epochs=30, batch_size=32, verbose=False)
    assert mlp.evaluate(mean_features(test))["accuracy"] <= 0.6


def test_cycles_or_trees_is_what_it_says():
    import networkx as nx

    data = graph_sets.cycles_or_trees(60, seed=3, nodes=(5, 9))
    assert data.labels.mean() == 0.5
    for g, label in zip(data.graphs, data.labels):
        n = int(g.n_node[0])
        assert 5 <= n <= 9 and np.all(g.nodes == 1.0)
        nx_graph = nx.Graph(list(zip(g.senders.tolist(), g.receivers.tolist())))
        assert nx.is_connected(nx_graph) and nx_graph.number_of_nodes() == n
        assert nx_graph.number_of_edges() == n - 1 + label  # a tree, or one cycle more
    same = graph_sets.cycles_or_trees(60, seed=3, nodes=(5, 9))
    assert all(np.array_equal(a.senders, b.senders) for a, b in zip(data.graphs, same.graphs))


# ---------------------------------------------------------------------- TFDS


def molecules(n: int, seed: int = 0) -> list[dict]:
    """Examples with the features and layout of TFDS's ogbg_molpcba."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = int(rng.integers(2, 9))
        bonds = np.array([(i, i + 1) for i in range(atoms - 1)])  # a chain, both directions
        index = np.concatenate([bonds, bonds[:, ::-1]])
        labels = rng.integers(0, 2, 128).astype(np.float32)
        labels[rng.random(128) < 0.5] = np.nan  # assays not run on this molecule
        out.append(
            {
                "num_nodes": np.array([atoms]),
                "node_feat": rng.normal(size=(atoms, 9)).astype(np.float32),
                "num_edges": np.array([len(index)]),
                "edge_feat": rng.normal(size=(len(index), 3)).astype(np.float32),
                "edge_index": index.astype(np.int64),
                "labels": labels,
            }
        )
    return out


def test_ogbg_molpcba_loads_under_tfds_mock_data():
    import tensorflow_datasets as tfds

    examples = {"train": molecules(12, 0), "validation": molecules(5, 1)}
    asked = []

    def as_data_source(builder, split, **kwargs):
        asked.append((builder.name, split))
        return examples[split]

    with tfds.testing.mock_data(as_data_source_fn=as_data_source):
        train = graph_sets.load_ogbg_molpcba("train")
        validation = graph_sets.load_ogbg_molpcba("validation", limit=3)
    assert asked == [("ogbg_molpcba", "train"), ("ogbg_molpcba", "validation")]
    assert len(train) == 12 and len(validation) == 3 and train.labels.shape == (12, 128)
    first = train.graphs[0]
    np.testing.assert_array_equal(first.nodes, examples["train"][0]["node_feat"])
    np.testing.assert_array_equal(first.senders, examples["train"][0]["edge_index"][:, 0])
    assert first.edges.shape == (len(first.senders), 3)
    np.testing.assert_array_equal(
        np.isnan(train.labels), [np.isnan(e["labels"]) for e in examples["train"]]
    )
    batch = next(train.batches(4))
    out = MessagePassingNet((8,), 128).apply(
        init(MessagePassingNet((8,), 128), batch["x"]), batch["x"]
    )
    assert out.shape == (5, 128)


def test_ogbg_molpcba_not_prepared_says_what_to_do(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="'ogbg_molpcba' is not prepared in .*download=True"
    ):
        graph_sets.load_ogbg_molpcba(data_dir=str(tmp_path))


def test_molpcba_example_trains_with_missing_labels_masked(tmp_path, monkeypatch):
    import importlib.util
    import types

    import tensorflow_datasets as tfds

    script = Path(__file__).parents[2] / "examples" / "graph_classification.py"
    spec = importlib.util.spec_from_file_location("example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    logits = np.array([[2.0, -1.0, 0.5]], np.float32)
    labels = np.array([[1.0, np.nan, 0.0]], np.float32)
    by_hand = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(0.5))) / 2  # the NaN assay is skipped
    np.testing.assert_allclose(example.masked_binary_cross_entropy(logits, labels), [by_hand])

    data = {"train": molecules(40, 0), "validation": molecules(10, 1), "test": molecules(30, 2)}
    with tfds.testing.mock_data(as_data_source_fn=lambda builder, split, **kw: data[split]):
        example.molpcba(types.SimpleNamespace(quick=True, seed=0, epochs=1), str(tmp_path))
    metrics = __import__("json").loads((tmp_path / "metrics.json").read_text())
    assert 0.0 < metrics["test_mean_average_precision"] <= 1.0
    assert (tmp_path / "loss_curve.png").stat().st_size > 0
