"""The class-incremental phase loop (LUCIR and its baselines).

Labels are expected in *phase order*: the classes of phase 0 are
0..n0-1, those of phase 1 follow, and so on (map dataset labels through the
class order first, `labels_in_phase_order`). Per phase:

1. snapshot the backbone (and, for distillation, the head) as the frozen
   old model (phases > 0);
2. grow the head: a `CosineLinear` gets imprinted weights for the new
   classes (LUCIR), a `Dense` head keeps its old columns and adds new ones;
3. train on the new classes' images plus the exemplar memory (or on every
   image of the seen classes, for the joint upper bound);
4. pick exemplars of the new classes by herding; recompute class means;
5. optionally (phases > 0), class-balanced finetuning (CBF): the head
   alone trains on the exemplar memory, where every seen class has the same
   number of images;
6. evaluate the CNN classifier (argmax of the head over all seen classes)
   and NME (nearest class mean of normalised features).

Training goes through a `fit(model, dataset, stage=..., epochs=...)`
callable, so the recipe runner can make every phase a resumable stage:
re-running a killed run replays finished phases from their checkpoints and
recomputes the (deterministic) exemplars and evaluations.
"""

import dataclasses

import keras
import numpy as np

from kerazoo import initializers
from kerazoo._checks import is_whole
from kerazoo.data.errors import DataSizeError
from kerazoo.data.pipeline import train_dataset
from kerazoo.layers.cosine_linear import CosineLinear, imprint_weights
from kerazoo.models.backbone_shapes import feature_size
from kerazoo.models.lucir import LUCIRClassifier, LUCIRLoss
from kerazoo.ops import l2_normalize_numpy, outputs_numpy
from kerazoo.optimizers import with_weight_decay
from kerazoo.schedules import VariableLength


def _metrics():
    """Training accuracy in each phase's logs."""
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


def labels_in_phase_order(labels, order):
    """Map dataset labels to their position in the class order.

    Args:
        labels: (N,) dataset labels.
        order: the class order, a permutation of 0 .. C - 1.

    Returns:
        (N,) int array: each label's position in `order`.

    Example:

    ```python
    from kerazoo.incremental import labels_in_phase_order

    print(labels_in_phase_order([2, 0, 2], order=[2, 0, 1]))  # [0 1 0]
    ```

    References:
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    order = np.asarray(order)
    if order.ndim != 1 or sorted(order.tolist()) != list(range(len(order))):
        raise ValueError(
            f"order must be a permutation of 0 .. C - 1 (each class once), got {order.tolist()}."
        )
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(order)):
        raise ValueError(
            f"labels must lie in 0 .. {len(order) - 1}, the classes of order; got {labels.min()}..{labels.max()}."
        )
    return np.argsort(order)[labels].astype(np.int32)


def herding(features, m):
    """iCaRL herding as in the LUCIR code: indices of `m` exemplars whose mean
    best tracks the mean of the L2-normalised `features`, best first.

    w starts at the mean μ; repeatedly pick argmax_i ⟨w, f_i⟩ (a new index
    gets the next rank) and set w ← w + μ − f_i, for at most 1000 iterations.

    Args:
        features: (n, d) features of one class's images.
        m: number of exemplars.

    Returns:
        int array of at most `m` indices into `features`.

    Example:

    ```python
    import numpy as np
    from kerazoo.incremental import herding

    features = np.random.default_rng(0).normal(size=(30, 8))
    print(herding(features, 5))  # the five exemplars, best first
    ```

    References:
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    if not is_whole(m, 1):
        raise ValueError(f"herding: m must be a whole number >= 1 (exemplars to choose), got {m!r}.")
    features = l2_normalize_numpy(np.asarray(features, np.float64), axis=1)
    m = min(m, len(features))
    mu = features.mean(axis=0)
    w = mu.copy()
    chosen = []
    for _ in range(1000):
        if len(chosen) == m:
            break
        i = int(np.argmax(features @ w))
        if i not in chosen:
            chosen.append(i)
        w = w + mu - features[i]
    return np.array(chosen, dtype=np.int64)


