"""The offline `glyphs` builder: 28x28 renderings of the 47 EMNIST-balanced
character classes from the TrueType fonts that ship inside matplotlib.

Every example is a pure function of `(split, index)` (`render_example`), so
generation is deterministic whatever the order or the number of processes.
The fonts are checked against the sha256 recorded in `FONT_SHA256` before any
image is drawn: other fonts would silently give other data.
"""

import concurrent.futures
import contextlib
import functools
import gc
import hashlib
import multiprocessing
import os

import numpy as np
import tensorflow_datasets as tfds
from scipy import ndimage

# EMNIST-balanced: digits, upper case, and the lower-case letters whose shape
# differs from their capital (c, o, s, ... are merged into the upper case).
CLASSES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"
NUM_CLASSES = len(CLASSES)
IMAGE_SIZE = 28

# (file, erodible). Only the monoline bold sans faces may be eroded: their
# strokes are 9-12 px wide at the 64 px rendering. Serif, STIX and Computer
# Modern faces (bold ones too) have 2-3 px hairlines that erosion turns into
# faint ghosts once the glyph is shrunk (cmb10's W, seen).
SOURCE_FACES = (
    ("DejaVuSans.ttf", False),
    ("DejaVuSans-Bold.ttf", True),
    ("DejaVuSans-Oblique.ttf", False),
    ("DejaVuSans-BoldOblique.ttf", True),
    ("DejaVuSerif.ttf", False),
    ("DejaVuSerif-Bold.ttf", False),
    ("DejaVuSerif-Italic.ttf", False),
    ("DejaVuSerif-BoldItalic.ttf", False),
    ("STIXGeneral.ttf", False),
    ("STIXGeneralBol.ttf", False),
    ("STIXGeneralItalic.ttf", False),
    ("STIXGeneralBolIta.ttf", False),
)
HELD_OUT_FACES = (
    ("DejaVuSansMono.ttf", False),
    ("DejaVuSansMono-Bold.ttf", True),
    ("DejaVuSansMono-Oblique.ttf", False),
    ("DejaVuSansMono-BoldOblique.ttf", True),
    ("cmr10.ttf", False),
    ("cmss10.ttf", False),
    ("cmtt10.ttf", False),
    ("cmb10.ttf", False),
    ("cmti10.ttf", False),
)
FACES = SOURCE_FACES + HELD_OUT_FACES
FACE_NAMES = [file[: -len(".ttf")] for file, _ in FACES]

# class -> faces never used for it, because that class's glyph in the face
# is (near-)identical to another class's glyph in a face of the same split,
# which no classifier can tell apart. Measured by
# `benchmarks/glyphs_near_duplicates.py`: mean absolute pixel difference in
# [0, 1] of the two glyphs drawn as the builder draws them (ink box scaled to
# 16, 19 and 22 px, worst of the three; best over the stroke changes and
# over 1 px shifts). DejaVu Sans Mono's O is squeezed to digit width and is
# the plain oval of other faces' 0: O DejaVuSansMono vs 0 cmss10 0.011,
# 0 DejaVuSans 0.016, 0 cmr10 0.017; O DejaVuSansMono-Oblique vs 0
# DejaVuSans-Oblique 0.017; O DejaVuSansMono-BoldOblique vs 0
# DejaVuSerif-Italic 0.022 and O DejaVuSansMono-Bold vs 0 DejaVuSerif 0.024
# (same design, and the most O->0 errors of the 1.0.0 sanity convnet). Every
# other pair of different classes is >= 0.022 (I cmss10 vs J DejaVuSans,
# 1 vs I STIXGeneralItalic 0.023, E vs F DejaVuSerif-BoldItalic 0.028), and
# no other pair was confused more than 4 times in 9,400 renders.
EXCLUDED_FACES = {
    "O": (
        "DejaVuSansMono.ttf",
        "DejaVuSansMono-Bold.ttf",
        "DejaVuSansMono-Oblique.ttf",
        "DejaVuSansMono-BoldOblique.ttf",
    ),
}

