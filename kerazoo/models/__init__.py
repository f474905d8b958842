"""`keras.Model` subclasses that own a training step.

Importing this package registers every kerazoo class that a `.keras` file
may name: the models here, and the layers, optimizers and schedules they are
built and compiled with. So `import kerazoo.models` is the one import
`keras.saving.load_model` needs for any `.keras` file kerazoo writes.

Example:

```python
import keras
import kerazoo.models
import kerazoo.zoo

path = kerazoo.zoo.default_root() / "saved_models" / "digits_lucir" / "digits_lucir.keras"
model = keras.saving.load_model(path)
```
"""

# The lower packages whose classes a saved model may name, imported whole
# so that loading never depends on which of them a model happened to use.
import kerazoo.layers  # noqa: F401
import kerazoo.optimizers  # noqa: F401
import kerazoo.schedules  # noqa: F401
from kerazoo.models.adaptation import DomainAdapter, SemiSupervised
from kerazoo.models.adco import AdCo
from kerazoo.models.base import OptimizerGroup, TrainingModel
from kerazoo.models.batchformer import BatchFormerClassifier
from kerazoo.models.classifier import Classifier
from kerazoo.models.feature_extractor import FeatureExtractor
from kerazoo.models.git import GITClassifier
from kerazoo.models.lucir import LUCIRClassifier, LUCIRLoss
from kerazoo.models.munit import MUNIT, MUNITGenerator

__all__ = [
    "AdCo",
    "BatchFormerClassifier",
    "Classifier",
    "DomainAdapter",
    "FeatureExtractor",
    "GITClassifier",
    "LUCIRClassifier",
    "LUCIRLoss",
    "MUNIT",
    "MUNITGenerator",
    "OptimizerGroup",
    "SemiSupervised",
    "TrainingModel",
]
