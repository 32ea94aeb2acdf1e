"""Augmentation: a PNG grid of digits as the training step sees them.

Each row applies one transform of ``jaxdl.data.augment`` to the same ten digits: the
originals, a random flip, a random crop of the image padded by 2, a rotation of up to 20
degrees, Gaussian noise, cutout, and all of them composed. A supervised task,
``Trainer(model, loss=jaxdl.tasks.Supervised(augment=...))``, runs the same functions inside
the compiled step, on training batches only.

Command: ``python examples/augmentation.py`` (about 8 s); it writes
``runs/examples/augmentation/augmented.png``. ``--quick`` is the same run.

Full run: python examples/augmentation.py
Time: about 8 s on 2 CPU cores
Reaches: a picture, runs/examples/augmentation/augmented.png (no number to reach)
"""

import argparse
import os

import jax
import numpy as np

import jaxdl
from jaxdl.data import augment


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits", help="digits, or a TFDS image set")
    parser.add_argument("--quick", action="store_true", help="the same run (it is quick)")
    parser.add_argument("--out", default="runs/examples", help="folder for the picture")
    args = parser.parse_args()
    if args.dataset == "digits":
        data = jaxdl.data.load("digits", seed=0, image=True, scaling="minmax")
    else:
        data = jaxdl.data.load(args.dataset, seed=0, download=True)
    images = data.train.x[:10]
    transforms = {
        "original": lambda key, x: x,
        "flip": augment.random_flip(),
        "crop (pad 2)": augment.random_crop(2),
        "rotate ±20°": augment.random_rotation(20.0),
        "noise 0.1": augment.gaussian_noise(0.1),
        "cutout 3": augment.cutout(3),
    }
    transforms["all"] = augment.compose(*list(transforms.values())[1:])
    rows = [
        np.asarray(jax.jit(t)(jax.random.key(i), images)) for i, t in enumerate(transforms.values())
    ]
    out = os.path.join(args.out, "augmentation")
    os.makedirs(out, exist_ok=True)
    path = jaxdl.plotting.plot_image_grid(
        np.concatenate(rows),
        os.path.join(out, "augmented.png"),
        columns=10,
        row_labels=list(transforms),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    jaxdl.use_compilation_cache()  # a second run loads its compiled programs
    main()
