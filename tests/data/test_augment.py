"""Augmentation, class weights and resampling against NumPy references and hand counts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl.data import augment, class_weights, oversample, undersample


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(64, 9, 9, 2)).astype(np.float32)


def test_flip_mirrors_about_half_of_the_examples_from_the_key(images):
    out = np.asarray(augment.random_flip()(jax.random.key(0), images))
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 20 <= sum(flipped) <= 44  # binomial(64, 1/2): within 3 standard deviations
    again = augment.random_flip()(jax.random.key(0), images)
    np.testing.assert_array_equal(out, again)


def shifted(image, dy, dx, pad):
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    return padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]


def test_translate_is_a_crop_of_the_zero_padded_image(images):
    out = np.asarray(jax.jit(augment.random_crop(3))(jax.random.key(1), images))
    seen = set()
    for o, image in zip(out, images):
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if np.array_equal(o, shifted(image, dy, dx, 3))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 20  # shifts differ from example to example


def test_rotation_keeps_a_blob_at_its_distance_from_the_centre():
    image = np.zeros((1, 21, 21, 1), np.float32)
    image[0, 4:7, 9:12] = 1.0  # a blob centred 5 pixels above the centre
    identity = augment.random_rotation(0.0)(jax.random.key(0), image)
    np.testing.assert_allclose(identity, image, atol=1e-6)
    ys, xs = np.mgrid[:21, :21]
    for seed in range(5):
        out = np.asarray(augment.random_rotation(40.0)(jax.random.key(seed), image))[0, ..., 0]
        mass = out.sum()
        cy, cx = (out * ys).sum() / mass, (out * xs).sum() / mass
        assert abs(mass - 9.0) < 1.0
        assert (
            abs(np.hypot(cy - 10, cx - 10) - 5.0) < 0.5 or abs(np.hypot(cy - 10, cx - 10) - 5) < 0.5
        )
        angle = np.degrees(np.arctan2(cx - 10, 10 - cy))
        assert abs(angle) <= 40.5


def test_noise_and_cutout(images):
    out = np.asarray(augment.gaussian_noise(0.3)(jax.random.key(2), images))
    assert abs((out - images).std() - 0.3) < 0.01 and abs((out - images).mean()) < 0.01
    ones = np.ones((32, 12, 12, 1), np.float32)
    cut = np.asarray(augment.cutout(4)(jax.random.key(3), ones))[..., 0]
    for example in cut:
        rows, cols = np.nonzero(example == 0)
        assert 0 < len(rows) <= 16
        # the zeroed pixels fill their bounding box: one square, clipped at the border
        assert len(rows) == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)


def test_compose_uses_independent_keys_and_resize_keeps_the_mean():
    x = np.ones((4, 8, 8, 1), np.float32)
    both = augment.compose(augment.gaussian_noise(1.0), augment.gaussian_noise(1.0))
    out = np.asarray(both(jax.random.key(0), x))
    assert abs((out - 1).std() - np.sqrt(2)) < 0.15  # two independent draws add variances
    big = augment.resize(np.arange(16.0).reshape(1, 4, 4, 1), (8, 8))
    assert big.shape == (1, 8, 8, 1) and abs(float(big.mean()) - 7.5) < 1e-4


def test_trainer_augments_training_batches_only():
    data = jaxdl.data.load("digits", seed=0)
    trainer = jaxdl.Trainer(
        jaxdl.models.MLP((8, 10)),
        loss=jaxdl.tasks.Supervised(augment=lambda key, x: jnp.zeros_like(x)),
        seed=0,
    )
    trainer.init(data.train.x[:1])
    kernel = jax.device_get(trainer.state.params["dense_0"]["kernel"])
    trainer.fit(data.train, epochs=1, batch_size=64, verbose=False)
    # the inputs it trained on were zeros: the first layer's weights got no gradient
    np.testing.assert_array_equal(trainer.state.params["dense_0"]["kernel"], kernel)
    model = jaxdl.models.MLP((8, 10))
    direct = model.apply(trainer.state.variables(), data.test.x)
    np.testing.assert_allclose(trainer.predict(data.test.x), direct, rtol=1e-5, atol=1e-6)


def test_class_weights_and_resampling_by_hand():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    np.testing.assert_allclose(class_weights(labels), [10 / 18, 10 / 9, 10 / 3])
    over = oversample(labels, seed=0)
    assert np.bincount(labels[over]).tolist() == [6, 6, 6] and set(over) == set(range(10))
    under = undersample(labels, seed=0)
    assert np.bincount(labels[under]).tolist() == [1, 1, 1] and len(set(under)) == 3


def test_class_weighted_sgd_step_against_autodiff():
    data = jaxdl.data.load("digits", seed=0)
    x, y = data.train.x[:40], data.train.y[:40]
    weights = np.linspace(0.5, 2.0, 10).astype(np.float32)
    model = jaxdl.models.MLP((10,))
    task = jaxdl.tasks.Supervised(class_weight=weights)
    trainer = jaxdl.Trainer(model, loss=task, optimizer="sgd", learning_rate=0.5)
    trainer.init(x[:1])
    params = jax.device_get(trainer.state.params)
    history = trainer.fit((x, y), epochs=1, batch_size=40, shuffle=False, verbose=False)

    def loss(p):
        ce = optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x), y)
        return jnp.mean(weights[y] * ce)

    grads = jax.grad(loss)(params)
    expected = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
        jax.device_get(trainer.state.params),
        expected,
    )
    # the reported loss stays the plain mean cross-entropy
    plain = optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": params}, x), y)
    assert np.isclose(history["loss"][0], float(plain.mean()), rtol=1e-5)
    with pytest.raises(ValueError, match="expected 10 finite weights"):
        task = jaxdl.tasks.Supervised(class_weight=[1.0, 2.0])
        jaxdl.Trainer(model, loss=task).fit((x, y), epochs=1, verbose=False)


def test_balanced_class_weights_find_a_rare_class():
    """Over five draws of the 6 kept examples the recall gained 0.22 to 0.30."""
    data = jaxdl.data.load("digits", seed=0)
    rare = np.flatnonzero(data.train.y == 3)
    kept = np.random.default_rng(1).choice(rare, 6, replace=False)  # class 3 cut to 6
    keep = np.setdiff1d(np.arange(len(data.train)), np.setdiff1d(rare, kept))
    train = data.train.subset(keep)
    found = {}
    for name, options in {"as is": {}, "weighted": {"class_weight": "balanced"}}.items():
        task = jaxdl.tasks.Supervised(**options)
        trainer = jaxdl.Trainer(jaxdl.models.MLP((64, 10)), loss=task, seed=0)
        trainer.fit(train, epochs=40, batch_size=64, verbose=False)
        predicted = trainer.predict(data.test.x).argmax(-1)
        found[name] = jaxdl.metrics.recall(data.test.y == 3, predicted == 3)
    assert found["weighted"] >= found["as is"] + 0.15, found
