"""Message-passing graph neural networks: GCN, GAT and the general GraphNetwork.

Every model is applied as ``model.apply(variables, graph)`` to a ``jaxdl.graphs.GraphsTuple``
with node features (N, F). Node-level models return logits (N, num_classes); with a
``readout`` they pool each graph's nodes and return (G, num_classes). Padding from
``jaxdl.graphs.pad_graphs_to`` never reaches real nodes or graphs, so no layer needs a mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks, activations
from jaxdl import graphs as G
from jaxdl.graphs import GraphsTuple
from jaxdl.models.mlp import MLP

AGGREGATIONS: dict[str, Callable] = {
    "sum": G.segment_sum,
    "mean": G.segment_mean,
    "max": G.segment_max,
}


def _check_graph(graph, name: str = "graph") -> None:
    if not isinstance(graph, GraphsTuple):
        raise TypeError(f"{name}: expected a jaxdl.graphs.GraphsTuple, got {type(graph).__name__}")
    if graph.nodes is None:
        raise ValueError(f"{name}: expected node features (N, F), got nodes=None")
    for field in ("senders", "receivers", "n_node"):
        if getattr(graph, field) is None:
            raise ValueError(f"{name}.{field}: expected a 1-D array, got None")
    if np.ndim(graph.nodes) != 2:
        raise ValueError(
            f"{name}.nodes: expected node features (N, F), got {np.shape(graph.nodes)}"
        )
    chex.assert_rank([graph.senders, graph.receivers, graph.n_node], 1)
    chex.assert_equal_shape([graph.senders, graph.receivers])
    fields = (graph.nodes, graph.senders, graph.receivers, graph.n_node, graph.n_edge)
    if all(_checks.is_concrete(f) for f in fields if f is not None):  # not inside jit
        _checks.check_graph_structure(
            graph.senders, graph.receivers, graph.n_node, graph.n_edge, graph.nodes.shape[0], name
        )
        _checks.check_finite_features(graph.nodes, f"{name}.nodes")
        if graph.edges is not None and _checks.is_concrete(graph.edges):
            _checks.check_finite_features(graph.edges, f"{name}.edges")


def _with_self_loops(graph: GraphsTuple) -> tuple[jax.Array, jax.Array]:
    n = graph.nodes.shape[0]
    loops = jnp.arange(n, dtype=graph.senders.dtype)
    return (
        jnp.concatenate([graph.senders, loops]),
        jnp.concatenate([graph.receivers, loops]),
    )


class GCNLayer(nn.Module):
    """One graph convolution (Kipf & Welling, 2017): H' = D^-1/2 (A + I) D^-1/2 H W + b.

    A[r, s] counts the edges from s to r and D is the diagonal of the row sums of A + I, so
    each node averages its own and its in-neighbours' projected features, weighted by
    1 / sqrt(deg(s) deg(r)). Input nodes (N, F); output (N, features).

    Attributes:
      features: output width.
      add_self_loops: use A + I (True) or A.
      normalize: apply the symmetric normalisation (False sums the messages).
    """

    features: int
    add_self_loops: bool = True
    normalize: bool = True
    use_bias: bool = True

    def __post_init__(self):
        _checks.check_int(self.features, "GCNLayer.features")
        super().__post_init__()

    @nn.compact
    def __call__(self, graph: GraphsTuple) -> jax.Array:
        n = graph.nodes.shape[0]
        h = nn.Dense(self.features, use_bias=False, name="linear")(graph.nodes)
        senders, receivers = (
            _with_self_loops(graph) if self.add_self_loops else (graph.senders, graph.receivers)
        )
        messages = h[senders]
        if self.normalize:
            degree = G.segment_count(receivers, n, h.dtype)
            scale = jnp.where(degree > 0, jax.lax.rsqrt(jnp.maximum(degree, 1)), 0)
            messages = messages * (scale[senders] * scale[receivers])[:, None]
        out = G.segment_sum(messages, receivers, n)
        if self.use_bias:
            out = out + self.param("bias", nn.initializers.zeros, (self.features,), h.dtype)
        return out


class GATLayer(nn.Module):
    """Graph attention (Velickovic et al., 2018), ``num_heads`` heads.

    For an edge s -> r, head k scores e = LeakyReLU(a_k . [W_k h_r, W_k h_s]); the scores of
    the edges entering r (and its self-loop) go through a softmax, and r receives the weighted
    sum of W_k h_s. Input nodes (N, F); output (N, num_heads * features) when ``concat`` else
    (N, features), the mean over heads. The attention weights (E + N, num_heads) are sown into
    the ``"intermediates"`` collection as ``"attention"``.
    """

    features: int
    num_heads: int = 1
    concat: bool = True
    negative_slope: float = 0.2
    add_self_loops: bool = True
    attention_dropout: float = 0.0

    def __post_init__(self):
        _checks.check_int(self.features, "GATLayer.features")
        _checks.check_int(self.num_heads, "GATLayer.num_heads")
        _checks.check_rate(self.attention_dropout, "GATLayer.attention_dropout")
        super().__post_init__()

    @nn.compact
    def __call__(self, graph: GraphsTuple, train: bool = False) -> jax.Array:
        n = graph.nodes.shape[0]
        h = nn.DenseGeneral((self.num_heads, self.features), use_bias=False, name="linear")(
            graph.nodes
        )  # (N, H, F)
        init = nn.initializers.lecun_normal()
        a_send = self.param("attend_sender", init, (self.num_heads, self.features), h.dtype)
        a_receive = self.param("attend_receiver", init, (self.num_heads, self.features), h.dtype)
        senders, receivers = (
            _with_self_loops(graph) if self.add_self_loops else (graph.senders, graph.receivers)
        )
        score_send = jnp.einsum("nhf,hf->nh", h, a_send)
        score_receive = jnp.einsum("nhf,hf->nh", h, a_receive)
        logits = nn.leaky_relu(
            score_send[senders] + score_receive[receivers], self.negative_slope
        )  # (E, H)
        weights = G.segment_softmax(logits, receivers, n)
        self.sow("intermediates", "attention", weights)
        if self.attention_dropout > 0:
            weights = nn.Dropout(self.attention_dropout, deterministic=not train)(weights)
        out = G.segment_sum(h[senders] * weights[..., None], receivers, n)  # (N, H, F)
        out = out.reshape(n, -1) if self.concat else out.mean(axis=1)
        bias = self.param("bias", nn.initializers.zeros, (out.shape[-1],), h.dtype)
        return out + bias


class Readout(nn.Module):
    """Pool node features (N, F) into one row per graph (G, F).

    Attributes:
      kind: "sum", "mean", "max", or "attention" (a learned gate per node, softmax-normalised
        within each graph, weighting a sum).
    """

    kind: str = "sum"

    @nn.compact
    def __call__(self, nodes: jax.Array, graph: GraphsTuple) -> jax.Array:
        index = G.node_graph_index(graph)
        count = graph.n_node.shape[0]
        if self.kind == "attention":
            gate = nn.Dense(1, name="gate")(nodes)[:, 0]
            weights = G.segment_softmax(gate, index, count)
            return G.segment_sum(nodes * weights[:, None], index, count)
        return _checks.lookup("readout", self.kind, AGGREGATIONS)(nodes, index, count)


def _check_inputs(graph, readout: str | None) -> None:
    _check_graph(graph)
    if readout is not None:
        _checks.lookup("readout", readout, {**AGGREGATIONS, "attention": None})


def _check_sizes(model, *counts: str, allow_empty: bool = True) -> None:
    """A GNN's widths, counts and dropout rate, named, at construction."""
    name = type(model).__name__
    _checks.check_widths(model.features, f"{name}.features", allow_empty=allow_empty)
    for field in counts:
        _checks.check_int(getattr(model, field), f"{name}.{field}")
    _checks.check_rate(model.dropout_rate, f"{name}.dropout_rate")
    if model.readout is not None:
        _checks.lookup("readout", model.readout, {**AGGREGATIONS, "attention": None})


