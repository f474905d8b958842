"""ERM baseline: a backbone and a linear head trained with cross-entropy.

`python -m kerazoo.recipes.baseline` trains the digits convnet for 30
epochs and reports test accuracy; every method recipe compares against this.
"""

import dataclasses

from kerazoo.recipes import recipe
from kerazoo.recipes.config import option
from kerazoo.recipes.results import Column

METHODS = {"erm": recipe.Method("ERM baseline", ships=True)}
COLUMNS = [
    Column("test_accuracy", "test accuracy"),
    Column("balanced_accuracy", "class-balanced accuracy"),
]


@dataclasses.dataclass
class BaselineConfig(recipe.RunConfig):
    backbone: str = recipe.backbone_option()
    synchronized_bn: bool = option(False, "BatchNorm statistics over the global batch")
    epochs: int = option(30, "training epochs", min=1)
    batch_size: int = option(32, "global batch size (split across replicas)", min=1)
    learning_rate: float = option(0.05, "peak SGD learning rate (cosine decay to 0)", min=0.0)
    momentum: float = option(0.9, "SGD momentum", min=0.0, max=1.0)
    weight_decay: float = option(5e-4, "weight decay, coupled L2 as PyTorch's SGD", min=0.0)
    augment: str = recipe.augment_option()


RECIPE = recipe.Recipe("baseline", BaselineConfig, METHODS, COLUMNS, __doc__)
