"""Near-duplicate glyphs across classes: every (class, face) of `glyphs`
rendered without affine map, distortion, blur or noise,
its ink box scaled as the builder scales it (longer side `box` px, aspect
kept, centred in 28x28), intensities in [0, 1]; the distance of two glyphs
is their mean absolute pixel difference over the 28x28 image, minimised
over the builder's stroke changes of each face and over shifts of at most
1 px; a pair's distance is the largest of that over the boxes 16, 19 and
22 px (the builder draws the box from U(16, 22)).

    python -m benchmarks.glyphs_near_duplicates [--top 40]

Prints, and writes to benchmarks/results/glyphs_near_duplicates.json, the
closest pairs of glyphs of different classes, over all faces (the `train`
and `test` splits draw from all of them).
"""

import argparse
import json
import os

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
BOXES = (16.0, 19.0, 22.0)


def clean_glyph(char, file, box, width=0, directory=None):
    """`char` in face `file` drawn at the builder's 64 px, stroke changed by
    `width` px as the builder does, ink box scaled to `box` px on its longer
    side, centred in 28x28; float64 in [0, 1]."""
    from PIL import Image, ImageDraw, ImageFilter

    from kerazoo.data import glyphs

    font = glyphs._fonts(directory or glyphs.font_dir())[file]
    canvas = Image.new("L", (glyphs._CANVAS, glyphs._CANVAS), 0)
    ImageDraw.Draw(canvas).text(
        (glyphs._CANVAS // 2, glyphs._CANVAS // 2), char, fill=255, font=font, anchor="mm"
    )
    if width > 0:
        canvas = canvas.filter(ImageFilter.MaxFilter(2 * width + 1))
    elif width < 0:
        canvas = canvas.filter(ImageFilter.MinFilter(3))
    top, bottom, left, right = glyphs._ink_box(np.asarray(canvas))
    glyph = canvas.crop((left, top, right, bottom))
    scale = box / max(glyph.size)
    new_w, new_h = (max(1, int(round(s * scale))) for s in glyph.size)
    small = np.asarray(glyph.resize((new_w, new_h), Image.Resampling.BILINEAR), np.float64)
    image = np.zeros((glyphs.IMAGE_SIZE, glyphs.IMAGE_SIZE))
    x0 = (glyphs.IMAGE_SIZE - new_w) // 2
    y0 = (glyphs.IMAGE_SIZE - new_h) // 2
    image[y0 : y0 + new_h, x0 : x0 + new_w] = small
    return image / max(image.max(), 1e-12)


def widths(erodible):
    """The builder's stroke changes for a face (see `render_example`)."""
    return (-1, 0, 1) if erodible else (0, 1, 2)


SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def distances(directory=None):
    """(keys, D): keys are (class, face file) pairs; D[i, j] is, at the
    worst of `BOXES`, the best match of glyphs i and j over the stroke
    changes the builder applies to each face and over shifts of at most one
    pixel (the builder jitters the position by up to 2 px anyway): two
    glyphs are close only if some of their renderings nearly coincide at
    every size."""
    from scipy.spatial.distance import cdist

    from kerazoo.data import glyphs

    keys = [(c, file) for c in glyphs.CLASSES for file, _ in glyphs.FACES]
    variants = [(k, w) for k, (c, file) in enumerate(keys) for w in widths(dict(glyphs.FACES)[file])]
    d = None
    for box in BOXES:
        images = np.stack(
            [clean_glyph(keys[k][0], keys[k][1], box, w, directory) for k, w in variants]
        ).astype(np.float32)
        flat = images.reshape(len(images), -1)
        here = np.full((len(flat), len(flat)), np.inf, np.float32)
        for dy, dx in SHIFTS:
            moved = np.roll(images, (dy, dx), axis=(1, 2)).reshape(len(images), -1)
            np.minimum(here, cdist(flat, moved, "cityblock").astype(np.float32), out=here)
        here = np.minimum(here, here.T) / flat.shape[1]
        # Best over the stroke variants of each glyph.
        n = len(widths(True))
        per_key = here.reshape(len(keys), n, len(keys), n).min(axis=(1, 3))
        d = per_key if d is None else np.maximum(d, per_key)
    return keys, d


def closest_pairs(keys, d, top):
    labels = np.array([c for c, _ in keys])
    i, j = np.triu_indices(len(keys), 1)
    keep = labels[i] != labels[j]
    i, j = i[keep], j[keep]
    order = np.argsort(d[i, j], kind="stable")[:top]
    return [
        {
            "a": f"{keys[i[k]][0]} {keys[i[k]][1][:-4]}",
            "b": f"{keys[j[k]][0]} {keys[j[k]][1][:-4]}",
            "mad": round(float(d[i[k], j[k]]), 4),
        }
        for k in order
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    from kerazoo.data import glyphs

    keys, d = distances()
    pairs = closest_pairs(keys, d, args.top)
    # The closest glyph of another class, per class pair (best over faces).
    labels = np.array([c for c, _ in keys])
    by_class = {}
    for a in glyphs.CLASSES:
        for b in glyphs.CLASSES:
            if a < b:
                sub = d[np.ix_(labels == a, labels == b)]
                by_class[f"{a}/{b}"] = float(sub.min())
    class_pairs = sorted(by_class.items(), key=lambda kv: kv[1])[:20]
    result = {
        "measure": "mean |a - b| over 28x28 in [0,1], clean glyph, ink box scaled; max over boxes "
        + str(BOXES),
        "closest_glyph_pairs": pairs,
        "closest_class_pairs": [{"pair": p, "mad": round(v, 4)} for p, v in class_pairs],
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "glyphs_near_duplicates.json"), "w") as f:
        json.dump(result, f, indent=2)
    for p in pairs:
        print(f"{p['mad']:.4f}  {p['a']:32s} {p['b']}")
    print()
    for p, v in class_pairs:
        print(f"{v:.4f}  {p}")


if __name__ == "__main__":
    main()
