import polars as pl
import pytest
from nltk.tokenize import NLTKWordTokenizer

from pipeline.clean import tokenize
from pipeline.core.params import CleanParams, TokenizeParams
from pipeline.data.text import clean_text, word_tokens
from tests.conftest import shared_file


def ours(text: str) -> list[str]:
    return pl.DataFrame({"t": [text]}).select(word_tokens(pl.col("t")).alias("t"))["t"][0].to_list()


def tokens(text: str, level: str = "word", **clean) -> list[str]:
    frame = pl.DataFrame({"label": [1], "text": [text]}, schema={"label": pl.Int8, "text": pl.String})
    return tokenize(frame, CleanParams(**clean), TokenizeParams(level=level))["tokens"][0].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nice\x00product", ["nice", "product"]),  # NUL: a control character, now a space
        ("\u200fgreat\u200f", ["great"]),  # right-to-left marks
        ("bad\u202e", ["bad"]),  # a bidi override
        ("zero\u200bwidth soft\u00adhyphen", ["zerowidth", "softhyphen"]),  # invisible: removed
        ("\ufeffbom first", ["bom", "first"]),
        ("tab\tand\nnewline", ["tab", "and", "newline"]),  # white space stays white space
    ],
)
def test_control_and_format_characters_never_end_up_inside_tokens(text, expected):
    assert tokens(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't like it, it's bad.", ["I", "do", "n't", "like", "it", ",", "it", "'s", "bad", "."]),
        ("We'll see; they've gone!", ["We", "'ll", "see", ";", "they", "'ve", "gone", "!"]),
        ("I cannot, I won't.", ["I", "can", "not", ",", "I", "wo", "n't", "."]),
        ('He said "wow" (twice)...', ["He", "said", "``", "wow", "''", "(", "twice", ")", "..."]),
        ("Cost $3.88 -- cheap", ["Cost", "$", "3.88", "--", "cheap"]),
        ("Good. Not great.", ["Good.", "Not", "great", "."]),  # only the final period splits
        ("'tis gonna be the kids' toy", ["'", "tis", "gon", "na", "be", "the", "kids", "'", "toy"]),
    ],
)
def test_word_tokens_follow_nltk(text, expected):
    assert ours(text) == expected
    assert NLTKWordTokenizer().tokenize(text) == expected


TRICKY = [
    "'Quoted' start and 'twas odd, isn't it?",
    "«Chevrons» and “curly” ‘quotes’ — dashes… and *stars*",
    "Email me @ home #1 & 50% off; ok: 3,000 or 3:30",
    "Wanna gimme lemme gotta d'ye more'n whaddya",
    'Trailing quote." and paren.)',
    "tabs\tand\x1cseparators  spaced   out",
    "",
    "   ",
    "E.g. U.S.A. end.",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_match_nltk_exactly(text):
    assert ours(text) == NLTKWordTokenizer().tokenize(text)


def test_cleaning_lowercases_and_replaces_digits_urls_and_html():
    text = "GREAT!<br />See https://example.com/a?b=1. Or www.shop.com, 2 stars<br/>"
    assert tokens(text) == ["great", "!", "see", "<url>", ".", "or", "<url>", ",", "0", "stars"]


def test_cleaning_steps_can_be_switched_off():
    text = "Call 555 at http://x.io <b>now</b>"
    assert tokens(text, lowercase=False, replace_digits=False, replace_urls=False, strip_html=False) == (
        NLTKWordTokenizer().tokenize(text)
    )


def test_char_level_tokens_fold_white_space():
    assert tokens("Ab  1\tc", level="char") == ["a", "b", " ", "0", " ", "c"]


def test_clean_text_keeps_row_count_and_nulls():
    frame = pl.DataFrame({"text": ["A1", None]})
    assert frame.select(clean_text(pl.col("text"), CleanParams()))["text"].to_list() == ["a0", None]


@pytest.mark.parametrize("dataset", ["amazon_polarity", "imdb"])
def test_parity_with_nltk_on_real_reviews(dataset):
    from pipeline.data.rawtext import read_line_blocks
    from pipeline.ingest import parse_lines

    path = shared_file(dataset, "test.ft.txt.bz2")
    texts = parse_lines(pl.from_arrow(next(read_line_blocks(path))))[0]["text"].head(2000)
    cleaned = pl.DataFrame({"t": texts}).select(clean_text(pl.col("t"), CleanParams(replace_urls=False)))["t"]
    mine = pl.DataFrame({"t": cleaned}).select(word_tokens(pl.col("t")).alias("t"))["t"].to_list()
    reference = NLTKWordTokenizer()
    identical = sum(a == reference.tokenize(t) for a, t in zip(mine, cleaned, strict=True))
    assert identical / len(cleaned) >= 0.995
