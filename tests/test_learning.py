"""Each model family reaches its number on a data set that needs no download.

Small configurations here; the examples run the full ones.
"""

import math

import jax
import numpy as np
import pytest

import jaxdl


@pytest.fixture(scope="module")
def digit_images():
    return jaxdl.data.load("digits", seed=0, image=True)


def fit(model, data, epochs, lr, batch_size=64, **options):
    clip = {"clip_norm": options.pop("clip_norm")} if "clip_norm" in options else {}
    opt = jaxdl.Optimizer(options.pop("optimizer", "adam"), lr, schedule="cosine", **clip)
    trainer = jaxdl.Trainer(model, optimizer=opt, seed=0, **options)
    trainer.fit(data.train, epochs=epochs, batch_size=batch_size, verbose=False)
    return trainer


def test_cnn_on_digits_reaches_098(digit_images):
    model = jaxdl.models.CNN((32, 64), (128,), 10, dropout_rate=0.3)
    trainer = fit(model, digit_images, 30, 2e-3, optimizer="adamw")
    assert trainer.evaluate(digit_images.test)["accuracy"] >= 0.98


@pytest.mark.slow  # about a minute on 2 cores; nox -s slow
def test_resnet20_on_digits_reaches_098(digit_images):
    model = jaxdl.models.ResNet(20, 10)  # three stages of three basic blocks, 16/32/64 wide
    trainer = fit(model, digit_images, 20, 3e-3, optimizer="adamw")
    assert trainer.evaluate(digit_images.test)["accuracy"] >= 0.98


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_nets_read_digit_rows(digit_images, cell):
    model = jaxdl.models.RNNClassifier(cell, 128, num_classes=10)
    trainer = fit(model, digit_images, 30, 3e-3, batch_size=32)
    assert trainer.evaluate(digit_images.test)["accuracy"] >= 0.95


@pytest.mark.slow  # over 10 s on 2 cores; nox -s slow
def test_lstm_solves_the_adding_problem_and_a_simple_rnn_does_not():
    data = jaxdl.data.load("adding", seed=0, length=50, n=6000)
    baseline = float(np.mean((data.test.y - data.train.y.mean()) ** 2))
    assert 0.14 < baseline < 0.19  # the variance of a sum of two uniforms, 2/12
    scores = {}
    for cell in ("lstm", "simple"):
        model = jaxdl.models.RNNClassifier(cell, 32, num_classes=1)
        trainer = fit(model, data, 15, 3e-3, loss="mse", metrics=(), clip_norm=1.0)
        scores[cell] = trainer.evaluate(data.test)["loss"]
    assert scores["lstm"] < 0.01
    assert scores["simple"] > 5 * scores["lstm"]


@pytest.mark.slow  # over 10 s on 2 cores; nox -s slow
def test_transformer_reverses_held_out_sequences():
    data = jaxdl.data.load("reverse", seed=0, n=8000)
    model = jaxdl.models.TransformerClassifier(
        10, 2, 64, 4, 128, max_len=16, num_classes=10, pooling="none"
    )
    opt = jaxdl.Optimizer("adam", 1e-3, schedule="warmup_cosine")
    trainer = jaxdl.Trainer(model, optimizer=opt, seed=0)
    trainer.fit(data.train, epochs=12, batch_size=128, verbose=False)
    assert trainer.evaluate(data.test)["accuracy"] == 1.0


@pytest.mark.slow  # over 10 s on 2 cores; nox -s slow
def test_character_lm_beats_the_unigram_entropy_and_generates():
    text = jaxdl.data.load("pydoc_text", seed=0, seq_len=64)
    # bits per character of the best model that ignores context: train-split frequencies
    counts = np.bincount(text.train.y.ravel(), minlength=text.info.num_classes) + 1
    p = counts / counts.sum()
    unigram_bits = float(-np.mean(np.log2(p[text.test.y.ravel()])))
    lm = jaxdl.models.TransformerLM(text.info.num_classes, 2, 64, 4, 256, max_len=64)
    opt = jaxdl.Optimizer("adam", 3e-3, schedule="warmup_cosine")
    trainer = jaxdl.Trainer(lm, optimizer=opt, seed=0)
    trainer.fit(text.train.subset(np.arange(2000)), epochs=2, batch_size=32, verbose=False)
    bits = trainer.evaluate(text.test)["loss"] / math.log(2)
    assert bits < unigram_bits - 1.0
    prompt = np.array([[text.info.class_names.index(c) for c in "def "]], np.int32)
    tokens = lm.generate(trainer.state.params, prompt, 20, rng=jax.random.key(0), top_k=5)
    assert tokens.shape == (1, 24) and int(tokens.max()) < text.info.num_classes
    np.testing.assert_array_equal(tokens[:, :4], prompt)
