"""Graph data sets: Zachary's karate club (ships with NetworkX), a generated graph
classification set, and OGB's ``ogbg_molpcba`` through TFDS (no TensorFlow).
"""

from __future__ import annotations

import numpy as np

from jaxdl import graphs
from jaxdl.data.tfds_source import data_source


def karate_club() -> tuple[graphs.GraphsTuple, np.ndarray]:
    """Zachary's karate club: 34 members, 78 friendships (156 directed edges).

    Returns ``(graph, labels)``: node features are one-hot member ids (34, 34); ``labels``
    (34,) is 0 for members who followed the instructor ("Mr. Hi", node 0) and 1 for those who
    followed the administrator ("Officer", node 33) when the club split.
    """
    import networkx as nx

    club = nx.karate_club_graph()
    labels = np.array([club.nodes[n]["club"] != "Mr. Hi" for n in club.nodes], np.int32)
    return graphs.from_networkx(club), labels


def _random_tree(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """A uniformly random labelled tree on n nodes, from a random Pruefer sequence."""
    if n == 2:
        return [(0, 1)]
    sequence = rng.integers(0, n, size=n - 2)
    degree = np.ones(n, np.int64)
    np.add.at(degree, sequence, 1)
    edges = []
    for node in sequence:
        leaf = int(np.flatnonzero(degree == 1)[0])
        edges.append((leaf, int(node)))
        degree[leaf] -= 1
        degree[node] -= 1
    u, v = np.flatnonzero(degree == 1)
    edges.append((int(u), int(v)))
    return edges


def cycles_or_trees(
    num_graphs: int = 1000, seed: int = 0, nodes: tuple[int, int] = (8, 24)
) -> graphs.GraphDataset:
    """Is there a cycle? Trees (label 0) against trees with one extra edge (label 1).

    Each graph has a random number of nodes in ``nodes`` (inclusive) and half of the graphs
    carry one extra edge between two nodes not yet joined, which closes exactly one cycle.
    Every node has the same feature (1.0), so the answer lies in the structure alone: a model
    that sees only the mean node features cannot beat 50%, a graph network can count that a
    tree has N - 1 edges. Returns a ``GraphDataset``; the same seed gives the same graphs.
    """
    rng = np.random.default_rng(seed)
    items, labels = [], []
    for i in range(num_graphs):
        n = int(rng.integers(nodes[0], nodes[1] + 1))
        edges = _random_tree(n, rng)
        label = i % 2
        if label:
            present = {frozenset(e) for e in edges}
            while True:
                u, v = (int(a) for a in rng.choice(n, size=2, replace=False))
                if frozenset((u, v)) not in present:
                    edges.append((u, v))
                    break
        pairs = np.array(edges + [(v, u) for u, v in edges])
        items.append(graphs.make_graph(pairs[:, 0], pairs[:, 1], nodes=np.ones((n, 1), np.float32)))
        labels.append(label)
    order = rng.permutation(num_graphs)
    return graphs.GraphDataset([items[i] for i in order], np.array(labels, np.int32)[order])


def molpcba_graph(example: dict) -> graphs.GraphsTuple:
    """One ``ogbg_molpcba`` example (a molecule) as a ``GraphsTuple``.

    Nodes are atoms with 9 features, edges are bonds with 3 features; OGB stores each bond in
    both directions already.
    """
    nodes = np.asarray(example["node_feat"], np.float32)
    edge_index = np.asarray(example["edge_index"], np.int64).reshape(-1, 2)
    return graphs.make_graph(
        edge_index[:, 0],
        edge_index[:, 1],
        nodes=nodes,
        edges=np.asarray(example["edge_feat"], np.float32).reshape(len(edge_index), -1),
    )


def load_ogbg_molpcba(
    split: str = "train", *, data_dir: str | None = None, download: bool = False, limit=None
) -> graphs.GraphDataset:
    """OGB's molecular property set (437,929 molecules, 128 binary assays) as a
    ``GraphDataset`` whose labels (num_graphs, 128) are 0/1 with NaN where an assay is missing.

    ``split`` is "train", "validation" or "test" (OGB's scaffold split); ``limit`` keeps the
    first graphs only. The files must have been prepared by TFDS as array_record
    (``download=True`` on a machine with internet, or ``tfds build ogbg_molpcba
    --file_format=array_record``).
    """
    # prepared in array_record, read as the image and text sets are (and converted sets too)
    source, _ = data_source("ogbg_molpcba", split, data_dir=data_dir, download=download)
    count = len(source) if limit is None else min(int(limit), len(source))
    examples = [source[i] for i in range(count)]
    items = [molpcba_graph(e) for e in examples]
    labels = np.stack([np.asarray(e["labels"], np.float32) for e in examples])
    return graphs.GraphDataset(items, labels)