def _readout_head(readout: str, num_classes: int, nodes, graph, drop) -> jax.Array:
    """Graph logits (G, num_classes): pooled node features through a dense layer. Called
    inside a compact ``__call__``, so its layers belong to the calling model."""
    pooled = Readout(readout, name="readout")(nodes, graph)
    return nn.Dense(num_classes, name="output")(drop(pooled))


class GCN(nn.Module):
    """Graph convolutional network: GCN layers with an activation and dropout between them.

    ``GCN(features=(16,), num_classes=2)`` is Kipf & Welling's two-layer model: input (N, F)
    node features, output (N, num_classes) node logits. With ``readout`` the hidden node
    features are pooled per graph and a dense layer gives (G, num_classes) graph logits.

    Attributes:
      features: widths of the hidden GCN layers.
      num_classes: outputs per node (or per graph with a readout).
      dropout_rate: dropout on the input of every layer, when ``train=True``.
      readout: None (node task) or "sum"/"mean"/"max"/"attention" (graph task).

    Example:
      >>> ring = jaxdl.graphs.make_graph(  # 5 nodes of 3 features, undirected edges
      ...     [0, 1, 2, 3, 4, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 0, 1, 2, 3, 4],
      ...     nodes=np.ones((5, 3), np.float32),
      ... )
      >>> gcn = jaxdl.models.GCN(features=(16,), num_classes=2)
      >>> gcn.apply(gcn.init(jax.random.key(0), ring), ring).shape  # one row per node
      (5, 2)
    """

    features: Sequence[int] = (16,)
    num_classes: int = 2
    dropout_rate: float = 0.0
    activation: str = "relu"
    readout: str | None = None

    def __post_init__(self):
        _check_sizes(self, "num_classes")
        super().__post_init__()

    @nn.compact
    def __call__(self, graph: GraphsTuple, train: bool = False) -> jax.Array:
        _check_inputs(graph, self.readout)
        act = activations.get(self.activation)
        drop = lambda x: nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = graph.nodes
        for i, width in enumerate(self.features):
            x = act(GCNLayer(width, name=f"gcn_{i}")(graph._replace(nodes=drop(x))))
        if self.readout is not None:
            return _readout_head(self.readout, self.num_classes, x, graph, drop)
        return GCNLayer(self.num_classes, name="output")(graph._replace(nodes=drop(x)))


