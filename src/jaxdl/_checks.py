"""Checks at the places where data and names enter the library.

They run on the host, on NumPy arrays, before anything is traced or compiled, so a mistake
surfaces as a short message naming the argument, what was expected and what came.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

import jax
import numpy as np

T = TypeVar("T")


def lookup(kind: str, name: str, table: Mapping[str, T]) -> T:
    """``table[name]``, or a ValueError that lists the valid names of this ``kind``."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a name (str), got {type(name).__name__}: {name!r}")
    key = name.lower().replace("-", "_")
    if key not in table:
        valid = ", ".join(sorted(table))
        raise ValueError(f"unknown {kind} {name!r}; expected one of: {valid}")
    return table[key]


def _shape_str(shape) -> str:
    return "(N, " + ", ".join(str(d) for d in shape) + ")" if len(shape) else "(N,)"


def as_features(x, name: str = "x", expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate a feature array and return it as float32 (or int32 for token ids).

    x: (N, *feature_shape). ``expected_shape`` is the feature shape without the batch axis.
    """
    x = as_array(x, name)
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got an array of shape {x.shape}")
    if x.ndim < 2:
        raise ValueError(
            f"{name}: expected shape (N, *features) with a batch axis first, got {x.shape}; "
            "reshape a single feature with x[:, None]"
        )
    if 0 in x.shape[1:]:
        raise ValueError(
            f"{name}: expected at least one feature per example, got shape {x.shape} "
            "(a feature axis of size 0)"
        )
    if expected_shape is not None and tuple(x.shape[1:]) != tuple(expected_shape):
        raise ValueError(
            f"{name}: expected shape {_shape_str(expected_shape)}, got {x.shape} "
            f"(feature shape {tuple(x.shape[1:])} instead of {tuple(expected_shape)})"
        )
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(
                f"{name}: contains {int(bad.sum())} NaN or infinite values (first in example {row})"
            )
        return x.astype(np.float32, copy=False)
    if x.dtype.kind == "b":
        return x.astype(np.float32)
    return x.astype(np.int32, copy=False)


def as_labels(y, num_examples: int, num_classes: int | None, name: str = "y") -> np.ndarray:
    """Validate targets against the examples they belong to.

    Integer labels (N,) must lie in [0, num_classes); other targets are returned as float32.
    """
    y = np.asarray(y)
    if y.dtype == object or y.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {y.dtype}")
    if y.ndim == 0 or y.shape[0] != num_examples:
        raise ValueError(
            f"{name}: expected {num_examples} targets (one per example of x), got shape {y.shape}"
        )
    if y.dtype.kind in "iub":
        if num_classes is not None:
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= num_classes:
                raise ValueError(
                    f"{name}: labels must lie in [0, {num_classes}) for a model with "
                    f"{num_classes} outputs, got values in [{low}, {high}]"
                )
        return y.astype(np.int32, copy=False)
    if not np.isfinite(y).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return y.astype(np.float32, copy=False)


def check_class_targets(y: np.ndarray, output_shape: tuple[int, ...], name: str = "y") -> None:
    """Classification targets against a model's outputs (N, *positions, C): integer labels
    (N, *positions) or one-hot rows (N, *positions, C), so (N,) or (N, C) for a classifier
    of whole examples. Anything else is a ValueError naming both shapes."""
    positions, rows = output_shape[:-1], ("N", *output_shape[:-1])
    if y.shape[1:] != (positions if y.dtype.kind != "f" else output_shape):
        raise ValueError(
            f"{name}: expected integer labels {rows} or one-hot rows "
            f"{(*rows, output_shape[-1])} for outputs {('N', *output_shape)}, got {y.shape} "
            f"of {y.dtype}"
        )


def check_batch_size(batch_size: int, num_examples: int, name: str = "batch_size") -> int:
    """A positive int no larger than the data set."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"{name}: expected an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"{name}: expected a positive int, got {batch_size}")
    if batch_size > num_examples:
        raise ValueError(
            f"{name}={batch_size} is larger than the data set ({num_examples} examples); "
            f"use a batch size of at most {num_examples}"
        )
    return int(batch_size)


def check_inference_batch_size(batch_size, num_examples: int | None = None) -> int:
    """A positive int for ``evaluate``/``predict``; one larger than the data (when its size
    ``num_examples`` is known) runs it as one batch."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size: expected an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
    return int(batch_size if num_examples is None else min(batch_size, num_examples))


MAX_SEED = 2**63 - 1  # jax.random.key takes a 64-bit int; NumPy takes any non-negative int


def check_seed(seed, name: str = "seed") -> int:
    """A non-negative int of at most ``MAX_SEED`` (2**63 - 1), as JAX's and NumPy's
    generators take."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name}: expected a non-negative int, got {type(seed).__name__}: {seed!r}")
    if seed < 0 or seed > MAX_SEED:
        raise ValueError(f"{name}: expected an int in [0, 2**63 - 1], got {seed}")
    return int(seed)


