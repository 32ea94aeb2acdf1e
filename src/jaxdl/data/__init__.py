"""Data: embedded, TFDS and Hugging Face ("hf:NAME") data sets, your own files (CSV tables,
image folders), the streaming pipeline, splits, scaling, augmentation, class balance,
batching, text to ids."""

from jaxdl.data import augment
from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits, epoch_indices
from jaxdl.data.files import from_csv, from_image_folder
from jaxdl.data.pipeline import Pipeline, global_batch, prefetch_to_device
from jaxdl.data.sampling import (
    class_weights,
    oversample,
    stratified_kfold,
    stratified_split,
    undersample,
)
from jaxdl.data.sources import load, names
from jaxdl.data.text import Vocabulary, tokenize
from jaxdl.data.tfds_source import stream
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
    "from_csv",
    "from_image_folder",
    "load",
    "names",
    "one_hot",
    "Pipeline",
    "prefetch_to_device",
    "global_batch",
    "stream",
    "tokenize",
    "Vocabulary",
    "stratified_kfold",
    "stratified_split",
]
