"""Precision policies, gradient accumulation and rematerialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl.models import MLP, ResNet, TransformerLM
from jaxdl.train import create_train_state, make_train_step
from jaxdl.train.precision import DynamicLossScale, cast_floats


def test_bfloat16_training_reaches_the_float32_accuracy_on_digits():
    data = jaxdl.data.load("digits", seed=0)
    accuracy = {}
    for policy in ("float32", "bfloat16"):
        trainer = jaxdl.Trainer(MLP(features=(128, 10)), learning_rate=3e-3, precision=policy)
        trainer.fit(data.train, epochs=15, batch_size=64, verbose=False)
        assert trainer.state.params["dense_0"]["kernel"].dtype == jnp.float32  # kept in f32
        accuracy[policy] = trainer.evaluate(data.test)["accuracy"]
    assert accuracy["float32"] > 0.95
    assert abs(accuracy["bfloat16"] - accuracy["float32"]) <= 0.01, accuracy


def test_bfloat16_policy_computes_in_bfloat16():
    state = create_train_state(MLP(features=(4, 2)), optax.sgd(0.1), np.ones((1, 3)), 0, "bfloat16")
    seen = []
    apply = state.apply_fn

    def spy(variables, x, **kwargs):
        seen.append((x.dtype, jax.tree.leaves(variables)[0].dtype))
        return apply(variables, x, **kwargs)

    outputs = jaxdl.train.predict_step(state.replace(apply_fn=spy), np.ones((2, 3), np.float32))
    assert seen == [(jnp.bfloat16, jnp.bfloat16)]
    assert outputs.dtype == jnp.float32  # cast back before the loss


def test_cast_floats_leaves_integers_alone():
    tree = {"w": jnp.ones(2), "tokens": jnp.arange(3)}
    cast = cast_floats(tree, "bfloat16")
    assert cast["w"].dtype == jnp.bfloat16 and cast["tokens"].dtype == jnp.int32


def test_loss_scale_halves_on_overflow_and_doubles_after_a_period():
    scale = DynamicLossScale.create(initial=8.0, period=3)
    bad = scale.adjust(jnp.asarray(False))
    assert float(bad.scale) == 4.0 and int(bad.good_steps) == 0
    good = scale
    for expected in (8.0, 8.0, 16.0, 16.0):
        good = good.adjust(jnp.asarray(True))
        assert float(good.scale) == expected
    np.testing.assert_allclose(scale.unscale({"g": jnp.asarray(16.0)})["g"], 2.0)


def test_float16_step_skips_an_overflowing_update_and_lowers_the_scale():
    x = np.ones((4, 3), np.float32)
    state = create_train_state(MLP(features=(2,)), optax.sgd(0.1), x[:1], 0, "float16")
    state = state.replace(loss_scale=DynamicLossScale.create(initial=2.0**15))
    step = jax.jit(make_train_step())
    huge = {"x": x * 3e4, "y": np.zeros(4, np.int32)}  # float16 logits overflow to inf
    after, _ = step(state, huge)
    assert float(after.loss_scale.scale) == 2.0**14
    for old, new in zip(jax.tree.leaves(state.params), jax.tree.leaves(after.params)):
        np.testing.assert_array_equal(old, new)  # skipped
    fine, _ = step(state, {"x": x, "y": np.zeros(4, np.int32)})
    assert float(fine.loss_scale.scale) == 2.0**15
    # the update equals the float32 one within float16 rounding
    f32 = create_train_state(MLP(features=(2,)), optax.sgd(0.1), x[:1], 0)
    reference, _ = jax.jit(make_train_step())(f32, {"x": x, "y": np.zeros(4, np.int32)})
    for a, b in zip(jax.tree.leaves(fine.params), jax.tree.leaves(reference.params)):
        np.testing.assert_allclose(a, b, atol=2e-3)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision: expected one of float32, bfloat16, float16"):
        jaxdl.Trainer(MLP(features=(2,)), precision="fp8")
    with pytest.raises(ValueError, match="the 'elbo' task computes in float32"):
        jaxdl.Trainer(jaxdl.models.VAE((4,), latent_dim=2), loss="elbo", precision="bfloat16")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulating_four_batches_equals_one_batch_four_times_larger(optimizer):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=64).astype(np.int32)
    runs = {}
    for k, batch in ((1, 32), (4, 8)):
        opt = jaxdl.Optimizer(optimizer, 0.05, accumulate_steps=k)
        trainer = jaxdl.Trainer(MLP(features=(16, 3)), optimizer=opt)
        trainer.fit((x, y), epochs=1, batch_size=batch, shuffle=False, verbose=False)
        runs[k] = trainer.state.params
    for a, b in zip(jax.tree.leaves(runs[1]), jax.tree.leaves(runs[4])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    untouched = create_train_state(MLP(features=(16, 3)), optax.sgd(0.1), x[:1], 0).params
    assert not np.allclose(runs[4]["dense_0"]["kernel"], untouched["dense_0"]["kernel"])


def test_accumulate_steps_must_be_a_positive_int():
    with pytest.raises(ValueError, match="accumulate_steps: expected an int >= 1, got 0"):
        jaxdl.Optimizer("adam", accumulate_steps=0)


def temp_memory_and_grads(model, x):
    variables = model.init(jax.random.key(0), x, False)

    def loss(params):
        out = model.apply(
            {**variables, "params": params}, x, True, rngs={"dropout": jax.random.key(1)},
            mutable=["batch_stats"],
        )[0]  # fmt: skip
        return jnp.mean(out**2)

    grad = jax.jit(jax.grad(loss))
    compiled = grad.lower(variables["params"]).compile()
    return compiled.memory_analysis().temp_size_in_bytes, grad(variables["params"])


LM = dict(vocab_size=50, num_layers=2, d_model=16, num_heads=2, mlp_dim=32, max_len=8)
REMAT_PAIRS = {
    "transformer_dropout": (dict(dropout_rate=0.1), TransformerLM),
    "transformer_scanned": (dict(scan_layers=True), TransformerLM),
    "resnet": (dict(blocks=(1, 1, 1), width=4), ResNet),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) for name in REMAT_PAIRS],
)  # fmt: skip
def test_remat_gives_the_same_gradients(name):
    options, family = REMAT_PAIRS[name]
    if family is ResNet:
        x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
        plain, remat = ResNet(20, **options), ResNet(20, **options, remat=True)
    else:
        x = np.random.default_rng(0).integers(0, 50, (2, 8))
        plain, remat = family(**LM, **options), family(**LM, **options, remat=True)
    _, a = temp_memory_and_grads(plain, x)
    _, b = temp_memory_and_grads(remat, x)
    assert jax.tree.structure(a) == jax.tree.structure(b)  # the same parameters
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)


def test_remat_of_scanned_blocks_keeps_less_memory_for_the_same_gradients():
    tokens = np.random.default_rng(0).integers(0, 100, (8, 32))
    lm = dict(vocab_size=100, num_layers=4, d_model=32, num_heads=2, mlp_dim=128, max_len=32)
    kept, a = temp_memory_and_grads(TransformerLM(**lm, scan_layers=True), tokens)
    recomputed, b = temp_memory_and_grads(TransformerLM(**lm, scan_layers=True, remat=True), tokens)
    assert recomputed < 0.6 * kept, (recomputed, kept)
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b)):  # and the same gradients
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_scanned_language_model_generates_what_full_recomputation_gives():
    lm = TransformerLM(**{**LM, "max_len": 10}, scan_layers=True)
    prompt = np.array([[1, 2, 3]])
    variables = lm.init(jax.random.key(0), prompt, False)
    generated = lm.generate(variables["params"], prompt, 6, temperature=0.0)
    sequence = prompt
    for _ in range(6):  # greedy decoding, one full forward pass per token
        nxt = int(jnp.argmax(lm.apply(variables, sequence)[0, -1]))
        sequence = np.concatenate([sequence, [[nxt]]], axis=1)
    np.testing.assert_array_equal(generated, sequence)
