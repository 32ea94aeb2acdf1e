"""Graph data: segment operations against NumPy loops, batching, padding and packing."""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from graph_helpers import random_graph

from jaxdl import graphs
from jaxdl.graphs import GraphsTuple

# ---------------------------------------------------------------------- segment operations


def test_segment_operations_match_numpy_loops():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(20, 3)).astype(np.float32)
    ids = rng.integers(0, 5, size=20)
    ids[ids == 3] = 4  # segment 3 is empty
    got = {
        "sum": graphs.segment_sum(data, ids, 6),
        "mean": graphs.segment_mean(data, ids, 6),
        "max": graphs.segment_max(data, ids, 6),
    }
    for s in range(6):
        rows = data[ids == s]
        expected = {
            "sum": rows.sum(0) if len(rows) else np.zeros(3),
            "mean": rows.mean(0) if len(rows) else np.zeros(3),
            "max": rows.max(0) if len(rows) else np.zeros(3),
        }
        for name in got:
            np.testing.assert_allclose(got[name][s], expected[name], rtol=1e-5, atol=1e-6)


def test_segment_softmax_is_a_softmax_within_each_segment():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(30, 2)).astype(np.float32) * 30  # large values: needs the shift
    ids = rng.integers(0, 7, size=30)
    weights = np.asarray(graphs.segment_softmax(jnp.asarray(logits), ids, 7))
    for s in np.unique(ids):
        z = logits[ids == s]
        expected = np.exp(z - z.max(0)) / np.exp(z - z.max(0)).sum(0)
        np.testing.assert_allclose(weights[ids == s], expected, rtol=1e-5, atol=1e-7)
    assert np.all(np.isfinite(weights))


# ---------------------------------------------------------------------- building graphs


def test_from_networkx_karate_club():
    club = nx.karate_club_graph()
    g = graphs.from_networkx(club)
    assert g.nodes.shape == (34, 34) and np.array_equal(g.nodes, np.eye(34))
    assert g.senders.shape == (2 * club.number_of_edges(),)
    assert g.n_node.tolist() == [34] and g.n_edge.tolist() == [156]
    pairs = set(zip(g.senders.tolist(), g.receivers.tolist()))
    assert all((u, v) in pairs and (v, u) in pairs for u, v in club.edges())


def test_from_networkx_reads_a_node_attribute_and_names_a_missing_one():
    path = nx.path_graph(3)
    for i in path.nodes:
        path.nodes[i]["x"] = [i, 2 * i]
    assert graphs.from_networkx(path, "x").nodes.tolist() == [[0, 0], [1, 2], [2, 4]]
    with pytest.raises(ValueError, match="node 0 has no attribute 'y'"):
        graphs.from_networkx(path, "y")


def test_from_adjacency_keeps_direction_and_weights():
    a = np.array([[0, 2, 0], [0, 0, 0], [1, 0, 0]], np.float32)  # 0 -> 1 (w=2), 2 -> 0 (w=1)
    g = graphs.from_adjacency(a)
    assert sorted(zip(g.senders.tolist(), g.receivers.tolist())) == [(0, 1), (2, 0)]
    weight = dict(zip(zip(g.senders.tolist(), g.receivers.tolist()), g.edges[:, 0].tolist()))
    assert weight == {(0, 1): 2.0, (2, 0): 1.0}
    with pytest.raises(ValueError, match=r"square matrix \(N, N\), got shape \(2, 3\)"):
        graphs.from_adjacency(np.zeros((2, 3)))


def test_make_graph_refuses_edges_outside_the_graph():
    with pytest.raises(ValueError, match=r"edge endpoints must lie in \[0, 3\).*got 5"):
        graphs.make_graph([0, 1], [1, 5], num_nodes=3)


# ---------------------------------------------------------------------- batching and padding


def test_batch_then_unbatch_gives_the_graphs_back():
    parts = [random_graph(n, seed=n, edge_features=2) for n in (4, 1, 7)]
    parts = [p._replace(globals=np.full((1, 2), i, np.float32)) for i, p in enumerate(parts)]
    joined = graphs.batch(parts)
    assert joined.n_node.tolist() == [4, 1, 7]
    # edges of graph 2 point at its own nodes, offset by the 5 nodes before it
    start = parts[0].n_edge[0] + parts[1].n_edge[0]
    assert joined.senders[start:].min() >= 5
    for original, back in zip(parts, graphs.unbatch(joined)):
        for a, b in zip(original, back):
            np.testing.assert_array_equal(a, b)