def check_fractions(fractions, count: int | None = None) -> np.ndarray:
    """Split sizes: ``count`` (or any number of) positive numbers summing to 1."""
    try:
        values = np.asarray(fractions, np.float64)
    except (TypeError, ValueError):
        values = None
    if (
        values is None
        or values.ndim != 1
        or len(values) == 0
        or (count is not None and len(values) != count)
        or not np.isfinite(values).all()
        or values.min() <= 0
        or not np.isclose(values.sum(), 1.0)
    ):
        size = f"{count} " if count else ""
        raise ValueError(
            f"fractions: expected {size}positive numbers summing to 1, got {fractions!r}"
        )
    return values


def monitor_mode(monitor: str, mode: str) -> str:
    """ "min" or "max" for a monitored metric; "auto" is min for losses and errors."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        lower_is_better = any(k in monitor for k in ("loss", "mse", "mae", "error"))
        return "min" if lower_is_better else "max"
    return mode


# ---------------------------------------------------------------------- arrays and numbers


def as_array(x, name: str) -> np.ndarray:
    """``np.asarray(x)``, with a ragged nested list refused by name (NumPy's own message
    speaks of "an inhomogeneous shape" and names nothing)."""
    try:
        return np.asarray(x)
    except ValueError as error:
        raise ValueError(
            f"{name}: expected a rectangular array, got a ragged nested sequence ({error})"
        ) from None


def is_concrete(x) -> bool:
    """Whether ``x`` holds values (not a tracer inside ``jit``/``grad``/``vmap``)."""
    return not isinstance(x, jax.core.Tracer)


def check_int(value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An int (not a bool) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}: {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum}]"
        raise ValueError(f"{name}: expected {bound}, got {value}")
    return int(value)


def check_widths(values, name: str, allow_empty: bool = True) -> tuple[int, ...]:
    """A sequence of positive ints (layer widths, channels): (w_0, w_1, ...)."""
    if isinstance(values, str) or not hasattr(values, "__iter__"):
        raise TypeError(
            f"{name}: expected a sequence of positive ints, got {type(values).__name__}: {values!r}"
        )
    values = tuple(values)
    if not values and not allow_empty:
        raise ValueError(f"{name}: expected at least one width, got an empty sequence")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(
                f"{name}: expected positive ints, got {values!r} (entry {i} is {value!r})"
            )
    return values


def check_number(
    value,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    open_min: bool = False,
    open_max: bool = False,
) -> float:
    """A finite real number in the interval given (``open_*``: that end excluded)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        if not (isinstance(value, np.ndarray | jax.Array) and np.ndim(value) == 0):
            raise TypeError(f"{name}: expected a number, got {type(value).__name__}: {value!r}")
        if not is_concrete(value):
            raise TypeError(f"{name}: expected a concrete number, got a traced value")
    number = float(value)
    low = minimum is not None and (number <= minimum if open_min else number < minimum)
    high = maximum is not None and (number >= maximum if open_max else number > maximum)
    if not math.isfinite(number) or low or high:
        left = "(" if open_min else "["
        right = ")" if open_max else "]"
        lo = "-inf" if minimum is None else f"{minimum:g}"
        hi = "inf" if maximum is None else f"{maximum:g}"
        raise ValueError(
            f"{name}: expected a finite number in {left}{lo}, {hi}{right}, got {value!r}"
        )
    return number


def check_rate(value, name: str = "dropout_rate") -> float:
    """A probability of dropping, in [0, 1)."""
    return check_number(value, name, 0.0, 1.0, open_max=True)


def check_token_ids(x, vocab_size: int, name: str = "tokens") -> np.ndarray:
    """Concrete token ids: integers (or whole-valued floats, or bools) in [0, vocab_size).

    An id at or past ``vocab_size`` would read NaN from an embedding, a negative one would
    wrap to the last rows and a fractional one be truncated, so each is refused by name.
    Returns the ids as an int32 NumPy array of the same shape.
    """
    x = as_array(x, name)
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected integer token ids, got dtype {x.dtype}")
    if x.size == 0:
        return x.astype(np.int32)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x) | (x != np.round(x))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise TypeError(
                f"{name}: expected integer token ids, got {x.dtype} values such as "
                f"{x[where]!r} at {where}"
            )
    low, high = x.min().item(), x.max().item()
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"{name}: token ids must lie in [0, {vocab_size}) for vocab_size={vocab_size}, "
            f"got values in [{low}, {high}]"
        )
    return x.astype(np.int32)


# ---------------------------------------------------------------------- graphs


