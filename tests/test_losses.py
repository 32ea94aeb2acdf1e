"""Every loss against a naive NumPy version written here, plus hand-worked values."""

import numpy as np
import pytest

from jaxdl import losses


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.fixture
def regression(rng):
    return rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)


def test_mse_mae_msle_against_numpy(regression):
    p, t = regression
    np.testing.assert_allclose(losses.mse(p, t), np.mean((p - t) ** 2), rtol=1e-6)
    np.testing.assert_allclose(losses.mae(p, t), np.mean(np.abs(p - t)), rtol=1e-6)
    pp, tt = np.abs(p), np.abs(t)
    np.testing.assert_allclose(
        losses.msle(pp, tt), np.mean((np.log(1 + pp) - np.log(1 + tt)) ** 2), rtol=1e-5
    )


def test_mse_by_hand():
    # ((1-0)^2 + (2-4)^2) / 2 = 2.5
    assert float(losses.mse(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))) == 2.5


def test_hinge_and_squared_hinge(rng):
    p = rng.normal(size=(8, 2)).astype(np.float32)
    t = rng.choice([-1.0, 1.0], size=(8, 2)).astype(np.float32)
    expected = np.maximum(0, 1 - t * p)
    np.testing.assert_allclose(losses.hinge(p, t), expected.mean(), rtol=1e-6)
    np.testing.assert_allclose(losses.squared_hinge(p, t), (expected**2).mean(), rtol=1e-6)
    # {0, 1} targets are read as {-1, +1}
    np.testing.assert_allclose(losses.hinge(p, (t + 1) / 2), expected.mean(), rtol=1e-6)
    # hand: p=0.3, t=+1 -> 0.7; p=-2, t=-1 -> 0
    np.testing.assert_allclose(losses.hinge(np.array([0.3, -2.0]), np.array([1.0, -1.0])), 0.35)


def test_binary_cross_entropy_from_logits_and_probabilities(rng):
    z = rng.normal(size=(10, 1)).astype(np.float32) * 3
    t = rng.integers(0, 2, size=(10, 1)).astype(np.float32)
    p = np_sigmoid(z)
    expected = np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    np.testing.assert_allclose(losses.binary_cross_entropy(z, t), expected, rtol=1e-5)
    np.testing.assert_allclose(
        losses.binary_cross_entropy(p, t, from_logits=False), expected, rtol=1e-4
    )
    # hand: p = 0.5 for either label costs log 2
    np.testing.assert_allclose(
        losses.binary_cross_entropy(np.zeros((2, 1)), np.array([[0.0], [1.0]])),
        np.log(2),
        rtol=1e-6,
    )


def test_cross_entropy_onehot_sparse_and_probability_targets(rng):
    z = rng.normal(size=(7, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=7)
    onehot = np.eye(5, dtype=np.float32)[labels]
    expected = np.mean(-np.log(np_softmax(z)[np.arange(7), labels]))
    np.testing.assert_allclose(losses.cross_entropy(z, onehot), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.sparse_cross_entropy(z, labels), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.cross_entropy(z, labels), expected, rtol=1e-5)
    probs = np_softmax(z)
    np.testing.assert_allclose(
        losses.cross_entropy(probs, onehot, from_logits=False), expected, rtol=1e-4
    )
    np.testing.assert_allclose(
        losses.sparse_cross_entropy(probs, labels, from_logits=False), expected, rtol=1e-4
    )
    soft = np_softmax(rng.normal(size=(7, 5)))
    np.testing.assert_allclose(
        losses.cross_entropy(z, soft), np.mean(-(soft * np.log(np_softmax(z))).sum(-1)), rtol=1e-5
    )


def test_kl_divergence(rng):
    z = rng.normal(size=(4, 3)).astype(np.float32)
    t = np_softmax(rng.normal(size=(4, 3))).astype(np.float32)
    t[0] = [0.0, 0.25, 0.75]  # 0 log 0 = 0
    p = np_softmax(z)
    terms = np.where(t > 0, t * (np.log(np.where(t > 0, t, 1)) - np.log(p)), 0.0)
    expected = terms.sum(-1).mean()
    np.testing.assert_allclose(losses.kl_divergence(z, t), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.kl_divergence(p, t, from_logits=False), expected, rtol=1e-4)
    # KL of a distribution with itself is 0
    np.testing.assert_allclose(losses.kl_divergence(np.log(t[1:]), t[1:]), 0.0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_weights_give_weighted_mean_and_mask_padding(name, rng):
    fn = losses.get(name)
    if name in ("cross_entropy", "kl_divergence"):
        p = rng.normal(size=(6, 4)).astype(np.float32)
        t = np_softmax(rng.normal(size=(6, 4))).astype(np.float32)
    elif name == "sparse_cross_entropy":
        p, t = rng.normal(size=(6, 4)).astype(np.float32), rng.integers(0, 4, 6)
    elif name in ("binary_cross_entropy",):
        p, t = rng.normal(size=(6, 2)).astype(np.float32), rng.integers(0, 2, (6, 2)) * 1.0
    else:
        p, t = np.abs(rng.normal(size=(6, 2))), np.abs(rng.normal(size=(6, 2)))
    per_example = np.asarray(fn(p, t, reduction="none"))
    assert per_example.shape == (6,)
    np.testing.assert_allclose(fn(p, t), per_example.mean(), rtol=1e-6)
    np.testing.assert_allclose(fn(p, t, reduction="sum"), per_example.sum(), rtol=1e-6)
    w = np.array([1.0, 2.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    np.testing.assert_allclose(fn(p, t, w), (w * per_example).sum() / w.sum(), rtol=1e-6)
    # a 0/1 mask equals dropping the masked rows
    mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
    np.testing.assert_allclose(fn(p, t, mask), fn(p[:4], t[:4]), rtol=1e-6)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="unknown loss 'crossentropy'.*cross_entropy"):
        losses.get("crossentropy")


@pytest.mark.parametrize("name", ["mse", "mae", "msle", "hinge", "binary_cross_entropy"])
def test_column_outputs_take_flat_targets_and_mismatches_are_refused(name, rng):
    fn = losses.get(name)
    p = np.abs(rng.normal(size=(5, 1))).astype(np.float32)
    t = rng.integers(0, 2, 5).astype(np.float32)
    # (5, 1) against (5,) must not broadcast to (5, 5)
    np.testing.assert_allclose(fn(p, t), fn(p, t[:, None]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(5, 1\) and targets \(4,\)"):
        fn(p, t[:4])
