"""Host memory stays flat over a long run (slow: ``nox -s slow``; ``benchmarks/memory.py``
measures it in more ways)."""

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, os
import jaxdl

class Record(jaxdl.Callback):
    def __init__(self):
        self.mib = []

    def on_epoch_end(self, trainer, epoch, logs):
        with open("/proc/self/statm") as f:
            self.mib.append(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)

record = Record()
data = jaxdl.data.load("digits", seed=0)
trainer = jaxdl.Trainer(jaxdl.models.MLP(features=(64, 10), dropout_rate=0.1))
trainer.fit(data.train, epochs=50, batch_size=64, validation_data=data.validation,
            callbacks=[jaxdl.EarlyStopping(patience=50), record], verbose=False)
print(json.dumps(record.mib))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_host_memory_of_a_50_epoch_run_stays_flat_after_the_first_epoch():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], check=True, capture_output=True, text=True
    )
    mib = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(mib) == 50
    # a leak of one small array per step (19 steps x 50 epochs x 40 KiB) would be 37 MiB
    assert max(mib[1:]) - mib[0] < 8, mib
    assert mib[-1] - mib[10] < 4, mib  # no climb in the last 40 epochs
