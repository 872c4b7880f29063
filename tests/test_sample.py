import re

import pytest

from pipeline.sample import generate

LINE = re.compile(r"^__label__[12] [^:\n]+: \S.*$")


def test_sample_lines_are_in_the_kaggle_format_and_balanced():
    lines = generate(2000, seed=1)
    assert all(LINE.match(line) for line in lines)
    positive = sum(line.startswith("__label__2") for line in lines)
    assert 900 < positive < 1100


def test_sample_is_deterministic_for_a_seed():
    assert generate(50, seed=3) == generate(50, seed=3)
    assert generate(50, seed=3) != generate(50, seed=4)


@pytest.mark.parametrize("word", ["not", "but", "although"])
def test_order_words_appear_in_both_classes(word):
    lines = generate(3000, seed=5)
    for label in ("__label__1", "__label__2"):
        assert any(f" {word} " in line.lower() for line in lines if line.startswith(label))
