"""Graphs as data: ``GraphsTuple``, batching, padding to fixed budgets, segment operations,
and the graph data sets ``Trainer.fit`` takes.

``jit`` compiles one program per input shape, and graphs come in every size. So many graphs
are batched into one big disconnected graph, and that graph is padded to fixed budgets of
nodes, edges and graphs: every batch of an epoch then has the same shape and the step compiles
once (``jaxdl.graphs.graph``). ``GraphDataset`` and ``NodeDataset`` serve such batches
(``jaxdl.graphs.datasets``).
"""

from jaxdl.graphs.datasets import GraphDataset, NodeDataset, pack_graphs, pad_rows
from jaxdl.graphs.graph import (
    GraphsTuple,
    batch,
    check_graph,
    edge_graph_index,
    edge_mask,
    from_adjacency,
    from_jraph,
    from_networkx,
    graph_mask,
    make_graph,
    node_graph_index,
    node_mask,
    num_nodes,
    pad_graphs_to,
    segment_count,
    segment_max,
    segment_mean,
    segment_softmax,
    segment_sum,
    to_jraph,
    unbatch,
)

__all__ = [
    "GraphDataset",
    "GraphsTuple",
    "NodeDataset",
    "batch",
    "check_graph",
    "edge_graph_index",
    "edge_mask",
    "from_adjacency",
    "from_jraph",
    "from_networkx",
    "graph_mask",
    "make_graph",
    "node_graph_index",
    "node_mask",
    "num_nodes",
    "pack_graphs",
    "pad_graphs_to",
    "pad_rows",
    "segment_count",
    "segment_max",
    "segment_mean",
    "segment_softmax",
    "segment_sum",
    "to_jraph",
    "unbatch",
]
