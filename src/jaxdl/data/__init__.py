"""Data: embedded data sets, splits, scaling, augmentation, class balance, batching."""

from jaxdl.data import augment
from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits, epoch_indices
from jaxdl.data.sampling import (
    class_weights,
    oversample,
    stratified_kfold,
    stratified_split,
    undersample,
)
from jaxdl.data.sources import load, names
from jaxdl.data.transforms import MinMaxScaler, Standardizer, one_hot

__all__ = [
    "ArrayDataset",
    "augment",
    "class_weights",
    "oversample",
    "undersample",
    "DatasetInfo",
    "MinMaxScaler",
    "Splits",
    "Standardizer",
    "epoch_indices",
    "load",
    "names",
    "one_hot",
    "stratified_kfold",
    "stratified_split",
]
