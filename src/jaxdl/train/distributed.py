"""Many hosts: ``initialize`` joins the processes of a multi-host run through JAX's own
distributed runtime; ``process_info`` says where this process stands. Re-exported by
``jaxdl.parallel`` beside the strategies."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import jax


class ProcessInfo(NamedTuple):
    """Where this process stands in the run."""

    process_index: int
    process_count: int
    local_devices: list
    devices: list


def process_info() -> ProcessInfo:
    """This process's index and count, its own devices and those of the whole run."""
    return ProcessInfo(jax.process_index(), jax.process_count(), jax.local_devices(), jax.devices())


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {value!r}") from None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
    *,
    cpu_collectives: str = "gloo",
    **kwargs,
) -> ProcessInfo:
    """Join a multi-process run (``jax.distributed.initialize``) and say where this process is.

    Arguments left out come from the environment: ``JAX_COORDINATOR_ADDRESS`` (host:port of
    process 0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``; on Cloud TPU, SLURM
    and Open MPI JAX finds all three itself. With no coordinator anywhere (a plain single
    process) nothing is initialised. On CPUs the processes exchange data through
    ``cpu_collectives`` ("gloo", or "mpi"); it must be chosen before JAX starts its
    backend, so call ``initialize`` before any other JAX work. ``kwargs`` go to
    ``jax.distributed.initialize`` (e.g. ``initialization_timeout``).

    Call it once, first thing, in every process.
    """
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    detected = (  # clusters whose layout JAX reads itself
        os.environ.get("TPU_WORKER_HOSTNAMES")
        or os.environ.get("TPU_NAME")
        or (_env_int("SLURM_NTASKS") or 1) > 1
        or (_env_int("OMPI_COMM_WORLD_SIZE") or 1) > 1
    )
    if coordinator_address is None and num_processes is None and not detected:
        return process_info()
    if cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        **kwargs,
    )
    return process_info()
