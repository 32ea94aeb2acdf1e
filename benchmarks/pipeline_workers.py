"""The streaming pipeline's rate with Grain's threads and with 1, 2 and 4 worker processes,
against the CNN's training step on 28x28 images.

Two record kinds, MNIST-shaped (28x28x1, batch 128), each augmented as the ``pipeline``
suite does (translate, rotate, noise, cutout):

- uint8: a dict of a uint8 image and a label per record, as a TFDS array-record source
  serves them (decoding is a cast and a division per batch);
- png: PNG bytes per record, decoded by Pillow in Python, as an image folder or a Hugging
  Face image column is (decoding holds the GIL for part of each record).

Each way is warmed up by one epoch (workers started, augmentation compiled), then whole
epochs are timed interleaved (``harness.interleaved``), each batch copied to the device as
``fit`` does. ``before`` is an earlier ``jaxdl.data.Pipeline`` loaded from a file
(``--before FILE``, e.g. ``git show ca70fef:src/jaxdl/data/pipeline.py > before.py``): the
version that used Grain only as a thread pool. ``ratio_to_step`` is the rate over the CNN
step's examples/s.

Command: ``python benchmarks/pipeline_workers.py [--quick] [--before FILE]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io

import cases  # benchmarks/, beside this script
import common
import harness
import numpy as np
import suites

import jaxdl


class PngRecords:
    """MNIST-shaped examples stored as PNG bytes, decoded one record at a time."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        from PIL import Image

        def png(image: np.ndarray) -> bytes:
            out = io.BytesIO()
            Image.fromarray(image[..., 0]).save(out, format="PNG")
            return out.getvalue()

        self.images = [png(image) for image in (x * 255).astype(np.uint8)]
        self.labels = y

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        image = np.asarray(Image.open(io.BytesIO(self.images[i])))[..., None]
        return {"image": image, "label": self.labels[i]}


def load_before(path: str):
    spec = importlib.util.spec_from_file_location("pipeline_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Pipeline


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and rounds")
    parser.add_argument("--before", default=None, help="an earlier pipeline.py to compare")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    args = parser.parse_args(argv)
    jaxdl.use_compilation_cache()
    options = suites.Options(quick=args.quick)
    if args.repeats:
        options.repeats = args.repeats
    n, batch_size = (4096 if args.quick else 16384), 128
    x, y = suites.mnist_shaped(n)
    sources = {"uint8": suites.MnistRecords(x, y), "png": PngRecords(x, y)}
    before = load_before(args.before) if args.before else None
    ways = {"threads": 0, **{f"{k} workers": k for k in map(int, args.workers.split(","))}}

    pipelines = {}
    for kind, source in sources.items():
        if before is not None:
            pipelines[kind, "before (threads)"] = before(source, augment=suites.MNIST_AUGMENT)
        for way, workers in ways.items():
            made = jaxdl.data.Pipeline(source, augment=suites.MNIST_AUGMENT, num_workers=workers)
            pipelines[kind, way] = made
    runs = {key: suites.streamed_epochs(p, batch_size) for key, p in pipelines.items()}
    step = suites.zoo_row(cases.zoo_case("cnn", "medium"), "single", options)
    rates, _ = harness.interleaved(runs, options.repeats, options.min_round_s)
    for pipeline in pipelines.values():
        getattr(pipeline, "close", lambda: None)()

    rows = []
    for (kind, way), epochs_per_s in rates.items():
        row = {
            "records": kind,
            "way": way,
            "description": f"MNIST-shaped {n} examples, batch {batch_size}, augmented",
            **common.summarize_rates([n * r for r in epochs_per_s], "items_per_s"),
            "cnn_step_items_per_s": step["items_per_s"],
        }
        row["ratio_to_step"] = row["items_per_s"] / step["items_per_s"]
        rows.append(row)
        print(
            f"{kind:6s} {way:17s} {row['items_per_s']:9.0f} examples/s, "
            f"{row['ratio_to_step']:5.1f}x the CNN step's {step['items_per_s']:.0f}"
        )
    columns = ["records", "way", "items_per_s", "items_per_s_min", "items_per_s_max",
               "cnn_step_items_per_s", "ratio_to_step"]  # fmt: skip
    print("wrote", common.write("pipeline_workers", rows, columns, args.out))


if __name__ == "__main__":
    main()
