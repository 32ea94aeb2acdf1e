"""What a Keras or Lightning user reaches for on day one: the learning rate in the history,
ReduceLROnPlateau on a validation metric, ModelCheckpoint, TensorBoard event files, messages
through logging, and a progress display that a log file can hold.

Most checks read one run (``day_one``) that carries every callback at once, so the file
compiles few runs."""

import functools
import io
import logging
import os
import re
import sys

import jax
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl import optim
from jaxdl.train import Checkpointer, ProgressBar, steps

try:
    import tensorboardX  # optional: the TensorBoard callback's writer
except ImportError:
    tensorboardX = None

EPOCHS, BATCHES = 6, 4  # 64 examples in batches of 16
SGD = jaxdl.Optimizer("sgd", 0.1, skip_nonfinite=True)
# ReduceLROnPlateau(factor=0.5, patience=2) on a val_loss that never improves after epoch 1:
# the rate halves after epochs 3 and 5
REDUCED = [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]


def toy(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)


VALIDATION = toy(32, seed=1)


def trainer(optimizer, **options):
    return jaxdl.Trainer(jaxdl.models.MLP((8, 2)), optimizer=optimizer, **options)


def fit(t, epochs=EPOCHS, callbacks=(), **options):
    options.setdefault("verbose", False)
    return t.fit(
        toy(),
        epochs=epochs,
        batch_size=16,
        validation_data=VALIDATION,
        callbacks=list(callbacks),
        **options,
    )


def close(a, b) -> bool:
    return all(
        np.allclose(u, v, rtol=1e-6, atol=1e-7)
        for u, v in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b)))
    )


def plateau():
    # min_delta=10: after the first epoch no val_loss counts as an improvement
    return jaxdl.ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_delta=10.0)


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Records:
    """The records of the jaxdl loggers at INFO and above, while in the block."""

    def __enter__(self):
        self.handler, self.records = logging.Handler(), []
        self.handler.emit = self.records.append
        self.logger, self.level = logging.getLogger("jaxdl"), logging.getLogger("jaxdl").level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        return self.records

    def __exit__(self, *error):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


@pytest.fixture(scope="module")
def day_one(tmp_path_factory):
    """One run of ``EPOCHS`` epochs with ReduceLROnPlateau, two ModelCheckpoints (the
    trainer's, every epoch; a callback's, best only), TensorBoard and two progress displays
    (a log file's, a terminal's); with the trainer's compiles and the checkpoint writes."""
    folder = tmp_path_factory.mktemp("day_one")
    (folder / "tb" / "train").mkdir(parents=True)
    theirs = folder / "tb" / "train" / "events.out.tfevents.theirs"
    theirs.write_bytes(b"not ours")
    real_step, real_save, traces, saves = steps.make_train_step, Checkpointer.save, [], []

    def counted(*args, **kwargs):
        step = real_step(*args, **kwargs)

        @functools.wraps(step)
        def traced(state, *rest):  # called only while a compiled call is traced
            if optim.has_learning_rate_factor(state.opt_state):
                traces.append(state.opt_state)
            return step(state, *rest)

        return traced

    def save(self, step, *args, **kwargs):
        saves.append((os.path.basename(self.directory), step))
        return real_save(self, step, *args, **kwargs)

    every = jaxdl.ModelCheckpoint(folder / "every", "val_loss", mode="max")
    best = jaxdl.ModelCheckpoint(folder / "best", "val_loss", mode="max", save_best_only=True)
    log, screen = io.StringIO(), Terminal()
    callbacks = [plateau(), best, ProgressBar(log), ProgressBar(screen)]
    if tensorboardX is not None:
        callbacks.append(jaxdl.TensorBoard(folder / "tb", every_steps=2))
    with pytest.MonkeyPatch.context() as patch, Records() as records:
        patch.setattr(steps, "make_train_step", counted)
        patch.setattr(Checkpointer, "save", save)
        # the mode given, not "auto", whose choice traces the step once more (not a compile)
        t = trainer(SGD, checkpoint=every, steps_per_call="epoch")
        history = fit(t, callbacks=callbacks)
    return dict(
        trainer=t,
        history=history,
        traces=traces,
        saves=saves,
        every=every,
        best=best,
        log=log.getvalue(),
        screen=screen.getvalue(),
        records=records,
        folder=folder,
        theirs=theirs,
    )


