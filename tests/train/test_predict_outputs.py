"""``Trainer.predict(x, output=...)``, ``predict_proba`` and ``predict_classes`` against NumPy's
softmax, sigmoid and arg-max of ``predict``'s logits."""

import numpy as np
import pytest

import jaxdl
from jaxdl.train import tasks


def numpy_softmax(logits):
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(11, 4)).astype(np.float32) * 3


def test_multi_class_probabilities_are_the_softmax_and_classes_the_argmax_of_the_logits(x):
    trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 3)), seed=1)
    trainer.init(x[:1])
    logits = trainer.predict(x, batch_size=4)  # 11 = 2 * 4 + 3: a padded last batch
    probabilities = trainer.predict_proba(x, batch_size=4)
    np.testing.assert_allclose(probabilities, numpy_softmax(logits), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-6)
    classes = trainer.predict_classes(x, batch_size=4)
    assert classes.shape == (11,)
    np.testing.assert_array_equal(classes, logits.argmax(-1))
    assert len(set(classes.tolist())) > 1  # the check can tell an arg-max from a constant
    np.testing.assert_array_equal(trainer.predict(x, output="classes"), classes)
    np.testing.assert_array_equal(trainer.predict(x, output="logits"), logits)


def test_a_single_logit_binary_model_gives_the_sigmoid_and_a_threshold_at_one_half(x):
    trainer = jaxdl.Trainer(jaxdl.models.MLP((1,)), loss="binary_cross_entropy", seed=2)
    trainer.init(x[:1])
    logits = trainer.predict(x)
    assert logits.shape == (11, 1)
    probabilities = trainer.predict_proba(x)
    assert probabilities.shape == (11, 1)  # the positive class's probability
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    classes = trainer.predict_classes(x)
    np.testing.assert_array_equal(classes, (probabilities[:, 0] > 0.5).astype(np.int64))
    assert 0 < classes.sum() < 11


def test_regression_outputs_have_no_classes_and_say_so_before_anything_runs(x):
    trainer = jaxdl.Trainer(jaxdl.models.MLP((1,)), loss="mse")
    trainer.init(x[:1])
    for predict in (trainer.predict_proba, trainer.predict_classes):
        with pytest.raises(ValueError, match="'mse' is a regression loss.*predict\\(x\\)"):
            predict(x)
    with pytest.raises(ValueError, match="output: expected one of 'logits', 'probabilities'"):
        trainer.predict(x, output="proba")
    assert trainer.predict(x).shape == (11, 1)


def test_outputs_by_loss_without_a_model():
    logits = np.array([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]], np.float32)
    proba = tasks.Supervised("kl_divergence").output_transform("probabilities")(logits)
    np.testing.assert_allclose(proba, numpy_softmax(logits), rtol=1e-6)
    # outputs that are probabilities already (from_logits=False) come as they are
    p = numpy_softmax(logits)
    task = tasks.Supervised("cross_entropy", loss_options={"from_logits": False})
    assert task.output_transform("probabilities")(p) is p
    np.testing.assert_array_equal(task.output_transform("classes")(p), [0, 2])
    binary = tasks.Supervised("binary_cross_entropy", loss_options={"from_logits": False})
    np.testing.assert_array_equal(binary.output_transform("classes")(p[:, :1]), [1, 0])
    # several sigmoid outputs are labels of their own (multi-label), not one softmax
    multi_label = tasks.Supervised("binary_cross_entropy").output_transform("classes")(logits)
    np.testing.assert_array_equal(multi_label, [[1, 0, 1], [0, 0, 1]])
    # a hinge loss gives margins: classes by their sign, no probabilities
    hinge = tasks.Supervised("hinge")
    np.testing.assert_array_equal(hinge.output_transform("classes")(logits[:, :1]), [1, 0])
    with pytest.raises(ValueError, match="margins, not probabilities"):
        hinge.output_transform("probabilities")
    # a custom loss: the outputs' shape decides (softmax for several, sigmoid for one)
    custom = tasks.Supervised(lambda outputs, targets: outputs[:, 0])
    np.testing.assert_allclose(
        custom.output_transform("probabilities")(logits), numpy_softmax(logits), rtol=1e-6
    )
    np.testing.assert_allclose(
        custom.output_transform("probabilities")(logits[:, :1]),
        1 / (1 + np.exp(-logits[:, :1])),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="'elbo' task's outputs are not class scores"):
        tasks.ELBO().output_transform("classes")
