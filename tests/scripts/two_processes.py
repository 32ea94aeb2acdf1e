"""One of two processes that train a model together; run by tests/test_parallel.py.

    python tests/scripts/two_processes.py PROCESS_ID PORT OUT.json

Both processes join through ``jaxdl.parallel.initialize`` (coordinator on 127.0.0.1, CPU
collectives through gloo), see the two CPU devices of the run (one each), and train the
same MLP with ``Trainer(strategy="sharded")`` on the same global data: each device computes
half of every batch. Then again from a ``jaxdl.data.Pipeline``, where each process reads
only its half of every global batch. Each process writes its final parameters, histories
and the examples its pipeline read to OUT.json.
"""

import json
import sys

import jaxdl

process_id, port, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
info = jaxdl.parallel.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from tests_data import digits_subset  # noqa: E402

from jaxdl.models import MLP  # noqa: E402

x, y = digits_subset()
trainer = jaxdl.Trainer(MLP(features=(32, 10)), seed=3, optimizer="adam", learning_rate=3e-3)
history = trainer.fit((x, y), epochs=3, batch_size=32, verbose=False)
params = jax.device_get(trainer.state.params)


class Counted:
    """The data as a record source that notes which examples this process read in each
    epoch of training."""

    def __init__(self):
        self.read = [set()]

    def __len__(self):
        return len(x)

    def __getitem__(self, i):
        self.read[-1].add(int(i))
        return x[i], y[i]


class EpochReads(jaxdl.Callback):
    def on_train_begin(self, trainer):
        source.read = [set()]  # leave out the batch read for the model's shapes

    def on_epoch_end(self, trainer, epoch, logs):
        source.read.append(set())


source = Counted()
streamed = jaxdl.Trainer(MLP(features=(32, 10)), seed=3, optimizer="adam", learning_rate=3e-3)
pipeline = jaxdl.data.Pipeline(source, labels=y)
stream_history = streamed.fit(
    pipeline, epochs=3, batch_size=32, shuffle=False, verbose=False, callbacks=[EpochReads()]
)
streamed = jax.device_get(streamed.state.params)
with open(out_path, "w") as f:
    json.dump(
        {
            "process_index": info.process_index,
            "process_count": info.process_count,
            "devices": len(info.devices),
            "local_devices": len(info.local_devices),
            "strategy": trainer.strategy.name,
            "history": history,
            "params": [np.asarray(p).ravel().tolist() for p in jax.tree.leaves(params)],
            "stream_history": stream_history,
            "stream_params": [np.asarray(p).ravel().tolist() for p in jax.tree.leaves(streamed)],
            "read": [sorted(epoch) for epoch in source.read[:-1]],
        },
        f,
    )
