"""The streaming pipeline: every example once per epoch, per-process rows, exact resumes."""

import shutil

import jax
import numpy as np
import pytest

import jaxdl
from jaxdl.data import Pipeline, augment, epoch_indices, global_batch, prefetch_to_device

AUGMENT = augment.compose(augment.random_translate(2), augment.gaussian_noise(0.1))


def numbered(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Images whose every pixel holds the example's index, so a batch says what it holds."""
    x = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 6, 6, 1))
    return np.ascontiguousarray(x), (np.arange(n) % 7).astype(np.int32)


class Records:
    """(x, y) records one by one, counting the reads."""

    def __init__(self, x, y):
        self.x, self.y, self.reads = x, y, []

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.reads.append(int(i))
        return self.x[i], self.y[i]


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_an_epoch_serves_every_example_once_the_last_batch_padded_and_masked():
    x, y = numbered(300)
    batches = list(Pipeline(Records(x, y)).batches(64, shuffle=True, seed=5, epoch=2))
    assert len(batches) == 5 and all(b["x"].shape == (64, 6, 6, 1) for b in batches)
    seen = np.concatenate([b["x"][:, 0, 0, 0][b["mask"] > 0] for b in batches]).astype(int)
    assert sorted(seen) == list(range(300))
    assert batches[-1]["mask"].sum() == 300 - 4 * 64 and batches[-1]["mask"][:44].all()
    order, _ = epoch_indices(300, 64, shuffle=True, seed=5, epoch=2)
    assert np.array_equal(np.stack([b["x"][:, 0, 0, 0] for b in batches]), order)
    assert np.array_equal(np.stack([b["y"] for b in batches]), y[order])


def test_the_order_depends_on_the_seed_and_epoch_only():
    pipeline = Pipeline(numbered(200))
    first = lambda **kw: next(pipeline.batches(50, shuffle=True, **kw))["x"][:, 0, 0, 0]
    assert np.array_equal(first(seed=1, epoch=3), first(seed=1, epoch=3))
    assert not np.array_equal(first(seed=1, epoch=3), first(seed=1, epoch=4))
    assert not np.array_equal(first(seed=1, epoch=3), first(seed=2, epoch=3))
    assert np.array_equal(next(pipeline.batches(50))["x"][:, 0, 0, 0], np.arange(50))


def test_augmentation_depends_on_the_position_not_on_threads_start_or_processes():
    """Batches 3.. of a run started at batch 3, read with one thread or by two processes
    (their halves side by side), are those of the whole epoch read with four threads."""
    x, y = numbered(260)
    options = dict(shuffle=True, seed=7, epoch=1, train=True)
    whole = list(Pipeline((x, y), augment=AUGMENT, num_threads=4).batches(32, **options))
    resumed = list(Pipeline((x, y), augment=AUGMENT, num_threads=1).batches(32, start=3, **options))
    halves = [Pipeline((x, y), augment=AUGMENT, process_index=p, process_count=2) for p in range(2)]
    halves = [list(half.batches(32, **options)) for half in halves]
    assert len(whole) == 9 and len(resumed) == 6
    for a, b in zip(whole[3:], resumed):
        assert leaves_equal(a, b)
    for batch, first, second in zip(whole, *halves):
        assert first["x"].shape[0] == second["x"].shape[0] == 16
        joined = jax.tree.map(lambda u, v: np.concatenate([u, v]), first, second)
        np.testing.assert_allclose(joined["x"], batch["x"], rtol=0, atol=1e-6)
        assert np.array_equal(joined["y"], batch["y"])
        assert np.array_equal(joined["mask"], batch["mask"])
    plain = next(Pipeline((x, y)).batches(32, **options))["x"]
    moved = np.abs(whole[0]["x"] - plain) > 0.5  # shifted rows bring in the zero border
    assert moved.any() and np.abs(whole[0]["x"] - plain).std() > 0.05  # the noise is there
    evaluation = next(Pipeline((x, y), augment=AUGMENT).batches(32, shuffle=True, seed=7, epoch=1))
    assert np.array_equal(evaluation["x"], plain)  # train=False: no augmentation


