"""NegativeBank: AdCo's K negatives as one (dim, K) variable, normalised column by column when used."""

import keras
import tensorflow as tf
from keras import ops

from kerazoo._checks import is_whole
from kerazoo.ops import l2_normalize


@keras.saving.register_keras_serializable(package="kerazoo")
class NegativeBank(keras.layers.Layer):
    """K negative vectors of dimension `dim`, stored (dim, K), compared by cosine.

    `bank(queries)` returns q · normalize(W) with W the stored (dim, K)
    variable and each column divided by its L2 norm (AdCo's
    `Adversary_Negatives`: W is kept unnormalised and never re-normalised,
    so its gradient has the projection term of the official closed form). Queries are expected L2-normalised, so the
    output (B, K) holds cosine similarities.

    Two ways to move the bank, the same layer for AdCo and its MoCo baseline:
    - trainable (AdCo): an optimizer steps W, by *ascent* on the bank's
      contrastive loss (`kerazoo.optimizers.GradientAscent`);
    - `write(keys)` (MoCo's FIFO queue, and AdCo's `ad_init` start from key
      features): the columns from a cyclic position on are overwritten
      with the keys, and the position advances.

    W starts standard normal (`torch.randn`, unnormalised) unless another
    `initializer` is given; `effective_rank()` measures how many directions
    its normalised columns span (a throw-away prototype saw a key-feature
    start collapse to ≈ 3 of 32).

    Under a multi-replica strategy W is mirrored: its gradient is summed
    over replicas by the optimizer and `write` must get the same keys on
    every replica (all-gathered), so the bank stays identical everywhere.

    Args:
        size: K, the number of negatives.
        dim: their dimension (the projection's output size).
        initializer: of W; default standard normal.

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.layers import NegativeBank

    rng = np.random.default_rng(0)
    queries = keras.ops.normalize(rng.normal(size=(4, 32)).astype("float32"), axis=-1)
    bank = NegativeBank(64, 32)
    similarities = bank(queries)  # (4, 64) cosines
    bank.write(queries)  # FIFO: overwrite the next len(keys) columns
    assert similarities.shape == (4, 64) and 0.0 < float(bank.effective_rank()) <= 32.0
    ```

    References:
        - [Hu et al., AdCo: Adversarial Contrast for Efficient Learning of Unsupervised Representations from
          Self-Trained Negative Adversaries, CVPR 2021](https://arxiv.org/abs/2011.08435)
        - [He et al., Momentum Contrast for Unsupervised Visual Representation Learning, CVPR
          2020](https://arxiv.org/abs/1911.05722)
    """

    def __init__(self, size, dim, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if not (is_whole(size, 1) and is_whole(dim, 1)):
            raise ValueError(
                f"NegativeBank: size and dim must be whole numbers >= 1 (negatives, their dimension); "
                f"got size={size!r}, dim={dim!r}."
            )
        self.size = int(size)
        self.dim = int(dim)
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.RandomNormal(mean=0.0, stddev=1.0)
        )

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] != self.dim:
            raise ValueError(f"NegativeBank(dim={self.dim}) got queries of size {input_shape[-1]}.")
        self.bank = self.add_weight(
            shape=(self.dim, self.size),
            initializer=self.initializer,
            name="bank",
            trainable=self.trainable,
        )
        # Next column `write` overwrites.
        self.position = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False, name="position"
        )

    def negatives(self):
        """normalize(W) column-wise, (dim, K), in float32."""
        return l2_normalize(ops.cast(self.bank, "float32"), axis=0)

    def call(self, queries):
        return ops.matmul(ops.cast(queries, "float32"), self.negatives())

    def write(self, keys):
        """Overwrite the next len(keys) columns (cyclically) with `keys`
        L2-normalised, and advance the position; len(keys) must not exceed K."""
        # More keys than columns would scatter several keys to one column,
        # and which of them is kept is unspecified.
        message = (
            f"NegativeBank(size={self.size}).write got more keys than the bank has columns; "
            "use a bank (queue) at least as large as the batch it is written (a multi-replica "
            "queue takes the global batch)."
        )
        if keys.shape[0] is not None:
            if keys.shape[0] > self.size:
                raise ValueError(f"{message} Got {keys.shape[0]} keys.")
        else:
            with tf.control_dependencies(
                [tf.debugging.assert_less_equal(tf.shape(keys)[0], self.size, message=message)]
            ):
                keys = tf.identity(keys)
        keys = l2_normalize(ops.cast(keys, "float32"), axis=1)
        count = ops.shape(keys)[0]
        columns = ops.mod(ops.cast(self.position, "int32") + ops.arange(count, dtype="int32"), self.size)
        updated = ops.scatter_update(ops.transpose(self.bank), columns[:, None], keys)
        self.bank.assign(ops.transpose(updated))
        self.position.assign(ops.mod(ops.cast(self.position, "int32") + count, self.size))

    def effective_rank(self):
        """exp(entropy of the normalised singular values) of normalize(W): 1
        for parallel columns, up to `dim` for columns spread evenly (Roy &
        Vetterli's effective rank); from the eigenvalues of the (dim, dim) Gram
        matrix, cheap enough for every step."""
        return effective_rank(self.negatives())

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.size)

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "dim": self.dim,
            "initializer": keras.initializers.serialize(self.initializer),
        }


def effective_rank(matrix):
    """exp(H(p)) with p_i = σ_i / Σσ the normalised singular values of a
    (d, n) matrix, from the eigenvalues of its (d, d) Gram matrix.

    Args:
        matrix: a (d, n) matrix or tensor.

    Returns:
        float32 scalar in [1, min(d, n)].

    Example:

    ```python
    import numpy as np
    from kerazoo.layers.negative_bank import effective_rank

    print(float(effective_rank(np.eye(4))))  # 4.0: four equal singular values
    print(float(effective_rank(np.ones((4, 3)))))  # 1.0: one direction
    ```

    References:
        - [Hu et al., AdCo: Adversarial Contrast for Efficient Learning of Unsupervised Representations from
          Self-Trained Negative Adversaries, CVPR 2021](https://arxiv.org/abs/2011.08435)
    """
    # float64: float32 eigenvalue noise (~1e-7·λ_max) becomes ~3e-4·σ_max
    # after the square root, enough to lift the rank of parallel columns.
    matrix = ops.cast(matrix, "float64")
    gram = ops.matmul(matrix, ops.transpose(matrix))
    # A diverged step's NaN would make eigh raise inside the training step,
    # before TerminateOnNaN or the recipes' divergence check see the loss:
    # decompose zeros instead and answer NaN.
    finite = ops.all(ops.isfinite(gram))
    eigenvalues = ops.eigh(ops.where(finite, gram, ops.zeros_like(gram)))[0]
    singular = ops.sqrt(ops.maximum(eigenvalues, 0.0))
    p = singular / ops.maximum(ops.sum(singular), 1e-12)
    entropy = -ops.sum(ops.where(p > 0, p * ops.log(ops.maximum(p, 1e-30)), 0.0))
    return ops.cast(ops.where(finite, ops.exp(entropy), float("nan")), "float32")
