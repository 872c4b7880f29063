"""Text processing shared by the data stages and inference: raw text -> tokens -> padded ids.

Cleaning (each step switchable in params.yaml ``clean``): lowercase, HTML tags such as
``<br />`` -> space, URLs -> the token ``<url>``, every digit -> ``0``. Word tokenization follows
NLTK's ``NLTKWordTokenizer`` (the word step of ``nltk.word_tokenize``, which needs no downloaded
data): the same regular expressions, in the same order, translated to the Rust regex dialect
Polars uses. Rust regexes have no look-around: the opening-quote rule is emulated with a marker
character and ``wanna``'s look-ahead with a group that puts back what it consumed (see the rule
lists). Like ``NLTKWordTokenizer`` (which expects one sentence), only a period at the very end of
the text is split off; ``word_tokenize`` would first split sentences with Punkt, which needs data
we do not download.

Ids: ``<pad>`` is 0 and ``<unk>`` 1 in every vocabulary; unknown tokens get ``<unk>``, never the
pad id. :class:`Preprocessing` holds the settings that made a model's input (cleaning,
tokenizing, ``seq_len``, truncation, padding side): the encode stage records them in the shards'
manifest, train copies them into the model file, and inference applies them to new text. Polars
expressions throughout (no per-document Python); no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pipeline.core.cli import StageError
from pipeline.core.params import CleanParams, TokenizeParams
from pipeline.data.files import cure, read_json, reading

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SPECIALS = (PAD, UNK)

URL_TOKEN = "<url>"
# Stands in for a URL while tokenizing: letters only, so no rule splits it, and no digit.
_URL_PLACEHOLDER = "xxurlxx"
# A private-use character marks a split that a later rule may undo (emulates look-ahead).
_MARK = "\ue000"
# Python's str.split() and \s also treat \x1c-\x1f as white space; Rust's \s does not.
_WS = r"\s\x1c-\x1f"

HTML_TAG = r"<\s*/?\s*[A-Za-z][^<>]*>"
URL = r"(?i)(?:https?://|www\.)[^\s<>\"]*[^\s<>\"'.,;:!?()\[\]{}]"

# (pattern, replacement) in NLTKWordTokenizer.tokenize's order. Python's \1 becomes ${1}.
_NLTK_RULES_BEFORE_PAD: list[tuple[str, str]] = [
    # STARTING_QUOTES
    (r"([«“‘„]|[`]+)", r" ${1} "),
    (r'^"', r"``"),
    (r"(``)", r" ${1} "),
    (r"([ (\[{<])(\"|'{2})", r"${1} `` "),
    # (?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w) -> "' ": split an opening quote off a
    # word unless the word is a clitic. Split every one, then undo the split for clitics.
    (r"(^|[^\w])'(\w)", r"${1}'" + _MARK + r"${2}"),
    (r"(?i)'" + _MARK + r"(re|ve|ll|m|t|s|d|n)\b", r"'${1}"),
    (_MARK, " "),
    # PUNCTUATION (the first rule's possessive *+ is plain greedy * here: same match)
    (r"([^.])(\.)([\]\)}>\"'»”’ ]*)[" + _WS + r"]*$", r"${1} ${2} ${3} "),
    (r"([:,])([^\d])", r" ${1} ${2}"),
    (r"([:,])$", r" ${1} "),
    (r"\.{2,}", r" ${0} "),
    (r"[;@#$%&]", r" ${0} "),
    (r"[\x{2012}-\x{2015}]", r" ${0} "),
    (r"([^.])(\.)([\]\)}>\"']*)[" + _WS + r"]*$", r"${1} ${2}${3} "),
    (r"[?!]", r" ${0} "),
    (r"([^'])' ", r"${1} ' "),
    (r"[*]", r" ${0} "),
    # PARENS_BRACKETS, DOUBLE_DASHES
    (r"[\]\[(){}<>]", r" ${0} "),
    (r"--", r" -- "),
]
# ENDING_QUOTES and contractions, applied after padding the text with a space on each side.
_NLTK_RULES_AFTER_PAD: list[tuple[str, str]] = [
    (r"([»”’])", r" ${1} "),
    (r"''", r" '' "),
    (r'"', r" '' "),
    # \s+ -> " ", but leaving single plain spaces alone (same result, far fewer replacements)
    (r"[" + _WS + r"]{2,}|[" + _WS + r"&&[^ ]]", " "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"${1} ${2} "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"${1} ${2} "),
    # CONTRACTIONS2 as one alternation (the words never overlap, so one pass equals eight):
    # only the matching branch's groups are non-empty. wanna's look-ahead (?=\s) becomes a
    # group that puts back the white space it consumes.
    (
        r"(?i)\b(?:(can)(not)\b|(d)('ye)\b|(gim)(me)\b|(gon)(na)\b|(got)(ta)\b|(lem)(me)\b|(more)('n)\b"
        r"|(wan)(na)([" + _WS + r"]))",
        r" ${1}${3}${5}${7}${9}${11}${13}${15} ${2}${4}${6}${8}${10}${12}${14}${16} ${17}",
    ),
    # CONTRACTIONS3
    (r"(?i) ('t)(is|was)\b", r" ${1} ${2} "),
]


# invisible characters that would otherwise end up inside tokens: format characters (bidi marks,
# zero-width spaces and joiners, byte-order marks, soft hyphens) go, and control characters other
# than white space (NUL, escape, ...) become a space
FORMAT_CHARS = r"\p{Cf}"
CONTROL_CHARS = r"[\p{Cc}&&[^\t\n\x0B\x0C\r\x1C-\x1F\x85]]"


def clean_text(text: pl.Expr, params: CleanParams) -> pl.Expr:
    """Normalise review text (a String expression) as params.yaml ``clean`` says, after removing
    the invisible characters above (always)."""
    text = text.str.replace_all(FORMAT_CHARS, "").str.replace_all(CONTROL_CHARS, " ")
    if params.lowercase:
        text = text.str.to_lowercase()
    if params.strip_html:
        text = text.str.replace_all(HTML_TAG, " ")
    if params.replace_urls:
        text = text.str.replace_all(URL, f" {_URL_PLACEHOLDER} ")
    if params.replace_digits:
        text = text.str.replace_all(r"\d", "0")
    return text


def word_tokens(text: pl.Expr) -> pl.Expr:
    """NLTKWordTokenizer's rules on a String expression; returns a List[String] expression."""
    for pattern, replacement in _NLTK_RULES_BEFORE_PAD:
        text = text.str.replace_all(pattern, replacement)
    text = pl.concat_str([pl.lit(" "), text, pl.lit(" ")])
    for pattern, replacement in _NLTK_RULES_AFTER_PAD:
        text = text.str.replace_all(pattern, replacement)
    # only plain spaces are left; split on them (much faster than extract_all(\S+))
    text = text.str.replace_all(" {2,}", " ").str.strip_chars(" ")
    return pl.when(text == "").then(pl.lit([], dtype=pl.List(pl.String))).otherwise(text.str.split(" "))