def test_an_augmentation_without_first_index_gets_a_key_per_batch():
    x, y = numbered(40)
    noise = lambda key, images: images + jax.random.normal(key, images.shape)
    runs = [
        list(Pipeline((x, y), augment=noise, num_threads=t).batches(8, train=True)) for t in (1, 3)
    ]
    for a, b in zip(*runs):
        assert leaves_equal(a, b)
    plain = Pipeline((x, y)).batches(8)
    noises = [b["x"] - p["x"] for b, p in zip(runs[0], plain)]
    assert 0.8 < np.std(noises[0]) < 1.2 and not np.allclose(noises[0], noises[1])


def test_resuming_at_a_batch_reads_nothing_before_it():
    """One thread, one batch ahead: the reads are batches 3 and 4 in order (the padding
    reads example 0), then at most the two batches of the next epoch read ahead."""
    x, y = numbered(300)
    source = Records(x, y)
    pipeline = Pipeline(source, num_threads=1, buffer=1)
    assert len(list(pipeline.batches(64, shuffle=True, seed=0, start=3))) == 2
    order, _ = epoch_indices(300, 64, shuffle=True, seed=0)
    assert source.reads[: 2 * 64] == list(order[3:].ravel())
    assert len(source.reads) <= 4 * 64


def test_consecutive_epochs_share_one_iterator_and_its_read_ahead():
    x, y = numbered(100)
    pipeline = Pipeline((x, y), num_threads=2)
    options = dict(shuffle=True, seed=3)
    first = list(pipeline.batches(32, epoch=0, **options))
    (live,) = pipeline._live.values()
    second = list(pipeline.batches(32, epoch=1, **options))
    assert pipeline._live[32, True, 3, False] is live  # carried on into epoch 1
    for epoch, served in enumerate((first, second)):
        expected, _ = epoch_indices(100, 32, shuffle=True, seed=3, epoch=epoch)
        assert np.array_equal(np.stack([b["x"][:, 0, 0, 0] for b in served]), expected)
    again = list(pipeline.batches(32, epoch=0, **options))  # back to epoch 0: a new reader
    assert pipeline._live[32, True, 3, False] is not live and leaves_equal(again, first)
    a, b = pipeline.batches(32, epoch=2, **options), pipeline.batches(32, epoch=2, **options)
    assert leaves_equal(list(a), list(b))  # two open at once each read their own
    pipeline.close()
    assert not pipeline._live


def test_a_grain_iterator_resumes_exactly_from_its_state():
    """``iterator`` is Grain's: its get_state, given to a new one, continues the stream
    batch for batch, across an epoch's end, with augmentation."""
    x, y = numbered(90)
    pipeline = Pipeline((x, y), augment=AUGMENT, num_threads=2)
    options = dict(shuffle=True, seed=4, train=True)
    reader = pipeline.iterator(16, **options)
    for _ in range(4):
        next(reader)
    state = reader.get_state()
    expected = [next(reader) for _ in range(5)]  # batches 4, 5 of epoch 0, then 0-2 of epoch 1
    resumed = pipeline.iterator(16, **options)
    resumed.set_state(state)
    assert leaves_equal([next(resumed) for _ in range(5)], expected)
    assert leaves_equal(expected[2:], list(pipeline.batches(16, epoch=1, **options))[:3])


def test_prefetch_to_device_places_batches_ahead_in_order():
    made = []

    def batches():
        for i in range(6):
            made.append(i)
            yield {"x": np.full((2, 3), i, np.float32)}

    out = prefetch_to_device(batches(), jax.device_put, size=2)
    first = next(out)
    assert isinstance(first["x"], jax.Array) and first["x"][0, 0] == 0
    assert made == [0, 1, 2]  # two more already on their way
    assert [int(b["x"][0, 0]) for b in out] == [1, 2, 3, 4, 5]


