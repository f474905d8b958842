"""MUNIT on one domain: the translator GIT learns the nuisance variation of a dataset with."""

import keras
import numpy as np
from keras import layers, ops

from kerazoo import optimizers
from kerazoo.initializers import kaiming_normal
from kerazoo.layers.adain import AdaptiveInstanceNorm
from kerazoo.losses.translation import lsgan_discriminator_loss, lsgan_generator_loss, reconstruction_loss
from kerazoo.models.base import OptimizerGroup, TrainingModel, dtype_policy_scope
from kerazoo.ops import replica_rows_of_draw
from kerazoo.serialization import deserialized


def _gaussian():
    """MUNIT's `weights_init('gaussian')` for the discriminator: N(0, 0.02²)."""
    return keras.initializers.RandomNormal(0.0, 0.02)


def _instance_norm(name):
    # MUNIT's InstanceNorm2d: per sample and channel, no affine parameters.
    return layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5, name=name)


@keras.saving.register_keras_serializable(package="kerazoo")
class ReflectionPadding(layers.Layer):
    """Pad H and W by `pad` pixels on each side, mirroring the image (MUNIT's
    `pad_type: reflect`). Zero padding would draw a frame whose contrast
    tells the content encoder the absolute background level, the very
    nuisance the style should carry.

    Args:
        pad: pixels added on each side of H and W.

    Example:

    ```python
    import numpy as np
    from kerazoo.models.munit import ReflectionPadding

    x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    print(ReflectionPadding(1)(x).shape)  # (1, 5, 5, 1)
    ```

    References:
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
    """

    def __init__(self, pad, **kwargs):
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, x):
        p = self.pad
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape):
        grow = lambda n: None if n is None else n + 2 * self.pad  # noqa: E731
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def _signed(images):
    # MUNIT's networks take and give images in [−1, 1]; kerazoo's are in [0, 1].
    return images * 2.0 - 1.0


