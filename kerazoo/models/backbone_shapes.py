"""A backbone's image and feature shapes, which kerazoo's models read to
size their heads, build themselves and export: known for a functional
`keras.Model` (what `kerazoo.backbones.get` gives), not for a subclassed one."""


def _shape(backbone, attribute):
    try:
        return tuple(getattr(backbone, attribute))
    except (AttributeError, ValueError):
        # A subclassed keras.Model has no input_shape even once called;
        # an unbuilt Sequential raises ValueError.
        raise ValueError(
            f"The backbone {backbone.name!r} ({type(backbone).__name__}) has no known {attribute}, "
            "which kerazoo's models read (to size the head, build the model and export it): pass a "
            "functional keras.Model from keras.Input to (B, D) features, as kerazoo.backbones.get "
            "gives. Wrap any other model: inputs = keras.Input((H, W, C)); "
            "backbone = keras.Model(inputs, model(inputs))."
        ) from None


def image_shape(backbone):
    """(H, W, C) of the images `backbone` takes.

    Args:
        backbone: a functional `keras.Model` from images to (B, D) features.

    Returns:
        A tuple; a `ValueError` that says how to wrap the backbone if its
        input shape is unknown (a subclassed `keras.Model`).

    Example:

    ```python
    import kerazoo
    from kerazoo.models.backbone_shapes import image_shape

    print(image_shape(kerazoo.backbones.get("convnet", input_shape=(8, 8, 1))))  # (8, 8, 1)
    ```
    """
    return _shape(backbone, "input_shape")[1:]


def feature_size(backbone):
    """The size D of `backbone`'s feature vector, which a new
    PyTorch-initialised head needs (`nn.Linear`'s ranges depend on its input size).

    Args:
        backbone: a functional `keras.Model` from images to (B, D) features.

    Returns:
        D, an int; a `ValueError` that says how to wrap the backbone if its
        output shape is unknown (a subclassed `keras.Model`).

    Example:

    ```python
    import kerazoo
    from kerazoo.models.backbone_shapes import feature_size

    print(feature_size(kerazoo.backbones.get("convnet", width=16)))  # 16
    ```
    """
    return int(_shape(backbone, "output_shape")[-1])