def test_global_batch_in_one_process_is_the_local_batch_laid_out_by_the_sharding():
    devices = jax.devices()[:1]
    mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    local = {"x": np.arange(12.0).reshape(4, 3), "mask": np.ones(4, np.float32)}
    out = global_batch(local, sharding)
    assert out["x"].sharding == sharding and np.array_equal(out["x"], local["x"])


def test_fit_on_a_pipeline_is_bit_identical_to_fit_on_the_arrays():
    """The same shuffled order, batches, padding, masks, validation, evaluate and predict."""
    data = jaxdl.data.load("digits", seed=0)
    arrays = jaxdl.Trainer(jaxdl.models.MLP((32, 10)), seed=0, steps_per_call=1)
    expected = arrays.fit(
        data.train, epochs=2, batch_size=64, validation_data=data.validation, verbose=False
    )
    streamed = jaxdl.Trainer(jaxdl.models.MLP((32, 10)), seed=0)
    history = streamed.fit(
        Pipeline(data.train), epochs=2, batch_size=64, validation_data=Pipeline(data.validation),
        verbose=False,
    )  # fmt: skip
    assert history == expected
    assert leaves_equal(streamed.state.params, arrays.state.params)
    assert streamed.evaluate(Pipeline(data.test)) == arrays.evaluate(data.test)
    predicted = streamed.predict(Pipeline(data.test))
    np.testing.assert_array_equal(predicted, arrays.predict(data.test.x))


