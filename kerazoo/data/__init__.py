"""Data: tensorflow-datasets loading, the offline digits builder and the
derived protocols (long tail, nuisance transforms, domain shift, few labels,
class-incremental splits)."""

from kerazoo.data.datasets import DatasetNotFoundError, load, load_arrays
from kerazoo.data.protocols import Protocol, make_protocol, parse_protocol_name
from kerazoo.data.pipeline import EpochCounter, eval_dataset, train_dataset

__all__ = [
    "DatasetNotFoundError",
    "EpochCounter",
    "Protocol",
    "eval_dataset",
    "load",
    "load_arrays",
    "make_protocol",
    "parse_protocol_name",
    "train_dataset",
]
