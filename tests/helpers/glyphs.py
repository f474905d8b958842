"""The small `glyphs` build the glyphs tests share (tests/conftest.py's
`small_glyphs`): every split, cut down to a few images per class."""

import pytest

# Images per class of each split. The benchmark configs' runs need a training
# split with a long tail to cut (-lt100: 100 -> 1) and the font splits 50
# held-out images per class plus a few (make_domain_shift); the documented
# full sizes are checked on glyphs.SPLITS itself, without a build.
SMALL_GLYPHS = {"train": 100, "test": 10, "fonts_train": 60, "fonts_test": 60}


def build_small_glyphs(data_dir):
    """Prepare every split of `glyphs` in `data_dir` at SMALL_GLYPHS' sizes."""
    from kerazoo.data import glyphs
    from kerazoo.data.datasets import load_arrays

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(glyphs, "SPLITS", {s: (SMALL_GLYPHS[s], *v[1:]) for s, v in glyphs.SPLITS.items()})
        load_arrays("glyphs", "test", str(data_dir))  # prepares every split