def test_a_streamed_run_resumed_inside_an_epoch_ends_bit_identical(tmp_path):
    """Checkpoints every 5 steps hold (epoch, batch); a run cut inside epoch 2 resumes
    reading at that batch, with the augmentation the uninterrupted run drew."""
    data = jaxdl.data.load("digits", seed=0, image=True)

    def run(directory, resume=False):
        source = Records(data.train.x, data.train.y)
        trainer = jaxdl.Trainer(
            jaxdl.models.CNN(channels=(4,), dense=(16,), num_classes=10), seed=1,
            checkpoint=jaxdl.Checkpoint(directory, every_steps=5, keep=100),
        )  # fmt: skip
        pipeline = Pipeline(source, augment=AUGMENT, labels=data.train.y, buffer=1)
        history = trainer.fit(pipeline, epochs=2, batch_size=128, verbose=False, resume=resume)
        return trainer, history, source

    whole, expected, _ = run(tmp_path / "whole")
    steps_per_epoch = -(-len(data.train) // 128)
    cut = steps_per_epoch + 5  # saved after batch 5 of the second epoch
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    for folder in (tmp_path / "cut").iterdir():
        if folder.name.isdigit() and int(folder.name) > cut:
            shutil.rmtree(folder)
    resumed, history, source = run(tmp_path / "cut", resume=True)
    assert history == expected
    assert leaves_equal(resumed.state.params, whole.state.params)
    assert leaves_equal(resumed.state.opt_state, whole.state.opt_state)
    # the resumed run read one example for the model's shapes and the rest of epoch 2 (with
    # at most a few batches read ahead past its end), never its batches 0-4 again
    rest = 1 + (steps_per_epoch - 5) * 128
    assert rest <= len(source.reads) <= rest + 4 * 128 < 1 + steps_per_epoch * 128


def test_a_standardizer_fitted_on_streamed_batches_equals_one_fitted_on_the_arrays():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -2.0, 5.0], [0.5, 2.0, 3.0], size=(203, 4, 4, 3)).astype(np.float32)
    y = np.zeros(203, np.int32)
    for per_channel in (True, False):
        streamed = jaxdl.data.Standardizer.fit_batches(
            Pipeline((x, y)).batches(64), per_channel=per_channel
        )  # 4 batches, the last holding 11 real rows and 53 padded copies of example 0
        whole = jaxdl.data.Standardizer.fit(x, per_channel=per_channel)
        np.testing.assert_allclose(streamed.mean, whole.mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(streamed.std, whole.std, rtol=1e-5)
    normalized = Pipeline((x, y), transform=streamed)
    np.testing.assert_allclose(next(normalized.batches(8))["x"], whole(x[:8]), rtol=1e-5)
    assert normalized.first()[0].shape == (1, 4, 4, 3)


def test_bad_input_is_named():
    x, y = numbered(10)
    with pytest.raises(TypeError, match="random-access source"):
        Pipeline(iter(range(3)))
    with pytest.raises(ValueError, match="multiple of the 2 processes"):
        next(Pipeline((x, y), process_index=0, process_count=2).batches(5))
    with pytest.raises(ValueError, match="process_index must be in"):
        Pipeline((x, y), process_index=2, process_count=2)
    with pytest.raises(TypeError, match="pass decode="):
        next(Pipeline(["a", "b"]).batches(2))
    with pytest.raises(ValueError, match="start"):
        next(Pipeline((x, y)).batches(4, start=9))
    unlabelled = Pipeline(Records(x.reshape(10, -1), y))  # labels unknown: not read ahead
    assert unlabelled.targets() is None
    with pytest.raises(ValueError, match="class_weight needs labels.*labels="):
        model = jaxdl.models.MLP((4, 7))
        task = jaxdl.tasks.Supervised(class_weight="balanced")
        jaxdl.Trainer(model, loss=task).fit(unlabelled, batch_size=5, verbose=False)
    unlabelled = Pipeline(Records(x.reshape(10, -1), y), num_threads=1, buffer=1)
    trainer = jaxdl.Trainer(jaxdl.models.MLP((4, 7)))
    trainer.fit(unlabelled, batch_size=5, shuffle=False, verbose=False)
    # example 0 was read for the model's shapes, then the epoch in order, then at most the
    # two batches read ahead into a next epoch: no pass over the data ahead of training
    reads = unlabelled.source.reads
    assert reads[:11] == [0, *range(10)] and len(reads) <= 11 + 10
    with pytest.raises(ValueError, match="num_workers must be an int >= 0"):
        Pipeline((x, y), num_workers=-1)
    with pytest.raises(TypeError, match="decode must pickle"):
        lock = __import__("threading").Lock()
        Pipeline(Records(x, y), decode=lambda r, lock=lock: r, num_workers=1)


def test_worker_processes_serve_the_batches_the_threads_do():
    """Two Grain worker processes (spawned, JAX on their CPU) decode and augment records:
    the same batches, bit for bit, as one process's threads, across an epoch's end, from
    one set of workers."""
    x, y = numbered(70)
    options = dict(shuffle=True, seed=2, train=True)
    threads = Pipeline(Records(x, y), augment=AUGMENT)
    expected = [*threads.batches(16, epoch=0, **options), *threads.batches(16, epoch=1, **options)]
    with Pipeline(Records(x, y), augment=AUGMENT, num_workers=2, num_threads=1) as workers:
        served = [*workers.batches(16, epoch=0, **options)]
        (live,) = workers._live.values()
        served += [*workers.batches(16, epoch=1, **options)]
        assert workers._live[16, True, 2, True] is live
    assert leaves_equal(served, expected)
    assert all(type(b["x"]) is np.ndarray for b in served)  # copied out of shared memory


@pytest.mark.slow
def test_grain_state_of_the_workers_iterator_resumes_where_it_stood():
    x, y = numbered(70)
    pipeline = Pipeline(Records(x, y), num_workers=2, num_threads=1)
    expected = list(Pipeline(Records(x, y)).batches(16, shuffle=True, seed=2))
    reader = pipeline.iterator(16, shuffle=True, seed=2)
    next(reader), next(reader)
    state = reader.get_state()
    reader.close()
    resumed = pipeline.iterator(16, shuffle=True, seed=2)
    resumed.set_state(state)
    assert leaves_equal([dict(next(resumed)) for _ in range(3)], expected[2:5])
    resumed.close()
