"""Data: tensorflow-datasets loading, the offline digits builder, the
user's own image folders and arrays (`user_sources`), the
derived protocols (long tail, nuisance transforms, domain shift, few labels,
class-incremental splits), the resumable tf.data streams (samplers in
`samplers`, stateless augmentation in `augment`) and the streamed protocols
of datasets too large for memory (`streamed`)."""

from kerazoo.data import glyphs as _glyphs  # noqa: F401  (registers the `glyphs` tfds builder)
from kerazoo.data.datasets import DatasetNotFoundError, load, load_arrays
from kerazoo.data.errors import DataSizeError, UserDataError
from kerazoo.data.pipeline import (
    EpochCounter,
    eval_dataset,
    paired_dataset,
    train_dataset,
    unlabelled_dataset,
)
from kerazoo.data.protocols import (
    Protocol,
    make_domain_shift,
    make_few_labels,
    make_protocol,
)
from kerazoo.data.streamed import StreamedProtocol
from kerazoo.protocol_names import STREAMED, parse_protocol_name

__all__ = [
    "DataSizeError",
    "DatasetNotFoundError",
    "EpochCounter",
    "Protocol",
    "STREAMED",
    "StreamedProtocol",
    "eval_dataset",
    "load",
    "load_arrays",
    "make_domain_shift",
    "make_few_labels",
    "make_protocol",
    "paired_dataset",
    "parse_protocol_name",
    "train_dataset",
    "unlabelled_dataset",
    "UserDataError",
]