def char_tokens(text: pl.Expr) -> pl.Expr:
    """One token per character, runs of white space folded into one space."""
    return text.str.replace_all(r"[" + _WS + r"]+", " ").str.strip_chars(" ").str.split("")


def text_tokens(text: pl.Expr, clean: CleanParams, tokenize: TokenizeParams) -> pl.Expr:
    """Raw review text (String expression) -> tokens (List[String]): the clean stage's work on one
    column, and what :class:`Preprocessing` applies to new text."""
    text = clean_text(text, clean)
    tokens = word_tokens(text) if tokenize.level == "word" else char_tokens(text)
    if clean.replace_urls and tokenize.level == "word":
        tokens = tokens.list.eval(
            pl.when(pl.element() == _URL_PLACEHOLDER).then(pl.lit(URL_TOKEN)).otherwise(pl.element())
        )
    return tokens


def load_vocab(path) -> list[str]:
    """The tokens of a ``vocab.json`` written by the vocab stage; a token's id is its position."""
    tokens = read_json(path, ("tokens",))["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise StageError(f"{path}: damaged (tokens is not a list of strings) ({cure(path)})")
    if tokens[:2] != list(SPECIALS):
        raise StageError(f"{path}: expected {PAD!r} and {UNK!r} as ids 0 and 1")
    return tokens


def read_tokens(path) -> tuple[list[list[str]], np.ndarray]:
    """The tokens and labels of a split the clean stage wrote (``data/interim/tokens/{split}.parquet``)."""
    with reading(path):
        table = pq.read_table(path, columns=["tokens", "label"])
        return table.column("tokens").to_pylist(), table.column("label").to_numpy().astype(np.int64)


def token_ids(tokens: pl.Expr, vocab: list[str]) -> pl.Expr:
    """List[String] -> List[Int32] ids; tokens not in the vocabulary get ``UNK_ID``."""
    return tokens.list.eval(
        pl.element().replace_strict(vocab, range(len(vocab)), default=UNK_ID, return_dtype=pl.Int32)
    )


def pad_and_truncate(ids: pl.Series, seq_len: int, truncate: str, pad: str) -> tuple[np.ndarray, np.ndarray]:
    """List[Int32] ids -> ``(matrix int32 [rows, seq_len], lengths int32 [rows])``.

    ``truncate`` keeps the ``keep_first`` or ``keep_last`` ``seq_len`` ids; ``pad`` puts the pad
    ids on the ``left`` or ``right``. ``lengths`` counts the real (non-pad) ids kept in each row.
    """
    kept = ids.list.head(seq_len) if truncate == "keep_first" else ids.list.tail(seq_len)
    lengths = kept.list.len().fill_null(0).to_numpy()
    values = kept.to_arrow().flatten().to_numpy()  # Arrow's flatten skips empty lists, unlike explode
    columns = np.arange(seq_len)
    # the real slots of each row, in row-major order: exactly the order of ``values``
    if pad == "left":
        real = columns >= (seq_len - lengths)[:, None]
    else:
        real = columns < lengths[:, None]
    matrix = np.full((len(lengths), seq_len), PAD_ID, dtype=np.int32)
    matrix[real] = values
    return matrix, lengths.astype(np.int32)


@dataclass(frozen=True)
class Preprocessing:
    """What turns raw text into a model's input, as the shards it was trained on were made."""

    clean: CleanParams
    tokenize: TokenizeParams
    seq_len: int
    truncate: Literal["keep_first", "keep_last"]
    pad: Literal["left", "right"]

    @classmethod
    def from_dict(cls, settings: dict) -> Preprocessing:
        """From a shard manifest or a model file (both store these keys)."""
        return cls(
            clean=CleanParams(**settings["clean"]),
            tokenize=TokenizeParams(**settings["tokenize"]),
            seq_len=settings["seq_len"],
            truncate=settings["truncate"],
            pad=settings["pad"],
        )

    def to_dict(self) -> dict:
        return {
            "clean": self.clean.model_dump(),
            "tokenize": self.tokenize.model_dump(),
            "seq_len": self.seq_len,
            "truncate": self.truncate,
            "pad": self.pad,
        }

    def tokens(self, text: pl.Expr) -> pl.Expr:
        return text_tokens(text, self.clean, self.tokenize)

    def token_series(self, texts: list[str]) -> pl.Series:
        """Each raw review's tokens (List[String]) exactly as the ingest and clean stages make them.

        (Ingest strips each line; the tokenizer ignores surrounding white space and line breaks
        anyway, so raw text needs nothing more: tests/test_inference.py checks both.)"""
        frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
        return frame.select(self.tokens(pl.col("text")).alias("tokens"))["tokens"]

    def encode_tokens(self, tokens: pl.Series, vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [rows, seq_len], lengths)`` of these tokens exactly as the encode stage makes them."""
        ids = tokens.to_frame().select(token_ids(pl.col(tokens.name), vocab))[tokens.name]
        return pad_and_truncate(ids, self.seq_len, self.truncate, self.pad)

    def encode(self, texts: list[str], vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [rows, seq_len], lengths)`` of raw reviews exactly as the data stages make them."""
        return self.encode_tokens(self.token_series(texts), vocab)
