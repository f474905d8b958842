"""GITAugment: GIT's tail-class augmentation with a trained translator, training only."""

import numbers

import keras
import numpy as np
from keras import ops

from kerazoo._checks import check_non_negative
from kerazoo._keras_internals import freeze
from kerazoo.ops import replica_rows_of_draw
from kerazoo.serialization import deserialized

RULES = ("threshold", "ramp", "independent")
STYLES = ("prior", "encoded")


@keras.saving.register_keras_serializable(package="kerazoo")
class GITAugment(keras.layers.Layer):
    """Replace part of each training batch with translations: GIT's augmentation.

    Generative invariance transfer (Zhou et al., ICLR 2022, Algorithm 1;
    the official code's baseline training): in a batch of B images, the last
    g = int(fraction · B) positions are candidates (GIT's `gen_frac`, 0.5).
    `call(images, labels, training, source)` returns the `(images, labels)`
    to train on:
        - `rule="independent"` (the official code as shipped, `weighted_gen`
          off): the g candidates become translations of the first g images
          of `source`, an independent second batch `(x̃, ỹ)` from the same
          kind of sampler, with their labels ỹ, whatever their class;
        - `rule="threshold"` (the paper's Algorithm 1 as summarised: "if
          class size < K, replace"): a candidate of class y with N_y <
          `threshold` is replaced by a translation of itself (same label);
        - `rule="ramp"` (the code's `--weighted_gen` probability
          max((K − N_y)/(K − N_min), 0), K = `threshold`, N_min the smallest
          class: the smallest class always, classes with N ≥ K never), again
          on the candidate itself.
    The two class-size rules translate the image they replace, so the
    batch's labels and class mix are unchanged (the code draws the
    candidates from the second batch instead). At inference
    (`training=False`) the layer returns its input; `train_only = True`, and
    a model's `inference_model()` leaves it out. The translator is frozen.

    Each translation decodes the image's content with a style that is, with
    `styles="prior"` (GIT's code), drawn from N(0, I) by the translator
    itself; with `styles="encoded"` (not in GIT's code), encoded from a
    random image of the same batch (MUNIT's example-guided translation), so
    that the styles are those of real images: with a class-balanced DRS
    batch, those of every class. `style_scale` < 1 (not in GIT's code)
    multiplies the styles, as the truncation trick of style-based GANs
    does: translations nearer the style space's centre vary less and change
    the character less often (docs/benchmark.md measures both).

    Args:
        translator: a layer or model mapping images to translations, drawing
            its own randomness (e.g. `kerazoo.models.MUNITGenerator`).
        class_counts: training images per class.
        threshold: K, the class size from which no image is translated.
        fraction: share of each batch that may be replaced.
        rule: `"independent"`, `"threshold"` or `"ramp"`.
        seed: seed of the ramp's draws and of the style images' draws.
        styles: `"prior"` or `"encoded"` (a translator with `translate` and
            `styles_of`, e.g. `kerazoo.models.MUNITGenerator`).
        style_scale: factor on every style (1: as drawn or encoded; other
            values need a `kerazoo.models.MUNITGenerator`-like translator).

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.layers import GITAugment

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(8, 8, 8, 1)).astype("float32")
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    translator = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Lambda(lambda x: 1.0 - x)])
    augment = GITAugment(translator, class_counts=[100, 5], threshold=20, seed=0)
    out_images, out_labels = augment(images, labels, training=True)  # class 1 candidates translated
    assert out_images.shape == images.shape

    independent = GITAugment(translator, class_counts=[100, 5], threshold=20, rule="independent")
    source = (images[::-1], labels[::-1])
    out_images, out_labels = independent(images, labels, training=True, source=source)
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """

    train_only = True

    def __init__(
        self,
        translator,
        class_counts,
        threshold,
        fraction=0.5,
        rule="threshold",
        seed=None,
        styles="prior",
        style_scale=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rule not in RULES:
            raise ValueError(f"GITAugment rule must be one of {RULES}, got {rule!r}.")
        if styles not in STYLES:
            raise ValueError(f"GITAugment styles must be one of {STYLES}, got {styles!r}.")
        if styles == "encoded" and not (
            hasattr(translator, "translate") and hasattr(translator, "styles_of")
        ):
            raise ValueError(
                'GITAugment(styles="encoded") needs a translator with translate(images, styles) and '
                f"styles_of(images), e.g. kerazoo.models.MUNITGenerator; got {type(translator).__name__}."
            )
        check_non_negative("GITAugment", style_scale=style_scale)
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or threshold < 0:
            raise ValueError(
                f"GITAugment threshold must be a class size >= 0 (the paper's K: classes with fewer "
                f"training images are augmented), got {threshold!r}."
            )
        if style_scale != 1.0 and not _draws_styles_outside(translator):
            raise ValueError(
                "GITAugment(style_scale != 1) needs a translator with translate(images, styles) "
                f"and prior_styles(rows), e.g. kerazoo.models.MUNITGenerator; got "
                f"{type(translator).__name__}."
            )
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"GITAugment fraction must be in [0, 1], got {fraction}.")
        self.translator = translator
        # A translator loaded with the layer was saved frozen, and a plain
        # `trainable = False` would not reach its parts (see `freeze`).
        freeze(self.translator)
        self.class_counts = [int(c) for c in class_counts]
        if not self.class_counts or min(self.class_counts) < 0:
            raise ValueError(
                f"GITAugment class_counts must be one training-image count (>= 0) per class, got {class_counts}."
            )
        self.threshold, self.fraction, self.rule, self.seed = threshold, fraction, rule, seed
        self.styles, self.style_scale = styles, float(style_scale)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Nothing to build: the translator comes built and the draws' state
        # exists; a model holding the layer is then fully built before its
        # first training step.
        self.built = True

    def probabilities(self):
        """The chance that a candidate of each class is replaced, (num_classes,)."""
        counts = np.asarray(self.class_counts, np.float64)
        if self.rule == "independent":
            return np.ones(len(counts), "float32")
        if self.rule == "threshold":
            return (counts < self.threshold).astype("float32")
        # K == N_min would divide by zero; then no class is below K anyway.
        span = max(self.threshold - counts.min(), 1e-12)
        return np.clip((self.threshold - counts) / span, 0.0, 1.0).astype("float32")

    def call(self, images, labels, training=False, source=None):
        if not training:
            return images, labels
        batch = ops.shape(images)[0]
        generated = ops.cast(ops.floor(self.fraction * ops.cast(batch, "float32")), "int32")
        if self.rule == "independent":
            if source is None:
                raise ValueError(
                    'GITAugment(rule="independent") needs source=(images, labels), '
                    "an independent second batch to translate."
                )
            source_images, source_labels = source
            # A shorter second batch (a ragged last one) fills fewer slots
            # rather than shortening the batch.
            generated = ops.minimum(generated, ops.shape(source_images)[0])
            # Only the g slots that are replaced are translated.
            translated = self._translate_rows(source_images[:generated], images)
            kept = batch - generated
            # The second loader's labels in the first's shape ((B,) or (B, 1)).
            source_labels = ops.reshape(
                ops.cast(source_labels[:generated], labels.dtype), (-1, *labels.shape[1:])
            )
            return (
                ops.concatenate([images[:kept], translated], axis=0),
                ops.concatenate([labels[:kept], source_labels], axis=0),
            )
        candidates = ops.arange(batch) >= batch - generated
        chance = ops.take(
            ops.convert_to_tensor(self.probabilities()), ops.reshape(ops.cast(labels, "int32"), (-1,))
        )
        # uniform in [0, 1): always below 1 and never below 0, so the
        # threshold rule (chances 0 or 1) is exact.
        draw = replica_rows_of_draw(lambda n: keras.random.uniform((n,), seed=self.seed_generator), batch)
        replace = ops.logical_and(candidates, draw < chance)
        # Only the replaced rows go through the translator (a few tail images
        # per batch): translating the whole batch made the translator most of
        # a DRS step's cost. The row count varies, so this needs a backend
        # with dynamic shapes outside XLA (TensorFlow's graphs).
        rows = ops.where(replace)[0]
        translated = self._translate_rows(ops.take(images, rows, axis=0), images)
        return ops.scatter_update(images, ops.expand_dims(rows, -1), translated), labels

    def _translate_rows(self, images, batch):
        """`_translate(images, batch)`, or `images` when there are none: a
        batch without a replaced row (no tail image among its candidates, a
        batch of one, fraction 0) would otherwise reach the translator's
        reflection padding, which fails on an empty batch."""
        return ops.cond(ops.shape(images)[0] > 0, lambda: self._translate(images, batch), lambda: images)

    def _translate(self, images, batch):
        """Translations of `images`, with styles of random images of `batch` if encoded."""
        if self.styles == "prior" and not _draws_styles_outside(self.translator):
            # A translator of another kind draws its own styles (style_scale 1).
            return ops.cast(self.translator(images, training=False), images.dtype)
        # The replaced rows' count differs between replicas: the replica's
        # batch size keeps their rows of a draw apart.
        rows, capacity = ops.shape(images)[0], ops.shape(batch)[0]
        if self.styles == "prior":
            # The translator's own draws, as its call makes them.
            styles = self.translator.prior_styles(rows, capacity)
        else:
            picks = replica_rows_of_draw(
                lambda n: keras.random.randint((n,), 0, capacity, seed=self.seed_generator), rows, capacity
            )
            styles = self.translator.styles_of(ops.take(batch, picks, axis=0))
        return ops.cast(self.translator.translate(images, self.style_scale * styles), images.dtype)

    def compute_output_shape(self, images_shape, labels_shape=None, source_shape=None):
        return images_shape, labels_shape

    def get_config(self):
        return {
            **super().get_config(),
            "translator": keras.saving.serialize_keras_object(self.translator),
            "class_counts": self.class_counts,
            "threshold": self.threshold,
            "fraction": self.fraction,
            "rule": self.rule,
            "seed": self.seed,
            "styles": self.styles,
            "style_scale": self.style_scale,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialized(config, "translator"))


def _draws_styles_outside(translator):
    """Whether GITAugment can draw `translator`'s styles itself and translate
    with them (a `MUNITGenerator`), rather than only call it."""
    return all(hasattr(translator, a) for a in ("translate", "prior_styles"))
