"""The losses of MUNIT-style image translation (Huang et al., ECCV 2018):
L1 reconstruction and the least-squares GAN (Mao et al., ICCV 2017).

Each computes in float32, whatever its inputs' dtype: under a mixed
precision policy the images and scores arrive in float16 or bfloat16."""

from keras import ops


def _float32(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def reconstruction_loss(reconstructed, target):
    """Mean absolute difference, MUNIT's `recon_criterion` (`torch.mean(torch.abs(input − target))`).

    Args:
        reconstructed: a tensor.
        target: a tensor of the same shape.

    Returns:
        the scalar mean of |reconstructed − target|.

    Example:

    ```python
    from kerazoo.losses import reconstruction_loss

    print(float(reconstruction_loss([[0.0, 1.0]], [[0.5, 1.0]])))  # 0.25
    ```

    References:
        - [Huang et al., Multimodal Unsupervised Image-to-Image
          Translation, ECCV 2018](https://arxiv.org/abs/1804.04732)
    """
    reconstructed, target = _float32(reconstructed), _float32(target)
    if len(reconstructed.shape) != len(target.shape) or any(
        a is not None and b is not None and a != b for a, b in zip(reconstructed.shape, target.shape)
    ):
        raise ValueError(
            f"reconstruction_loss: shapes {reconstructed.shape} and {target.shape} differ; the "
            "reconstruction and its target must have the same shape (no broadcasting)."
        )
    return ops.mean(ops.abs(reconstructed - target))


def lsgan_discriminator_loss(real_scores, fake_scores):
    """Least-squares GAN loss of the discriminator: mean(D(fake)²) + mean((D(real) − 1)²).

    MUNIT's `calc_dis_loss` with `gan_type: lsgan` (one scale).

    Args:
        real_scores: the discriminator's outputs on real images.
        fake_scores: its outputs on generated images (gradient stopped
            towards the generator by the caller).

    Returns:
        the scalar loss.

    Example:

    ```python
    from kerazoo.losses import lsgan_discriminator_loss

    print(float(lsgan_discriminator_loss([1.0, 1.0], [0.0, 0.0])))  # 0: a perfect critic
    ```

    References:
        - [Mao et al., Least Squares Generative Adversarial Networks,
          ICCV 2017](https://arxiv.org/abs/1611.04076)
        - [Huang et al., Multimodal Unsupervised Image-to-Image
          Translation, ECCV 2018](https://arxiv.org/abs/1804.04732)
    """
    real, fake = _float32(real_scores), _float32(fake_scores)
    return ops.mean(fake**2) + ops.mean((real - 1.0) ** 2)


def lsgan_generator_loss(fake_scores):
    """Least-squares GAN loss of the generator: mean((D(fake) − 1)²) (MUNIT's `calc_gen_loss`).

    Args:
        fake_scores: the discriminator's outputs on generated images.

    Returns:
        the scalar loss.

    Example:

    ```python
    from kerazoo.losses import lsgan_generator_loss

    print(float(lsgan_generator_loss([1.0, 1.0])))  # 0: the critic is fooled
    ```

    References:
        - [Mao et al., Least Squares Generative Adversarial Networks,
          ICCV 2017](https://arxiv.org/abs/1611.04076)
    """
    return ops.mean((_float32(fake_scores) - 1.0) ** 2)