# matplotlib 3.11.2's mpl-data/fonts/ttf. These fonts have not changed in
# years of matplotlib releases, but a change would change every image.
FONT_SHA256 = {
    "DejaVuSans.ttf": "3fdf69cabf06049ea70a00b5919340e2ce1e6d02b0cc3c4b44fb6801bd1e0d22",
    "DejaVuSans-Bold.ttf": "b184b89e3c1075f22f6b71575b6fc20d4972b3cfd3b23322ca6fd596dcaef167",
    "DejaVuSans-Oblique.ttf": "ccdf74b350f11fd3dd5774de50e5e6346a1a5da1f5b7d5fb83590665e97a5213",
    "DejaVuSans-BoldOblique.ttf": "6edf0283160186af451cbee71e7b845f2e4cabf264bb992ce668c83c25465e6f",
    "DejaVuSerif.ttf": "107244956e9962b9e96faccdc551825e0ae0898ae13737133e1b921a2fd35ffa",
    "DejaVuSerif-Bold.ttf": "c3753f2ed6bc673f15846dc45addbeb3b9c872f32fb18fd53a21f1bef1ed7676",
    "DejaVuSerif-Italic.ttf": "3e7994fbc54fa10ce3352a42d548fadd7d9cadb69cb1109bc9d960f6dac57f04",
    "DejaVuSerif-BoldItalic.ttf": "d93efec7a9d2e826768d1a2ee95b95870e15e29599a84f3484af1de1cec2e181",
    "STIXGeneral.ttf": "167378031e2dddc6216d67819c9260e9a06ffc4c478e4e23cb98a6fd44b183c2",
    "STIXGeneralBol.ttf": "e8533dc7083fa346bda1933d60ea4a83b67d0945bceaf1b3541f82b4a0e2c6a0",
    "STIXGeneralItalic.ttf": "6cfcb333d22b7c3c623bdfd40174f14c85c3d6731ca6166c1edc80140eae8527",
    "STIXGeneralBolIta.ttf": "98788fd4ba48dfbb2bd026c0e20a247a8b06c7372879628b7a6bb0d5bb09736c",
    "DejaVuSansMono.ttf": "602ec86b8948cfcd956482fe64f94c36c867770149ef2f791d4613f443bcecb3",
    "DejaVuSansMono-Bold.ttf": "baada9a5172fe20886251aff0433fc38461912d5daf07287e7bee56620a8da96",
    "DejaVuSansMono-Oblique.ttf": "28052813f7a709fc89f52d192dc995ef4f0fdc5c3d7b73a49d6849b1916d0cd0",
    "DejaVuSansMono-BoldOblique.ttf": "a69081c15c76c827e0a27a5a7f5c74b6135c843499955495ffa8c20d3a98288b",
    "cmr10.ttf": "4dd9761b058c009db9b2145f55ee6617d093c273dd3d6c5b3e43ff6110fa9bf6",
    "cmss10.ttf": "7df91a83d05b2e471ec638cb0b435a360a3c792b09fc42a7da67e91f2e79115a",
    "cmtt10.ttf": "6211f09ae93599991afda970c24669dad1a77e253d915624fbf212f702f071d7",
    "cmb10.ttf": "074497b50c43ea57597181591f9893d38fc12a87e95104f5657fc2481f61a23a",
    "cmti10.ttf": "f9f1f9f654308ae82f7be4441ae89b080896b34cc220bbea173c5e9adcfe3ef7",
}
FONTS_MATPLOTLIB_VERSION = "3.11.2"

# split -> (images per class, faces it draws from, code in the example seed).
SPLITS = {
    "train": (500, FACES, 0),
    "test": (50, FACES, 1),
    "fonts_train": (500, SOURCE_FACES, 2),
    "fonts_test": (500, HELD_OUT_FACES, 3),
}
SEED = 47

# Glyphs are drawn at this size and shrunk to the 16-22 px box, so that
# affine maps and stroke changes act on a smooth outline and every face ends
# at the same size whatever its metrics.
_RENDER_SIZE = 64
_CANVAS = 2 * _RENDER_SIZE


class GlyphFontsMismatchError(RuntimeError):
    """The fonts on this machine are not the ones `glyphs` was made from.

    Example:

    ```python
    import tempfile
    from kerazoo.data.glyphs import GlyphFontsMismatchError, check_fonts

    try:
        check_fonts(tempfile.mkdtemp())  # a folder without the fonts
    except GlyphFontsMismatchError as error:
        print(error)
    ```
    """


def font_dir():
    """Where the fonts are read: `$KERAZOO_GLYPHS_FONT_DIR`, else matplotlib's
    bundled `mpl-data/fonts/ttf`.

    Example:

    ```python
    from kerazoo.data.glyphs import font_dir

    print(font_dir())
    ```
    """
    if os.environ.get("KERAZOO_GLYPHS_FONT_DIR"):
        return os.environ["KERAZOO_GLYPHS_FONT_DIR"]
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


