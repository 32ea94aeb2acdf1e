"""Sessions: ``nox -s tests`` (the default run), ``lint``, ``slow``, ``docs``, ``weights``,
``examples``, ``bench``, ``tfds``, ``lowest``.

Each session installs jaxdl from pyproject.toml into its own virtual environment.
"""

import glob
import os
import re

import nox

nox.options.sessions = ["tests", "lint"]


def workers() -> str:
    """pytest-xdist workers: one per core, at most 4. Each test file stays on one worker
    (``--dist loadfile``), so a module's fixtures are built once."""
    return str(max(1, min(4, os.cpu_count() or 1)))


@nox.session
def tests(session):
    """The default test run: every test not marked slow, on one worker per core (about 12
    minutes on 2 quiet CPU cores with a cold compilation cache, less once the tests' cache in
    ~/.cache/jaxdl/xla-tests holds their programs)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-n", workers(), "--dist", "loadfile", *session.posargs)


# What ``lowest`` runs: import, Trainer fit/evaluate on small MLPs, checkpoints (orbax),
# optimizers (optax), the models' shape checks (chex), the data adapters, the grain pipeline,
# TFDS under mock_data, Hugging Face datasets on local parquet and jax.export. LOWEST_SKIP
# leaves out the tests that start processes (signals, grain's worker processes, a new
# interpreter) or resume inside an epoch: minutes of compiling that the default run covers.
LOWEST_TESTS = [
    "tests/test_checks.py",
    "tests/test_optim.py",
    "tests/test_optimizer.py",
    "tests/test_summary.py",
    "tests/train/test_trainer.py",
    "tests/train/test_checkpoint.py",
    "tests/train/test_loop.py",
    "tests/train/test_stablehlo.py",
    "tests/data/test_data.py",
    "tests/data/test_pipeline.py",
    "tests/data/test_hf_source.py",
]
LOWEST_SKIP = (
    "not sigterm and not sigkill and not new_process and not inside_an_epoch"
    " and not worker_processes"
)
# The packages whose resolved versions the session prints first.
LOWEST_SHOWN = re.compile(r"jax|flax|optax|orbax|chex|grain|tensorflow-datasets|numpy", re.I)


@nox.session(python="3.11")
def lowest(session):
    """The lowest versions pyproject.toml allows: uv resolves jaxdl's direct dependencies
    (and the test extra's) to their floors, the packages they pull in float, and a fast
    subset of the tests runs on them (about 2.5 minutes on 2 CPU cores, install included).
    A floor that is too low fails here; raise it in pyproject.toml with a comment naming
    what needs it."""
    session.install("uv")
    python = os.path.join(session.bin, "python")
    session.run(
        "uv", "pip", "install", "--python", python, "--resolution", "lowest-direct", "-e", ".[test]"
    )
    frozen = session.run("uv", "pip", "freeze", "--python", python, silent=True)
    for line in frozen.splitlines():
        if LOWEST_SHOWN.search(line):
            session.log(line)
    tests = session.posargs or ["-k", LOWEST_SKIP, *LOWEST_TESTS]
    session.run("pytest", "-q", "-n", workers(), "--dist", "loadfile", *tests)


@nox.session
def slow(session):
    """Only the tests marked slow: long trainings and measurements."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "--runslow", "-m", "slow", *session.posargs)


@nox.session
def lint(session):
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def docs(session):
    """The documentation site, built with warnings as errors into build/site/: the guide's
    snippets run while it builds (their printed output and figures go into the pages), the
    API reference is generated from the docstrings, and a broken link, anchor or
    cross-reference fails the build. Then the docstrings' examples and the reference's
    coverage of the public API are checked."""
    session.install("-e", ".[docs,test]")
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("mkdocs", "build", "--strict", *session.posargs)
    session.run("pytest", "-q", "--runslow", "tests/test_api_reference.py")


@nox.session
def weights(session):
    """The pretrained-weight converters against the real libraries (torchvision's ResNets
    and Hugging Face's BERT built with random weights; nothing is downloaded)."""
    session.install("-e", ".[test,weights]")
    session.run("pytest", "-q", "--runslow", "tests/models/test_pretrained.py", *session.posargs)


@nox.session
def tfds(session):
    """TFDS's real preparation path, offline: local builders prepared the way jaxdl prepares
    them (array_record), with TensorFlow installed so image sets build too."""
    session.install("-e", ".[test,tfds-build]")
    session.run("pytest", "-q", "tests/data/test_tfds_build.py", *session.posargs)


@nox.session
def examples(session):
    """Every example with --quick: a smoke run of seconds each."""
    session.install("-e", ".")
    for script in sorted(glob.glob("examples/*.py")):
        session.run("python", script, "--quick", "--out", f"{session.create_tmp()}/examples")


@nox.session
def bench(session):
    """The quick benchmark suite (about 5 minutes on 2 CPU cores); results go to
    benchmarks/results/. Every suite: ``python benchmarks/run.py --suite NAME``."""
    session.install("-e", ".")
    session.run("python", "benchmarks/run.py", "--suite", "quick", *session.posargs)
    session.run("python", "benchmarks/trainer_overhead.py", "--quick", *session.posargs)
    session.run("python", "benchmarks/gnn_step.py", "--quick", *session.posargs)
    session.run("python", "benchmarks/memory.py", *session.posargs)
    session.run("python", "benchmarks/sweep.py", "--quick", *session.posargs)