class GAT(nn.Module):
    """Graph attention network: multi-head GAT layers (heads concatenated, ELU between).

    Input (N, F) node features; output (N, num_classes) node logits from a last GAT layer
    with ``output_heads`` heads averaged, or with ``readout`` (G, num_classes) graph logits.

    Attributes:
      features: per-head width of each hidden layer.
      num_heads: heads of each hidden layer.
      output_heads: heads of the output layer (averaged).
      dropout_rate: dropout on layer inputs and on attention weights, when ``train=True``.
      readout: None (node task) or "sum"/"mean"/"max"/"attention" (graph task).
    """

    features: Sequence[int] = (8,)
    num_heads: int = 8
    num_classes: int = 2
    output_heads: int = 1
    dropout_rate: float = 0.0
    activation: str = "elu"
    readout: str | None = None

    def __post_init__(self):
        _check_sizes(self, "num_heads", "num_classes", "output_heads")
        super().__post_init__()

    @nn.compact
    def __call__(self, graph: GraphsTuple, train: bool = False) -> jax.Array:
        _check_inputs(graph, self.readout)
        act = activations.get(self.activation)
        drop = lambda x: nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = graph.nodes
        for i, width in enumerate(self.features):
            layer = GATLayer(
                width, self.num_heads, attention_dropout=self.dropout_rate, name=f"gat_{i}"
            )
            x = act(layer(graph._replace(nodes=drop(x)), train))
        if self.readout is not None:
            return _readout_head(self.readout, self.num_classes, x, graph, drop)
        output = GATLayer(
            self.num_classes,
            self.output_heads,
            concat=False,
            attention_dropout=self.dropout_rate,
            name="output",
        )
        return output(graph._replace(nodes=drop(x)), train)


def _concat(parts) -> jax.Array:
    return jnp.concatenate([p for p in parts if p is not None], axis=-1)