# ---------------------------------------------------------------- 1: the rate in the history


def test_history_lr_is_the_schedule_at_each_epochs_last_update():
    # exponential decay sized to the run: transition_steps = max(updates // 10, 1) = 1, so
    # update n (counted from 0) takes lr * 0.5**n. An epoch's rate is its last update's;
    # with accumulate_steps=2 an epoch of 4 batches is 2 updates, so epoch e ends with
    # update 2e + 1; each group's rate is its own base rate times the schedule
    opt = jaxdl.Optimizer(
        "sgd", 0.1, schedule="exponential", param_groups={"output/*": 0.01}, accumulate_steps=2
    )
    history = fit(trainer(opt), epochs=3)
    last = [2 * e + 1 for e in range(3)]
    np.testing.assert_allclose(history["lr/default"], [0.1 * 0.5**n for n in last], rtol=1e-6)
    np.testing.assert_allclose(history["lr/output/*"], [0.01 * 0.5**n for n in last], rtol=1e-6)
    assert "lr" not in history


def test_a_sweeps_history_holds_each_members_rate():
    # cosine over the run's 2 x 4 updates: update n takes lr * (1 + cos(pi n / 8)) / 2
    configs = [{"learning_rate": 0.1}, {"learning_rate": 0.3}]
    optimizer = jaxdl.Optimizer("sgd", schedule="cosine")
    sweep = jaxdl.tuning.Sweep(jaxdl.models.MLP((8, 2)), configs, optimizer=optimizer)
    history = sweep.fit(toy(), epochs=2, batch_size=16)
    cosine = lambda lr, n: lr * (1 + np.cos(np.pi * n / 8)) / 2
    expected = [[cosine(c["learning_rate"], n) for c in configs] for n in (3, 7)]
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-5)  # float32 near 0


def test_the_plateau_schedule_rate_includes_its_scale():
    # reduce_on_plateau, one value per "epoch", patience 1: the first value improves on
    # infinity, every later (equal) one is a plateau that halves the scale
    tx = optim.make_optimizer(
        "sgd", 0.1, schedule="plateau", steps_per_epoch=1, plateau_patience=1, plateau_factor=0.5
    )
    params = {"w": np.ones(3, np.float32)}
    update = jax.jit(lambda state: tx.update(params, state, params, value=1.0)[1])
    state = tx.init(params)
    assert optim.learning_rates(state) == {"lr": pytest.approx(0.1)}
    for _ in range(4):
        state = update(state)
    assert optim.learning_rates(state) == {"lr": pytest.approx(0.1 * 0.5**3, rel=1e-6)}


# ---------------------------------------------------------------- 2: ReduceLROnPlateau


def test_reduce_lr_on_plateau_cuts_the_rate_after_patience_epochs(day_one):
    t, history = day_one["trainer"], day_one["history"]
    np.testing.assert_allclose(history["lr"], REDUCED, rtol=1e-6)
    assert len(day_one["traces"]) == 1  # one compile: the reductions compiled nothing
    ((_, factor),) = optim.find_states(t.state.opt_state, optim.LearningRateFactorState)
    assert float(factor.factor) == 0.25
    # what the steps used: the run equals one whose own schedule takes the same rates at the
    # same updates (and the history's lr is that schedule at each epoch's last update)
    schedule = optax.piecewise_constant_schedule(0.1, {3 * BATCHES: 0.5, 5 * BATCHES: 0.5})
    same = trainer(SGD.replace(learning_rate=schedule))
    expected = fit(same)
    np.testing.assert_allclose(expected["lr"], REDUCED, rtol=1e-6)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-6)
    assert close(t.state.params, same.state.params)


def test_reduce_lr_on_plateau_resumes_with_the_reduced_rate(tmp_path, day_one):
    folder = tmp_path / "run"
    fit(trainer(SGD, checkpoint=folder), epochs=4, callbacks=[plateau()])  # cut after epoch 3
    again = trainer(SGD, checkpoint=folder)
    resumed = fit(again, epochs=EPOCHS, callbacks=[plateau()], resume=True)
    # the factor comes back with the state (epoch 5 at 0.05) and the callback's count of
    # epochs without improvement with the checkpoint (the second cut after epoch 5)
    np.testing.assert_allclose(resumed["lr"], REDUCED, rtol=1e-6)
    assert resumed == day_one["history"]
    assert close(again.state.params, day_one["trainer"].state.params)