def test_padding_reaches_the_budgets_and_the_masks_find_the_real_rows():
    g = graphs.batch([random_graph(5, seed=1), random_graph(3, seed=2)])
    padded = graphs.pad_graphs_to(g, n_node=12, n_edge=40, n_graph=4)
    assert padded.nodes.shape == (12, 3) and padded.senders.shape == (40,)
    assert padded.n_node.tolist() == [5, 3, 4, 0] and int(padded.n_edge.sum()) == 40
    assert graphs.graph_mask(padded).tolist() == [True, True, False, False]
    assert graphs.node_mask(padded).tolist() == [True] * 8 + [False] * 4
    real_edges = int(g.n_edge.sum())
    assert graphs.edge_mask(padded).tolist() == [True] * real_edges + [False] * (40 - real_edges)
    # padding edges stay inside the padding graph
    assert set(padded.senders[real_edges:].tolist()) == {8}
    with pytest.raises(ValueError, match="must exceed the graph's 8 nodes and 2 graphs"):
        graphs.pad_graphs_to(g, n_node=8, n_edge=40, n_graph=4)


def test_pack_graphs_covers_each_graph_once_in_fixed_shapes():
    parts = [random_graph(n, seed=n) for n in np.random.default_rng(0).integers(1, 12, 40)]
    order = np.random.default_rng(1).permutation(40)
    seen, shapes = [], set()
    for padded, indices in graphs.pack_graphs(parts, n_node=32, n_edge=128, n_graph=6, order=order):
        shapes.add(jax.tree.map(np.shape, padded))
        seen.extend(indices.tolist())
        assert int(graphs.graph_mask(padded).sum()) == len(indices) <= 5
        assert int(padded.n_node[: len(indices)].sum()) <= 31
        for g, i in zip(graphs.unbatch(padded), indices):
            np.testing.assert_array_equal(g.nodes, parts[i].nodes)
    assert seen == order.tolist() and len(shapes) == 1
    big = int(np.argmax([p.n_node[0] for p in parts]))
    with pytest.raises(ValueError, match=f"graph {big} has 11 nodes .* budget of 7 nodes"):
        list(graphs.pack_graphs(parts, n_node=8, n_edge=128, n_graph=6, order=[big]))


def test_graph_dataset_batches_pad_labels_and_predict_order():
    parts = [random_graph(n, seed=n) for n in range(2, 12)]
    data = graphs.GraphDataset(parts, np.arange(10) % 3)
    batches = list(data.batches(4, shuffle=True, seed=0, epoch=1))
    assert len(batches) == data.num_batches(4, shuffle=True, seed=0, epoch=1)
    labels = np.concatenate([b["y"][b["mask"] > 0] for b in batches])
    assert sorted(labels.tolist()) == sorted(data.labels.tolist())
    for b in batches:
        assert b["y"].shape == (5,) and b["mask"].shape == (5,)
        np.testing.assert_array_equal(b["mask"] > 0, graphs.graph_mask(b["x"]))
    with pytest.raises(ValueError, match="graph 1 has no nodes"):
        empty = GraphsTuple(*parts[0])._replace(
            nodes=np.zeros((0, 3), np.float32),
            senders=np.zeros(0, np.int32),
            receivers=np.zeros(0, np.int32),
            n_node=np.array([0]),
            n_edge=np.array([0]),
        )
        graphs.GraphDataset([parts[0], empty], [0, 1])


def test_graph_dataset_gathers_the_same_batches_as_pack_graphs():
    rng = np.random.default_rng(2)
    parts = [
        random_graph(int(n), seed=i, edge_features=2) for i, n in enumerate(rng.integers(1, 9, 30))
    ]
    parts = [p._replace(globals=np.full((1, 1), i, np.float32)) for i, p in enumerate(parts)]
    data = graphs.GraphDataset(parts, np.arange(30))
    budgets = data.budgets(6)
    order = data._order(True, 3, 1)
    reference = list(graphs.pack_graphs(parts, *budgets, order=order))
    ours = list(data.batches(6, shuffle=True, seed=3, epoch=1))
    assert len(ours) == len(reference) == data.num_batches(6, shuffle=True, seed=3, epoch=1)
    for b, (padded, indices) in zip(ours, reference):
        for name, a, c in zip(GraphsTuple._fields, b["x"], padded):
            np.testing.assert_array_equal(a, c, err_msg=name)
        np.testing.assert_array_equal(b["y"][: len(indices)], indices)


def test_node_dataset_checks_its_inputs():
    g = random_graph(6)
    with pytest.raises(ValueError, match="the graph has 6 nodes but labels has 5"):
        graphs.NodeDataset(g, np.zeros(5, np.int32))
    with pytest.raises(ValueError, match="the mask selects no node"):
        graphs.NodeDataset(g, np.zeros(6, np.int32), np.zeros(6, bool))
    data = graphs.NodeDataset(g, np.array([0, -1, 1, -1, 0, 1]), [1, 0, 1, 0, 1, 1])
    assert data.targets().tolist() == [0, 1, 0, 1] and len(data) == 4
