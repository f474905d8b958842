"""The names a protocol (a config's `dataset`) is made of, read without TensorFlow.

A recipe checks its config (`dataset=digits-rot-lt`) before its run
directory exists and before TensorFlow's import (about 5 s), so that a
misspelt name is answered at once; the data layer (`kerazoo.data.protocols`,
`streamed`, `user_sources`) reads the names from here too. See
`kerazoo.data.protocols` for what the modifiers do.
"""

# The user's own data (`kerazoo.data.user_sources` reads them); any other
# base name is a tfds dataset.
USER_SOURCES = ("imagefolder", "arrays")
MODIFIERS = ("rot", "bg", "dil", "lt", "lt100")
LONG_TAILS = ("lt", "lt100")
# Streamed tfds names -> the split they are evaluated on (ImageNet-LT's test
# split is the 50,000 ImageNet validation images; ImageNet has no labelled test split).
STREAMED = {"imagenet_lt": "test", "imagenet2012": "validation", "imagenet2012_subset": "validation"}


def is_user_source(name):
    """Whether a dataset name (without protocol modifiers) is one of the
    user's own sources (`USER_SOURCES`), not a tfds dataset.

    Args:
        name: a dataset name.

    Example:

    ```python
    from kerazoo.protocol_names import is_user_source

    print(is_user_source("imagefolder"), is_user_source("digits"))  # True False
    ```
    """
    return name in USER_SOURCES


def builder_name(name):
    """A tfds name without its version or config.

    Args:
        name: a tfds name, e.g. `"imagenet_lt:1.0.0"`.

    Example:

    ```python
    from kerazoo.protocol_names import builder_name

    print(builder_name("imagenet_lt:1.0.0"))  # imagenet_lt
    ```
    """
    return name.split(":")[0].split("/")[0]


def is_streamed(base):
    """Whether the tfds name `base` (`"imagenet_lt"`, `"imagenet_lt:1.0.0"`)
    is streamed from disk (`streamed.StreamedProtocol`) instead of loaded
    into memory.

    Args:
        base: a tfds name, optionally with a version.

    Example:

    ```python
    from kerazoo.protocol_names import is_streamed

    print(is_streamed("imagenet_lt:1.0.0"), is_streamed("digits"))  # True False
    ```
    """
    return builder_name(base) in STREAMED


def parse_protocol_name(name):
    """`"digits-rot-lt"` -> `("digits", "rot", "lt")`; the long tail is None, "lt" or "lt100".

    Args:
        name: a protocol name.

    Raises:
        ValueError: naming what is wrong with `name`, with examples.

    Example:

    ```python
    from kerazoo.protocol_names import parse_protocol_name

    print(parse_protocol_name("digits-rot-lt"))  # ('digits', 'rot', 'lt')
    ```
    """
    base, *modifiers = name.split("-")
    unknown = [m for m in modifiers if m not in MODIFIERS]
    nuisances = [m for m in modifiers if m not in LONG_TAILS]
    tails = [m for m in modifiers if m in LONG_TAILS]
    if unknown or len(nuisances) > 1 or len(tails) > 1 or not base:
        raise ValueError(
            f"Bad protocol name '{name}': expected a tfds dataset name (or imagefolder / arrays) followed "
            f"by at most one of -rot/-bg/-dil and optionally -lt or -lt100, e.g. "
            f"'digits-rot-lt' or 'cifar100-lt100'."
        )
    if modifiers and is_streamed(base):
        raise ValueError(
            f"Bad protocol name '{name}': '{base}' is streamed from disk and takes no "
            f"modifiers (they transform whole arrays in memory); use '{base}'."
        )
    return base, (nuisances[0] if nuisances else None), (tails[0] if tails else None)


def with_nuisance(name, nuisance):
    """Protocol `name` with `nuisance` in place of its own, if any (GIT's
    config gives the long tail and the nuisance apart).

    Args:
        name: a protocol name.
        nuisance: `"rot"`, `"bg"` or `"dil"`; `None` or `"none"` removes it.

    Example:

    ```python
    from kerazoo.protocol_names import with_nuisance

    print(with_nuisance("glyphs-lt100", "bg"))  # glyphs-bg-lt100
    ```
    """
    base, _, long_tail = parse_protocol_name(name)
    return "-".join(filter(None, [base, None if nuisance == "none" else nuisance, long_tail]))


def evaluation_split(name):
    """The split protocol `name`'s models are tested on, in words: its
    dataset's test split with the protocol's nuisance, without its long
    tail (test splits stay balanced).

    Args:
        name: a protocol name.

    Example:

    ```python
    from kerazoo.protocol_names import evaluation_split

    print(evaluation_split("glyphs-bg-lt100"))  # the glyphs-bg test split
    print(evaluation_split("imagenet_lt"))  # the imagenet_lt test split
    ```
    """
    base, nuisance, _ = parse_protocol_name(name)
    return f"the {'-'.join(filter(None, [base, nuisance]))} {STREAMED.get(builder_name(base), 'test')} split"