def test_the_factor_multiplies_every_update_and_can_be_built_in():
    params = {"w": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)}
    grads = {"w": np.full((2, 3), 0.5, np.float32)}
    opt = jaxdl.Optimizer("adam", 1e-2, schedule="cosine", accumulate_steps=2)
    plain, scaled = opt.build(8, 4), opt.build(8, 4, learning_rate_factor=True)
    state = optim.set_learning_rate_factor(scaled.init(params), 0.25)
    before = plain.init(params)
    step_plain, step_scaled = jax.jit(plain.update), jax.jit(scaled.update)
    for _ in range(4):  # two updates of two accumulated batches
        u, before = step_plain(grads, before, params)
        v, state = step_scaled(grads, state, params)
        np.testing.assert_allclose(v["w"], 0.25 * u["w"], rtol=1e-6)
    assert optim.learning_rates(state)["lr"] == pytest.approx(
        0.25 * optim.learning_rates(before)["lr"]
    )
    with pytest.raises(ValueError, match="holds no learning-rate factor"):
        optim.set_learning_rate_factor(before, 0.5)


def test_reduce_lr_on_plateau_checks_its_arguments():
    for bad, match in [
        (dict(factor=1.0), r"factor: expected a number in \(0, 1\), got 1.0"),
        (dict(patience=0), "patience: expected an int >= 1, got 0"),
        (dict(min_lr=-1), "min_lr: expected a finite number >= 0, got -1"),
        (dict(mode="up"), "mode"),
    ]:
        with pytest.raises(ValueError, match=match):
            jaxdl.ReduceLROnPlateau(**bad)


# ---------------------------------------------------------------- 3: ModelCheckpoint


def test_model_checkpoint_keeps_the_best_epoch_and_the_last(day_one):
    t, history = day_one["trainer"], day_one["history"]
    # mode="max" on a falling validation loss: the best epoch comes before the last
    values = history["val_loss"]
    best = int(np.argmax(values))
    assert best < EPOCHS - 1
    step = lambda epoch: (epoch + 1) * BATCHES
    improved = [e for e in range(EPOCHS) if values[e] == max(values[: e + 1])]
    written = {name: [s for n, s in day_one["saves"] if n == name] for name in ("every", "best")}
    assert written["every"] == [step(e) for e in range(EPOCHS)]
    assert written["best"] == sorted({step(e) for e in improved} | {step(EPOCHS - 1)})
    for keeper in (day_one["every"], day_one["best"]):
        assert keeper.checkpointer.steps() == [step(best), step(EPOCHS - 1)]
        meta = keeper.restore(t, "best")
        assert meta["epoch"] == best + 1 and meta["history"]["val_loss"] == values[: best + 1]
        assert t.evaluate(VALIDATION)["loss"] == pytest.approx(values[best], rel=1e-5)
        assert keeper.restore(t, "latest")["epoch"] == EPOCHS
    t.load_checkpoint("best")  # the trainer's own checkpoint serves load_checkpoint
    assert t.evaluate(VALIDATION)["loss"] == pytest.approx(values[best], rel=1e-5)
    t.load_checkpoint("latest")


def test_model_checkpoint_refuses_what_it_cannot_keep(tmp_path):
    with pytest.raises(ValueError, match="save_last=False keeps the best epoch alone"):
        jaxdl.ModelCheckpoint(tmp_path / "a", save_last=False)
    with pytest.raises(ValueError, match="monitor=None"):
        jaxdl.ModelCheckpoint(tmp_path / "b", monitor=None, save_best_only=True)


# ---------------------------------------------------------------- 4: TensorBoard


