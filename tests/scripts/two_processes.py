"""One of two processes that train a model together; run by tests/test_parallel.py.

    python tests/scripts/two_processes.py PROCESS_ID PORT OUT.json

Both processes join through ``jaxdl.parallel.initialize`` (coordinator on 127.0.0.1, CPU
collectives through gloo), see the two CPU devices of the run (one each), and train the
same MLP with ``Trainer(strategy="sharded")`` on the same global data: each device computes
half of every batch. Each process writes its final parameters and history to OUT.json.
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
        },
        f,
    )
