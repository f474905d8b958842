"""`python -m kerazoo.export`: its command line."""

import re

from kerazoo.export.__main__ import _parser


def test_help_states_every_default():
    text = _parser().format_help()
    options = re.split(r"\n  (?=-)", text.split("options:")[1])[1:]
    for option in options:
        if option.startswith("-h"):
            continue
        assert "default" in option or "required" in option, option
    assert "(default: 0.0001)" in text
