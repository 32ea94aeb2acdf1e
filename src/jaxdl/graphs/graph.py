"""Graphs as data: ``GraphsTuple``, batching, padding to fixed budgets, segment operations.

``jit`` compiles one program per input shape, and graphs come in every size. So many graphs
are batched into one big disconnected graph, and that graph is padded to fixed budgets of
nodes, edges and graphs: every batch of an epoch then has the same shape and the step compiles
once. Padding lives in a padding graph of its own (its nodes are connected only to each other),
so it never changes what real nodes and graphs compute; the masks say which rows are real.

Host-side functions (``batch``, ``unbatch``, ``pad_graphs_to``, ``pack_graphs``,
``from_networkx``, ``from_adjacency``) work on NumPy arrays; the segment operations and masks
are JAX functions that run inside compiled code.

``to_jraph`` and ``from_jraph`` convert to and from ``jraph.GraphsTuple``, whose field order
``GraphsTuple`` shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks


class GraphsTuple(NamedTuple):
    """One graph, or many graphs batched into one (a jraph-style named tuple; a JAX pytree).

    The fields come in ``jraph.GraphsTuple``'s order (``receivers`` before ``senders``), so
    even a positional conversion such as ``jraph.GraphsTuple(*graph)`` keeps every edge's
    direction; ``to_jraph`` and ``from_jraph`` convert by field name.

    With N nodes, E directed edges and G graphs in total:

    Attributes:
      nodes: (N, F) node features, or None.
      edges: (E, F_e) edge features, or None.
      receivers: (E,) int32, index of the node each edge enters. An undirected edge is stored
        as two directed edges.
      senders: (E,) int32, index of the node each edge leaves.
      globals: (G, F_g) per-graph features, or None.
      n_node: (G,) int32, the number of nodes of each graph; the nodes of graph g are the
        ``n_node[g]`` rows after those of graphs 0..g-1.
      n_edge: (G,) int32, the number of edges of each graph, laid out the same way.

    Example:
      >>> path = jaxdl.graphs.make_graph([0, 1], [1, 2], nodes=np.eye(3, dtype=np.float32))
      >>> path.n_node, path.senders, path.nodes.shape
      (array([3]...), array([0, 1]...), (3, 3))
      >>> two = jaxdl.graphs.batch([path, path])  # one graph of two components
      >>> two.n_node, two.senders
      (array([3, 3]...), array([0, 1, 3, 4]...))
    """

    nodes: Any
    edges: Any
    receivers: Any  # before senders, as in jraph: positional code written for jraph stays right
    senders: Any
    globals: Any
    n_node: Any
    n_edge: Any


# ---------------------------------------------------------------------- segment operations


def segment_sum(data: jax.Array, segment_ids: jax.Array, num_segments: int) -> jax.Array:
    """Sum of the rows of ``data`` (M, ...) per segment: (num_segments, ...)."""
    return jax.ops.segment_sum(data, segment_ids, num_segments)


def segment_count(segment_ids: jax.Array, num_segments: int, dtype=jnp.float32) -> jax.Array:
    """How many rows fall in each segment: (num_segments,)."""
    return jax.ops.segment_sum(jnp.ones(segment_ids.shape, dtype), segment_ids, num_segments)


def _per_row(values: jax.Array, like: jax.Array) -> jax.Array:
    return values.reshape(values.shape + (1,) * (like.ndim - 1))


def segment_mean(data: jax.Array, segment_ids: jax.Array, num_segments: int) -> jax.Array:
    """Mean of the rows of ``data`` (M, ...) per segment; 0 for an empty segment."""
    total = jax.ops.segment_sum(data, segment_ids, num_segments)
    count = segment_count(segment_ids, num_segments, total.dtype)
    return total / _per_row(jnp.maximum(count, 1), total)


def segment_max(data: jax.Array, segment_ids: jax.Array, num_segments: int) -> jax.Array:
    """Maximum of the rows of ``data`` (M, ...) per segment; 0 for an empty segment."""
    out = jax.ops.segment_max(data, segment_ids, num_segments)
    count = segment_count(segment_ids, num_segments)
    return jnp.where(_per_row(count > 0, out), out, 0)


def segment_softmax(logits: jax.Array, segment_ids: jax.Array, num_segments: int) -> jax.Array:
    """Softmax of ``logits`` (M, ...) over the rows of each segment, e.g. over the edges that
    enter each node; the weights of a segment sum to one along axis 0."""
    peak = jax.lax.stop_gradient(jax.ops.segment_max(logits, segment_ids, num_segments))
    peak = jnp.where(jnp.isfinite(peak), peak, 0)
    exp = jnp.exp(logits - peak[segment_ids])
    total = jax.ops.segment_sum(exp, segment_ids, num_segments)
    return exp / total[segment_ids]


# ---------------------------------------------------------------------- structure


def num_nodes(graph: GraphsTuple) -> int:
    """N, the total number of nodes: the rows of the node features (a static shape)."""
    return _node_rows(graph)


def _node_rows(graph: GraphsTuple) -> int:
    if graph.nodes is not None:
        return int(jax.tree.leaves(graph.nodes)[0].shape[0])
    return int(np.sum(np.asarray(graph.n_node)))  # no features: the counts must be concrete


def node_graph_index(graph: GraphsTuple) -> jax.Array:
    """(N,) int32: the graph each node belongs to."""
    n = graph.n_node.shape[0]
    return jnp.repeat(jnp.arange(n), graph.n_node, total_repeat_length=_node_rows(graph))


def edge_graph_index(graph: GraphsTuple) -> jax.Array:
    """(E,) int32: the graph each edge belongs to."""
    n = graph.n_edge.shape[0]
    return jnp.repeat(jnp.arange(n), graph.n_edge, total_repeat_length=graph.senders.shape[0])


def _padding_graph(graph: GraphsTuple) -> jax.Array:
    """Index of the padding graph: the last graph with nodes (``pad_graphs_to`` gives it one)."""
    has_nodes = graph.n_node > 0
    return graph.n_node.shape[0] - 1 - jnp.argmax(has_nodes[::-1])


def graph_mask(graph: GraphsTuple) -> jax.Array:
    """(G,) bool: True for real graphs of a graph that came out of ``pad_graphs_to``."""
    return jnp.arange(graph.n_node.shape[0]) < _padding_graph(graph)


def node_mask(graph: GraphsTuple) -> jax.Array:
    """(N,) bool: True for nodes of real graphs of a graph that came out of ``pad_graphs_to``."""
    return graph_mask(graph)[node_graph_index(graph)]


def edge_mask(graph: GraphsTuple) -> jax.Array:
    """(E,) bool: True for edges of real graphs of a graph that came out of ``pad_graphs_to``."""
    return graph_mask(graph)[edge_graph_index(graph)]


# ---------------------------------------------------------------------- building graphs


def _features(value, rows: int, name: str):
    if value is None:
        return None
    value = _checks.as_array(value, name)
    if value.dtype == object or value.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {value.dtype}")
    if value.ndim == 0:
        raise ValueError(f"{name}: expected {rows} rows, got a scalar")
    if value.ndim == 1:
        value = value[:, None]
    if value.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows, got an array of shape {value.shape}")
    _checks.check_finite_features(value, name)
    return value.astype(np.float32) if value.dtype.kind == "f" else value


def check_graph(graph, name: str = "graph") -> GraphsTuple:
    """``graph`` as a ``GraphsTuple`` of NumPy arrays whose structure holds together: every
    edge joins two nodes of its own graph, the counts are >= 0 and sum to the rows, the
    features are finite. A ValueError/TypeError names the field otherwise."""
    if not isinstance(graph, GraphsTuple):
        raise TypeError(f"{name}: expected a jaxdl.graphs.GraphsTuple, got {type(graph).__name__}")
    graph = GraphsTuple(*(None if f is None else _checks.as_array(f, name) for f in graph))
    for field in ("senders", "receivers", "n_node", "n_edge"):
        if getattr(graph, field) is None:
            raise ValueError(f"{name}.{field}: expected a 1-D array, got None")
    if graph.nodes is not None:
        if graph.nodes.ndim < 1:
            raise ValueError(f"{name}.nodes: expected (N, F) node features, got a scalar")
        rows = graph.nodes.shape[0]
    else:
        rows = int(np.sum(graph.n_node))
    _checks.check_graph_structure(
        graph.senders, graph.receivers, graph.n_node, graph.n_edge, rows, name
    )
    for field, count in (("edges", len(graph.senders)), ("globals", len(graph.n_node))):
        values = getattr(graph, field)
        if values is not None and (values.ndim < 1 or values.shape[0] != count):
            raise ValueError(
                f"{name}.{field}: expected {count} rows, got an array of shape {values.shape}"
            )
    for field in ("nodes", "edges", "globals"):
        if getattr(graph, field) is not None:
            _checks.check_finite_features(getattr(graph, field), f"{name}.{field}")
    return graph


def make_graph(
    senders,
    receivers,
    nodes=None,
    edges=None,
    globals=None,
    num_nodes: int | None = None,
) -> GraphsTuple:
    """One graph from its edge list (NumPy).

    Args:
      senders: (E,) the node index each directed edge leaves.
      receivers: (E,) the node index each directed edge enters.
      nodes: (N, F) node features (or (N,), made (N, 1)); None needs ``num_nodes``.
      edges: (E, F_e) edge features or None.
      globals: (F_g,) or (1, F_g) graph features or None.
      num_nodes: N, when ``nodes`` is None.
    """
    senders = _checks.index_array(np.asarray(senders).reshape(-1), "senders")
    receivers = _checks.index_array(np.asarray(receivers).reshape(-1), "receivers")
    if senders.shape != receivers.shape:
        raise ValueError(
            f"senders and receivers must have the same shape, got {senders.shape} and "
            f"{receivers.shape}"
        )
    if nodes is None and num_nodes is None:
        raise ValueError("give node features (nodes=) or the number of nodes (num_nodes=)")
    if nodes is not None:
        shape = np.shape(_checks.as_array(nodes, "nodes"))
        if not shape:
            raise ValueError("nodes: expected node features (N, F) or (N,), got a scalar")
        n = int(shape[0])
    else:
        n = _checks.check_int(num_nodes, "num_nodes", minimum=0)
    for field, ends in (("senders", senders), ("receivers", receivers)):
        if len(ends) and (ends.min() < 0 or ends.max() >= n):
            bad = ends.min() if ends.min() < 0 else ends.max()
            raise ValueError(
                f"{field}: edge endpoints must lie in [0, {n}) for a graph of {n} nodes, got {bad}"
            )
    if globals is not None:
        globals = _checks.as_array(globals, "globals")
        if globals.dtype == object or globals.dtype.kind not in "fiub":
            raise TypeError(f"globals: expected a numeric array, got dtype {globals.dtype}")
        globals = globals.astype(np.float32).reshape(1, -1)
        _checks.check_finite_features(globals, "globals")
    return GraphsTuple(
        nodes=_features(nodes, n, "nodes"),
        edges=_features(edges, len(senders), "edges"),
        senders=senders.astype(np.int32),
        receivers=receivers.astype(np.int32),
        globals=globals,
        n_node=np.array([n], np.int32),
        n_edge=np.array([len(senders)], np.int32),
    )


def from_adjacency(adjacency, node_features=None) -> GraphsTuple:
    """A graph from an adjacency matrix A (N, N): an edge from i to j wherever A[i, j] != 0.

    A symmetric A gives both directions of each undirected edge. The entries A[i, j] become
    the edge features (E, 1); ``node_features`` (N, F) defaults to one-hot node ids (N, N).
    """
    adjacency = _checks.as_array(adjacency, "adjacency")
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency: expected a square matrix (N, N), got shape {adjacency.shape}")
    if adjacency.dtype == object or adjacency.dtype.kind not in "fiub":
        raise TypeError(f"adjacency: expected a numeric matrix, got dtype {adjacency.dtype}")
    if adjacency.dtype.kind == "f" and not np.isfinite(adjacency).all():
        i, j = (int(k) for k in np.argwhere(~np.isfinite(adjacency))[0])
        raise ValueError(
            f"adjacency: entries must be finite numbers, got {adjacency[i, j]} at [{i}, {j}]"
        )
    n = adjacency.shape[0]
    if node_features is not None:
        rows = np.shape(_checks.as_array(node_features, "node_features"))
        if not rows or rows[0] != n:
            raise ValueError(
                f"node_features: expected {n} rows (one per row of adjacency), got shape {rows}"
            )
    senders, receivers = np.nonzero(adjacency)
    nodes = np.eye(n, dtype=np.float32) if node_features is None else node_features
    edges = adjacency[senders, receivers].astype(np.float32)[:, None]
    return make_graph(senders, receivers, nodes=nodes, edges=edges)


def from_networkx(graph, node_features=None) -> GraphsTuple:
    """A ``GraphsTuple`` from a NetworkX graph, with nodes in the order of ``graph.nodes``.

    An undirected edge becomes two directed edges. ``node_features`` is None (one-hot node ids,
    (N, N)), the name of a node attribute holding a number or a vector, or an array (N, F).
    """
    nodes = list(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    pairs = [(index[u], index[v]) for u, v in graph.edges()]
    if not graph.is_directed():
        pairs += [(v, u) for u, v in pairs if u != v]
    senders = np.array([p[0] for p in pairs], np.int64)
    receivers = np.array([p[1] for p in pairs], np.int64)
    if node_features is None:
        features = np.eye(len(nodes), dtype=np.float32)
    elif isinstance(node_features, str):
        missing = [n for n in nodes if node_features not in graph.nodes[n]]
        if missing:
            raise ValueError(f"node {missing[0]!r} has no attribute {node_features!r}")
        features = np.array([graph.nodes[n][node_features] for n in nodes], np.float32)
    else:
        features = node_features
    return make_graph(senders, receivers, nodes=features)


# ---------------------------------------------------------------------- jraph


def _jraph(caller: str):
    # jraph is optional: only these conversions need it, and nothing else in jaxdl imports it
    try:
        import jraph
    except ImportError as error:
        raise ImportError(
            f"{caller} needs jraph, which is not installed: pip install jraph"
        ) from error
    return jraph


def _type_name(value) -> str:
    # both libraries call their class GraphsTuple, so the bare name would not tell them apart
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def to_jraph(graph: GraphsTuple):
    """``graph`` as a ``jraph.GraphsTuple`` holding the same arrays, field by field by name.

    Nothing is copied or checked, so it works on NumPy arrays, JAX arrays and inside ``jit``.
    The two tuples list their fields in the same order (receivers before senders), so a
    positional ``jraph.GraphsTuple(*graph)`` gives the same graph too. Needs jraph
    (``pip install jraph``).

    Args:
      graph: a ``jaxdl.graphs.GraphsTuple`` (nodes (N, F), edges (E, F_e), receivers and
        senders (E,), globals (G, F_g), n_node and n_edge (G,)).

    Returns:
      A ``jraph.GraphsTuple`` with the same shapes in the fields of the same names.
    """
    if not isinstance(graph, GraphsTuple):
        raise TypeError(f"graph: expected a jaxdl.graphs.GraphsTuple, got {_type_name(graph)}")
    jraph = _jraph("to_jraph")
    return jraph.GraphsTuple(**graph._asdict())


def from_jraph(graph) -> GraphsTuple:
    """A ``jaxdl.graphs.GraphsTuple`` holding the arrays of a ``jraph.GraphsTuple``, by name.

    Nothing is copied or checked (``check_graph`` checks the structure when wanted), so it
    works inside ``jit`` too. The field orders match, so ``GraphsTuple(*graph)`` would give
    the same graph. Needs jraph (``pip install jraph``).

    Args:
      graph: a ``jraph.GraphsTuple`` (nodes (N, F), edges (E, F_e), receivers and senders
        (E,), globals (G, F_g), n_node and n_edge (G,)).

    Returns:
      A ``jaxdl.graphs.GraphsTuple`` with the same shapes in the fields of the same names.
    """
    jraph = _jraph("from_jraph")
    if not isinstance(graph, jraph.GraphsTuple):
        raise TypeError(f"graph: expected a jraph.GraphsTuple, got {_type_name(graph)}")
    return GraphsTuple(**graph._asdict())


# ---------------------------------------------------------------------- batching and padding


def _concat(parts: list, name: str):
    if all(p is None for p in parts):
        return None
    if any(p is None for p in parts):
        raise ValueError(f"some graphs have {name} and some do not")
    return np.concatenate(parts)


def batch(graphs: Sequence[GraphsTuple]) -> GraphsTuple:
    """Many graphs as one: nodes, edges and graphs are stacked in order and edge indices are
    offset, so graph g of the result is ``graphs[g]`` (each may itself be a batch)."""
    if isinstance(graphs, GraphsTuple) or not hasattr(graphs, "__len__"):
        raise TypeError(f"graphs: expected a sequence of GraphsTuples, got {type(graphs).__name__}")
    if not graphs:
        raise ValueError("batch: expected at least one graph, got none")
    graphs = [check_graph(g, f"graphs[{i}]") for i, g in enumerate(graphs)]
    offsets = np.cumsum([0] + [int(g.n_node.sum()) for g in graphs[:-1]])
    return GraphsTuple(
        nodes=_concat([g.nodes for g in graphs], "node features"),
        edges=_concat([g.edges for g in graphs], "edge features"),
        senders=np.concatenate([g.senders + o for g, o in zip(graphs, offsets)]).astype(np.int32),
        receivers=np.concatenate([g.receivers + o for g, o in zip(graphs, offsets)]).astype(
            np.int32
        ),
        globals=_concat([g.globals for g in graphs], "global features"),
        n_node=np.concatenate([g.n_node for g in graphs]).astype(np.int32),
        n_edge=np.concatenate([g.n_edge for g in graphs]).astype(np.int32),
    )


def unbatch(graph: GraphsTuple) -> list[GraphsTuple]:
    """The inverse of ``batch``: one ``GraphsTuple`` per graph, edge indices made local."""
    graph = GraphsTuple(*(None if f is None else np.asarray(f) for f in graph))
    node_start = np.concatenate([[0], np.cumsum(graph.n_node)])
    edge_start = np.concatenate([[0], np.cumsum(graph.n_edge)])
    out = []
    for g in range(len(graph.n_node)):
        nodes = slice(node_start[g], node_start[g + 1])
        edges = slice(edge_start[g], edge_start[g + 1])
        out.append(
            GraphsTuple(
                nodes=None if graph.nodes is None else graph.nodes[nodes],
                edges=None if graph.edges is None else graph.edges[edges],
                senders=graph.senders[edges] - node_start[g],
                receivers=graph.receivers[edges] - node_start[g],
                globals=None if graph.globals is None else graph.globals[g : g + 1],
                n_node=graph.n_node[g : g + 1],
                n_edge=graph.n_edge[g : g + 1],
            )
        )
    return out


def _zeros_like_rows(features, rows: int):
    if features is None:
        return None
    return np.zeros((rows, *features.shape[1:]), features.dtype)


def pad_graphs_to(graph: GraphsTuple, n_node: int, n_edge: int, n_graph: int) -> GraphsTuple:
    """Pad a (batched) graph to exactly ``n_node`` nodes, ``n_edge`` edges, ``n_graph`` graphs.

    The padding is one extra graph holding every padding node and edge (its edges join its own
    first node to itself) followed by empty graphs, so no real node ever receives a message
    from padding. The budgets must leave room for it: ``n_node`` > the real nodes and
    ``n_graph`` > the real graphs. ``graph_mask``/``node_mask``/``edge_mask`` find the real rows.
    """
    graph = check_graph(graph)
    n_node = _checks.check_int(n_node, "n_node")
    n_edge = _checks.check_int(n_edge, "n_edge", minimum=0)
    n_graph = _checks.check_int(n_graph, "n_graph")
    real_nodes, real_edges = int(graph.n_node.sum()), int(graph.n_edge.sum())
    real_graphs = len(graph.n_node)
    if n_node <= real_nodes or n_edge < real_edges or n_graph <= real_graphs:
        raise ValueError(
            f"pad_graphs_to: the budgets (nodes={n_node}, edges={n_edge}, graphs={n_graph}) "
            f"must exceed the graph's {real_nodes} nodes and {real_graphs} graphs (one node and "
            f"one graph go to padding) and hold its {real_edges} edges"
        )
    pad_nodes, pad_edges, pad_graphs = (
        n_node - real_nodes,
        n_edge - real_edges,
        n_graph - real_graphs,
    )
    padding = GraphsTuple(
        nodes=_zeros_like_rows(graph.nodes, pad_nodes),
        edges=_zeros_like_rows(graph.edges, pad_edges),
        senders=np.zeros(pad_edges, np.int32),
        receivers=np.zeros(pad_edges, np.int32),
        globals=_zeros_like_rows(graph.globals, pad_graphs),
        n_node=np.array([pad_nodes] + [0] * (pad_graphs - 1), np.int32),
        n_edge=np.array([pad_edges] + [0] * (pad_graphs - 1), np.int32),
    )
    return batch([graph, padding])