def class_means(features):
    """Mean of each class's L2-normalised features (a list of arrays).

    Args:
        features: a list of (n_c, d) arrays, one per class.

    Returns:
        (num_classes, d) array.

    Example:

    ```python
    import numpy as np
    from kerazoo.incremental import class_means

    rng = np.random.default_rng(0)
    means = class_means([rng.normal(size=(5, 8)), rng.normal(size=(7, 8))])
    print(means.shape)  # (2, 8)
    ```

    References:
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """
    return np.stack([l2_normalize_numpy(f, axis=1).mean(axis=0) for f in features])


def nme_predict(features, class_means):
    """Nearest class mean: argmax of cosine to the normalised means.

    Args:
        features: (N, d) features.
        class_means: (C, d) class means (`class_means`).

    Returns:
        (N,) predicted classes.

    Example:

    ```python
    import numpy as np
    from kerazoo.incremental import nme_predict

    means = np.array([[1.0, 0.0], [0.0, 1.0]])
    print(nme_predict(np.array([[2.0, 0.1], [0.3, 1.0]]), means))  # [0 1]
    ```

    References:
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """
    return np.argmax(l2_normalize_numpy(features, axis=1) @ l2_normalize_numpy(class_means, axis=1).T, axis=1)


def snapshot(backbone):
    """A frozen copy of `backbone` (same architecture and weights).

    Args:
        backbone: a functional `keras.Model`.

    Example:

    ```python
    import kerazoo
    from kerazoo.incremental import snapshot

    backbone = kerazoo.backbones.get("convnet", width=8)
    old = snapshot(backbone)
    assert not old.trainable and len(old.weights) == len(backbone.weights)
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    old = keras.models.clone_model(backbone)
    old.set_weights(backbone.get_weights())
    old.trainable = False
    return old


def snapshot_head(head):
    """A frozen copy of a head (`CosineLinear` or `Dense`), weights included.

    Args:
        head: a built `CosineLinear` or `Dense`.

    Example:

    ```python
    import numpy as np
    from kerazoo.incremental import snapshot_head
    from kerazoo.layers import CosineLinear

    head = CosineLinear(3)
    head(np.zeros((1, 8), "float32"))
    old = snapshot_head(head)
    assert np.allclose(old.kernel, head.kernel) and not old.trainable
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """
    if isinstance(head, CosineLinear):
        copy = copy_cosine_head(head, freeze_old=True)
    else:
        copy = head.__class__.from_config(head.get_config())
        copy.build((None, head.kernel.shape[0]))
        copy.set_weights(head.get_weights())
    copy.trainable = False
    return copy


def copy_cosine_head(head, freeze_old, learn_sigma=None):
    """A `CosineLinear` equal to `head` with its old block (un)frozen and σ
    trainable or not (default: as in `head`).

    Args:
        head: a built `CosineLinear`.
        freeze_old: whether the copy's old block is frozen.
        learn_sigma: whether the copy's σ trains; None keeps `head`'s.

    Example:

    ```python
    import numpy as np
    from kerazoo.incremental import copy_cosine_head
    from kerazoo.layers import CosineLinear

    head = CosineLinear(3)
    head(np.zeros((1, 8), "float32"))
    copy = copy_cosine_head(head, freeze_old=False, learn_sigma=False)
    assert np.allclose(copy.kernel, head.kernel)
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    config = {**head.get_config(), "freeze_old": freeze_old}
    if learn_sigma is not None:
        config["learn_sigma"] = learn_sigma
    copy = CosineLinear.from_config(config)
    copy.build((None, head.kernel.shape[0]))
    # By name: `get_weights` lists trainable weights first, so the order
    # changes with freeze_old.
    source = {w.name: w for w in head.weights}
    for weight in copy.weights:
        weight.assign(source[weight.name])
    return copy