@pytest.mark.skipif(tensorboardX is None, reason="tensorboardX is not installed")
def test_tensorboard_event_files_hold_the_history(day_one):
    from jaxdl.train.writers import read_scalars

    history, logs = day_one["history"], day_one["folder"] / "tb"
    assert day_one["theirs"].read_bytes() == b"not ours"  # nothing of anyone else's is opened
    os.remove(day_one["theirs"])
    train, val = read_scalars(logs / "train"), read_scalars(logs / "validation")
    assert set(train) == {"epoch/loss", "epoch/accuracy", "epoch/skipped_updates", "epoch/lr"}
    assert set(val) == {"epoch/loss", "epoch/accuracy"}
    epochs = list(range(1, EPOCHS + 1))
    for name in ("loss", "accuracy", "lr"):
        assert [s for s, _ in train[f"epoch/{name}"]] == epochs
        np.testing.assert_allclose([v for _, v in train[f"epoch/{name}"]], history[name], rtol=1e-6)
    for name in ("loss", "accuracy"):
        assert [s for s, _ in val[f"epoch/{name}"]] == epochs
        np.testing.assert_allclose(
            [v for _, v in val[f"epoch/{name}"]], history[f"val_{name}"], rtol=1e-6
        )
    running = read_scalars(logs / "train_steps")
    assert [s for s, _ in running["step/loss"]] == list(range(2, EPOCHS * BATCHES + 1, 2))
    at = dict(running["step/loss"])  # the running mean at an epoch's end: the epoch's loss
    np.testing.assert_allclose(
        [at[(e + 1) * BATCHES] for e in range(EPOCHS)], history["loss"], rtol=1e-6
    )
    lr = dict(running["step/lr"])
    np.testing.assert_allclose([lr[(e + 1) * BATCHES] for e in range(EPOCHS)], REDUCED, rtol=1e-6)
    # the framing is checked: a damaged record is refused by name
    (path,) = [p for p in (logs / "train").iterdir()]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged record"):
        read_scalars(logs / "train")


def test_tensorboard_without_its_writer_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'jaxdl\[tensorboard\]'"):
        jaxdl.TensorBoard(tmp_path)


# ---------------------------------------------------------------- 5: logging


def test_messages_go_to_the_jaxdl_logger_which_has_no_handler(day_one):
    for name, logger in logging.Logger.manager.loggerDict.items():
        if name.split(".")[0] == "jaxdl" and isinstance(logger, logging.Logger):
            assert logger.handlers == [] and logger.propagate, name
    messages = [(r.name, r.getMessage()) for r in day_one["records"] if r.levelno == logging.INFO]
    cuts = [m for n, m in messages if n == "jaxdl.train.callbacks" and "learning rate" in m]
    assert cuts == [
        "epoch 3: val_loss has not improved for 2 epochs; learning rate multiplied by 0.5, to 0.05",
        "epoch 5: val_loss has not improved for 2 epochs; learning rate multiplied by 0.5, "
        "to 0.025",
    ]
    saved = [m for n, m in messages if n == "jaxdl.train.checkpointing" and "checkpoint in" in m]
    assert saved and saved[0].startswith("epoch 1: val_loss is ")


# ---------------------------------------------------------------- 6: the progress display


def parse(line):
    head, numbers = line.split(": ", 1)
    return head, [pair.split("=")[0] for pair in numbers.split("  ")]


def test_a_log_file_gets_one_plain_line_per_epoch_each_number_once(day_one):
    history, log = day_one["history"], day_one["log"]
    assert "\r" not in log and "step/s" not in log  # no bar frames
    lines = log.splitlines()
    assert [parse(line) for line in lines] == [(f"epoch {e}", list(history)) for e in range(1, 7)]
    names = ["loss", "accuracy", "val_loss", "val_accuracy", "skipped_updates", "lr"]
    assert list(history) == names
    assert lines[3].endswith(f"lr={history['lr'][3]:.4f}") and "lr=0.0500" in lines[3]


def test_a_terminal_gets_one_bar_per_epoch_without_numbers(day_one):
    history = day_one["history"]
    screen = [f for line in day_one["screen"].split("\n") for f in line.split("\r") if f.strip()]
    lines = [f for f in screen if re.match(r"epoch \d+: ", f)]
    bars = [f for f in screen if f not in lines]
    assert [parse(line) for line in lines] == [(f"epoch {e}", list(history)) for e in range(1, 7)]
    assert {f.split(":")[0] for f in bars} == {f"epoch {e}/{EPOCHS}" for e in range(1, 7)}
    assert not any("=" in f for f in bars)  # the numbers come once, in the epoch's line
    assert any(f"| {BATCHES}/{BATCHES} " in f for f in bars)
