import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from scipy import ndimage

from helpers.glyphs import SMALL_GLYPHS
from kerazoo.data import (
    glyphs,
    load_arrays,
    make_domain_shift,
    make_protocol,
    parse_protocol_name,
)
from kerazoo.data.glyphs import GlyphFontsMismatchError, render_example
from kerazoo.data.longtail import exponential_class_sizes
from kerazoo.data.transforms import apply_nuisance

# Per class in the session's shared `small_glyphs` build (tests/conftest.py):
# every split cut down, so these tests check the builder, the protocols and
# the domain shift on the sizes the build was asked for; the documented full
# sizes are checked on glyphs.SPLITS (test_splits_sizes_and_faces_are_as_documented).
_SMALL_FONT_SPLITS = SMALL_GLYPHS["fonts_train"]


def _faces_of(split, count):
    return {render_example(split, i)[2] for i in range(count)}


def test_splits_sizes_and_faces_are_as_documented():
    assert len(glyphs.CLASSES) == 47 and len(set(glyphs.CLASSES)) == 47
    assert {s: n for s, (n, _, _) in glyphs.SPLITS.items()} == {
        "train": 500,
        "test": 50,
        "fonts_train": 500,
        "fonts_test": 500,
    }
    source = {f for f, _ in glyphs.SOURCE_FACES}
    held_out = {f for f, _ in glyphs.HELD_OUT_FACES}
    assert not source & held_out and set(glyphs.FONT_SHA256) == source | held_out
    assert all(f.startswith(("DejaVuSans", "DejaVuSerif", "STIX")) for f in source)
    assert not any(f.startswith("DejaVuSansMono") for f in source)
    assert _faces_of("fonts_train", 200) == source
    assert _faces_of("fonts_test", 200) == held_out


def test_class_o_is_never_drawn_from_dejavu_sans_mono(small_glyphs):
    # DejaVu Sans Mono's O is other faces' 0 once box-scaled (1.0.0's O<->0).
    o = glyphs.CLASSES.index("O")
    mono = {f for f, _ in glyphs.FACES if f.startswith("DejaVuSansMono")}
    assert set(glyphs.EXCLUDED_FACES["O"]) == mono
    for split, (per_class, faces, _) in glyphs.SPLITS.items():
        allowed = {f for f, _ in faces} - mono
        drawn = {render_example(split, o + 47 * k)[2] for k in range(min(per_class, 120))}
        assert drawn == allowed, split  # every allowed face, and only those
    assert glyphs.faces_for("fonts_test", o) == tuple(
        face for face in glyphs.HELD_OUT_FACES if face[0].startswith("cm")
    )
    # The prepared splits, every O example.
    for split in glyphs.SPLITS:
        ds = tfds.load("glyphs", split=split, data_dir=small_glyphs)
        ds = ds.filter(lambda example: example["label"] == o)
        fonts = {f"{glyphs.FACE_NAMES[f]}.ttf" for f in ds.map(lambda e: e["font"]).as_numpy_iterator()}
        assert fonts and not fonts & mono, split


def test_an_example_depends_only_on_split_and_index():
    first = [render_example("train", i) for i in (5, 900, 23499)]
    render_example("test", 5)
    again = [render_example("train", i) for i in (23499, 900, 5)][::-1]
    for (a, la, fa), (b, lb, fb) in zip(first, again):
        assert a.tobytes() == b.tobytes() and la == lb and fa == fb
    assert [label for _, label, _ in first] == [5, 900 % 47, 23499 % 47]
    assert render_example("train", 5)[0].tobytes() != render_example("test", 5)[0].tobytes()


def test_background_is_exactly_zero_and_strokes_are_bright():
    for split in glyphs.SPLITS:
        images = np.stack([render_example(split, i)[0] for i in range(94)])
        assert images.shape == (94, 28, 28, 1) and images.dtype == np.uint8
        zeros = (images == 0).mean(axis=(1, 2, 3))
        assert zeros.min() > 0.3 and np.median(zeros) > 0.5
        assert (images.max(axis=(1, 2, 3)) >= 200).all()
        # Noise and blur stay near the strokes: every other pixel is exactly 0.
        for image in images[..., 0]:
            near = ndimage.binary_dilation(image >= 48, np.ones((7, 7), bool))
            assert not image[~near].any()


def test_changed_or_missing_font_is_refused(tmp_path, monkeypatch):
    fonts = tmp_path / "fonts"
    shutil.copytree(glyphs.font_dir(), fonts)
    glyphs.check_fonts(str(fonts))  # an identical copy is fine
    with open(fonts / "cmr10.ttf", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(GlyphFontsMismatchError, match="cmr10.ttf has sha256") as error:
        glyphs.check_fonts(str(fonts))
    assert "KERAZOO_GLYPHS_FONT_DIR" in str(error.value)
    with pytest.raises(GlyphFontsMismatchError, match="cmr10.ttf"):
        render_example("train", 0, str(fonts))
    os.remove(fonts / "DejaVuSans.ttf")
    with pytest.raises(GlyphFontsMismatchError, match="DejaVuSans.ttf is missing"):
        glyphs.check_fonts(str(fonts))
    # The builder checks before it writes anything.
    monkeypatch.setenv("KERAZOO_GLYPHS_FONT_DIR", str(fonts))
    data_dir = tmp_path / "tfds"
    with pytest.raises(GlyphFontsMismatchError):
        tfds.builder("glyphs", data_dir=str(data_dir)).download_and_prepare()
    assert not list(data_dir.glob("glyphs/*/*.tfrecord*"))


# A build of a few images per class, in a fresh interpreter: the worker
# (module-level, so that the forked workers find it) is replaced first.
_BUILD_WITH_WORKER = """
import gc, os, sys
from kerazoo.data import glyphs
from kerazoo.data.datasets import load_arrays

glyphs.SPLITS = {{split: (2, *rest) for split, (_, *rest) in glyphs.SPLITS.items()}}
render_range = glyphs._render_range


def worker(chunk):
{body}


glyphs._render_range = worker
load_arrays("glyphs", "test", sys.argv[1])
print("built")
"""


def _build_with_worker(tmp_path, body):
    program = _BUILD_WITH_WORKER.format(body=body)
    return subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "tfds")], capture_output=True, text=True, timeout=120
    )