def check_fonts(directory=None):
    """Raise `GlyphFontsMismatchError` unless every font file of `FACES` in
    `directory` (default `font_dir()`) has the sha256 of `FONT_SHA256`.

    Args:
        directory: the fonts' folder (default `font_dir()`).

    Example:

    ```python
    from kerazoo.data.glyphs import check_fonts

    check_fonts()  # silent: this machine's fonts are the ones glyphs was made from
    ```
    """
    directory = directory or font_dir()
    for file, _ in FACES:
        path = os.path.join(directory, file)
        try:
            with open(path, "rb") as f:
                found = hashlib.sha256(f.read()).hexdigest()
        except FileNotFoundError:
            found = None
        if found != FONT_SHA256[file]:
            what = "is missing" if found is None else f"has sha256 {found}"
            raise GlyphFontsMismatchError(
                f"Font file {path} {what}; glyphs {Glyphs.VERSION} was made with "
                f"sha256 {FONT_SHA256[file]} (the font of matplotlib "
                f"{FONTS_MATPLOTLIB_VERSION}), so the images made here would differ. "
                f"Either install matplotlib=={FONTS_MATPLOTLIB_VERSION}, or set "
                "KERAZOO_GLYPHS_FONT_DIR to a directory holding the expected font "
                "files, or copy a prepared glyphs dataset (DATA_DIR/glyphs/) from a "
                "machine that has them."
            )


@functools.lru_cache(maxsize=4)
def _fonts(directory):
    """The checked faces of `directory` at the rendering size (once per process)."""
    from PIL import ImageFont

    check_fonts(directory)
    return {file: ImageFont.truetype(os.path.join(directory, file), _RENDER_SIZE) for file, _ in FACES}


def _ink_box(image):
    """(top, bottom, left, right) of the non-zero pixels, bottom/right exclusive."""
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _affine(glyph, degrees, shear):
    """`glyph` (a PIL "L" image) rotated by `degrees` and sheared
    horizontally by `shear`, about its centre, on a canvas holding all of it."""
    from PIL import Image

    theta = np.deg2rad(degrees)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    forward = rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    w, h = glyph.size
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) - [w / 2, h / 2]
    moved = corners @ forward.T
    out_w, out_h = (np.ceil(moved.max(0) - moved.min(0)).astype(int) + 2).tolist()
    # PIL maps every output pixel back to the input: x_in = inverse (x_out - c_out) + c_in.
    inverse = np.linalg.inv(forward)
    offset = np.array([w / 2, h / 2]) - inverse @ np.array([out_w / 2, out_h / 2])
    data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    return glyph.transform((out_w, out_h), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)


def faces_for(split, label):
    """The faces `split` draws class `label` from: the split's faces less
    `EXCLUDED_FACES` of that class.

    Args:
        split: a split of `glyphs`.
        label: a class id.

    Example:

    ```python
    from kerazoo.data.glyphs import faces_for

    print(len(faces_for("fonts_test", 0)))
    ```
    """
    excluded = EXCLUDED_FACES.get(CLASSES[label], ())
    return tuple(face for face in SPLITS[split][1] if face[0] not in excluded)


def _face_for(split, label, rng):
    # One draw whatever the class: classes without exclusions get the
    # faces (and images) of 1.0.0.
    faces = faces_for(split, label)
    return faces[rng.integers(len(faces))]