def grow_head(head, num_new, init=None, freeze_old=True, learn_sigma=None):
    """A copy of `head` with `num_new` more classes, old weights kept exactly.

    A `Dense` grows as in LUCIR's iCaRL code: a new `Dense` initialised as
    PyTorch's `nn.Linear`, with the old classes' columns copied in.

    Args:
        head: a built `CosineLinear` or `Dense`.
        num_new: classes to add.
        init: None, or (num_new, input_dim) initial weights of the new classes
            (`imprint_weights`).
        freeze_old: for a `CosineLinear`, freeze the old classes' weights.
        learn_sigma: for a `CosineLinear`, whether σ trains; None keeps `head`'s.

    Example:

    ```python
    import numpy as np
    from kerazoo.incremental import grow_head
    from kerazoo.layers import CosineLinear

    head = CosineLinear(2)
    head(np.zeros((1, 8), "float32"))
    grown = grow_head(head, 3)
    print(grown(np.ones((1, 8), "float32")).shape)  # (1, 5)
    assert np.allclose(np.asarray(grown.kernel)[:, :2], head.kernel)
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    if isinstance(head, CosineLinear):
        grown = copy_cosine_head(head, freeze_old, learn_sigma)
        grown.add_classes(num_new, init)
        return grown
    kernel, bias = head.get_weights()
    # LUCIR's iCaRL code: a new nn.Linear, the old classes' rows copied in.
    grown = initializers.dense(kernel.shape[1] + num_new, kernel.shape[0], name=head.name)
    grown.build((None, kernel.shape[0]))
    new_kernel, new_bias = grown.get_weights()
    new_kernel[:, : kernel.shape[1]] = kernel
    new_bias[: bias.shape[0]] = bias
    grown.set_weights([new_kernel, new_bias])
    return grown


@dataclasses.dataclass(frozen=True)
class Method:
    """What distinguishes LUCIR, its ablations and the baselines.

    Args:
        head: "cosine" (CosineLinear, imprinted) or "linear" (Dense).
        less_forget, margin_ranking: LUCIR's two losses (old-class weights are
            frozen whenever less_forget is on, as in the code).
        distillation: knowledge distillation on the old classes' logits (the
            LUCIR code's iCaRL-CNN baseline:
            weight and temperature from `Settings`).
        memory: "exemplars" (herding, fixed count per class) or "all" (joint
            training on every image of the seen classes: the upper bound).
        balanced_finetuning: after each incremental phase, finetune the head on
            the exemplars only (LUCIR's CBF, `--cb_finetune` in its ImageNet
            script, `ft_flag 2`): backbone, BatchNorm and σ frozen, old and new
            class weights both trained, same loss.

    Example:

    ```python
    from kerazoo.incremental import METHODS, Method

    lucir = METHODS["lucir"]
    cosine_only = Method(less_forget=False, margin_ranking=False)
    assert cosine_only == METHODS["cn"]
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """

    head: str = "cosine"
    less_forget: bool = True
    margin_ranking: bool = True
    distillation: bool = False
    memory: str = "exemplars"
    balanced_finetuning: bool = False


METHODS = {
    "lucir": Method(),
    "lucir+cbf": Method(balanced_finetuning=True),
    "cn+lf": Method(margin_ranking=False),
    "cn": Method(less_forget=False, margin_ranking=False),
    "icarl": Method("linear", False, False, distillation=True),
    "replay": Method("linear", False, False),
    "joint": Method("linear", False, False, memory="all"),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The protocol and loss settings of a class-incremental run.

    Args:
        exemplars_per_class, epochs, batch_size: memory and training per phase.
        augment: the training images' augmentation policy (`kerazoo.data.augment`: "none",
            "crop_flip" for pad-4 crop + flip).
        flip_means: average NME class means with horizontally flipped images.
            The LUCIR CIFAR code's "flip" reverses the last axis of HWC arrays,
            i.e. the colour channels (an inherited bug); kerazoo flips the
            width, which is what the code means. Wrong for digits either way.
        lambda_base, margin, k: LUCIR's loss (`LUCIRLoss`).
        weight_decay: coupled L2 of each phase's optimizer (the code's PyTorch SGD).
        distillation_weight, temperature: the iCaRL-CNN baseline's distillation
            (the LUCIR code: β = 0.25, T = 2).
        cbf_epochs, cbf_learning_rate, cbf_weight_decay: class-balanced
            finetuning, for methods that use it (the LUCIR code: 20 epochs of
            SGD with momentum 0.9 from lr 0.01, x0.1 halfway, with the main
            phases' weight decay: None takes `weight_decay`).

    Example:

    ```python
    from kerazoo.incremental import METHODS, Settings

    settings = Settings(exemplars_per_class=5, epochs=1, batch_size=8)
    print(settings.loss(METHODS["icarl"]))  # distillation 0.25, the LUCIR losses off
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """

    exemplars_per_class: int = 20
    epochs: int = 30
    batch_size: int = 32
    augment: str = "none"
    flip_means: bool = False
    lambda_base: float = 5.0
    margin: float = 0.5
    k: int = 2
    weight_decay: float = 5e-4
    distillation_weight: float = 0.25
    temperature: float = 2.0
    cbf_epochs: int = 20
    cbf_learning_rate: float = 0.01
    cbf_weight_decay: float | None = None

    @classmethod
    def from_config(cls, config):
        """The settings named like fields of `config` (a recipe config)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

    def loss(self, method):
        """The `LUCIRLoss` of `method` under these settings."""
        return LUCIRLoss(
            less_forget=method.less_forget,
            margin_ranking=method.margin_ranking,
            distillation_weight=self.distillation_weight if method.distillation else 0.0,
            lambda_base=self.lambda_base,
            margin=self.margin,
            k=self.k,
            temperature=self.temperature,
        )