def test_a_dead_worker_fails_the_build_with_a_clear_error_not_a_hang(tmp_path):
    done = _build_with_worker(tmp_path, "    os._exit(3)  # as a segfault or the OOM killer would")
    assert done.returncode != 0
    assert "A process drawing the glyphs dataset died" in done.stderr
    assert not list((tmp_path / "tfds").glob("glyphs/*/*.tfrecord*"))


def test_workers_never_collect_the_parents_objects(tmp_path):
    # Garbage TensorFlow left in the parent crashed a forked worker that
    # collected it; the workers start with the parent's heap frozen.
    done = _build_with_worker(
        tmp_path,
        "    assert gc.get_freeze_count() > 0, 'parent heap not frozen'\n    return render_range(chunk)",
    )
    assert done.returncode == 0, done.stderr
    assert "built" in done.stdout


def test_prepared_splits_are_balanced_with_a_zero_background(small_glyphs):
    for split, per_class in SMALL_GLYPHS.items():
        images, labels, info = load_arrays("glyphs", split, small_glyphs)
        assert images.shape == (47 * per_class, 28, 28, 1)
        np.testing.assert_array_equal(np.bincount(labels, minlength=47), per_class)
    assert info.features["label"].names[:11] == list("0123456789A")
    assert info.features["label"].names[-11:] == list("abdefghnqrt")
    assert np.median((images == 0.0).mean(axis=(1, 2, 3))) > 0.5
    # The stored images are the rendered ones.
    ds = tfds.load("glyphs", split="test", data_dir=small_glyphs)
    for example in ds.take(3).as_numpy_iterator():
        index = None
        font = info.features["font"].int2str(example["font"])
        for i in range(example["label"], 47 * SMALL_GLYPHS["test"], 47):
            image, _, file = render_example("test", i)
            if file == font + ".ttf" and image.tobytes() == example["image"].tobytes():
                index = i
        assert index is not None


def test_glyphs_lt100_is_exponential_500_to_5(small_glyphs):
    # On the small build (100 per class): 100 -> 1, the whole test split kept.
    p = make_protocol("glyphs-lt100", data_dir=small_glyphs)
    counts = p.class_counts()
    per_class = SMALL_GLYPHS["train"]
    np.testing.assert_array_equal(counts, exponential_class_sizes(47, per_class, 100.0))
    assert counts[0] == per_class and counts[-1] == per_class // 100 and (np.diff(counts) <= 0).all()
    np.testing.assert_array_equal(p.class_counts("test"), SMALL_GLYPHS["test"])
    # The same profile of the full training split (glyphs.SPLITS: 500 per class).
    full = exponential_class_sizes(47, glyphs.SPLITS["train"][0], 100.0)
    assert full[0] == 500 and full[-1] == 5 and (np.diff(full) <= 0).all()


def test_nuisances_work_at_28x28(small_glyphs):
    clean = make_protocol("glyphs", data_dir=small_glyphs)
    zeros = clean.test_images == 0.0
    bg = make_protocol("glyphs-bg", data_dir=small_glyphs)
    # `bg` sets every background pixel (exactly 0) to one level per image.
    first_zero = zeros.reshape(len(zeros), -1).argmax(axis=1)
    levels = bg.test_images.reshape(len(zeros), -1)[np.arange(len(zeros)), first_zero]
    expected = np.where(zeros, levels[:, None, None, None], clean.test_images)
    np.testing.assert_array_equal(bg.test_images, expected)
    assert (levels > 0).mean() > 0.95
    # rot and dil as make_protocol applies them (on a few images: rot is slow).
    assert parse_protocol_name("glyphs-rot-lt100") == ("glyphs", "rot", "lt100")
    images = clean.test_images[:94]
    for kind in ("rot", "dil"):
        moved = apply_nuisance(images, kind, seed=0)
        assert moved.shape == images.shape and not np.allclose(moved, images)
        ink = (moved > 0.1).mean(axis=(1, 2, 3))
        assert (ink > 0.02).all() and (ink < 0.8).all()  # a glyph, not gone nor a blob


def test_fonts_domain_shift(small_glyphs):
    source, target = make_domain_shift("glyphs", "fonts", data_dir=small_glyphs, seed=3)
    rest = _SMALL_FONT_SPLITS - 50
    np.testing.assert_array_equal(source.class_counts(), rest)
    np.testing.assert_array_equal(source.class_counts("test"), 50)
    assert target.train_labels is None and target.unlabelled_images.shape[0] == 47 * rest
    np.testing.assert_array_equal(np.bincount(target.evaluation_labels()), rest)
    np.testing.assert_array_equal(np.bincount(target.test_labels), 50)
    fonts_test, _, _ = load_arrays("glyphs", "fonts_test", small_glyphs)
    np.testing.assert_array_equal(target.unlabelled_images, fonts_test[target.unlabelled_indices])
    again, _ = make_domain_shift("glyphs", "fonts", data_dir=small_glyphs, seed=3)
    np.testing.assert_array_equal(again.train_images, source.train_images)
