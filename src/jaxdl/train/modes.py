"""``steps_per_call="auto"``: which of the loop's two modes a run takes, and why.

"epoch" runs a whole epoch of device-held arrays as one compiled ``lax.scan``: no return to
the host between steps, which is what small models on any backend gain most from. But
XLA:CPU runs a convolution inside a loop body several times slower than the same
convolution in a program of its own (a plain-JAX ``lax.scan`` over a convolutional step
shows it too: it is the compiler's doing, not the loop's; benchmarks/loop_modes.py
measures both modes), so on the CPU a step that holds convolutions runs one compiled call
per batch. The choice reads the step's program (its jaxpr), not the model's
class, so a custom module with convolutions is treated like jaxdl's CNN.
"""

from __future__ import annotations

import logging

import jax

log = logging.getLogger("jaxdl.train")

CONVOLUTIONS = frozenset({"conv_general_dilated"})


def primitives(jaxpr, found: set | None = None) -> set[str]:
    """The names of every primitive in ``jaxpr`` and the programs inside it (scans,
    conditionals, custom derivatives, nested jits)."""
    found = set() if found is None else found
    for eqn in jaxpr.eqns:
        found.add(eqn.primitive.name)
        for value in eqn.params.values():
            for inner in value if isinstance(value, list | tuple) else (value,):
                inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr holds a Jaxpr
                if hasattr(inner, "eqns"):
                    primitives(inner, found)
    return found


def choose(step, state, batch) -> tuple[str | int, str]:
    """(mode, reason) for a run of device-held arrays: ``step(state, batch)`` is the train
    step, traced (not compiled) to see what it holds."""
    if jax.default_backend() != "cpu":
        return "epoch", "the whole epoch as one compiled scan"
    held = primitives(jax.make_jaxpr(step)(state, batch).jaxpr)
    if held & CONVOLUTIONS:
        return 1, "one compiled step per batch: XLA:CPU runs convolutions slower in a scan"
    return "epoch", "the whole epoch as one compiled scan"


def announce(mode, reason: str) -> None:
    """Say which mode ``steps_per_call="auto"`` took (the ``jaxdl`` logger, INFO)."""
    log.info("steps_per_call='auto' chose %r: %s", mode, reason)
