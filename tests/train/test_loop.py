"""The loop: one adapter chosen once, callbacks called as the table of
``jaxdl.train.callbacks`` says, the mode argument of any Flax module driven."""

import flax.linen as nn
import jax
import numpy as np
import pytest

import jaxdl
from jaxdl.data.adapters import ArrayAdapter, SourceAdapter, StreamAdapter, as_source


class Recorder(jaxdl.Callback):
    """Every hook call, in order, with what it was told."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, trainer):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, trainer, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_end(self, trainer, batch, steps):
        self.calls.append(("batch_end", batch, steps, int(trainer.state.step)))

    def on_validation_end(self, trainer, logs):
        self.calls.append(("validation_end", sorted(logs)))

    def on_epoch_end(self, trainer, epoch, logs):
        self.calls.append(("epoch_end", epoch))

    def on_train_end(self, trainer):
        self.calls.append(("train_end",))


def toy(n=50, features=4, classes=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, features)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 1).astype(np.int32) * (classes - 2)


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_hooks_come_in_order_once_per_compiled_call(steps_per_call):
    x, y = toy()  # 50 examples in batches of 16: 4 batches, the last one padded
    recorder = Recorder()
    trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 3)), steps_per_call=steps_per_call)
    trainer.fit((x, y), epochs=2, batch_size=16, validation_data=(x, y), callbacks=[recorder])
    if steps_per_call == "epoch":  # the whole epoch is one compiled call
        batches = lambda e: [("batch_end", 4, 4, 4 * (e + 1))]
    else:
        batches = lambda e: [("batch_end", b, 1, 4 * e + b) for b in range(1, 5)]
    epoch = lambda e: [
        ("epoch_begin", e),
        *batches(e),
        ("validation_end", ["val_accuracy", "val_loss"]),
        ("epoch_end", e),
    ]
    assert recorder.calls == [("train_begin",), *epoch(0), *epoch(1), ("train_end",)]


def test_a_checkpoint_every_k_steps_splits_the_device_epoch_into_stretches(tmp_path):
    x, y = toy(n=100)  # 7 batches of 16
    recorder = Recorder()
    trainer = jaxdl.Trainer(
        jaxdl.models.MLP((8, 3)), checkpoint=jaxdl.Checkpoint(tmp_path, every_steps=3)
    )
    trainer.fit((x, y), epochs=1, batch_size=16, callbacks=[recorder], verbose=False)
    stretches = [c[1:3] for c in recorder.calls if c[0] == "batch_end"]
    assert stretches == [(3, 3), (6, 3), (7, 1)]
    assert jaxdl.train.Checkpointer(tmp_path).steps() == [3, 6, 7]


def test_stop_training_inside_an_epoch_ends_the_run_after_that_call():
    class StopAfterTwo(jaxdl.Callback):
        def on_train_batch_end(self, trainer, batch, steps):
            if batch == 2:
                trainer.stop_training = True

    x, y = toy()
    trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 3)), steps_per_call=1)
    history = trainer.fit((x, y), epochs=3, batch_size=16, callbacks=[StopAfterTwo()])
    assert int(trainer.state.step) == 2 and trainer.epoch == 0 and history == {}


def test_callbacks_must_be_a_list_of_callbacks():
    x, y = toy()
    trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 3)))
    with pytest.raises(TypeError, match="got one callback; use \\[callback\\]"):
        trainer.fit((x, y), callbacks=jaxdl.EarlyStopping())
    with pytest.raises(TypeError, match=r"callbacks\[1\]: expected a jaxdl.Callback, got int"):
        trainer.fit((x, y), callbacks=[jaxdl.EarlyStopping(), 3])


def test_as_source_picks_one_adapter_whose_batches_cover_every_example_once():
    x, y = toy(n=37)
    arrays = as_source((x, y), 8, shuffle=True, seed=4)
    assert isinstance(arrays, ArrayAdapter) and arrays.num_batches() == 5
    rows = np.concatenate([b["x"][b["mask"] > 0] for b in arrays.batches(epoch=2)])
    np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(x, axis=0))
    assert len(list(arrays.batches(epoch=2, start=3))) == 2  # a resumed epoch starts there
    stream = as_source(jaxdl.data.Pipeline((x, y)), 8)
    assert isinstance(stream, StreamAdapter)
    first = next(stream.batches(epoch=0))
    np.testing.assert_array_equal(first["x"], x[:8])  # unshuffled: the first rows
    source = as_source(_Batches(), 4)
    assert isinstance(source, SourceAdapter) and source.num_batches() == 3
    with pytest.raises(TypeError, match="data: expected an \\(x, y\\) tuple"):
        as_source(42, 8)


class _Batches:
    """The smallest batch source: three batches of a fixed shape."""

    def num_batches(self, batch_size, **_):
        return 3

    def batches(self, batch_size, **_):
        for i in range(3):
            yield {"x": np.full((batch_size, 2), i, np.float32), "y": np.zeros(batch_size, int)}


class Flagged(nn.Module):
    """An MLP with dropout whose mode argument is ``name`` (``deterministic`` inverted)."""

    name_of_mode: str = "train"

    @nn.compact
    def __call__(self, x, **mode):
        (value,) = mode.values() if mode else (False,)
        training = (not value) if self.name_of_mode == "deterministic" else value
        x = nn.Dropout(0.5, deterministic=not training)(nn.relu(nn.Dense(16, name="hidden")(x)))
        return nn.Dense(3, name="out")(x)


def _module(name):
    """A Flagged whose __call__ signature names ``name``, as a user's module would."""
    namespace = {}
    exec(
        f"def __call__(self, x, {name}={'True' if name == 'deterministic' else 'False'}):\n"
        f"    return Flagged.__call__(self, x, {name}={name})",
        {"Flagged": Flagged},
        namespace,
    )
    return type(f"With_{name}", (Flagged,), {"__call__": namespace["__call__"]})(name)


