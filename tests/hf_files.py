"""Small Hugging Face sets written locally: parquet folders in the Hub's layout and the
schemas of its real sets, so that "hf:FOLDER" is read offline exactly as a Hub set is."""

import numpy as np

DIGIT_NAMES = [str(i) for i in range(10)]


def write_hub_folder(folder, splits: dict, features) -> str:
    """``splits`` {name: columns} as data/{name}-00000-of-00001.parquet, the hub's layout;
    returns the "hf:" name of the folder."""
    import datasets  # the callers skip without it

    (folder / "data").mkdir(parents=True)
    for split, columns in splits.items():
        dataset = datasets.Dataset.from_dict(columns, features=features)
        dataset.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return "hf:" + str(folder)


def numbered_images(n: int, shape, seed: int) -> np.ndarray:
    """uint8 images at random whose first pixel holds the example's index (n <= 256), so a
    row read back says which example it is."""
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    images.reshape(n, -1)[:, 0] = np.arange(n)
    return images


def write_mnist(folder, train: np.ndarray, test: np.ndarray, labels: dict) -> str:
    """Grey uint8 ``train`` and ``test`` images (N, H, W) with ``labels`` {split: (N,)} in
    the schema of ylecun/mnist: an Image column "image", a ClassLabel "label" of "0".."9"."""
    import datasets

    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=DIGIT_NAMES)}
    )
    columns = {
        s: {"image": list(x), "label": np.asarray(labels[s]).tolist()}
        for s, x in (("train", train), ("test", test))
    }
    return write_hub_folder(folder, columns, features)