def render_example(split, index, directory=None):
    """Example `index` of `split`, drawn from its own seeded generator.

    Returns:
        (image, label, face): uint8 (28, 28, 1) with a background of exactly
        0; the class id (`index % 47`, so any 47 consecutive indices hold
        every class once); the font file it was drawn with.

    Args:
        split: a split of `glyphs` (e.g. `"fonts_test"`).
        index: the example's index in the split.
        directory: the fonts' folder (default `font_dir()`).

    Example:

    ```python
    from kerazoo.data.glyphs import render_example

    image, label, face = render_example("fonts_test", 47)
    print(image.shape, label, face)  # (28, 28, 1) 0 ...
    ```
    """
    from PIL import Image, ImageDraw, ImageFilter

    if split not in SPLITS:
        raise ValueError(f"Unknown glyphs split '{split}'; choose one of {sorted(SPLITS)}.")
    rng = np.random.default_rng([SEED, SPLITS[split][2], index])
    label = index % NUM_CLASSES
    file, erodible = _face_for(split, label, rng)
    font = _fonts(directory or font_dir())[file]

    canvas = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(canvas).text(
        (_CANVAS // 2, _CANVAS // 2), CLASSES[label], fill=255, font=font, anchor="mm"
    )
    # Stroke width: -1 erodes, +1/+2 dilate by that many pixels at 64 px.
    width = rng.choice([-1, 0, 0, 1]) if erodible else rng.choice([0, 1, 1, 2])
    if width > 0:
        canvas = canvas.filter(ImageFilter.MaxFilter(2 * width + 1))
    elif width < 0:
        canvas = canvas.filter(ImageFilter.MinFilter(3))
    top, bottom, left, right = _ink_box(np.asarray(canvas))
    glyph = canvas.crop((left, top, right, bottom))
    glyph = _affine(glyph, rng.uniform(-12.0, 12.0), rng.uniform(-0.25, 0.25))
    top, bottom, left, right = _ink_box(np.asarray(glyph))
    glyph = glyph.crop((left, top, right, bottom))

    # The ink box, not the font size, sets the size: Computer Modern and
    # STIX draw smaller than DejaVu at the same point size.
    box = rng.uniform(16.0, 22.0)
    scale = box / max(glyph.size)
    new_w, new_h = (max(1, int(round(s * scale))) for s in glyph.size)
    small = np.asarray(glyph.resize((new_w, new_h), Image.Resampling.BILINEAR), np.float64)
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    dx, dy = rng.integers(-2, 3, size=2)
    x0 = (IMAGE_SIZE - new_w) // 2 + dx
    y0 = (IMAGE_SIZE - new_h) // 2 + dy
    image[y0 : y0 + new_h, x0 : x0 + new_w] = small

    # Mild elastic distortion: a smooth random displacement of at most ~1 px.
    alpha = rng.uniform(0.0, 1.5)
    field = rng.uniform(-1.0, 1.0, size=(2, IMAGE_SIZE, IMAGE_SIZE))
    field = np.stack([ndimage.gaussian_filter(f, 4.0, mode="constant") for f in field])
    field *= alpha / max(np.abs(field).max(), 1e-12)
    grid = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE].astype(np.float64)
    image = ndimage.map_coordinates(image, grid + field, order=1, mode="constant", cval=0.0)

    # Blur and noise stay on and around the strokes: the background must
    # stay exactly 0 (the `bg` nuisance replaces exactly-zero pixels).
    mask = ndimage.binary_dilation(image > 0.5, structure=np.ones((3, 3), bool))
    image = ndimage.gaussian_filter(image, rng.uniform(0.0, 0.7))
    image *= 255.0 / max(image.max(), 1e-12)
    image += rng.normal(0.0, rng.uniform(0.0, 20.0), size=image.shape)
    image = np.where(mask, np.clip(np.round(image), 0, 255), 0).astype(np.uint8)
    return image[..., None], label, file


def _render_range(args):
    split, start, stop, directory = args
    return [(i, *render_example(split, i, directory)) for i in range(start, stop)]


