"""Graph data sets for ``Trainer.fit``: many graphs packed into padded batches of fixed
shape (``GraphDataset``), or one graph whose nodes are the examples (``NodeDataset``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from jaxdl import _checks
from jaxdl.graphs.graph import GraphsTuple, batch, check_graph, num_nodes, pad_graphs_to


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
      node_budget: nodes per batch. By default 1.25 times what ``batch_size`` graphs of
        mean size need (at least the largest graph), rounded up to a multiple of 64, so
        batches are nearly full and rarely closed early.
      edge_budget: edges per batch, chosen the same way by default.
    """

    def __init__(
        self, graphs: Sequence[GraphsTuple], labels, *, node_budget=None, edge_budget=None
    ):
        if isinstance(graphs, GraphsTuple) or not hasattr(graphs, "__iter__"):
            raise TypeError(
                f"graphs: expected a sequence of single GraphsTuples, got {type(graphs).__name__}"
            )
        self.graphs = [check_graph(g, f"graphs[{i}]") for i, g in enumerate(graphs)]
        for i, g in enumerate(self.graphs):
            if g.n_node.shape != (1,):
                raise ValueError(
                    f"graphs[{i}]: expected a single graph (n_node of shape (1,)), got n_node "
                    f"of shape {g.n_node.shape}; pass the graphs of a batch one by one "
                    "(jaxdl.graphs.unbatch)"
                )
        self.labels = _checks.as_array(labels, "labels")
        if self.labels.dtype == object or self.labels.dtype.kind not in "fiub":
            raise TypeError(f"labels: expected a numeric array, got dtype {self.labels.dtype}")
        if self.labels.ndim == 0:
            raise ValueError("labels: expected one label per graph, got a scalar")
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
        for field, budget in (("node_budget", node_budget), ("edge_budget", edge_budget)):
            if budget is not None:
                _checks.check_int(budget, field, minimum=1 if field == "node_budget" else 0)
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
        check_graph(graph)
        if graph.nodes is None:
            raise ValueError("graph.nodes: expected node features (N, F), got None")
        self.graph = graph
        n = num_nodes(graph)
        self.labels = _checks.as_array(labels, "labels")
        if self.labels.dtype == object or self.labels.dtype.kind not in "fiub":
            raise TypeError(f"labels: expected a numeric array, got dtype {self.labels.dtype}")
        if self.labels.ndim == 0 or len(self.labels) != n:
            raise ValueError(
                f"NodeDataset: the graph has {n} nodes but labels has shape {self.labels.shape}"
                if self.labels.ndim == 0
                else f"NodeDataset: the graph has {n} nodes but labels has {len(self.labels)}"
            )
        if mask is None:
            self.mask = np.ones(n, np.float32)
        else:
            mask = _checks.as_array(mask, "mask")
            if mask.shape != (n,):
                raise ValueError(f"NodeDataset: expected a mask of shape ({n},), got {mask.shape}")
            if mask.dtype == object or mask.dtype.kind not in "fiub":
                raise TypeError(f"mask: expected booleans or 0/1 weights, got dtype {mask.dtype}")
            if mask.dtype.kind != "b" and not np.isin(mask, (0, 1)).all():
                bad = mask[~np.isin(mask, (0, 1))][0]
                raise ValueError(f"mask: expected booleans or 0/1 weights, got the value {bad!r}")
            self.mask = mask.astype(np.float32)
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