@dataclasses.dataclass
class PhaseResult:
    """Accuracies after one phase. `task_accuracy[j]`: CNN accuracy on the
    test images of phase j's classes (for forgetting).

    Args:
        phase: the phase's index (0 is the base phase).
        num_classes: classes seen so far.
        cnn_accuracy: accuracy of the model's head on the seen classes.
        nme_accuracy: nearest-mean-of-exemplars accuracy, or None.
        task_accuracy: CNN accuracy on the classes of each phase so far.

    Example:

    ```python
    from kerazoo.incremental import PhaseResult
    from kerazoo.metrics import average_forgetting

    results = [PhaseResult(0, 2, 0.9, 0.9, [0.9]), PhaseResult(1, 4, 0.7, 0.75, [0.6, 0.8])]
    print(average_forgetting([r.task_accuracy for r in results]))  # 0.3
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """

    phase: int
    num_classes: int
    cnn_accuracy: float
    nme_accuracy: float | None
    task_accuracy: list


def _checked_phase_sizes(phase_sizes):
    sizes = list(phase_sizes)
    if not sizes or not all(is_whole(n, 1) for n in sizes):
        raise ValueError(f"phase_sizes must be whole numbers of classes (>= 1) per phase, got {phase_sizes}.")
    return [int(n) for n in sizes]


def _check_phase_labels(train_labels, test_labels, num_classes, phase_sizes):
    """Labels must be the class ids 0..num_classes-1 in phase order, each
    with training images: otherwise a phase silently learnt the wrong
    classes (labels 1..4 gave 0 % in every phase) or failed deep inside."""
    fix = (
        "map them with labels_in_phase_order(labels, order), and give phase_sizes that add up to the classes"
    )
    for split, labels in (("train", train_labels), ("test", test_labels)):
        labels = np.asarray(labels)
        if labels.size and (labels.ndim != 1 or labels.dtype.kind not in "iu"):
            raise ValueError(
                f"{split} labels must be integer class ids of shape (N,), got {labels.dtype} {labels.shape}."
            )
        outside = sorted({int(c) for c in np.unique(labels) if not 0 <= c < num_classes})
        if outside:
            raise ValueError(
                f"{split} labels {outside[:10]} lie outside the {num_classes} classes of phase_sizes "
                f"{list(phase_sizes)} (ids 0..{num_classes - 1}); {fix}."
            )
    missing = sorted(set(range(num_classes)) - {int(c) for c in np.unique(train_labels)})
    if missing:
        raise ValueError(
            f"classes {missing[:10]} of phase_sizes {list(phase_sizes)} have no training images; {fix}."
        )


