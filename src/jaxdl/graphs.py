"""Graphs as data: ``GraphsTuple``, batching, padding to fixed budgets, segment operations.

``jit`` compiles one program per input shape, and graphs come in every size. So many graphs
are batched into one big disconnected graph, and that graph is padded to fixed budgets of
nodes, edges and graphs: every batch of an epoch then has the same shape and the step compiles
once. Padding lives in a padding graph of its own (its nodes are connected only to each other),
so it never changes what real nodes and graphs compute; the masks say which rows are real.

Host-side functions (``batch``, ``unbatch``, ``pad_graphs_to``, ``pack_graphs``,
``from_networkx``, ``from_adjacency``) work on NumPy arrays; the segment operations and masks
are JAX functions that run inside compiled code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class GraphsTuple(NamedTuple):
    """One graph, or many graphs batched into one (a jraph-style named tuple; a JAX pytree).

    With N nodes, E directed edges and G graphs in total:

    Attributes:
      nodes: (N, F) node features, or None.
      edges: (E, F_e) edge features, or None.
      senders: (E,) int32, index of the node each edge leaves.
      receivers: (E,) int32, index of the node each edge enters. An undirected edge is stored
        as two directed edges.
      globals: (G, F_g) per-graph features, or None.
      n_node: (G,) int32, the number of nodes of each graph; the nodes of graph g are the
        ``n_node[g]`` rows after those of graphs 0..g-1.
      n_edge: (G,) int32, the number of edges of each graph, laid out the same way.
    """

    nodes: Any
    edges: Any
    senders: Any
    receivers: Any
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
    value = np.asarray(value)
    if value.ndim == 1:
        value = value[:, None]
    if value.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows, got an array of shape {value.shape}")
    return value.astype(np.float32) if value.dtype.kind == "f" else value


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
      senders, receivers: (E,) node indices of each directed edge.
      nodes: (N, F) node features (or (N,), made (N, 1)); None needs ``num_nodes``.
      edges: (E, F_e) edge features or None.
      globals: (F_g,) or (1, F_g) graph features or None.
      num_nodes: N, when ``nodes`` is None.
    """
    senders = np.asarray(senders, np.int64).reshape(-1)
    receivers = np.asarray(receivers, np.int64).reshape(-1)
    if senders.shape != receivers.shape:
        raise ValueError(
            f"senders and receivers must have the same shape, got {senders.shape} and "
            f"{receivers.shape}"
        )
    if nodes is None and num_nodes is None:
        raise ValueError("give node features (nodes=) or the number of nodes (num_nodes=)")
    n = int(np.asarray(nodes).shape[0]) if nodes is not None else int(num_nodes)
    if len(senders) and (
        min(senders.min(), receivers.min()) < 0 or max(senders.max(), receivers.max()) >= n
    ):
        bad = max(senders.max(), receivers.max())
        raise ValueError(f"edge endpoints must lie in [0, {n}) for a graph of {n} nodes, got {bad}")
    if globals is not None:
        globals = np.asarray(globals, np.float32).reshape(1, -1)
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
    adjacency = np.asarray(adjacency)
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency: expected a square matrix (N, N), got shape {adjacency.shape}")
    n = adjacency.shape[0]
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
    if not graphs:
        raise ValueError("batch: expected at least one graph, got none")
    graphs = [GraphsTuple(*(None if f is None else np.asarray(f) for f in g)) for g in graphs]
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
    graph = GraphsTuple(*(None if f is None else np.asarray(f) for f in graph))
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


def pad_rows(values, rows: int) -> np.ndarray:
    """``values`` (M, ...) followed by zero rows up to ``rows`` rows (labels of padded graphs)."""
    values = np.asarray(values)
    return np.concatenate([values, np.zeros((rows - len(values), *values.shape[1:]), values.dtype)])


def _groups(
    sizes_n: np.ndarray, sizes_e: np.ndarray, order, n_node: int, n_edge: int, n_graph: int
) -> Iterator[np.ndarray]:
    """Indices of the graphs of each batch: greedy, in ``order``, under the budgets (one node
    and one graph of each budget are left to padding)."""
    current: list[int] = []
    nodes = edges = 0
    for i in order:
        size_n, size_e = int(sizes_n[i]), int(sizes_e[i])
        if size_n > n_node - 1 or size_e > n_edge:
            raise ValueError(
                f"graph {i} has {size_n} nodes and {size_e} edges, more than the budget of "
                f"{n_node - 1} nodes and {n_edge} edges per batch allows"
            )
        if current and (
            nodes + size_n > n_node - 1 or edges + size_e > n_edge or len(current) == n_graph - 1
        ):
            yield np.array(current)
            current, nodes, edges = [], 0, 0
        current.append(int(i))
        nodes, edges = nodes + size_n, edges + size_e
    if current:
        yield np.array(current)


