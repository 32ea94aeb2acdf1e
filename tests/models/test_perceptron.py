"""The perceptron, as the history goes: it learns AND and OR and fails on XOR."""

import numpy as np
import pytest

from jaxdl.models import perceptron_fit, perceptron_predict

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TRUTH = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "xor": [0, 1, 1, 0]}


def rosenblatt_numpy(x, y, epochs, lr):
    """The rule written out with NumPy loops, examples in order."""
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(epochs):
        for xi, target in zip(x, y):
            error = target - float(xi @ w + b > 0)
            w, b = w + lr * error * xi, b + lr * error
    return w, b


def test_the_rule_matches_a_numpy_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) > 0.3).astype(np.int32)
    params, mistakes = perceptron_fit(x, y, epochs=3, learning_rate=0.5, shuffle=False)
    w, b = rosenblatt_numpy(x, y, epochs=len(mistakes), lr=0.5)
    np.testing.assert_allclose(params.weights, w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(params.bias, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gate", ["and", "or"])
def test_it_learns_and_and_or(gate):
    params, mistakes = perceptron_fit(INPUTS, TRUTH[gate], epochs=50)
    assert mistakes[-1] == 0 and len(mistakes) < 50  # converged: a pass without a mistake
    np.testing.assert_array_equal(perceptron_predict(params, INPUTS), TRUTH[gate])


def test_it_never_learns_xor():
    """(The MLP trained by backprop that does: tests/test_trainer.py::
    test_classic_four_point_xor.)"""
    params, mistakes = perceptron_fit(INPUTS, TRUTH["xor"], epochs=200)
    assert len(mistakes) == 200 and min(mistakes) >= 1  # not one pass without a mistake
    # no line gets more than 3 of the 4 XOR points right
    assert np.mean(perceptron_predict(params, INPUTS) == TRUTH["xor"]) <= 0.75


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        perceptron_fit(INPUTS, [0, 1, 2, 1])
