"""The persistent compilation cache: the same ``jaxdl train`` run twice, in fresh processes,
with an empty cache folder before the first.

Each run reports its wall time and the seconds JAX spent compiling (its own
``backend_compile_duration`` events, which a program loaded from the cache does not
raise), and how many programs the cache served. The second run should spend well under the
first run's compile time.

Command: ``python benchmarks/compile_cache.py`` (about 30 s; ``-- ARGS`` passes other
``jaxdl train`` arguments, e.g. ``-- --model cnn``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import common  # benchmarks/common.py, beside this script

RUN = """
import json, sys
import jax.monitoring
seen = {"compile_s": 0.0, "hits": 0}
def duration(event, seconds, **kw):
    if event == "/jax/core/compile/backend_compile_duration":
        seen["compile_s"] += seconds
def event(event, **kw):
    if event == "/jax/compilation_cache/cache_hits":
        seen["hits"] += 1
jax.monitoring.register_event_duration_secs_listener(duration)
jax.monitoring.register_event_listener(event)
from jaxdl.cli import main
status = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump(seen, f)
sys.exit(status)
"""


def run(train_args: list[str], cache: str, out: str) -> dict:
    record = os.path.join(out, "seen.json")
    env = {**os.environ, "JAXDL_COMPILATION_CACHE": cache}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    start = time.perf_counter()
    argv = [sys.executable, "-c", RUN, record, "train", "--quiet", "--out", out, *train_args]
    subprocess.run(argv, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - start
    with open(record) as f:
        return {"wall_s": wall, **json.load(f)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    parser.add_argument("train_args", nargs="*", help="arguments of jaxdl train")
    args = parser.parse_args(argv)
    train_args = args.train_args or ["--epochs", "1"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cache = os.path.join(folder, "cache")
        for name in ("first", "second"):
            out = os.path.join(folder, name)
            os.makedirs(out)
            result = {"run": name, "args": " ".join(train_args), **run(train_args, cache, out)}
            rows.append(result)
            print(
                f"{name:6s} wall {result['wall_s']:6.2f} s  compiling {result['compile_s']:6.2f}"
                f" s  programs from the cache {result['hits']}"
            )
    path = common.write(
        "compile_cache", rows, ["run", "args", "wall_s", "compile_s", "hits"], args.out
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
