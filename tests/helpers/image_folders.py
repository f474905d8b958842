"""Tiny generated image-folder trees: root/<domain or split>/<class>/<i>.png, or root/<class>/<i>.png."""

import numpy as np
import tensorflow as tf


def write_image_folders(
    root, domains=("amazon", "webcam"), classes=("bike", "cup", "pen"), per_class=3, size=None, channels=3
):
    """root/<domain>/<class>/<i>.png (no domains: root/<class>/<i>.png): each
    class its own grey level (`class_level`), `channels` 1 or 3, `size` x `size` pixels (None:
    varied sizes, 20 to 29 pixels a side)."""
    rng = np.random.default_rng(0)
    for domain in domains or [""]:
        for c, name in enumerate(classes):
            folder = root / domain / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                shape = (size, size) if size else (int(rng.integers(20, 30)), int(rng.integers(20, 30)))
                image = np.full((*shape, channels), class_level(c), np.uint8)
                write_png(folder / f"{i}.png", image)
    return root


def class_level(c):
    """The grey level of class c's images: 60, 120, 180, 240, then on modulo 251 (all distinct)."""
    return 60 * (c + 1) % 251


def write_png(path, image):
    """Write a uint8 (H, W, C) array as a PNG file."""
    path.write_bytes(tf.io.encode_png(image).numpy())