class Glyphs(tfds.core.GeneratorBasedBuilder):
    """Characters rendered from matplotlib's bundled fonts, as a tfds dataset.

    28x28x1 uint8 images, bright strokes on a background of exactly 0 (as
    MNIST and K49), 47 classes: the EMNIST-balanced set `CLASSES`, digits,
    then upper case, then a b d e f g h n q r t (class names are the
    characters). Features: `image`, `label`, and `font` (the face's file name
    without `.ttf`); `as_supervised` gives `(image, label)`.

    Faces (21, all holding every character, checked by rendering):
    - source faces: DejaVu Sans and DejaVu Serif (regular, bold, oblique or
      italic, bold oblique or bold italic), STIXGeneral (4 styles);
    - held-out faces: DejaVu Sans Mono (4 styles), Computer Modern cmr10,
      cmss10, cmtt10, cmb10, cmti10.
    Class O is never drawn from DejaVu Sans Mono (`EXCLUDED_FACES`): its O
    is the same glyph as other faces' 0 once scaled. In `fonts_test` class O
    comes from the 5 Computer Modern faces.

    Splits (class `index % 47`, so every split is exactly balanced):
    - `train`: 500 images per class (23,500), i.i.d. over all 21 faces;
    - `test`: 50 per class (2,350), i.i.d. over all 21 faces;
    - `fonts_train`: 500 per class (23,500) from the source faces only;
    - `fonts_test`: 500 per class (23,500) from the held-out faces only, so
      that a domain-adaptation protocol can draw both unlabelled target
      training images and a disjoint target test set from it (a sans/serif
      proportional source against monospaced and Computer Modern targets).

    Each image: a face drawn uniformly from the split's faces allowed for
    its class (`faces_for`); the character
    rendered at 64 px; stroke width changed by a max/min filter (-1 px for
    the bold sans faces only, up to +2 px); rotation U(-12, 12) degrees and
    horizontal shear U(-0.25, 0.25); the ink box scaled (aspect kept) so its
    longer side is U(16, 22) px, centred with a +-2 px jitter; a mild elastic
    distortion (<= 1.5 px); Gaussian blur sigma U(0, 0.7); contrast stretched
    to 255; Gaussian noise sigma U(0, 20) on the strokes and one pixel around
    them; every other pixel exactly 0. Example `index` of a split depends only
    on (split, index) (`render_example`), and generation uses 2 processes.

    The fonts are read from matplotlib (or `$KERAZOO_GLYPHS_FONT_DIR`) and
    must match `FONT_SHA256`, else `GlyphFontsMismatchError` says which file
    differs and what to do. Pillow's FreeType rasteriser is not pinned: a
    very different FreeType could shift edge pixels slightly.

    Example:

    ```python
    from kerazoo.data.glyphs import render_example

    # One example of the builder's test split, drawn as the builder draws it
    # (`tfds.load("glyphs", split="fonts_test")` prepares the whole dataset).
    image, label, face = render_example("fonts_test", 0)
    print(image.shape, image.dtype, label, face)  # (28, 28, 1) uint8 0 ...
    ```
    """

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "47 EMNIST-balanced classes, 21 matplotlib faces, seed 47.",
        "1.1.0": (
            "Class O is no longer drawn from the 4 DejaVu Sans Mono faces "
            "(EXCLUDED_FACES): their O is the same glyph as the 0 of DejaVu Sans, "
            "cmss10 and cmr10 (mean absolute pixel difference 0.011-0.024 after "
            "box scaling), the O<->0 confusions of the sanity convnet. The face of "
            "every O example is drawn again from the allowed ones, so many O "
            "images differ from 1.0.0 (in fonts_test O comes from Computer "
            "Modern only); every other example is unchanged."
        ),
    }
    PROCESSES = 2
    CHUNK = 500

    def _info(self):
        return self.dataset_info_from_configs(
            description=(
                "28x28 renderings of the 47 EMNIST-balanced characters from the "
                "fonts bundled with matplotlib; held-out-font splits for domain shift."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
                    "label": tfds.features.ClassLabel(names=list(CLASSES)),
                    "font": tfds.features.ClassLabel(names=FACE_NAMES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://matplotlib.org",
        )

    def _split_generators(self, dl_manager):
        directory = font_dir()
        check_fonts(directory)  # before anything is written
        return {split: self._generate_examples(split, directory) for split in SPLITS}

    def _generate_examples(self, split, directory):
        total = SPLITS[split][0] * NUM_CLASSES
        chunks = [
            (split, start, min(start + self.CHUNK, total), directory) for start in range(0, total, self.CHUNK)
        ]
        # Workers only draw (PIL, NumPy, SciPy); examples depend on their
        # index alone, so the process count never changes the data.
        context = multiprocessing.get_context(_START_METHOD)
        with concurrent.futures.ProcessPoolExecutor(self.PROCESSES, mp_context=context) as pool:
            with _fork_with_parent_heap_frozen():
                results = pool.map(_render_range, chunks)  # forks every worker now
            try:
                for rows in results:
                    for index, image, label, file in rows:
                        yield (
                            index,
                            {
                                "image": image,
                                "label": label,
                                "font": file[: -len(".ttf")],
                            },
                        )
            except concurrent.futures.process.BrokenProcessPool as error:
                raise RuntimeError(
                    "A process drawing the glyphs dataset died (killed, or out of memory?); "
                    "run the command again: the build starts over."
                ) from error


# fork starts workers in milliseconds; spawn (where fork is missing) would
# re-import TensorFlow in each of them.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


@contextlib.contextmanager
def _fork_with_parent_heap_frozen():
    """Fork inside this block: the workers never collect the parent's objects.

    A forked worker inherits the parent's heap, garbage not yet collected
    included. When a collection in the worker freed a TensorFlow object (a
    traced function, whose `__del__` calls into the runtime, which does not
    survive a fork), the worker crashed with a segfault, and
    `multiprocessing.Pool` then waited forever for its results (seen in a
    test run). So: collect here, where TensorFlow is whole, and freeze the
    rest out of every later collection in the workers (`gc.freeze`).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
