"""jaxdl's GraphsTuple and jraph's: the same field order, and conversions that keep every
edge's direction (to_jraph / from_jraph by name, and plain positional unpacking)."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import graphs

# jraph.GraphsTuple's fields as its source (jraph/_src/graph.py) declares them, written out so
# the order check does not need jraph installed.
JRAPH_FIELDS = ("nodes", "edges", "receivers", "senders", "globals", "n_node", "n_edge")


def directed_graph() -> graphs.GraphsTuple:
    """Four nodes, five one-way edges (0->1 first), so a reversed edge changes the answer."""
    return graphs.make_graph(
        senders=[0, 1, 2, 0, 3],
        receivers=[1, 2, 3, 2, 1],
        nodes=np.arange(12, dtype=np.float32).reshape(4, 3),
        edges=np.arange(5, dtype=np.float32) + 1.0,
        globals=[0.5, -0.5],
    )


def test_field_order_is_jraphs():
    assert graphs.GraphsTuple._fields == JRAPH_FIELDS


def test_a_directed_edge_keeps_its_direction_in_jaxdl():
    g = graphs.make_graph([0], [1], num_nodes=2)
    assert g.senders[0] == 0 and g.receivers[0] == 1
    # unpacked in jraph's order, receivers third and senders fourth, the edge is still 0->1
    nodes, edges, receivers, senders, *_ = g
    assert senders[0] == 0 and receivers[0] == 1


def test_to_jraph_refuses_what_is_not_a_jaxdl_graph():
    with pytest.raises(TypeError, match=r"graph: expected a jaxdl.graphs.GraphsTuple, got .*dict"):
        graphs.to_jraph({"senders": [0], "receivers": [1]})


def test_missing_jraph_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jraph", None)  # an import of jraph now fails
    with pytest.raises(ImportError, match="to_jraph needs jraph.*pip install jraph"):
        graphs.to_jraph(directed_graph())
    with pytest.raises(ImportError, match="from_jraph needs jraph.*pip install jraph"):
        graphs.from_jraph(directed_graph())


# ---------------------------------------------------------------------- with jraph installed


@pytest.fixture
def jraph():
    return pytest.importorskip("jraph")


def assert_same_graph(a, b):
    assert type(a)._fields == type(b)._fields
    for name in type(a)._fields:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)


def test_jraphs_field_order_is_the_one_written_here(jraph):
    assert jraph.GraphsTuple._fields == JRAPH_FIELDS


def test_round_trip_keeps_every_field(jraph):
    g = directed_graph()
    there = graphs.to_jraph(g)
    assert isinstance(there, jraph.GraphsTuple)
    for name in JRAPH_FIELDS:
        assert getattr(there, name) is getattr(g, name), name  # the same arrays, not copies
    back = graphs.from_jraph(there)
    assert isinstance(back, graphs.GraphsTuple)
    assert_same_graph(back, g)
    graphs.check_graph(back)


def test_positional_conversion_keeps_senders_and_receivers(jraph):
    g = directed_graph()
    positional = jraph.GraphsTuple(*g)
    np.testing.assert_array_equal(positional.senders, [0, 1, 2, 0, 3])
    np.testing.assert_array_equal(positional.receivers, [1, 2, 3, 2, 1])
    assert_same_graph(positional, graphs.to_jraph(g))
    assert_same_graph(graphs.GraphsTuple(*positional), g)


def test_edge_zero_to_one_stays_zero_to_one(jraph):
    g = graphs.make_graph([0], [1], num_nodes=2)
    there = graphs.to_jraph(g)
    assert there.senders[0] == 0 and there.receivers[0] == 1
    back = graphs.from_jraph(there)
    assert back.senders[0] == 0 and back.receivers[0] == 1


def test_from_jraph_refuses_a_jaxdl_graph(jraph):
    with pytest.raises(TypeError, match=r"graph: expected a jraph.GraphsTuple, got jaxdl\."):
        graphs.from_jraph(directed_graph())


def native_jraph_graph(jraph):
    """The graph of ``directed_graph`` built by jraph from the same edge lists."""
    return jraph.GraphsTuple(
        nodes=jnp.arange(12, dtype=jnp.float32).reshape(4, 3),
        edges=(jnp.arange(5, dtype=jnp.float32) + 1.0)[:, None],
        senders=jnp.array([0, 1, 2, 0, 3]),
        receivers=jnp.array([1, 2, 3, 2, 1]),
        globals=jnp.array([[0.5, -0.5]], jnp.float32),
        n_node=jnp.array([4]),
        n_edge=jnp.array([5]),
    )


def test_jraph_models_compute_the_same_on_the_converted_graph(jraph):
    # Messages flow from sender to receiver and the node update weighs what a node receives
    # and what it sends differently, so a graph with reversed edges gives other numbers.
    network = jraph.GraphNetwork(
        update_edge_fn=lambda edges, sent, received, globals_: sent * edges,
        update_node_fn=lambda nodes, sent, received, globals_: nodes + 10 * received + 100 * sent,
        update_global_fn=None,
    )
    convolution = jraph.GraphConvolution(
        update_node_fn=lambda nodes: 2.0 * nodes,
        add_self_edges=False,
        symmetric_normalization=False,
    )
    native = native_jraph_graph(jraph)
    g = directed_graph()
    for model in (network, convolution):
        expected = np.asarray(model(native).nodes)
        np.testing.assert_allclose(np.asarray(model(graphs.to_jraph(g)).nodes), expected)
        np.testing.assert_allclose(np.asarray(model(jraph.GraphsTuple(*g)).nodes), expected)
        compiled = jax.jit(lambda graph, model=model: model(graphs.to_jraph(graph)).nodes)
        np.testing.assert_allclose(np.asarray(compiled(g)), expected)
    # the convolution sums twice the senders' features into each receiver: node 1 hears
    # nodes 0 and 3, node 0 hears no one
    out = np.asarray(convolution(graphs.to_jraph(g)).nodes)
    np.testing.assert_allclose(out[1], 2.0 * (g.nodes[0] + g.nodes[3]))
    np.testing.assert_allclose(out[0], 0.0)
    # and the check has teeth: the same model on the reversed edges answers otherwise
    reversed_edges = native._replace(senders=native.receivers, receivers=native.senders)
    assert not np.allclose(network(reversed_edges).nodes, network(native).nodes)
