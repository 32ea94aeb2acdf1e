"""Data: embedded data sets, splits, scaling and fixed-shape batching."""

from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits, epoch_indices
from jaxdl.data.sampling import stratified_kfold, stratified_split
from jaxdl.data.sources import load, names
from jaxdl.data.transforms import MinMaxScaler, Standardizer, one_hot

__all__ = [
    "ArrayDataset",
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
