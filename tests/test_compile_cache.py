"""``jaxdl.use_compilation_cache``: opt-in, and a second process loads what the first
compiled (counted by JAX's own cache-hit events, not by timing)."""

import os
import subprocess
import sys

RUN = """
import sys
import jax
import jax.monitoring
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None
)
import numpy as np
import jaxdl
if sys.argv[1] == "on":
    print(jaxdl.use_compilation_cache(sys.argv[2]))
x = np.random.default_rng(0).normal(size=(32, 5)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int32)
jaxdl.Trainer(jaxdl.models.MLP(features=(8, 2))).fit((x, y), epochs=1, verbose=False)
print("hits", len(hits), "dir", jax.config.jax_compilation_cache_dir)
"""


def run(*args, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    environment.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    return out.stdout.split()


def test_the_second_run_loads_what_the_first_compiled(tmp_path):
    folder = str(tmp_path / "cache")
    first = run("on", folder)
    assert first[0] == folder and first[first.index("hits") + 1] == "0"
    assert os.listdir(folder)  # the programs were written
    second = run("on", folder)
    assert int(second[second.index("hits") + 1]) >= 1


def test_importing_jaxdl_sets_no_cache_and_the_variable_turns_it_off(tmp_path):
    # with the cache turned off, nothing else (not the import) set a folder
    off = run("on", str(tmp_path / "cache"), env={"JAXDL_COMPILATION_CACHE": "0"})
    assert off[0] == "None" and off[off.index("dir") + 1] == "None"
    assert not (tmp_path / "cache").exists()
