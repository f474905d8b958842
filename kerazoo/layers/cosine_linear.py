"""CosineLinear: LUCIR's cosine-normalised classifier head, which can grow new classes."""

import keras
import numpy as np
from keras import ops

from kerazoo._checks import is_whole
from kerazoo._keras_internals import unlock_state, untrack_variable
from kerazoo.ops import l2_normalize, l2_normalize_numpy


def imprint_weights(features_by_class, old_weight_norm):
    """LUCIR's imprinted weights for new classes: one row per class.

    w_c = normalize(mean_i normalize(f_i)) · old_weight_norm, where f_i are the features of
    *all* training images of class c (test transform, previous-phase backbone in inference
    mode) and old_weight_norm is the mean L2 norm of the old classes' weight vectors
    (the official LUCIR code's CIFAR-100 script, "imprint weights"). The norm does not
    change the layer's output (the layer normalises its weights); it matters for SGD and
    weight decay.

    Args:
        features_by_class: a sequence with one (n_c, input_dim) array (or tensor) per new class;
            classes may have different counts.
        old_weight_norm: scalar, e.g. `np.linalg.norm(head.kernel, axis=0).mean()` taken
            before `head.add_classes`.

    Returns:
        float32 NumPy array of shape (num_new_classes, input_dim), the layout
        `CosineLinear.add_classes(n, init=...)` expects.

    Example:

    ```python
    import numpy as np
    from kerazoo.layers import imprint_weights

    rng = np.random.default_rng(0)
    new_features = [rng.normal(size=(30, 64)), rng.normal(size=(20, 64))]  # one array per class
    rows = imprint_weights(new_features, old_weight_norm=2.0)
    assert rows.shape == (2, 64)
    assert np.allclose(np.linalg.norm(rows, axis=1), 2.0, atol=1e-5)
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    rows = []
    for c, features in enumerate(features_by_class):
        features = np.asarray(ops.convert_to_numpy(features), dtype=np.float64)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(
                f"imprint_weights: class {c} needs a non-empty (n, input_dim) array of "
                f"features, got shape {features.shape}."
            )
        rows.append(l2_normalize_numpy(l2_normalize_numpy(features, axis=1).mean(axis=0), axis=0))
    return (np.stack(rows) * float(old_weight_norm)).astype(np.float32)


@keras.saving.register_keras_serializable(package="kerazoo")
class CosineLinear(keras.layers.Layer):
    """Cosine classifier: logits = σ · cos(feature, weight), no bias.

    logits[b, c] = σ · ⟨x_b / max(‖x_b‖, ε), w_c / max(‖w_c‖, ε)⟩ with ε = 1e-12 (`F.normalize`)
    and σ one scalar weight initialised to 1.0 (LUCIR paper Eq. 4 calls it η). Class weights
    start uniform(−1/√in, 1/√in). Source: the official LUCIR code (`CosineLinear`,
    and `SplitCosineLinear` for the grown head).

    The weights live in at most two blocks, as the code's SplitCosineLinear (fc1 old, fc2 new):
    `old_kernel` (input_dim, old_units) and `new_kernel` (input_dim, units − old_units), columns
    concatenated old first. `add_classes` merges every current class into the old block (the
    code's fc1 ← concat(fc1, fc2)) and appends a fresh trainable new block; σ is kept. With
    `freeze_old=True` the old block is a non-trainable variable, absent from
    `trainable_weights`: the code gives fc1 lr 0 and weight decay 0 whenever the less-forget
    constraint is on (the paper's "fix the old class embeddings"). Pass `freeze_old=False` for
    the CN-only ablation, where old weights train.

    After `add_classes` the variables are new objects: build a new optimizer and re-`compile`
    any model holding the layer (LUCIR builds a new optimizer every phase anyway).

    Args:
        units: number of classes (all blocks).
        learn_sigma: whether σ is trainable (it exists, at 1.0, either way).
        old_units: size of the old block; set by `add_classes` and stored in the config so
            that `from_config` and `.keras` loading rebuild matching variables.
        freeze_old: create the old block non-trainable.

    Call arguments:
        inputs: (..., input_dim) features.
        return_cosine: return the *unscaled* cosines (..., units) instead of the logits; LUCIR's
            margin-ranking loss works on these, and `head.sigma * cosines` gives the logits
            without a second pass.

    Example:

    ```python
    import numpy as np
    from kerazoo.layers import CosineLinear, imprint_weights

    rng = np.random.default_rng(0)
    head = CosineLinear(5)
    logits = head(rng.normal(size=(8, 64)).astype("float32"))  # (8, 5), |logits| <= |sigma|
    new_features = [rng.normal(size=(30, 64)), rng.normal(size=(20, 64))]  # one array per class
    avg_norm = np.linalg.norm(head.kernel, axis=0).mean()
    head.add_classes(2, init=imprint_weights(new_features, avg_norm))
    cosines = head(rng.normal(size=(8, 64)).astype("float32"), return_cosine=True)  # (8, 7)
    logits = head.sigma * cosines
    assert logits.shape == (8, 7)
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """

    def __init__(self, units, learn_sigma=True, old_units=0, freeze_old=True, **kwargs):
        super().__init__(**kwargs)
        if not is_whole(units, 1):
            raise ValueError(f"CosineLinear: units must be a whole number >= 1, got {units!r}.")
        if not (is_whole(old_units, 0) and old_units < units):
            raise ValueError(f"CosineLinear: old_units must be in [0, units={units}), got {old_units}.")
        self.units = int(units)
        self.learn_sigma = bool(learn_sigma)
        self.old_units = int(old_units)
        self.freeze_old = bool(freeze_old)
        self.old_kernel = None

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.sigma = self.add_weight(
            name="sigma",
            shape=(),
            initializer=keras.initializers.Constant(1.0),
            trainable=self.learn_sigma,
        )
        # Creation order (sigma, old, new) is the order weights are saved in; add_classes
        # recreates the blocks in the same order so saved files stay loadable.
        if self.old_units:
            self.old_kernel = self._add_block(
                "old_kernel", input_dim, self.old_units, trainable=not self.freeze_old
            )
        self.new_kernel = self._add_block(
            "new_kernel", input_dim, self.units - self.old_units, trainable=True
        )

    def _add_block(self, name, input_dim, units, trainable):
        limit = 1.0 / np.sqrt(input_dim)
        return self.add_weight(
            name=name,
            shape=(input_dim, units),
            initializer=keras.initializers.RandomUniform(-limit, limit),
            trainable=trainable,
        )

    @property
    def kernel(self):
        """All class weights as one tensor (input_dim, units), old block first."""
        blocks = [b for b in (self.old_kernel, self.new_kernel) if b is not None]
        return ops.concatenate(blocks, axis=1)

    def add_classes(self, n, init=None):
        """Grow the head by `n` classes; σ and all current weights are kept exactly.

        Every current class moves into the old block (frozen if `freeze_old`), and a new
        trainable block of `n` classes is appended after it. A model that has
        trained holds a step traced for the old variables (and class count):
        compile it again before the next `fit` (`kerazoo.incremental` builds
        a new model for each phase).

        Args:
            n: number of new classes.
            init: optional (n, input_dim) array, one weight *row* per new class (the layout
                `imprint_weights` returns, and PyTorch's weight layout); default
                uniform(−1/√in, 1/√in).
        """
        if not self.built:
            raise ValueError("CosineLinear.add_classes: call or build the layer first.")
        if n < 1:
            raise ValueError(f"CosineLinear.add_classes: n must be >= 1, got {n}.")
        input_dim = self.new_kernel.shape[0]
        if init is not None:
            init = ops.convert_to_numpy(init)
            if init.shape != (n, input_dim):
                raise ValueError(
                    f"CosineLinear.add_classes: init must have shape (n, input_dim) = "
                    f"({n}, {input_dim}), one row per new class; got {init.shape}."
                )
        current = ops.convert_to_numpy(self.kernel)
        # Swapping variables for ones of a new shape after build.
        unlock_state(self)
        for block in (self.old_kernel, self.new_kernel):
            if block is not None:
                untrack_variable(self, block)
        self.old_units, self.units = self.units, self.units + n
        self.old_kernel = self._add_block(
            "old_kernel", input_dim, self.old_units, trainable=not self.freeze_old
        )
        self.old_kernel.assign(current)
        self.new_kernel = self._add_block("new_kernel", input_dim, n, trainable=True)
        if init is not None:
            self.new_kernel.assign(np.transpose(init))
        self._lock_state()

    def call(self, inputs, return_cosine=False):
        cosine = ops.matmul(l2_normalize(inputs, axis=-1), l2_normalize(self.kernel, axis=0))
        return cosine if return_cosine else self.sigma * cosine

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "learn_sigma": self.learn_sigma,
                "old_units": self.old_units,
                "freeze_old": self.freeze_old,
            }
        )
        return config
