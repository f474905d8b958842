"""A tiny generated image-folder tree (root/<domain>/<class>/<i>.png)."""

import numpy as np
import tensorflow as tf


def write_image_folders(root, domains=("amazon", "webcam"), classes=("bike", "cup", "pen"), per_class=3):
    """root/<domain>/<class>/<i>.png: RGB images of varied sizes, each class its own grey level."""
    rng = np.random.default_rng(0)
    for domain in domains:
        for c, name in enumerate(classes):
            folder = root / domain / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                shape = (int(rng.integers(20, 30)), int(rng.integers(20, 30)), 3)
                image = np.full(shape, 60 * (c + 1), np.uint8)
                (folder / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    return root
