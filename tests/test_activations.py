import flax.linen as nn
import jax
import numpy as np
import pytest
from scipy.special import erf

from jaxdl import activations
from jaxdl.activations import Maxout

X = np.linspace(-4, 4, 41).astype(np.float32)

REFERENCES = {
    "linear": lambda x: x,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
    "swish": lambda x: x / (1 + np.exp(-x)),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_matches_formula(name):
    np.testing.assert_allclose(activations.get(name)(X), REFERENCES[name](X), rtol=1e-5, atol=1e-6)


def test_gelu_gradient_matches_its_derivative():
    # d/dx x Phi(x) = Phi(x) + x phi(x), with the normal CDF and density
    x = X.astype(np.float64)
    expected = 0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)
    grad = jax.vmap(jax.grad(activations.get("gelu")))(X)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_softmax_rows_sum_to_one_and_match_formula():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    e = np.exp(x)
    np.testing.assert_allclose(
        activations.get("softmax")(x), e / e.sum(1, keepdims=True), rtol=1e-6
    )


def test_maxout_is_max_of_affine_pieces(rng):
    layer = Maxout(features=3, pieces=4)
    x = rng.normal(size=(5, 2)).astype(np.float32)
    variables = layer.init(jax.random.key(0), x)
    w = np.asarray(variables["params"]["dense"]["kernel"]).reshape(2, 3, 4)
    b = np.asarray(variables["params"]["dense"]["bias"]).reshape(3, 4)
    expected = (np.einsum("ni,ijk->njk", x, w) + b).max(-1)
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(layer, nn.Module)


def test_unknown_activation():
    with pytest.raises(ValueError, match="expected one of:.*relu"):
        activations.get("rectifier")
