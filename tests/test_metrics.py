"""Metrics against scikit-learn (an independent implementation) and hand-worked cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxdl import metrics


@pytest.fixture
def multiclass(rng):
    y = rng.integers(0, 4, 200)
    scores = rng.normal(size=(200, 4)) + 1.5 * np.eye(4)[y]
    return y, scores


def test_confusion_matrix_and_accuracy(multiclass):
    y, scores = multiclass
    pred = scores.argmax(1)
    expected = skm.confusion_matrix(y, pred)
    np.testing.assert_array_equal(metrics.confusion_matrix(y, scores), expected)
    assert metrics.accuracy(y, scores) == pytest.approx(skm.accuracy_score(y, pred))
    assert metrics.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize(
    "name,reference",
    [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1_score", skm.f1_score),
    ],
)
def test_multiclass_averages(multiclass, name, reference, average):
    y, scores = multiclass
    pred = scores.argmax(1)
    got = getattr(metrics, name)(y, pred, average=average)
    assert got == pytest.approx(reference(y, pred, average=average, zero_division=0))


def test_class_never_predicted_counts_zero_precision():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])  # class 2 never predicted
    assert metrics.precision(y, pred, average="macro") == pytest.approx(
        skm.precision_score(y, pred, average="macro", zero_division=0)
    )
    # by hand: precision per class = 1, 0.5, 0 -> macro 0.5
    assert metrics.precision(y, pred, average="macro") == pytest.approx(0.5)


def test_binary_by_hand():
    # tp=2, fp=1, fn=1 -> precision 2/3, recall 2/3, f1 2/3
    y = np.array([1, 1, 1, 0, 0])
    pred = np.array([1, 1, 0, 1, 0])
    assert metrics.precision(y, pred) == pytest.approx(2 / 3)
    assert metrics.recall(y, pred) == pytest.approx(2 / 3)
    assert metrics.f1_score(y, pred) == pytest.approx(2 / 3)
    # probabilities are thresholded at 0.5
    assert metrics.recall(y, np.array([0.9, 0.6, 0.2, 0.7, 0.1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="two classes"):
        metrics.precision(np.array([0, 1, 2]), np.array([0, 1, 2]))


def test_roc_and_pr_auc_binary_with_ties(rng):
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + y, 1)  # rounding makes many ties
    assert metrics.roc_auc(y, scores) == pytest.approx(skm.roc_auc_score(y, scores))
    assert metrics.pr_auc(y, scores) == pytest.approx(skm.average_precision_score(y, scores))


def test_roc_auc_by_hand():
    # positives scored 0.8, 0.4; negatives 0.6, 0.2: 3 of 4 pairs ordered -> 0.75
    assert metrics.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2]) == pytest.approx(0.75)
    # PR: thresholds 0.8 (P=1, R=.5), 0.6 (P=.5), 0.4 (P=2/3, R=1) -> AP = .5*1 + .5*2/3
    assert metrics.pr_auc([1, 1, 0, 0], [0.8, 0.4, 0.6, 0.2]) == pytest.approx(0.5 + 1 / 3)


def test_multiclass_roc_and_pr_auc_one_vs_rest(multiclass):
    y, scores = multiclass
    probs = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    for average in ("macro", "weighted"):
        assert metrics.roc_auc(y, probs, average=average) == pytest.approx(
            skm.roc_auc_score(y, probs, multi_class="ovr", average=average)
        )
    onehot = np.eye(4)[y]
    assert metrics.pr_auc(y, probs) == pytest.approx(
        skm.average_precision_score(onehot, probs, average="macro")
    )


def test_mergeable_states_equal_whole_data_computation(multiclass):
    y, scores = multiclass
    mask = (np.arange(200) < 190).astype(np.float32)  # last 10 rows are padding
    chunks = np.array_split(np.arange(200), 7)
    acc = cm = None
    for idx in chunks:
        a = metrics.Accuracy.from_batch(jnp.asarray(scores[idx]), jnp.asarray(y[idx]), mask[idx])
        c = metrics.ConfusionMatrix.from_batch(
            jnp.asarray(scores[idx]),
            jnp.asarray(y[idx]),
            mask[idx],
            4,
            statistic="f1",
            average="macro",
        )
        acc = a if acc is None else acc.merge(a)
        cm = c if cm is None else cm.merge(c)
    assert acc.compute() == pytest.approx(skm.accuracy_score(y[:190], scores[:190].argmax(1)))
    assert cm.compute() == pytest.approx(
        skm.f1_score(y[:190], scores[:190].argmax(1), average="macro")
    )
    np.testing.assert_array_equal(cm.matrix, skm.confusion_matrix(y[:190], scores[:190].argmax(1)))


def test_states_merge_inside_jit_and_mean_is_exact(rng):
    values = rng.normal(size=(3, 5)).astype(np.float32)
    masks = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.float32)

    @jax.jit
    def total(v, m):
        state = metrics.Mean.from_values(v[0], m[0])
        for i in (1, 2):
            state = state.merge(metrics.Mean.from_values(v[i], m[i]))
        return state

    # the mean of all 12 real values, not the mean of three batch means
    expected = values[masks > 0].mean()
    assert total(values, masks).compute() == pytest.approx(float(expected), abs=1e-6)
    batch_means = np.mean([values[i][masks[i] > 0].mean() for i in range(3)])
    assert abs(batch_means - expected) > 1e-3


def test_binary_logit_states(rng):
    logits = rng.normal(size=(50, 1)).astype(np.float32)
    y = rng.integers(0, 2, 50)
    state = metrics.METRICS["recall"](jnp.asarray(logits), jnp.asarray(y), None, 2)
    assert state.compute() == pytest.approx(
        skm.recall_score(y, (logits[:, 0] > 0).astype(int), average="macro")
    )


def test_classifier_score_by_hand():
    # certain and balanced over 4 classes: 4; all alike: 1
    assert metrics.classifier_score(np.eye(4)) == pytest.approx(4.0)
    assert metrics.classifier_score(np.tile([0.1, 0.9], (5, 1))) == pytest.approx(1.0)
    # [0.5, 0.5] and [1, 0]: marginal [0.75, 0.25]; KLs 0.5 ln(2/3) + 0.5 ln 2 and ln(4/3)
    kl = (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25) + np.log(1 / 0.75)) / 2
    assert metrics.classifier_score([[0.5, 0.5], [1.0, 0.0]]) == pytest.approx(np.exp(kl))
    with pytest.raises(ValueError, match="rows that sum to one"):
        metrics.classifier_score([[0.5, 0.2]])


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_empty_states_have_the_structure_from_batch_returns_and_merge_as_identity(name):
    """The loop starts each epoch's running merge from ``empty``; a compiled carry must have
    exactly the structure, shapes and dtypes of what the step returns."""
    metric = metrics.get(name)
    logits = jnp.asarray([[2.0, 0.1, -1.0], [0.0, 1.0, 3.0]])
    targets = jnp.asarray([0, 1]) if name not in ("mae", "mse") else logits * 0.5
    state = metric(logits, targets, jnp.ones(2), 3)
    empty = metric.empty(3)
    shapes = lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree)
    assert jax.tree.structure(empty) == jax.tree.structure(state)
    assert shapes(empty) == shapes(state)
    assert empty.merge(state).compute() == pytest.approx(state.compute())