class ClassIncremental:
    """Runs the phases of one method on one seed.

    Args:
        method: a `Method` (see `METHODS`).
        data: (train_images, train_labels, test_images, test_labels), labels
            in phase order.
        phase_sizes: number of classes per phase, base phase first.
        settings: a `Settings`.
        seed: seeds the data order of every phase.
        build_backbone: () -> features model.
        make_optimizer: (steps) -> Keras optimizer for one phase (without weight
            decay: `settings.weight_decay` wraps it).
        fit: (model, dataset, stage=, epochs=) -> None.
        strategy: `tf.distribute` strategy models are built under.
        epoch_counter: the `EpochCounter` the fit callable drives.
        log: a callable for one-line progress messages.
        reuse: optional (model, key) -> the model to train in its place, one
            of the same kind set to `model`'s initial state; `key` is the
            same for a phase of one method and settings on every seed
            (`kerazoo.recipes.runner.Run.reuse`, which keeps models so that
            their training step is traced once).

    Example:

    ```python
    import numpy as np
    import keras
    import tensorflow as tf
    import kerazoo
    from kerazoo.data import EpochCounter
    from kerazoo.incremental import METHODS, ClassIncremental, Settings

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    labels = np.repeat(np.arange(4), 8)  # already in phase order
    counter = EpochCounter()

    def fit(model, dataset, stage, epochs):
        model.fit(dataset, epochs=epochs, callbacks=[counter], verbose=0)

    learner = ClassIncremental(
        METHODS["lucir"],
        (images, labels, images, labels),
        phase_sizes=[2, 2],
        settings=Settings(exemplars_per_class=3, epochs=1, batch_size=8),
        seed=0,
        build_backbone=lambda: kerazoo.backbones.get("convnet", last_relu=False, width=8),
        make_optimizer=lambda steps: keras.optimizers.SGD(0.05, momentum=0.9),
        fit=fit,
        strategy=tf.distribute.get_strategy(),
        epoch_counter=counter,
        log=print,
    )
    results = learner.run("example")  # one PhaseResult per phase
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """

    def __init__(
        self,
        method,
        data,
        phase_sizes,
        settings,
        seed,
        *,
        build_backbone,
        make_optimizer,
        fit,
        strategy,
        epoch_counter,
        log=print,
        reuse=None,
    ):
        self.method = method
        self.train_x, self.train_y, self.test_x, self.test_y = data
        self.bounds = [int(b) for b in np.cumsum([0, *_checked_phase_sizes(phase_sizes)])]
        _check_phase_labels(self.train_y, self.test_y, self.bounds[-1], phase_sizes)
        self.settings = settings
        self.seed = seed
        self.build_backbone = build_backbone
        self.make_optimizer = make_optimizer
        self.fit = fit
        self.strategy = strategy
        self.epoch_counter = epoch_counter
        self.log = log
        self.reuse = reuse or (lambda model, key: model)
        self.memory = {}  # class -> train indices of its exemplars
        self.model = None

    def features(self, backbone, *image_arrays):
        """Features of each array, from one pass over all of them: each call
        has a fixed cost, and the NME means alone would take two calls per
        seen class."""
        features = outputs_numpy(backbone, np.concatenate(image_arrays))
        return np.split(features, np.cumsum([len(a) for a in image_arrays])[:-1])

    def _new_head(self, phase, backbone):
        num_old, seen = self.bounds[phase], self.bounds[phase + 1]
        if phase == 0:
            if self.method.head == "cosine":
                return CosineLinear(seen)
            # LUCIR's iCaRL code keeps the ResNet's nn.Linear as PyTorch initialises it.
            return initializers.dense(seen, feature_size(backbone))
        init = None
        head = self.model.head
        if isinstance(head, CosineLinear):
            # Imprinting uses the previous phase's backbone, before training.
            old_norm = np.linalg.norm(np.asarray(head.kernel), axis=0).mean()
            init = imprint_weights(
                self.features(
                    self.model.backbone,
                    *(self.train_x[self.train_y == c] for c in range(num_old, seen)),
                ),
                old_norm,
            )
        # σ trains in every phase (the code's base_params), also after a
        # class-balanced finetuning that froze it.
        return grow_head(head, seen - num_old, init, freeze_old=self.method.less_forget, learn_sigma=True)

    def _check_batches_fit(self):
        # Before the first phase trains: a phase (a long tail's few-image
        # classes) smaller than one batch would otherwise stop the run midway.
        counts = np.bincount(self.train_y, minlength=self.bounds[-1])
        kept = np.minimum(counts, self.settings.exemplars_per_class)  # herding's share
        for phase in range(len(self.bounds) - 1):
            num_old, seen = self.bounds[phase], self.bounds[phase + 1]
            size = (
                counts[:seen].sum()
                if self.method.memory == "all"
                else (counts[num_old:seen].sum() + kept[:num_old].sum())
            )
            if size < self.settings.batch_size:
                raise DataSizeError(
                    f"Phase {phase} would train on {size} images (its new classes' and the exemplars), "
                    f"fewer than batch_size={self.settings.batch_size}; lower batch_size."
                )

    def _training_indices(self, phase):
        num_old, seen = self.bounds[phase], self.bounds[phase + 1]
        if self.method.memory == "all":
            return np.flatnonzero(self.train_y < seen)
        new = np.flatnonzero((self.train_y >= num_old) & (self.train_y < seen))
        exemplars = [self.memory[c] for c in range(num_old)]
        return np.sort(np.concatenate([new, *exemplars]))

    def _train_data(self, indices, seed, drop_remainder=True):
        return train_dataset(
            self.train_x[indices],
            self.train_y[indices],
            self.settings.batch_size,
            seed=seed,
            epoch_counter=self.epoch_counter,
            augment=self.settings.augment,
            drop_remainder=drop_remainder,
            num_replicas=self.strategy.num_replicas_in_sync,
        )

    def _update_memory(self, phase, backbone):
        classes = range(self.bounds[phase], self.bounds[phase + 1])
        members = [np.flatnonzero(self.train_y == c) for c in classes]
        features = self.features(backbone, *(self.train_x[m] for m in members))
        for c, m, f in zip(classes, members, features):
            self.memory[c] = m[herding(f, self.settings.exemplars_per_class)]

    def _evaluate(self, phase):
        seen = self.bounds[phase + 1]
        mask = self.test_y < seen
        images, labels = self.test_x[mask], self.test_y[mask]
        exemplars = flipped = []
        if self.method.memory == "exemplars":
            exemplars = [self.train_x[self.memory[c]] for c in range(seen)]
            flipped = [x[:, :, ::-1] for x in exemplars] if self.settings.flip_means else []
        test_features, *exemplar_features = self.features(self.model.backbone, images, *exemplars, *flipped)
        # The CNN classifier is the head on these features: one forward pass
        # for CNN and NME, and no predict function traced for each phase's
        # new model.
        predictions = np.argmax(np.asarray(self.model.head(test_features)), axis=1)
        correct = predictions == labels
        task_accuracy = [
            float(np.mean(correct[(labels >= lo) & (labels < hi)]))
            for lo, hi in zip(self.bounds[: phase + 1], self.bounds[1 : phase + 2])
        ]
        nme = None
        if exemplars:
            means = class_means(exemplar_features[:seen])
            if flipped:
                means = (means + class_means(exemplar_features[seen:])) / 2
            nme_predictions = nme_predict(test_features, means)
            nme = float(np.mean(nme_predictions == labels))
        return PhaseResult(phase, seen, float(np.mean(correct)), nme, task_accuracy)

    def _balanced_finetune(self, phase, stage):
        """CBF: train a copy of the head, old weights unfrozen and σ frozen
        (the code's ft_flag 2), on the exemplars of every seen class; the
        backbone is frozen, so BatchNorm runs in inference mode and
        less-forget is a constant."""
        num_old, seen = self.bounds[phase], self.bounds[phase + 1]
        indices = np.sort(np.concatenate([self.memory[c] for c in range(seen)]))
        settings = self.settings
        # Every exemplar in every epoch (no dropped remainder), or the
        # classes would not be balanced; on R replicas up to R - 1 fewer an
        # epoch, so that the last batch splits evenly (`train_dataset`).
        dataset = self._train_data(indices, self.seed * 1000 + 500 + phase, drop_remainder=False)
        steps = settings.cbf_epochs * int(dataset.cardinality())
        backbone = self.model.backbone
        backbone.trainable = False
        try:
            with self.strategy.scope():
                unfrozen = copy_cosine_head(self.model.head, freeze_old=False, learn_sigma=False)
                loss = settings.loss(self.method)
                model = LUCIRClassifier(
                    backbone, unfrozen, self.model.old_backbone, self.model.old_head, num_old, loss
                )
                lr = settings.cbf_learning_rate
                schedule = VariableLength(
                    keras.optimizers.schedules.PiecewiseConstantDecay([steps // 2], [lr, lr * 0.1])
                )
                optimizer = with_weight_decay(
                    keras.optimizers.SGD(schedule, momentum=0.9),
                    settings.weight_decay if settings.cbf_weight_decay is None else settings.cbf_weight_decay,
                )
                model.compile(optimizer=optimizer, metrics=_metrics())
                model(self.train_x[:1])
                model = self.reuse(model, (self.method, self.settings, phase, "cbf"))
            self.fit(model, dataset, stage=stage, epochs=settings.cbf_epochs)
        finally:
            backbone.trainable = True
        self.model = model

    def run(self, stage_prefix):
        """Train and evaluate every phase; returns a list of `PhaseResult`."""
        self._check_batches_fit()
        results = []
        epochs = self.settings.epochs
        for phase in range(len(self.bounds) - 1):
            num_old, seen = int(self.bounds[phase]), int(self.bounds[phase + 1])
            with self.strategy.scope():
                if phase == 0:
                    backbone, old_backbone, old_head = self.build_backbone(), None, None
                else:
                    backbone = self.model.backbone
                    old_backbone = snapshot(backbone)
                    # Only distillation reads the old head; copying it draws
                    # initial weights, which would shift later random draws.
                    old_head = snapshot_head(self.model.head) if self.method.distillation else None
                head = self._new_head(phase, backbone)
                loss = self.settings.loss(self.method)
                model = LUCIRClassifier(backbone, head, old_backbone, old_head, num_old, loss)
                indices = self._training_indices(phase)
                steps = epochs * (len(indices) // self.settings.batch_size)
                optimizer = with_weight_decay(self.make_optimizer(steps), self.settings.weight_decay)
                model.compile(optimizer=optimizer, metrics=_metrics())
                model(self.train_x[:1])
                model = self.reuse(model, (self.method, self.settings, phase))
            self.model = model
            dataset = self._train_data(indices, self.seed * 1000 + phase)
            self.fit(model, dataset, stage=f"{stage_prefix}-phase{phase}", epochs=epochs)
            if self.method.memory == "exemplars":
                self._update_memory(phase, model.backbone)
            if self.method.balanced_finetuning and phase > 0:
                self._balanced_finetune(phase, f"{stage_prefix}-phase{phase}-cbf")
            result = self._evaluate(phase)
            results.append(result)
            nme = f", NME {100 * result.nme_accuracy:.1f} %" if result.nme_accuracy is not None else ""
            self.log(
                f"{stage_prefix} phase {phase}: {seen} class{'es' * (seen != 1)}, {len(indices)} training images, "
                f"CNN {100 * result.cnn_accuracy:.1f} %{nme}"
            )
        return results
