"""Custom metrics beside the names, custom losses, and the default metrics picked by the loss.

A custom metric is a function ``(outputs, targets, mask) -> (total, count)`` or a state class
(``empty``, ``from_batch``, ``merge``, ``compute``); either must give over a whole data set
what NumPy gives, however the set is cut into padded batches.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import jaxdl
from jaxdl import metrics as metrics_lib
from jaxdl.train import tasks

N, BATCH = 30, 7  # 30 = 4 * 7 + 2: the last batch of evaluate holds 5 padded rows


def batch_mae(outputs, targets, mask):
    error = jnp.abs(outputs[:, 0] - targets)
    return jnp.sum(jnp.where(mask, error, 0.0)), jnp.sum(mask)


def unmasked_mae(outputs, targets, mask):  # wrong on purpose: counts the padding
    error = jnp.abs(outputs[:, 0] - targets)
    return jnp.sum(error), jnp.asarray(error.shape[0], jnp.float32)


@struct.dataclass
class MeanAbsoluteError:
    total: jax.Array
    count: jax.Array

    @classmethod
    def empty(cls):
        return cls(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))

    @classmethod
    def from_batch(cls, predictions, targets, mask):
        error = jnp.abs(predictions[:, 0] - targets)
        return cls(jnp.sum(error * mask), jnp.sum(mask))

    def merge(self, other):
        return jax.tree.map(jnp.add, self, other)

    def compute(self):
        return self.total / self.count


@struct.dataclass
class ShareOfClassZero:
    """The fraction of examples predicted as class 0, from counts per class (C,)."""

    name = "share_of_zero"
    counts: jax.Array

    @classmethod
    def empty(cls, num_classes=None):
        return cls(jnp.zeros((num_classes,), jnp.float32))

    @classmethod
    def from_batch(cls, predictions, targets, mask, num_classes=None):
        one_hot = jax.nn.one_hot(jnp.argmax(predictions, -1), num_classes)
        return cls(jnp.sum(one_hot * mask[:, None], axis=0))

    def merge(self, other):
        return ShareOfClassZero(self.counts + other.counts)

    def compute(self):
        return float(self.counts[0] / self.counts.sum())


def hits(outputs, targets, mask):
    correct = jnp.argmax(outputs, -1) == targets
    return jnp.sum(correct & mask), jnp.sum(mask)


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
    return x, y


def test_custom_mae_function_and_class_equal_numpy_and_the_builtin_over_padded_batches(
    regression,
):
    x, y = regression
    trainer = jaxdl.Trainer(
        jaxdl.models.MLP((1,)),
        loss="mse",
        metrics=["mae", batch_mae, MeanAbsoluteError, unmasked_mae],
        learning_rate=0.05,
    )
    history = trainer.fit((x, y), epochs=2, batch_size=BATCH, verbose=False)
    names = ["loss", "mae", "batch_mae", "mean_absolute_error", "unmasked_mae"]
    assert list(history)[:5] == names  # the metrics in order (the run may log more, e.g. lr)
    # training batches: the same merged sums as the built-in, epoch by epoch
    np.testing.assert_allclose(history["batch_mae"], history["mae"], rtol=1e-6)
    np.testing.assert_allclose(history["mean_absolute_error"], history["mae"], rtol=1e-6)

    result = trainer.evaluate((x, y), batch_size=BATCH)
    expected = float(np.mean(np.abs(trainer.predict(x)[:, 0] - y)))
    assert result["batch_mae"] == pytest.approx(expected, rel=1e-5)
    assert result["mean_absolute_error"] == pytest.approx(expected, rel=1e-5)
    assert result["mae"] == pytest.approx(expected, rel=1e-5)
    # the test can fail: a metric that counts the padded rows gives another number
    assert result["unmasked_mae"] != pytest.approx(expected, rel=1e-3)


def test_custom_classification_metrics_equal_numpy_and_the_builtin_accuracy():
    rng = np.random.default_rng(1)
    centres = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]], np.float32)
    y = rng.integers(0, 3, N).astype(np.int32)
    x = (centres[y] + rng.normal(size=(N, 2)) * 2.0).astype(np.float32)
    trainer = jaxdl.Trainer(
        jaxdl.models.MLP((3,)), metrics=["accuracy", hits, ShareOfClassZero], learning_rate=0.05
    )
    trainer.fit((x, y), epochs=2, batch_size=BATCH, verbose=False)
    result = trainer.evaluate((x, y), batch_size=BATCH)
    predicted = trainer.predict(x).argmax(-1)
    assert result["hits"] == pytest.approx(np.mean(predicted == y), rel=1e-6)
    assert result["hits"] == pytest.approx(result["accuracy"], rel=1e-6)
    assert result["share_of_zero"] == pytest.approx(np.mean(predicted == 0), rel=1e-6)


def test_a_custom_loss_of_per_example_values_equals_the_builtin(regression):
    """The documented shape: ``loss(outputs (B, 1), targets (B,)) -> (B,)``."""
    x, y = regression

    def squared_error(outputs, targets):
        return (outputs[:, 0] - targets) ** 2

    trainers = [
        jaxdl.Trainer(jaxdl.models.MLP((1,)), loss=loss, learning_rate=0.05)
        for loss in ("mse", squared_error)
    ]
    assert trainers[1].metrics == ()  # a custom loss reports no metric by default
    runs = [t.fit((x, y), epochs=2, batch_size=BATCH, verbose=False) for t in trainers]
    np.testing.assert_allclose(runs[1]["loss"], runs[0]["loss"], rtol=1e-6)

    def mean_error(outputs, targets):  # a batch mean, not one value per example
        return jnp.mean((outputs[:, 0] - targets) ** 2)

    with pytest.raises(ValueError, match=r"one value per example, shape \(batch,\)"):
        jaxdl.Trainer(jaxdl.models.MLP((1,)), loss=mean_error).fit(
            (x, y), batch_size=BATCH, verbose=False
        )


def test_regression_reports_no_accuracy_and_takes_float_or_integer_targets(regression):
    x, y = regression
    trainer = jaxdl.Trainer(jaxdl.models.MLP((1,)), loss="mse", learning_rate=0.05)
    assert trainer.metrics == ()
    history = trainer.fit((x, y), batch_size=BATCH, verbose=False)
    assert "accuracy" not in history and np.isfinite(history["loss"]).all()
    counts = np.arange(N, dtype=np.int64) % 50  # integers are values here, not class labels
    result = trainer.evaluate((x, counts), batch_size=BATCH)
    expected = np.mean((trainer.predict(x)[:, 0] - counts) ** 2)
    assert "accuracy" not in result
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    classifier = jaxdl.Trainer(jaxdl.models.MLP((3,)))
    assert classifier.task.metric_names(classifier.metrics) == ("loss", "accuracy")


@pytest.mark.parametrize(
    "loss, expected",
    [
        ("cross_entropy", ("accuracy",)),
        ("sparse_cross_entropy", ("accuracy",)),
        ("binary_cross_entropy", ("accuracy",)),
        ("mse", ()),
        ("mae", ()),
        ("msle", ()),
        ("hinge", ()),
        ("kl_divergence", ()),
    ],
)
def test_default_metrics_follow_the_loss(loss, expected):
    assert tasks.Supervised(loss).default_metrics == expected


def test_bad_custom_metrics_are_refused_by_name():
    model = jaxdl.models.MLP((1,))
    with pytest.raises(ValueError, match="no name for the history"):
        jaxdl.Trainer(model, loss="mse", metrics=[lambda o, t, m: (0.0, 1.0)])
    with pytest.raises(TypeError, match="pass the class itself, not an instance"):
        jaxdl.Trainer(model, loss="mse", metrics=[MeanAbsoluteError.empty()])
    with pytest.raises(TypeError, match="lacks empty, from_batch"):
        jaxdl.Trainer(model, loss="mse", metrics=[int])
    with pytest.raises(ValueError, match="two metrics report under the name 'mae'"):
        jaxdl.Trainer(model, loss="mse", metrics=["mae", "mae"])

    def loss(outputs, targets, mask):
        return jnp.sum(mask), jnp.sum(mask)

    with pytest.raises(ValueError, match="under the name 'loss'"):
        jaxdl.Trainer(model, loss="mse", metrics=[loss])


def test_custom_metric_states_of_another_shape_are_refused_when_traced():
    logits, labels, mask = jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), jnp.ones(4)

    def per_row(outputs, targets, mask):  # (B,) values, not two sums
        return jnp.abs(outputs[:, 0]), jnp.sum(mask)

    with pytest.raises(ValueError, match=r"'per_row' must return \(total, count\)"):
        metrics_lib.as_metric(per_row)(logits, labels, mask, 3)

    @struct.dataclass
    class Counts(ShareOfClassZero):
        @classmethod
        def empty(cls, num_classes=None):
            return cls(jnp.zeros((num_classes + 1,), jnp.float32))

    with pytest.raises(ValueError, match=r"from_batch returned .*\(3,\).*empty\(\) gives"):
        metrics_lib.as_metric(Counts)(logits, labels, mask, 3)
    # a good state's empty value has the structure from_batch returns, as the loop needs
    metric = metrics_lib.as_metric(ShareOfClassZero)
    state = metric(logits, labels, mask, 3)
    assert jax.tree.map(jnp.shape, metric.empty(3)) == jax.tree.map(jnp.shape, state)
    assert metric.empty(3).merge(state).compute() == 1.0
