import pytest

from kerazoo.protocol_names import (
    builder_name,
    evaluation_split,
    is_streamed,
    parse_protocol_name,
    with_nuisance,
)


def test_parse_names():
    assert parse_protocol_name("digits-rot-lt") == ("digits", "rot", "lt")
    assert parse_protocol_name("cifar100-lt100") == ("cifar100", None, "lt100")
    assert parse_protocol_name("cifar100") == ("cifar100", None, None)
    for bad in ("digits-rot-bg", "digits-lt-lt100", "digits-xyz", "-lt"):
        with pytest.raises(ValueError, match="digits-rot-lt"):
            parse_protocol_name(bad)


def test_streamed_names_take_a_version_and_no_modifiers():
    assert builder_name("imagenet_lt:1.0.0") == "imagenet_lt"
    assert is_streamed("imagenet_lt:1.0.0") and is_streamed("imagenet2012") and not is_streamed("digits")
    assert parse_protocol_name("imagenet_lt") == ("imagenet_lt", None, None)
    with pytest.raises(ValueError, match="streamed from disk and takes no modifiers"):
        parse_protocol_name("imagenet_lt-lt")


def test_with_nuisance_puts_it_between_the_dataset_and_the_long_tail():
    assert with_nuisance("glyphs-lt100", "bg") == "glyphs-bg-lt100"
    assert with_nuisance("digits-rot-lt", "dil") == "digits-dil-lt"  # replaces its own
    assert with_nuisance("digits-bg", "none") == with_nuisance("digits-bg", None) == "digits"


def test_evaluation_split_keeps_the_nuisance_and_drops_the_long_tail():
    assert evaluation_split("glyphs-bg-lt100") == "the glyphs-bg test split"
    assert evaluation_split("cifar100-lt") == "the cifar100 test split"
    assert evaluation_split("imagenet2012") == "the imagenet2012 validation split"  # no labelled test split
