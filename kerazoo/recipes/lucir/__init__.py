"""LUCIR class-incremental learning against iCaRL-CNN and joint training.

`python -m kerazoo.recipes.lucir` runs the offline digits protocol: 2 base
classes then 4 phases of 2, 6 exemplars per class (about the paper's
20-of-500 ratio), over 3 seeds. In the same run, on the same data, class
order and memory, it trains LUCIR (cosine head + less-forget + margin
ranking), the LUCIR code's iCaRL-CNN baseline (linear head, CE +
distillation) and joint training (upper bound), and reports per-phase
accuracy, average incremental accuracy and forgetting. Class-balanced
finetuning (`lucir+cbf`), replay fine-tuning (`replay`: linear head, CE,
exemplars) and the ablations (`cn`: cosine head with CE only; `cn+lf`) run
with `--set methods=...` (docs/lucir.md). The model it
exports (and the zoo's `digits_lucir`) is the first seed's final LUCIR model.
"""

import dataclasses

from kerazoo.recipes import recipe
from kerazoo.recipes.config import ConfigError, option
from kerazoo.recipes.results import Column

# Each method's settings are `kerazoo.incremental.METHODS[id]`. LUCIR also
# reports its nearest-mean-of-exemplars classifier (`lucir_nme`).
METHODS = {
    "lucir": recipe.Method(
        "LUCIR-CNN", baselines=("icarl", "replay"), ships=True, rows={"lucir_nme": "LUCIR-NME"}
    ),
    "lucir+cbf": recipe.Method("LUCIR+CBF", baselines=("lucir",)),
    "cn": recipe.Method("cosine+CE (cn)"),
    "cn+lf": recipe.Method("cn+lf"),
    "icarl": recipe.Method("iCaRL-CNN"),
    "replay": recipe.Method("replay"),
    "joint": recipe.Method("joint"),
}
COLUMNS = [
    Column("average_incremental_accuracy", "average incremental accuracy"),
    Column("final_accuracy", "final accuracy"),
    Column("average_forgetting", "average forgetting", higher_is_better=False),
]


@dataclasses.dataclass
class LUCIRConfig(recipe.RunConfig):
    backbone: str = recipe.backbone_option(
        "feature extractor, without its last ReLU for the cosine-head methods (LUCIR's), with it "
        "for the linear-head ones (the LUCIR code's iCaRL-CNN)"
    )
    num_base: int = option(2, "classes in the base phase", min=1)
    num_phases: int = option(4, "incremental phases after the base phase (equal class counts)", min=0)
    class_order_seed: int | None = option(
        None, "seed of the class order (none: each run seed; LUCIR's CIFAR order is 1993)", min=0
    )
    exemplars_per_class: int = option(6, "exemplars kept per old class (herding)", min=1)
    epochs: int = option(30, "epochs per phase", min=1)
    batch_size: int = option(32, "global batch size", min=1)
    learning_rate: float = option(0.05, "SGD learning rate at the start of each phase", min=0.0)
    lr_milestones: list[int] = option(
        [], "epochs where the lr drops x0.1 (empty: cosine decay to 0 per phase)", min=1
    )
    momentum: float = option(0.9, "SGD momentum", min=0.0, max=1.0)
    weight_decay: float = option(
        5e-4, "coupled L2 on all trainable weights (PyTorch SGD's weight decay)", min=0.0
    )
    lambda_base: float = option(5.0, "less-forget weight base; lambda = base*sqrt(old/new)", min=0.0)
    margin: float = option(0.5, "margin-ranking margin m", min=0.0)
    k: int = option(2, "margin-ranking hard negatives K", min=1)
    distillation_weight: float = option(
        0.25, "iCaRL-CNN distillation weight beta (LUCIR code: 0.25)", min=0.0
    )
    temperature: float = option(2.0, "iCaRL-CNN distillation temperature T (LUCIR code: 2)", min=1e-6)
    augment: str = recipe.augment_option()
    flip_means: bool = option(
        False,
        "average NME class means with width-flipped images (the CIFAR code's flip "
        "reverses the colour channels, an inherited bug; kerazoo flips the width)",
    )
    cbf_epochs: int = option(20, "class-balanced finetuning epochs (lucir+cbf; LUCIR code: 20)", min=1)
    cbf_learning_rate: float = option(0.01, "CBF SGD learning rate, x0.1 halfway (LUCIR code: 0.01)", min=0.0)
    cbf_weight_decay: float | None = option(
        None,
        "CBF coupled L2 (none: weight_decay, as the LUCIR code: 5e-4 on CIFAR, 1e-4 on ImageNet)",
        min=0.0,
    )
    num_seeds: int = recipe.seeds_option()
    methods: list[str] = recipe.methods_option(
        METHODS, "methods run on identical data, class order and memory", default=["lucir", "icarl", "joint"]
    )

    def validate(self):
        super().validate()
        # Keras' piecewise schedule takes unsorted boundaries without a word.
        # (Milestones past the last epoch are no-ops: a smoke run of a paper
        # config with fewer epochs keeps them.)
        if self.lr_milestones != sorted(set(self.lr_milestones)):
            raise ConfigError(
                f"Config key 'lr_milestones': {self.lr_milestones} must be increasing epochs, e.g. [80, 120]."
            )
        from kerazoo.data.splits import incremental_phases
        from kerazoo.recipes.runner import dataset_num_classes

        num_classes = dataset_num_classes(self)
        try:
            incremental_phases(list(range(num_classes)), self.num_base, self.num_phases)
        except ValueError as error:
            raise ConfigError(f"Config keys 'num_base'/'num_phases': {error}") from None


RECIPE = recipe.Recipe("lucir", LUCIRConfig, METHODS, COLUMNS, __doc__)
