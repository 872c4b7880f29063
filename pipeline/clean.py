"""clean: review text -> normalised tokens, as Polars expressions (no per-document Python).

Cleaning (each step switchable in params.yaml ``clean``): lowercase, HTML tags such as
``<br />`` -> space, URLs -> the token ``<url>``, every digit -> ``0``.

Word tokenization follows NLTK's ``NLTKWordTokenizer`` (the word step of ``nltk.word_tokenize``,
which needs no downloaded data): the same regular expressions, applied in the same order,
translated to the Rust regex dialect Polars uses. Rust regexes have no look-around: the
opening-quote rule is emulated with a marker character and ``wanna``'s look-ahead with a group
that puts back what it consumed; see the rule lists below.
Like ``NLTKWordTokenizer`` (which expects one sentence), only a period at the very end of the
text is split off; ``word_tokenize`` would first split sentences with Punkt, which needs data
we do not download.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline import paths
from pipeline.common import StageError, atomic_path, parquet_batches, run_main, stage_params
from pipeline.params import CleanParams, TokenizeParams

URL_TOKEN = "<url>"
BATCH_ROWS = 20_000
TOKEN_SCHEMA = pa.schema([("label", pa.int8()), ("tokens", pa.large_list(pa.large_string()))])
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


def clean_text(text: pl.Expr, params: CleanParams) -> pl.Expr:
    """Normalise review text (a String expression) as params.yaml ``clean`` says."""
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
    column, shared with pipeline.predict so raw text is scored exactly as training data was made."""
    text = clean_text(text, clean)
    tokens = word_tokens(text) if tokenize.level == "word" else char_tokens(text)
    if clean.replace_urls and tokenize.level == "word":
        tokens = tokens.list.eval(
            pl.when(pl.element() == _URL_PLACEHOLDER).then(pl.lit(URL_TOKEN)).otherwise(pl.element())
        )
    return tokens


def tokenize(frame: pl.DataFrame, clean: CleanParams, tokenize: TokenizeParams) -> pl.DataFrame:
    """``(label, text)`` -> ``(label, tokens)``."""
    return frame.select(pl.col("label"), text_tokens(pl.col("text"), clean, tokenize).alias("tokens"))


def clean_file(source: Path, target: Path, clean: CleanParams, level: TokenizeParams) -> int:
    """Tokenize one reviews file into ``target``, batch by batch, in order.

    Batches are tokenized on a few threads at once (Polars releases the GIL, so this uses
    every core) with a bounded window of batches in flight: memory stays bounded by the batch
    size whatever the file size, and the output is the same bytes on every run."""
    if not source.exists():
        raise StageError(f"{source}: not found (run the ingest stage first: dvc repro ingest)")
    workers = os.cpu_count() or 1
    rows_in = pq.read_metadata(source).num_rows

    def work(batch: pa.RecordBatch) -> pa.Table:
        return tokenize(pl.from_arrow(batch), clean, level).to_arrow().cast(TOKEN_SCHEMA)

    rows = 0
    with (
        pq.ParquetWriter(target, TOKEN_SCHEMA, compression="lz4") as writer,
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=rows_in, unit=" reviews", desc=f"clean {source.stem}", disable=None) as bar,
    ):
        in_flight: deque[Future] = deque()
        batches = parquet_batches(source, BATCH_ROWS)
        while True:
            while len(in_flight) <= workers and (batch := next(batches, None)) is not None:
                in_flight.append(pool.submit(work, batch))
            if not in_flight:
                break
            table = in_flight.popleft().result()
            writer.write_table(table)
            rows += table.num_rows
            bar.update(table.num_rows)
    return rows


def main() -> None:
    params, _ = stage_params(__doc__)
    with atomic_path(paths.TOKENS_DIR) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        for split in paths.SPLITS:
            rows = clean_file(
                paths.REVIEWS_DIR / f"{split}.parquet", tmp_dir / f"{split}.parquet", params.clean, params.tokenize
            )
            print(f"clean {split}: {rows} reviews tokenized ({params.tokenize.level} level)")


if __name__ == "__main__":
    run_main(main)
