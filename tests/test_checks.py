"""Bad input is refused before any compile, with a message naming the problem."""

import numpy as np
import pytest

import jaxdl


@pytest.fixture(scope="module")
def trained():
    d = jaxdl.data.load("digits", seed=0)
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(8, 10)))
    t.fit(d.train, epochs=1, batch_size=64, verbose=False)
    return t, d


def test_wrong_feature_shape_names_expected_and_actual(trained):
    t, d = trained
    with pytest.raises(ValueError, match=r"expected shape \(N, 64\), got \(360, 65\)"):
        t.evaluate((np.zeros((360, 65)), d.test.y))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 64\), got \(5, 8, 8\)"):
        t.predict(np.zeros((5, 8, 8)))


def test_wrong_dtype(trained):
    t, d = trained
    with pytest.raises(TypeError, match="numeric array, got dtype <U1"):
        t.predict(np.full((2, 64), "a"))
    with pytest.raises(TypeError, match="expected float32 features as in training, got int32"):
        t.evaluate((np.zeros((4, 64), np.int64), np.zeros(4, np.int64)))


def test_labels_out_of_range(trained):
    t, d = trained
    y = d.test.y.copy()
    y[3] = 10
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\).*\[0, 10\]"):
        t.evaluate((d.test.x, y))
    with pytest.raises(ValueError, match="expected 360 targets"):
        t.evaluate((d.test.x, y[:-1]))


def test_nan_in_inputs(trained):
    t, d = trained
    x = d.test.x.copy()
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite values .first in example 7."):
        t.evaluate((x, d.test.y))
    with pytest.raises(ValueError, match="NaN"):
        jaxdl.Trainer(jaxdl.models.MLP(features=(4, 10))).fit((x, d.test.y), verbose=False)


def test_batch_size_larger_than_the_data_set(trained):
    t, d = trained
    n = len(d.train)
    with pytest.raises(ValueError, match=rf"batch_size=5000 is larger than the data set \({n} "):
        t.fit(d.train, batch_size=5000, verbose=False)


def test_empty_and_unbatched_arrays():
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(4, 2)))
    with pytest.raises(ValueError, match="at least one example"):
        t.fit((np.zeros((0, 3)), np.zeros(0, int)), verbose=False)
    with pytest.raises(ValueError, match="batch axis first"):
        t.fit((np.zeros(3), np.zeros(3, int)), verbose=False)


def test_unknown_names_are_refused_at_construction():
    model = jaxdl.models.MLP(features=(4, 2))
    with pytest.raises(ValueError, match="unknown optimizer 'adum'; expected one of: adagrad"):
        jaxdl.Trainer(model, optimizer="adum")
    with pytest.raises(ValueError, match="unknown loss 'xent'"):
        jaxdl.Trainer(model, loss="xent")
    with pytest.raises(ValueError, match="unknown metric 'auc'.*accuracy"):
        jaxdl.Trainer(model, metrics=("auc",))
    with pytest.raises(ValueError, match="unknown model 'resnet9'.*mlp"):
        jaxdl.models.get("resnet9", 10)


def test_predict_before_fit():
    with pytest.raises(RuntimeError, match="call fit"):
        jaxdl.Trainer(jaxdl.models.MLP(features=(4, 2))).predict(np.zeros((1, 3)))


def test_epochs_must_be_a_positive_int():
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(4, 2)))
    data = (np.zeros((8, 3), np.float32), np.zeros(8, int))
    with pytest.raises(ValueError, match="epochs: expected a positive int, got 0"):
        t.fit(data, epochs=0, verbose=False)
    with pytest.raises(ValueError, match="epochs: expected a positive int, got -1"):
        t.fit(data, epochs=-1, verbose=False)
    with pytest.raises(TypeError, match="epochs: expected an int, got float: 2.5"):
        t.fit(data, epochs=2.5, verbose=False)
    assert t.state is None  # refused before anything was built