class GraphNetwork(nn.Module):
    """A general message-passing block (Battaglia et al., 2018) with learned update functions.

    With ``agg`` the chosen segment aggregation:

    - edges' = edge_fn([edges, nodes[senders], nodes[receivers], globals of the edge's graph])
    - nodes' = node_fn([nodes, agg of edges' entering, agg of edges' leaving, globals])
    - globals' = global_fn([agg of nodes' per graph, agg of edges' per graph, globals])

    Missing features (None) are left out of the concatenations; an update function that is
    None keeps that part as it was. Each function is a Flax module mapping (rows, in) to
    (rows, out), e.g. ``jaxdl.models.MLP``. Returns the updated ``GraphsTuple``.
    """

    edge_fn: nn.Module | None = None
    node_fn: nn.Module | None = None
    global_fn: nn.Module | None = None
    aggregate: str = "sum"

    @nn.compact
    def __call__(self, graph: GraphsTuple) -> GraphsTuple:
        agg = _checks.lookup("aggregate", self.aggregate, AGGREGATIONS)
        n, count = graph.nodes.shape[0], graph.n_node.shape[0]
        node_graph, edge_graph = G.node_graph_index(graph), G.edge_graph_index(graph)
        g = graph.globals
        edges = graph.edges
        if self.edge_fn is not None:
            edges = self.edge_fn(
                _concat(
                    [
                        edges,
                        graph.nodes[graph.senders],
                        graph.nodes[graph.receivers],
                        None if g is None else g[edge_graph],
                    ]
                )
            )
        nodes = graph.nodes
        if self.node_fn is not None:
            received = None if edges is None else agg(edges, graph.receivers, n)
            sent = None if edges is None else agg(edges, graph.senders, n)
            nodes = self.node_fn(
                _concat([nodes, received, sent, None if g is None else g[node_graph]])
            )
        if self.global_fn is not None:
            pooled_edges = None if edges is None else agg(edges, edge_graph, count)
            g = self.global_fn(_concat([agg(nodes, node_graph, count), pooled_edges, g]))
        return graph._replace(nodes=nodes, edges=edges, globals=g)


class MessagePassingNet(nn.Module):
    """A stack of ``GraphNetwork`` blocks with MLP updates, residual node features and an
    un-normalised aggregation, so it can count (a GCN's averaging cannot).

    Input (N, F) node features (edge features (E, F_e) are used when present); output
    (G, num_classes) graph logits through ``readout``, or (N, num_classes) with readout None.

    Attributes:
      features: width of each block (the first projects the inputs to features[0]).
      aggregate: how messages are combined at a node: "sum", "mean" or "max".
    """

    features: Sequence[int] = (64, 64)
    num_classes: int = 2
    aggregate: str = "sum"
    readout: str | None = "sum"
    dropout_rate: float = 0.0

    def __post_init__(self):
        _check_sizes(self, "num_classes", allow_empty=False)
        _checks.lookup("aggregate", self.aggregate, AGGREGATIONS)
        super().__post_init__()

    @nn.compact
    def __call__(self, graph: GraphsTuple, train: bool = False) -> jax.Array:
        _check_inputs(graph, self.readout)
        x = nn.Dense(self.features[0], name="embed")(graph.nodes)
        g = graph._replace(nodes=x, globals=None)
        for i, width in enumerate(self.features):
            block = GraphNetwork(
                edge_fn=MLP((width, width), name=f"edge_mlp_{i}"),
                node_fn=MLP((width, width), name=f"node_mlp_{i}"),
                aggregate=self.aggregate,
                name=f"block_{i}",
            )
            updated = block(g)
            nodes = nn.relu(updated.nodes)
            if nodes.shape == g.nodes.shape:
                nodes = nodes + g.nodes
            nodes = nn.Dropout(self.dropout_rate, deterministic=not train)(nodes)
            g = g._replace(nodes=nodes)
        if self.readout is None:
            return nn.Dense(self.num_classes, name="output")(g.nodes)
        pooled = Readout(self.readout, name="readout")(g.nodes, graph)
        hidden = nn.relu(nn.Dense(self.features[-1], name="head")(pooled))
        return nn.Dense(self.num_classes, name="output")(hidden)