def index_array(values, name: str) -> np.ndarray:
    """``values`` as a 1-D array of node indices or counts, refused by name otherwise."""
    values = as_array(values, name)
    if values.ndim != 1:
        raise ValueError(
            f"{name}: expected a 1-D array of node indices or counts, got {values.shape}"
        )
    if values.dtype.kind == "f":
        if not (np.isfinite(values).all() and (values == np.round(values)).all()):
            raise TypeError(
                f"{name}: expected integers, got {values.dtype} with fractional or NaN values"
            )
    elif values.dtype.kind not in "iub":
        raise TypeError(f"{name}: expected integers, got dtype {values.dtype}")
    return values.astype(np.int64)


def check_graph_structure(
    senders, receivers, n_node, n_edge, num_nodes: int, name: str = "graph"
) -> None:
    """The index fields of a (batched) graph of ``num_nodes`` node rows, on the host.

    senders, receivers: (E,) in [0, num_nodes), and each edge inside its own graph's nodes;
    n_node: (G,) counts >= 0 summing to ``num_nodes``; n_edge: (G,) counts >= 0 summing to
    E (or None, then only the range of the endpoints is checked).
    """
    senders = index_array(senders, f"{name}.senders")
    receivers = index_array(receivers, f"{name}.receivers")
    n_node = index_array(n_node, f"{name}.n_node")
    if senders.shape != receivers.shape:
        raise ValueError(
            f"{name}: senders and receivers must have the same shape, got {senders.shape} and "
            f"{receivers.shape}"
        )
    if len(n_node) and n_node.min() < 0:
        raise ValueError(f"{name}.n_node: expected counts >= 0, got {n_node.tolist()[:20]}")
    if int(n_node.sum()) != num_nodes:
        raise ValueError(
            f"{name}.n_node: the node counts sum to {int(n_node.sum())} but the graph has "
            f"{num_nodes} node rows"
        )
    for field, ends in (("senders", senders), ("receivers", receivers)):
        if len(ends) and (ends.min() < 0 or ends.max() >= num_nodes):
            bad = int(ends.min()) if ends.min() < 0 else int(ends.max())
            raise ValueError(
                f"{name}.{field}: node indices must lie in [0, {num_nodes}) for a graph of "
                f"{num_nodes} nodes, got {bad}"
            )
    if n_edge is None:
        return
    n_edge = index_array(n_edge, f"{name}.n_edge")
    if n_edge.shape != n_node.shape:
        raise ValueError(
            f"{name}.n_edge: expected one count per graph, {n_node.shape}, got {n_edge.shape}"
        )
    if len(n_edge) and n_edge.min() < 0:
        raise ValueError(f"{name}.n_edge: expected counts >= 0, got {n_edge.tolist()[:20]}")
    if int(n_edge.sum()) != len(senders):
        raise ValueError(
            f"{name}.n_edge: the edge counts sum to {int(n_edge.sum())} but the graph has "
            f"{len(senders)} edges (senders)"
        )
    if len(senders) and len(n_node) > 1:  # every edge joins nodes of its own graph
        start = np.concatenate([[0], np.cumsum(n_node)])
        edge_graph = np.repeat(np.arange(len(n_node)), n_edge)
        low, high = start[edge_graph], start[edge_graph + 1]
        for field, ends in (("senders", senders), ("receivers", receivers)):
            outside = np.flatnonzero((ends < low) | (ends >= high))
            if len(outside):
                e = int(outside[0])
                g = int(edge_graph[e])
                raise ValueError(
                    f"{name}.{field}: edge {e} belongs to graph {g} (nodes {int(low[e])} to "
                    f"{int(high[e]) - 1}) but its endpoint is node {int(ends[e])}"
                )


def check_finite_features(values, name: str) -> None:
    """Float features (rows, ...) hold no NaN or infinity."""
    values = np.asarray(values)
    if values.dtype.kind == "f" and values.size:
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(
                f"{name}: contains {int(bad.sum())} NaN or infinite values (first in row {row})"
            )


def check_class_labels(labels, name: str = "labels") -> np.ndarray:
    """Integer class labels (N,), N >= 1: ints, bools, strings, or whole-valued floats.

    One-hot rows (N, C), NaN and fractional values are refused (``labels.argmax(-1)`` turns
    one-hot rows into labels).
    """
    labels = as_array(labels, name)
    if labels.ndim != 1:
        hint = "; for one-hot rows (N, C) pass labels.argmax(-1)" if labels.ndim == 2 else ""
        raise ValueError(
            f"{name}: expected integer class labels (N,), got shape {labels.shape}{hint}"
        )
    if len(labels) == 0:
        raise ValueError(f"{name}: expected at least one label, got none")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            raise ValueError(f"{name}: expected integer class labels, got NaN or infinite values")
        if (labels != np.round(labels)).any():
            raise ValueError(f"{name}: expected integer class labels, got fractional values")
        return labels.astype(np.int64)
    if labels.dtype.kind not in "iubUS":
        raise TypeError(f"{name}: expected integer class labels, got dtype {labels.dtype}")
    return labels
