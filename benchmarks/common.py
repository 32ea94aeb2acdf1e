"""What every benchmark writes beside its numbers: machine, versions, date and command."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable

from jaxdl.compile_cache import use_compilation_cache
from jaxdl.host_memory import keep_freed_memory

# Benchmarks are processes of their own: freed step buffers are kept for reuse, as the
# command line does (jaxdl.host_memory); before any JAX computation starts its threads.
keep_freed_memory()
# Compiled programs are kept across runs, as the command line keeps them: a compile time
# measured with a warm cache is the time to load the program (the results say which; run
# with JAXDL_COMPILATION_CACHE=0 to measure cold compiles).
COMPILATION_CACHE = use_compilation_cache()

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Machine, device and library versions, the date, the load and the command line."""
    import importlib.metadata

    import flax
    import jax
    import jaxlib
    import optax

    try:  # jaxdl imports Grain only for streams; a bare GPU image may lack it
        grain_version = importlib.metadata.version("grain")
    except importlib.metadata.PackageNotFoundError:
        grain_version = None

    device = jax.devices()[0]
    return {
        "compilation_cache": COMPILATION_CACHE,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "device": f"{device.platform}:{getattr(device, 'device_kind', '')}",
        "device_count": jax.device_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "grain": grain_version,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        # the machine's load when the results are written (1, 5, 15 minutes), this run's own
        # processes included: on a shared machine the rates move with it
        "load_1_5_15": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }


def resident_bytes() -> int:
    """The process's resident memory now (Linux ``/proc/self/statm``), or, elsewhere, its
    peak so far (``getrusage``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def time_repeats(run: Callable[[], None], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``run`` (which must block until done)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def summarize_rates(rates: list[float], name: str = "steps_per_s") -> dict:
    """Median, min and max of per-round rates, as ``name``, ``name_min``, ``name_max``."""
    rates = sorted(rates)
    return {name: statistics.median(rates), f"{name}_min": rates[0], f"{name}_max": rates[-1]}


def summarize(seconds: list[float], steps: int) -> dict:
    """Median, min and max steps/s over repeats of ``steps`` steps each."""
    return summarize_rates([steps / s for s in seconds])


def cell(value) -> str:
    """A table cell: floats to 4 significant digits, missing values as a dash."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write(name: str, rows: list[dict], columns: list[str], out_dir: str = RESULTS) -> str:
    """Append ``rows`` to ``name.jsonl`` and write ``name.md``: a table plus the environment."""
    os.makedirs(out_dir, exist_ok=True)
    env = environment()
    with open(os.path.join(out_dir, f"{name}.jsonl"), "a") as f:
        for row in rows:
            f.write(json.dumps({**row, **env}) + "\n")
    lines = [f"# {name}", ""]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c)) for c in columns) + " |")
    path = os.path.join(out_dir, f"{name}.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
