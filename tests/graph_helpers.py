"""Random graphs for the graph and GNN tests (pytest puts tests/ on the import path)."""

import numpy as np

from jaxdl import graphs


def random_graph(n, p=0.3, features=3, seed=0, edge_features=None):
    """An undirected Erdos-Renyi graph (both directions stored), random node features."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < p, 1)
    senders, receivers = np.nonzero(upper | upper.T)
    edges = None if edge_features is None else rng.normal(size=(len(senders), edge_features))
    nodes = rng.normal(size=(n, features)).astype(np.float32)
    return graphs.make_graph(senders, receivers, nodes=nodes, edges=edges)
