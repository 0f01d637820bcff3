"""gmot.cli: the boolean flag parser every entry point uses."""

import argparse

import pytest

from gmot.cli import str2bool


@pytest.mark.parametrize("text", ["1", "true", "True", "yes", "y"])
def test_true_spellings(text):
    assert str2bool(text) is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "n"])
def test_false_spellings(text):
    assert str2bool(text) is False


def test_rejects_other_words_and_passes_bools():
    with pytest.raises(argparse.ArgumentTypeError, match="maybe"):
        str2bool("maybe")
    assert str2bool(True) is True and str2bool(False) is False
