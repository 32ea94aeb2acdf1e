"""Property-based tests of the public entry points with bad input.

``fit``, ``evaluate``, ``predict``, ``jaxdl.data.load`` and the CLI get wrong shapes, wrong
dtypes, NaN and infinity, empty arrays, single examples, huge batch sizes and unknown names.
Each call either works or raises the documented error (ValueError or TypeError, or a
CLI exit status of 2) from jaxdl's own checks — the innermost frame of the error is in
jaxdl, so it never is a raw NumPy, JAX or XLA failure — with a message that names the
argument at fault. A checkpoint saved before the bad calls is left as it was.
"""

import hashlib
import os
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import jaxdl
import jaxdl.cli

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FEATURES = 64  # digits: (N, 64) float32 features, labels in [0, 10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("saved")
    data = jaxdl.data.load("digits", seed=0)
    trainer = jaxdl.Trainer(jaxdl.models.MLP(features=(16, 10)), checkpoint=directory)
    trainer.fit(data.train, epochs=1, batch_size=64, verbose=False)
    return trainer, data, directory


def raised_by_jaxdl(error: BaseException) -> bool:
    """The innermost frame of ``error`` lies in jaxdl's own source."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and f"{os.sep}jaxdl{os.sep}" in frames[-1].filename


def refused_clearly(call, *names: str) -> BaseException | None:
    """Run ``call``: None when it works; the error when jaxdl refused it in a documented way
    (ValueError/TypeError raised by jaxdl, naming one of ``names``); fail otherwise."""
    try:
        call()
    except (ValueError, TypeError) as error:
        assert raised_by_jaxdl(error), "".join(traceback.format_exception(error))
        message = str(error)
        assert any(name in message for name in names), (names, message)
        assert len(message) < 2000 and "Traceback" not in message
        event(f"refused: {type(error).__name__}")
        return error
    event("works")
    return None


DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool", "complex64", "<U3"]


@st.composite
def arrays(draw, rows=None, feature_shapes=None):
    """Arrays of any of those dtypes; half of them well-formed features (N, 64), the others
    of another shape or rank; float arrays may hold NaN or infinity."""
    n = draw(rows if rows is not None else st.integers(0, 70))
    if feature_shapes is None:
        feature_shapes = st.one_of(
            st.just((FEATURES,)), st.lists(st.integers(0, 9), max_size=3).map(tuple)
        )
    shape = draw(feature_shapes)
    if draw(st.booleans()):
        dtype = np.dtype(draw(st.sampled_from(["float32", "float64", "int64"])))
    else:
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    if n and shape and draw(st.integers(0, 5)) == 0:  # no batch axis at all
        shape, n = (), n
    values = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=(n, *shape))
    if dtype.kind == "U":
        return values.astype(dtype)
    x = (values * 3).astype(dtype)
    if dtype.kind in "fc" and x.size and draw(st.integers(0, 3)) == 0:
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


# well-formed features, so that the calls that should work are tried as often as the others
good_features = st.integers(1, 70).map(
    lambda n: np.random.default_rng(n).normal(size=(n, FEATURES)).astype(np.float32)
)

batch_sizes = st.one_of(
    st.integers(1, 300),
    st.integers(-3, 3),
    st.integers(10**6, 10**12),
    st.sampled_from([1, 16, 64, 255]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([None, "32", True, [8]]),
)


@SETTINGS
@given(x=st.one_of(good_features, arrays()), batch_size=batch_sizes)
def test_predict_works_or_refuses_clearly(trained, x, batch_size):
    trainer = trained[0]
    out = []
    error = refused_clearly(lambda: out.append(trainer.predict(x, batch_size)), "x", "batch_size")
    if error is None:  # only well-formed features pass, and give one row each
        assert x.ndim == 2 and x.shape[1] == FEATURES and x.dtype.kind in "fiub"
        assert out[0].shape == (len(x), 10) and np.isfinite(out[0]).all()


def labels_for(n: int):
    """Labels for n examples: right, out of range, one-hot, of another length, or junk."""
    return st.one_of(
        st.just(np.arange(n) % 10),
        st.just(np.arange(n) % 10 + 5),
        st.just(np.eye(10, dtype=np.float32)[np.arange(n) % 10]),
        st.integers(0, 70).map(lambda m: np.arange(m) % 10),
        arrays(rows=st.just(n), feature_shapes=st.sampled_from([(), (10,), (3,)])),
    )


@SETTINGS
@given(
    x=st.one_of(
        st.sampled_from([1, 7, 40]).map(lambda n: np.ones((n, FEATURES), np.float32)),
        arrays(rows=st.sampled_from([0, 1, 7, 40])),
    ),
    batch_size=batch_sizes,
    data=st.data(),
)
def test_evaluate_works_or_refuses_clearly(trained, x, batch_size, data):
    trainer = trained[0]
    y = data.draw(labels_for(len(x) if x.ndim else 0))
    out = []
    error = refused_clearly(
        lambda: out.append(trainer.evaluate((x, y), batch_size)), "x", "y", "batch_size"
    )
    if error is None:
        assert len(x) == len(y) >= 1
        assert 0.0 <= out[0]["accuracy"] <= 1.0 and np.isfinite(out[0]["loss"])


def checkpoint_digest(directory) -> str:
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(directory)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(path.encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


bad_fit_arguments = st.one_of(
    # bad features, fine labels
    st.tuples(
        arrays().filter(
            lambda x: (
                x.ndim != 2
                or x.shape[1:] != (FEATURES,)
                or x.dtype.kind not in "fiub"
                or not len(x)
            )
        ),
        st.just(np.zeros(8, np.int32)),
        st.just(8),
    ),
    # fine features, labels of the wrong length or out of range
    st.tuples(
        st.just(np.zeros((8, FEATURES), np.float32)),
        st.sampled_from(
            [np.zeros(7, np.int32), np.full(8, 10), np.full(8, -1), np.zeros((8, 3), np.float32)]
        ),
        st.just(4),
    ),
    # fine data, a bad batch size
    st.tuples(
        st.just(np.zeros((8, FEATURES), np.float32)),
        st.just(np.zeros(8, np.int32)),
        st.one_of(st.integers(-3, 0), st.integers(9, 10**12), st.floats(), st.just(None)),
    ),
)


@SETTINGS
@given(arguments=bad_fit_arguments, epochs=st.integers(1, 2))
def test_fit_refuses_bad_input_clearly_and_leaves_checkpoints_alone(trained, arguments, epochs):
    trainer, _, directory = trained
    before = checkpoint_digest(directory)
    x, y, batch_size = arguments
    error = refused_clearly(
        lambda: trainer.fit((x, y), epochs=epochs, batch_size=batch_size, verbose=False),
        "data",
        "batch_size",
    )
    assert error is not None, "bad input was accepted"
    assert checkpoint_digest(directory) == before


@settings(max_examples=30, deadline=None)
@given(
    name=st.one_of(st.text(max_size=12), st.sampled_from(["digits", "xor", "moons", "spirals"])),
    seed=st.one_of(st.integers(-5, 2**40), st.floats(), st.none()),
    fractions=st.one_of(
        st.just((0.65, 0.15, 0.2)),
        st.lists(st.floats(-1, 2), min_size=0, max_size=4).map(tuple),
    ),
    scaling=st.sampled_from(["standard", "minmax", None, "zscore"]),
)
def test_data_load_works_or_refuses_clearly(name, seed, fractions, scaling):
    out = []
    call = lambda: out.append(
        jaxdl.data.load(name, seed=seed, fractions=fractions, scaling=scaling)
    )
    error = refused_clearly(call, "data set", "seed", "fractions", "scaling")
    if error is None:  # the split follows the fractions, to within one example per class
        splits = out[0]
        sizes = np.array([len(splits.train.x), len(splits.validation.x), len(splits.test.x)])
        np.testing.assert_allclose(sizes / sizes.sum(), fractions, atol=0.02)


cli_values = {
    "--model": st.one_of(
        st.sampled_from(["mlp", "cnn", "gcn", "transformer_lm"]), st.text(max_size=6)
    ),
    "--dataset": st.one_of(st.sampled_from(["digits", "adding", "xor"]), st.text(max_size=6)),
    "--epochs": st.sampled_from(["-1", "0", "x", "1e9", "1"]),
    "--batch-size": st.sampled_from(["0", "-4", "100000000", "3.5", "128"]),
    "--lr": st.sampled_from(["nan", "-1", "inf", "abc", "1e30", "0.01"]),
    "--optimizer": st.one_of(st.just("sgd"), st.text(max_size=6)),
    "--hidden": st.sampled_from(["0", "-3", "8"]),
    "--dropout": st.sampled_from(["1", "-0.1", "nan", "0.5"]),
}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flags=st.dictionaries(st.sampled_from(sorted(cli_values)), st.none(), min_size=1),
    data=st.data(),
)
def test_cli_works_or_refuses_with_a_message(tmp_path_factory, flags, data, capsys):
    """Status 0 (trained), 2 (a bad argument) or 1 (the run failed, e.g. a NaN loss from a
    huge learning rate), always with one line of explanation and no traceback."""
    argv = ["train", "--quiet", "--limit", "64", "--out", str(tmp_path_factory.mktemp("cli"))]
    for flag in flags:
        argv += [flag, data.draw(cli_values[flag])]
    argv += ["--epochs", "1"] if "--epochs" not in flags else []
    try:
        status = jaxdl.cli.main(argv)
    except SystemExit as exit:  # argparse: a flag of the wrong type
        status = exit.code
    err = capsys.readouterr().err
    assert status in (0, 1, 2), (argv, status, err)
    event(f"status {status}")
    if status:
        assert "error:" in err and "Traceback" not in err, err
