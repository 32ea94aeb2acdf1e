"""The data both processes of tests/scripts/two_processes.py train on, and the reference."""

import numpy as np
from sklearn.datasets import load_digits


def digits_subset(n: int = 320):
    digits = load_digits()
    x = (digits.data[:n] / 16.0).astype(np.float32)
    return x, digits.target[:n].astype(np.int32)