def _conv(x, filters, kernel, stride=1, name=None, init=kaiming_normal):
    """Reflection-pad by (kernel − 1) // 2, then a valid convolution: H/stride
    out for MUNIT's kernels (7, 5, 3 and 1 at stride 1, 4 at stride 2).
    `init`: MUNIT's `weights_init('kaiming')` (utils.py, applied by trainer.py
    to the generator) for the generator, `_gaussian` for the discriminator."""
    if kernel > 1:
        x = ReflectionPadding((kernel - 1) // 2, name=None if name is None else f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, stride, padding="valid", kernel_initializer=init(), name=name)(x)


def content_encoder(image_shape, dim, n_downsample, n_res, content_channels):
    """Conv7 → n_downsample × conv4/2 (IN, ReLU) → n_res residual blocks (IN);
    an optional 1×1 conv to `content_channels` narrows the content code.

    Args:
        image_shape: (H, W, C).
        dim: width of the first convolution.
        n_downsample: stride-2 convolutions.
        n_res: residual blocks.
        content_channels: None, or the channels of a final 1×1 bottleneck.

    Returns:
        A `keras.Model` from images in [−1, 1] to content codes.

    Example:

    ```python
    import numpy as np
    from kerazoo.models.munit import content_encoder

    encoder = content_encoder((8, 8, 1), dim=4, n_downsample=1, n_res=1, content_channels=None)
    print(encoder(np.zeros((2, 8, 8, 1), "float32")).shape)  # (2, 4, 4, 8)
    ```

    References:
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
    """
    images = keras.Input(image_shape, name="images")
    x = layers.ReLU()(_instance_norm("in0")(_conv(images, dim, 7, name="conv0")))
    for i in range(n_downsample):
        dim *= 2
        x = layers.ReLU()(_instance_norm(f"in_down{i}")(_conv(x, dim, 4, 2, name=f"down{i}")))
    for i in range(n_res):
        y = layers.ReLU()(_instance_norm(f"res{i}_in1")(_conv(x, dim, 3, name=f"res{i}_conv1")))
        y = _instance_norm(f"res{i}_in2")(_conv(y, dim, 3, name=f"res{i}_conv2"))
        x = layers.Add()([x, y])
    if content_channels:
        x = _conv(x, content_channels, 1, name="bottleneck")
    return keras.Model(images, x, name="content_encoder")


def style_encoder(image_shape, dim, n_downsample, style_dim):
    """Conv7 → n_downsample × conv4/2 (the first two doubling the width) →
    global average pool → linear to `style_dim`; no normalisation (MUNIT's
    StyleEncoder, n_downsample 4).

    Args:
        image_shape: (H, W, C).
        dim: width of the first convolution.
        n_downsample: stride-2 convolutions.
        style_dim: size of the style code.

    Returns:
        A `keras.Model` from images in [−1, 1] to (B, style_dim) style codes.

    Example:

    ```python
    import numpy as np
    from kerazoo.models.munit import style_encoder

    encoder = style_encoder((8, 8, 1), dim=4, n_downsample=2, style_dim=8)
    print(encoder(np.zeros((2, 8, 8, 1), "float32")).shape)  # (2, 8)
    ```

    References:
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
    """
    images = keras.Input(image_shape, name="images")
    x = layers.ReLU()(_conv(images, dim, 7, name="conv0"))
    for i in range(n_downsample):
        dim = dim * 2 if i < 2 else dim
        x = layers.ReLU()(_conv(x, dim, 4, 2, name=f"down{i}"))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(
        images,
        layers.Dense(style_dim, kernel_initializer=kaiming_normal(), name="style")(x),
        name="style_encoder",
    )


def decoder(content_shape, style_dim, dim, n_upsample, n_res, mlp_dim, channels):
    """n_res residual blocks with AdaIN (scale and bias from an MLP of the
    style) → n_upsample × (nearest ×2 → conv5 halving the width → LayerNorm
    → ReLU) → conv7 → tanh, in [−1, 1].

    Args:
        content_shape: (h, w, c) of the content code.
        style_dim: size of the style code.
        dim: channels of the content code the decoder starts from.
        n_upsample: ×2 upsamplings.
        n_res: residual blocks with AdaIN.
        mlp_dim: width of the style MLP.
        channels: channels of the output images.

    Returns:
        A `keras.Model` from `[content, style]` to images in [−1, 1].

    Example:

    ```python
    import numpy as np
    from kerazoo.models.munit import decoder

    decode = decoder((4, 4, 8), style_dim=8, dim=8, n_upsample=1, n_res=1, mlp_dim=16, channels=1)
    images = decode([np.zeros((2, 4, 4, 8), "float32"), np.zeros((2, 8), "float32")])
    print(images.shape)  # (2, 8, 8, 1)
    ```

    References:
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
        - [Huang & Belongie, Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization, ICCV
          2017](https://arxiv.org/abs/1703.06868)
    """
    content = keras.Input(content_shape, name="content")
    style = keras.Input((style_dim,), name="style")
    # Kaiming like the convolutions, as MUNIT's weights_init: Keras' default
    # Glorot made the AdaIN parameters 15-35x too small at the start, and the
    # decoder learned to ignore the style.
    h = layers.Dense(mlp_dim, activation="relu", kernel_initializer=kaiming_normal(), name="mlp1")(style)
    h = layers.Dense(mlp_dim, activation="relu", kernel_initializer=kaiming_normal(), name="mlp2")(h)
    params = layers.Dense(n_res * 2 * 2 * dim, kernel_initializer=kaiming_normal(), name="adain_params")(h)
    x = content
    if content_shape[-1] != dim:  # the bottleneck's way back to the decoder's width
        x = _conv(x, dim, 1, name="unbottleneck")
    for i in range(n_res):
        block = [params[:, (4 * i + j) * dim : (4 * i + j + 2) * dim] for j in (0, 2)]
        y = layers.ReLU()(
            AdaptiveInstanceNorm(name=f"res{i}_adain1")(_conv(x, dim, 3, name=f"res{i}_conv1"), block[0])
        )
        y = AdaptiveInstanceNorm(name=f"res{i}_adain2")(_conv(y, dim, 3, name=f"res{i}_conv2"), block[1])
        x = layers.Add()([x, y])
    for i in range(n_upsample):
        dim //= 2
        x = layers.UpSampling2D(2, interpolation="nearest")(x)
        # MUNIT's LayerNorm: over (H, W, C) per sample, affine per channel,
        # its scale drawn from U(0, 1) (networks.py), the shift 0.
        scale = keras.initializers.RandomUniform(0.0, 1.0)
        norm = layers.GroupNormalization(groups=1, epsilon=1e-5, gamma_initializer=scale, name=f"ln_up{i}")
        x = norm(_conv(x, dim, 5, name=f"up{i}"))
        x = layers.ReLU()(x)
    images = layers.Activation("tanh")(_conv(x, channels, 7, name="to_image"))
    return keras.Model([content, style], images, name="decoder")


def discriminator(image_shape, dim, num_layers):
    """LSGAN patch discriminator: num_layers × (conv4/2 → LeakyReLU 0.2),
    doubling the width, then a 1×1 conv to one score per patch (MUNIT's
    MsImageDis at one scale, as GIT's configs).

    Args:
        image_shape: (H, W, C).
        dim: width of the first convolution.
        num_layers: stride-2 convolutions.

    Returns:
        A `keras.Model` from images to a map of patch scores.

    Example:

    ```python
    import numpy as np
    from kerazoo.models.munit import discriminator

    critic = discriminator((8, 8, 1), dim=4, num_layers=2)
    print(critic(np.zeros((2, 8, 8, 1), "float32")).shape)  # (2, 2, 2, 1)
    ```

    References:
        - [Mao et al., Least Squares Generative Adversarial Networks, ICCV
          2017](https://arxiv.org/abs/1611.04076)
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
    """
    images = keras.Input(image_shape, name="images")
    x = images
    for i in range(num_layers):
        x = layers.LeakyReLU(0.2)(_conv(x, dim * 2**i, 4, 2, name=f"conv{i}", init=_gaussian))
    return keras.Model(images, _conv(x, 1, 1, name="score", init=_gaussian), name="discriminator")


@keras.saving.register_keras_serializable(package="kerazoo")
class MUNITGenerator(keras.Model):
    """MUNIT's generator: content encoder, style encoder and AdaIN decoder.

    Images are float32 in [0, 1] outside and [−1, 1] inside (MUNIT's
    Normalize(0.5, 0.5) and tanh). Calling the generator *translates*: it
    keeps each image's content code, draws a style s ~ N(0, I) and decodes
    (GIT's baseline training code); `translate(images, styles)` takes given
    styles (e.g. `styles_of(other_images)`), `reconstruct` decodes an image
    with its own style.

    Args:
        image_shape: (H, W, C), H and W divisible by 2**n_downsample.
        dim: width of the first convolution (MUNIT: 64).
        style_dim: size of the style code (MUNIT/GIT: 8).
        n_downsample: stride-2 convs of the content encoder (MUNIT: 2); the
            style encoder uses 2 more, as MUNIT.
        n_res: residual blocks of the content encoder and the decoder (4).
        mlp_dim: width of the style MLP (256).
        content_channels: None, or the channels of a 1×1 bottleneck at the
            end of the content encoder (a narrower content code, so that
            the style code has to carry the nuisance).
        seed: seed of the style draws of `call`.

    Example:

    ```python
    import numpy as np
    from kerazoo.models import MUNITGenerator

    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    generator = MUNITGenerator((8, 8, 1), dim=4, n_downsample=1, n_res=1, mlp_dim=8, seed=0)
    translated = generator(images)  # one random style per image
    same = generator.reconstruct(images)  # each image with its own style
    swapped = generator.translate(images, generator.styles_of(images[::-1]))  # the other's style
    assert translated.shape == same.shape == swapped.shape == (2, 8, 8, 1)
    ```

    References:
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """

    def __init__(
        self,
        image_shape,
        dim=64,
        style_dim=8,
        n_downsample=2,
        n_res=4,
        mlp_dim=256,
        content_channels=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = tuple(image_shape)
        self.dim, self.style_dim, self.n_downsample = dim, style_dim, n_downsample
        self.n_res, self.mlp_dim, self.content_channels, self.seed = n_res, mlp_dim, content_channels, seed
        size = self.image_shape[0]
        if size % 2**n_downsample or self.image_shape[1] % 2**n_downsample:
            raise ValueError(f"Image size {self.image_shape[:2]} is not divisible by 2**{n_downsample}.")
        # MUNIT's style encoder halves the image 2 more times than the content
        # encoder, but not below 1x1 (the GAP makes the rest position-free).
        style_down = min(n_downsample + 2, int(np.log2(min(self.image_shape[:2]))))
        with dtype_policy_scope(self.dtype_policy):
            self.content_encoder = content_encoder(
                self.image_shape, dim, n_downsample, n_res, content_channels
            )
            self.style_encoder = style_encoder(self.image_shape, dim, style_down, style_dim)
            self.decoder = decoder(
                self.content_encoder.output_shape[1:],
                style_dim,
                dim * 2**n_downsample,
                n_downsample,
                n_res,
                mlp_dim,
                self.image_shape[-1],
            )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.build((None, *self.image_shape))

    def build(self, input_shape):
        # The parts are functional models, built when made.
        self.built = True

    def encode(self, images, training=False):
        """(content code, style code) of [0, 1] images."""
        x = _signed(images)
        return self.content_encoder(x, training=training), self.style_encoder(x, training=training)

    def decode(self, content, style, training=False):
        """[0, 1] images from content and style codes."""
        return (self.decoder([content, style], training=training) + 1.0) / 2.0

    def styles_of(self, images):
        """The (B, style_dim) style codes of [0, 1] images (MUNIT's
        example-guided translation decodes another image's content with them)."""
        return self.style_encoder(_signed(images))

    def translate(self, images, styles):
        """`images` decoded with their content and the given (B, style_dim) styles."""
        # The content code only: the images' own styles would be discarded.
        content = self.content_encoder(_signed(images))
        return self.decode(content, ops.convert_to_tensor(styles, "float32"))

    def reconstruct(self, images):
        """`images` decoded with their own content and style codes."""
        return self.decode(*self.encode(images))

    def call(self, images, training=False):
        styles = self.prior_styles(ops.shape(images)[0])
        content = self.content_encoder(_signed(images), training=training)
        return self.decode(content, styles, training=training)

    def prior_styles(self, rows, capacity=None, seed_generator=None):
        """`rows` styles from N(0, I), drawn in the graph from `seed_generator`
        (default the generator's own).

        Under a multi-replica strategy each replica takes its own rows of one
        draw for the global batch (`kerazoo.ops.replica_rows_of_draw`, with
        its `capacity`), not the same rows as every other replica.
        """
        seed_generator = seed_generator or self.seed_generator
        return replica_rows_of_draw(
            lambda n: keras.random.normal((n, self.style_dim), seed=seed_generator), rows, capacity
        )

    def random_styles(self, count, draw):
        """`count` styles from N(0, I), a NumPy draw seeded by `draw` (diagnostics)."""
        return np.random.default_rng(draw).standard_normal((count, self.style_dim)).astype("float32")

    def style_reconstruction_error(self, images, draw=0):
        """Mean |s − E_style(decode(content(x), s))| for random styles s.

        The style-reconstruction loss as a diagnostic: ≈ E|N(0, 1)| = 0.80
        when the decoder ignores the style (nothing to recover), near 0 when
        each style leaves a recoverable trace in the image.
        """
        styles = self.random_styles(len(images), draw)
        _, recovered = self.encode(self.translate(images, styles))
        return float(np.mean(np.abs(np.asarray(recovered) - styles)))

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "dim": self.dim,
            "style_dim": self.style_dim,
            "n_downsample": self.n_downsample,
            "n_res": self.n_res,
            "mlp_dim": self.mlp_dim,
            "content_channels": self.content_channels,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="kerazoo")
class MUNIT(TrainingModel):
    """MUNIT trained on a single domain (GIT's MUNIT training code): with
    `domains=2`, as the official code, two generators and two LSGAN
    discriminators; with `domains=1`, one of each at half the cost.

    GIT runs MUNIT's two-domain trainer unchanged with both domains set to
    the whole training set, drawn by two independent loaders: generator A
    decodes generator B's content codes with random styles and the reverse,
    each judged by its own discriminator; only generator A is used
    afterwards. `domains=1` is kerazoo's shortcut, not the official code:
    one generator decodes its own content codes (the two-domain trainer
    with both players tied and one loader).

    Each training step is the official code's two updates in its order
    (`trainer.dis_update` then `trainer.gen_update`), each
    with its own forward pass and its own freshly drawn styles. For a
    domain d with images x, generator G and discriminator D, whose
    translations decode the content code c' = E'(x') of the other domain's
    images x' with the other generator's encoder E' (with `domains=1`, x' = x
    and E' = G's own encoder):

    1. discriminator, with s_1 ~ N(0, I) and x_1 = G.decode(c', s_1):
           disc_adv = 1 · (mean(D(stop_gradient(x_1))²) + mean((D(x) − 1)²))
    2. generator, against the updated D, with c, s = G.encode(x),
       s_2 ~ N(0, I), x_2 = G.decode(c', s_2), c_2, s_22 = G.encode(x_2):
           image_recon   = 10 · L1(G.decode(c, s), x)
           style_recon   =  1 · L1(s_22, s_2)
           content_recon =  1 · L1(c_2, c')
           gen_adv       =  1 · mean((D(x_2) − 1)²)

    Each term is summed over the domains, as the official total
    (weights: GIT's configs; L1 = mean absolute error in MUNIT's [−1, 1]
    space). `compile(optimizer)` gives the discriminators a copy of the
    generators' optimizer (GIT: Adam 1e-4, β = (0.5, 0.999), weight decay
    1e-4 coupled as PyTorch's Adam: `kerazoo.optimizers.with_weight_decay`);
    the runner builds both, so both are checkpointed. `evaluate` reports
    both players' terms from one forward pass.
    Under a multi-replica strategy every term is a per-replica mean, divided
    by the replica count by `TrainingModel` (the global-batch mean).
    What ships is `generator` (`inference_model()`).

    Args:
        generator: a `MUNITGenerator` (domain A's, the one that ships).
        disc_dim: width of the discriminator's first convolution.
        disc_layers: stride-2 convolutions of the discriminator.
        image_weight, style_weight, content_weight, adversarial_weight: the
            weights of the terms above.
        domains: 2 (the official trainer: a second generator of
            `generator`'s configuration, `generator_b`, and a second
            discriminator; batches are pairs `(batch_a, batch_b)` of two
            independent loaders, each images or `(images, labels)`) or 1
            (one generator and one discriminator; batches are images or
            `(images, labels)`).
        seed: seed of the style draws.

    Example:

    ```python
    import numpy as np
    import keras
    import tensorflow as tf
    from kerazoo.models import MUNIT, MUNITGenerator

    images = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype("float32")
    generator = MUNITGenerator((8, 8, 1), dim=4, n_downsample=1, n_res=1, mlp_dim=8, seed=0)
    munit = MUNIT(generator, disc_dim=4, disc_layers=2, domains=2, seed=0)
    munit.compile(optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.999))
    loader = lambda seed: tf.data.Dataset.from_tensor_slices(images).shuffle(8, seed=seed).batch(4)
    munit.fit(tf.data.Dataset.zip(loader(1), loader(2)), epochs=1, verbose=0)
    translations = munit.generator(images)
    ```

    References:
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
        - [Mao et al., Least Squares Generative Adversarial Networks, ICCV
          2017](https://arxiv.org/abs/1611.04076)
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """

    loss_terms = ("image_recon", "style_recon", "content_recon", "gen_adv", "disc_adv")
    generator_terms = loss_terms[:4]

    def __init__(
        self,
        generator,
        disc_dim=64,
        disc_layers=4,
        image_weight=10.0,
        style_weight=1.0,
        content_weight=1.0,
        adversarial_weight=1.0,
        domains=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if domains not in (1, 2):
            raise ValueError(f"MUNIT domains={domains!r}: use 2 (the official trainer) or 1.")
        self.generator = generator
        self.disc_dim, self.disc_layers, self.domains, self.seed = disc_dim, disc_layers, domains, seed
        self.term_weights = dict(
            image=image_weight, style=style_weight, content=content_weight, adversarial=adversarial_weight
        )
        with dtype_policy_scope(self.dtype_policy):
            self.discriminator = discriminator(generator.image_shape, disc_dim, disc_layers)
            if domains == 2:
                config = {**generator.get_config(), "name": "generator_b"}
                self.generator_b = MUNITGenerator.from_config(config)
                self.discriminator_b = discriminator(generator.image_shape, disc_dim, disc_layers)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.build((None, *generator.image_shape))

    def build(self, input_shape):
        # The generators and the discriminators are built when made.
        self.built = True

    def call(self, images, training=False):
        return self.generator(images, training=training)

    def _players(self):
        """(generator, discriminator) per domain."""
        if self.domains == 1:
            return [(self.generator, self.discriminator)]
        return [(self.generator, self.discriminator), (self.generator_b, self.discriminator_b)]

    def _domain_images(self, data):
        """One batch of images per domain."""

        def images(batch):
            return batch[0] if isinstance(batch, (tuple, list)) else batch

        if self.domains == 1:
            return [images(data)]
        pair = [images(batch) for batch in data] if isinstance(data, (tuple, list)) else []
        if len(pair) != 2 or any(len(x.shape) != 4 for x in pair):
            raise ValueError(
                "MUNIT(domains=2) trains on pairs (batch_a, batch_b) from two loaders, each "
                "images or (images, labels), e.g. tf.data.Dataset.zip(loader_a, loader_b); "
                "got one batch."
            )
        return pair

    def _styles(self, images):
        return self.generator.prior_styles(ops.shape(images)[0], seed_generator=self.seed_generator)

    def _critic(self, discriminator, images, training):
        # MUNIT's discriminator and losses live in [−1, 1].
        return discriminator(_signed(images), training=training)

    def discriminator_losses(self, data, training):
        """`{"disc_adv": ...}` on translations with freshly drawn styles (`dis_update`)."""
        images = self._domain_images(data)
        players = self._players()
        contents = [g.encode(x, training=training)[0] for (g, _), x in zip(players, images)]
        loss = 0.0
        # Domain d's generator decodes the other domain's content codes.
        for d, ((g, critic), x) in enumerate(zip(players, images)):
            other = contents[-1 - d]
            fake = ops.stop_gradient(g.decode(other, self._styles(x), training=training))
            loss += lsgan_discriminator_loss(
                self._critic(critic, x, training), self._critic(critic, fake, training)
            )
        return {"disc_adv": self.term_weights["adversarial"] * loss}

    def generator_losses(self, data, training):
        """The generator's four terms with freshly drawn styles (`gen_update`)."""
        w, images, players = self.term_weights, self._domain_images(data), self._players()
        codes = [g.encode(x, training=training) for (g, _), x in zip(players, images)]
        terms = dict.fromkeys(self.generator_terms, 0.0)
        for d, ((g, critic), x) in enumerate(zip(players, images)):
            (content, style), other = codes[d], codes[-1 - d][0]
            styles = self._styles(x)
            fake = g.decode(other, styles, training=training)
            fake_content, fake_style = g.encode(fake, training=training)
            recon = g.decode(content, style, training=training)
            terms["image_recon"] += w["image"] * 2.0 * reconstruction_loss(recon, x)
            terms["style_recon"] += w["style"] * reconstruction_loss(fake_style, styles)
            terms["content_recon"] += w["content"] * reconstruction_loss(fake_content, other)
            terms["gen_adv"] += w["adversarial"] * lsgan_generator_loss(self._critic(critic, fake, training))
        return terms

    def compute_losses(self, data, training):
        return {
            **self.discriminator_losses(data, training),
            **self.generator_losses(data, training),
        }, None

    def train_step(self, data):
        disc, _ = self.optimize(lambda: (self.discriminator_losses(data, True), None), ("discriminator",))
        gen, _ = self.optimize(lambda: (self.generator_losses(data, True), None), ("generator",))
        return self._track({**gen, **disc}, data, None)

    def compile(self, optimizer="rmsprop", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.discriminator_optimizer = optimizers.copy(self.optimizer, f"discriminator_{self.optimizer.name}")

    def optimizer_groups(self):
        return [
            OptimizerGroup(
                "generator",
                self.optimizer,
                [v for g, _ in self._players() for v in g.trainable_variables],
                terms=self.generator_terms,
            ),
            OptimizerGroup(
                "discriminator",
                self.discriminator_optimizer,
                [v for _, d in self._players() for v in d.trainable_variables],
                terms=("disc_adv",),
            ),
        ]

    def inference_model(self):
        """What ships: the generator (the translator GIT uses)."""
        return self.generator

    def get_config(self):
        w = self.term_weights
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "disc_dim": self.disc_dim,
            "disc_layers": self.disc_layers,
            "image_weight": w["image"],
            "style_weight": w["style"],
            "content_weight": w["content"],
            "adversarial_weight": w["adversarial"],
            "domains": self.domains,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialized(config, "generator"))