def test_train_training_and_deterministic_modules_all_train_with_dropout_on():
    x, y = toy(n=64)
    params = {}
    for name in ("train", "training", "deterministic"):
        trainer = jaxdl.Trainer(_module(name), seed=2, steps_per_call=1)
        trainer.fit((x, y), epochs=2, batch_size=16, verbose=False)
        params[name] = jax.device_get(trainer.state.params)
    for name in ("training", "deterministic"):  # the same dropout masks, the same updates
        for a, b in zip(jax.tree.leaves(params["train"]), jax.tree.leaves(params[name])):
            np.testing.assert_array_equal(a, b)
    # and dropout was on: the same module with no mode argument runs without it, and the
    # same initialisation then ends elsewhere
    plain = jaxdl.Trainer(Flagged(), seed=2, steps_per_call=1)
    assert plain.init(x[:1]) is not None and plain.state.mode_argument is None
    plain.fit((x, y), epochs=2, batch_size=16, verbose=False)
    assert not np.array_equal(
        jax.device_get(plain.state.params["out"]["kernel"]), params["train"]["out"]["kernel"]
    )


def test_a_module_with_two_mode_arguments_is_refused():
    class Both(nn.Module):
        @nn.compact
        def __call__(self, x, train=False, deterministic=True):
            return nn.Dense(2)(x)

    with pytest.raises(TypeError, match="takes train and deterministic"):
        jaxdl.Trainer(Both()).fit(toy(classes=2), verbose=False)


def test_a_task_configuration_that_can_only_be_a_mistake_is_refused_when_made():
    with pytest.raises(TypeError, match="loss 'mse' takes no 'from_logits'"):
        jaxdl.tasks.Supervised("mse", loss_options={"from_logits": False})
    x, y = toy(classes=2)
    task = jaxdl.tasks.Supervised(class_weight=[0.0, 0.0])
    with pytest.raises(ValueError, match="every weight is 0"):
        jaxdl.Trainer(jaxdl.models.MLP((8, 2)), loss=task).fit((x, y), verbose=False)


def test_a_graph_of_other_features_than_the_model_was_built_on_is_refused_by_name():
    from jaxdl.data import graph_sets

    data = graph_sets.cycles_or_trees(40, seed=0)  # one feature per node
    trainer = jaxdl.Trainer(jaxdl.models.MessagePassingNet((8,), 2))
    trainer.fit(data, epochs=1, batch_size=8, verbose=False)
    wider = jaxdl.graphs.make_graph([0, 1], [1, 0], nodes=np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"x: nodes has feature axes \(5,\), .* built on \(1,\)"):
        trainer.predict(wider)


def test_a_verbose_run_into_a_log_writes_epoch_lines_and_no_bar_frames(capsys):
    x, y = toy()
    jaxdl.Trainer(jaxdl.models.MLP((8, 3))).fit((x, y), epochs=2, batch_size=16, verbose=True)
    out, err = capsys.readouterr()  # neither is a terminal here, as in a log file
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"]
    assert "loss=" in lines[0] and "\r" not in err and "step/s" not in err