def pack_graphs(
    graphs: Sequence[GraphsTuple], n_node: int, n_edge: int, n_graph: int, order=None
) -> Iterator[tuple[GraphsTuple, np.ndarray]]:
    """Pack single graphs greedily, in ``order``, into padded batches under fixed budgets.

    Each batch takes graphs while they fit in ``n_node - 1`` nodes, ``n_edge`` edges and
    ``n_graph - 1`` graphs (the rest is padding), so every batch has the same shapes and a
    step over them compiles once. Yields ``(padded_batch, indices)`` where ``indices`` are the
    positions in ``graphs`` of the batch's real graphs, in order.
    """
    order = np.arange(len(graphs)) if order is None else np.asarray(order)
    sizes_n = np.array([int(np.sum(g.n_node)) for g in graphs])
    sizes_e = np.array([int(np.sum(g.n_edge)) for g in graphs])
    for indices in _groups(sizes_n, sizes_e, order, n_node, n_edge, n_graph):
        padded = pad_graphs_to(batch([graphs[j] for j in indices]), n_node, n_edge, n_graph)
        yield padded, indices


def _round_up(value: float, multiple: int) -> int:
    return int(-(-int(np.ceil(value)) // multiple) * multiple)


class GraphDataset:
    """Many labelled graphs for graph-level tasks, served as padded batches of fixed shape.

    ``Trainer.fit`` takes it in place of (x, y) arrays. A batch is
    ``{"x": padded GraphsTuple, "y": (batch_size + 1, ...), "mask": (batch_size + 1,)}``: up to
    ``batch_size`` real graphs and one padding graph, whose label row has mask 0.

    Args:
      graphs: single graphs (``n_node`` of shape (1,)), each with at least one node.
      labels: (num_graphs,) integer classes or (num_graphs, ...) targets.
      node_budget, edge_budget: nodes and edges per batch. By default 1.25 times what
        ``batch_size`` graphs of mean size need (at least the largest graph), rounded up to a
        multiple of 64, so batches are nearly full and rarely closed early.
    """

    def __init__(
        self, graphs: Sequence[GraphsTuple], labels, *, node_budget=None, edge_budget=None
    ):
        self.graphs = list(graphs)
        self.labels = np.asarray(labels)
        if len(self.graphs) != len(self.labels):
            raise ValueError(
                f"GraphDataset: {len(self.graphs)} graphs but {len(self.labels)} labels"
            )
        if not self.graphs:
            raise ValueError("GraphDataset: expected at least one graph, got none")
        self.n_node = np.array([int(np.sum(g.n_node)) for g in self.graphs])
        self.n_edge = np.array([int(np.sum(g.n_edge)) for g in self.graphs])
        empty = np.flatnonzero(self.n_node == 0)
        if len(empty):
            raise ValueError(f"GraphDataset: graph {empty[0]} has no nodes")
        self.node_budget, self.edge_budget = node_budget, edge_budget
        self._store: GraphsTuple | None = None

    def _stored(self) -> GraphsTuple:
        """Every graph in one unpadded batch, built once: a batch is then a gather from it."""
        if self._store is None:
            self._store = batch(self.graphs)
            self._node_start = np.concatenate([[0], np.cumsum(self.n_node)[:-1]])
            self._edge_start = np.concatenate([[0], np.cumsum(self.n_edge)[:-1]])
            edge_graph = np.repeat(np.arange(len(self.graphs)), self.n_edge)
            # edge endpoints relative to their own graph's first node
            self._local_senders = self._store.senders - self._node_start[edge_graph]
            self._local_receivers = self._store.receivers - self._node_start[edge_graph]
        return self._store

    def _gather(self, indices: np.ndarray, n_node: int, n_edge: int, n_graph: int):
        """``pad_graphs_to(batch([graphs[i] for i in indices]), ...)``, vectorised."""
        store = self._stored()
        counts_n, counts_e = self.n_node[indices], self.n_edge[indices]
        real_n, real_e = int(counts_n.sum()), int(counts_e.sum())
        starts_n = np.cumsum(counts_n) - counts_n  # where each graph starts in the batch
        starts_e = np.cumsum(counts_e) - counts_e
        node_rows = np.repeat(self._node_start[indices] - starts_n, counts_n) + np.arange(real_n)
        edge_rows = np.repeat(self._edge_start[indices] - starts_e, counts_e) + np.arange(real_e)
        offsets = np.repeat(starts_n, counts_e)

        def rows(features, taken, total):
            if features is None:
                return None
            out = np.zeros((total, *features.shape[1:]), features.dtype)
            out[: len(taken)] = features[taken]
            return out

        def endpoints(local):
            out = np.full(n_edge, real_n, np.int32)  # padding edges: at the first padding node
            out[:real_e] = local[edge_rows] + offsets
            return out

        def counts(real, padding):
            tail = np.zeros(n_graph - len(real) - 1, np.int32)
            return np.concatenate([real, [padding], tail]).astype(np.int32)

        return GraphsTuple(
            nodes=rows(store.nodes, node_rows, n_node),
            edges=rows(store.edges, edge_rows, n_edge),
            senders=endpoints(self._local_senders),
            receivers=endpoints(self._local_receivers),
            globals=rows(store.globals, indices, n_graph),
            n_node=counts(counts_n, n_node - real_n),
            n_edge=counts(counts_e, n_edge - real_e),
        )

    def __len__(self) -> int:
        return len(self.graphs)

    def targets(self) -> np.ndarray:
        """The labels that count toward loss and metrics: all of them."""
        return self.labels

    def subset(self, indices) -> GraphDataset:
        """The graphs at ``indices``, in that order, with the same budgets."""
        return GraphDataset(
            [self.graphs[i] for i in indices],
            self.labels[np.asarray(indices)],
            node_budget=self.node_budget,
            edge_budget=self.edge_budget,
        )

    def budgets(self, batch_size: int) -> tuple[int, int, int]:
        """(n_node, n_edge, n_graph) of every padded batch of ``batch_size`` graphs (at most
        the number of graphs, so a large evaluation batch covers a small set in one batch)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"batch_size: expected an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
        batch_size = min(int(batch_size), len(self.graphs))
        nodes = self.node_budget or max(
            _round_up(1.25 * self.n_node.mean() * batch_size, 64), int(self.n_node.max()) + 1
        )
        edges = self.edge_budget or max(
            _round_up(1.25 * self.n_edge.mean() * batch_size, 64), int(self.n_edge.max())
        )
        return int(nodes), int(edges), batch_size + 1

    def _order(self, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
        if not shuffle:
            return np.arange(len(self.graphs))
        return np.random.default_rng([seed, epoch]).permutation(len(self.graphs))

    def num_batches(self, batch_size: int, *, shuffle=False, seed=0, epoch=0) -> int:
        """How many batches ``batches`` yields with these arguments (packing sizes only)."""
        budgets = self.budgets(batch_size)
        order = self._order(shuffle, seed, epoch)
        return sum(1 for _ in _groups(self.n_node, self.n_edge, order, *budgets))

    def batches(self, batch_size: int, *, shuffle=False, seed=0, epoch=0) -> Iterator[dict]:
        """Padded batches covering every graph once; the order is a function of (seed, epoch).

        The same batches as ``pack_graphs`` gives, gathered from one stored array per field.
        """
        budgets = self.budgets(batch_size)
        n_graph = budgets[2]
        order = self._order(shuffle, seed, epoch)
        for indices in _groups(self.n_node, self.n_edge, order, *budgets):
            mask = pad_rows(np.ones(len(indices), np.float32), n_graph)
            yield {
                "x": self._gather(indices, *budgets),
                "y": pad_rows(self.labels[indices], n_graph),
                "mask": mask,
            }


class NodeDataset:
    """One graph with node labels, for node-level (e.g. semi-supervised) tasks.

    ``Trainer.fit`` takes it in place of (x, y) arrays: every epoch is one full-graph step
    whose loss and metrics count only the nodes where ``mask`` is nonzero. Train and validate
    on the same graph with two masks.

    Args:
      graph: a ``GraphsTuple`` of N nodes.
      labels: (N,) integer classes or (N, ...) targets; rows outside the mask are ignored.
      mask: (N,) bool or 0/1 weights, the nodes that count; all nodes by default.
    """

    def __init__(self, graph: GraphsTuple, labels, mask=None):
        self.graph = graph
        n = _node_rows(graph)
        self.labels = np.asarray(labels)
        if len(self.labels) != n:
            raise ValueError(f"NodeDataset: the graph has {n} nodes but labels has {len(labels)}")
        self.mask = np.ones(n, np.float32) if mask is None else np.asarray(mask, np.float32)
        if self.mask.shape != (n,):
            raise ValueError(f"NodeDataset: expected a mask of shape ({n},), got {self.mask.shape}")
        if not self.mask.any():
            raise ValueError("NodeDataset: the mask selects no node")
        if self.labels.ndim == 1 and self.labels.dtype.kind in "iu":
            # unlabelled nodes may carry any placeholder (e.g. -1); give them a valid class
            self.labels = np.where(self.mask > 0, self.labels, 0).astype(self.labels.dtype)

    def targets(self) -> np.ndarray:
        """The labels that count toward loss and metrics: those of the masked nodes."""
        return self.labels[self.mask > 0]

    def __len__(self) -> int:
        return int(np.count_nonzero(self.mask))

    def num_batches(self, batch_size: int = 1, **_) -> int:
        """Always 1: the whole graph is one batch."""
        return 1

    def batches(self, batch_size: int = 1, **_) -> Iterator[dict]:
        """The one batch ``{"x": graph, "y": labels (N,), "mask": mask (N,)}``."""
        yield {"x": self.graph, "y": self.labels, "mask": self.mask}
