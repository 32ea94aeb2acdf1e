"""A persistent compilation cache, opt-in: compiled programs kept on disk across runs.

Compiling is most of a small run's time, and a second run of the same script compiles the
same programs again. :func:`use_compilation_cache` points JAX's persistent cache
(``jax_compilation_cache_dir``) at a folder in the user's cache directory, so a second run
loads them instead. Importing jaxdl changes nothing: the library leaves the setting to its
host process; the ``jaxdl`` command line, the examples and the benchmarks turn it on.

JAX trusts what the folder holds (it loads compiled code from it): keep it private to its
user, as the default folder under ``~/.cache`` is.
"""

from __future__ import annotations

import os

import jax

ENV = "JAXDL_COMPILATION_CACHE"  # "0" turns the cache off; a path chooses its folder


def default_directory() -> str:
    """``$XDG_CACHE_HOME/jaxdl/xla`` (``~/.cache/jaxdl/xla`` where that is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxdl", "xla")


def use_compilation_cache(directory: str | os.PathLike | None = None) -> str | None:
    """Keep compiled programs in ``directory`` across processes; returns the folder in use
    (None when turned off).

    Call it before the first compile. A folder the process set already (the
    ``JAX_COMPILATION_CACHE_DIR`` variable, or ``jax.config``) is kept: the user chose.
    ``JAXDL_COMPILATION_CACHE=0`` turns the cache off; a path in it chooses the folder.
    Every program is cached, however fast it compiled, since a small run's programs are
    each quick to compile and slow together.

    Args:
      directory: the folder; default ``JAXDL_COMPILATION_CACHE`` or
        :func:`default_directory`.
    """
    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return chosen
    setting = os.environ.get(ENV, "")
    if setting == "0":
        return None
    directory = os.fspath(directory or setting or default_directory())
    os.makedirs(directory, mode=0o700, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return directory
