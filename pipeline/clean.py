"""clean: review text -> normalised tokens, as Polars expressions (no per-document Python).

Cleaning (each step switchable in params.yaml ``clean``): lowercase, HTML tags such as
``<br />`` -> space, URLs -> the token ``<url>``, every digit -> ``0``.

Word tokenization follows NLTK's ``NLTKWordTokenizer`` (the word step of ``nltk.word_tokenize``,
which needs no downloaded data): the same regular expressions, applied in the same order,
translated to the Rust regex dialect Polars uses. Rust regexes have no look-around, so the two
rules that use it are rewritten with a marker character; see ``_NLTK_RULES_BEFORE_PAD``.
Like ``NLTKWordTokenizer`` (which expects one sentence), only a period at the very end of the
text is split off; ``word_tokenize`` would first split sentences with Punkt, which needs data
we do not download.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline import paths
from pipeline.common import StageError, atomic_path, run_main, stage_params
from pipeline.params import CleanParams, TokenizeParams

BATCH_ROWS = 50_000
URL_TOKEN = "<url>"
# Stands in for a URL while tokenizing: letters only, so no rule splits it, and no digit.
_URL_PLACEHOLDER = "xxurlxx"
# A private-use character marks a split that a later rule may undo (emulates look-ahead).
_MARK = "\ue000"
# Python's str.split() and \s also treat \x1c-\x1f as white space; Rust's \s does not.
_WS = r"\s\x1c-\x1f"

HTML_TAG = r"<\s*/?\s*[A-Za-z][^<>]*>"
URL = r"(?i)(?:https?://|www\.)[^\s<>\"]*[^\s<>\"'.,;:!?()\[\]{}]"

TOKEN_SCHEMA = pa.schema([("label", pa.int8()), ("tokens", pa.large_list(pa.large_string()))])

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
    (r"[" + _WS + r"]+", " "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"${1} ${2} "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"${1} ${2} "),
    # CONTRACTIONS2 (wanna's look-ahead (?=\s) keeps the white space it consumes)
    (r"(?i)\b(can)(not)\b", r" ${1} ${2} "),
    (r"(?i)\b(d)('ye)\b", r" ${1} ${2} "),
    (r"(?i)\b(gim)(me)\b", r" ${1} ${2} "),
    (r"(?i)\b(gon)(na)\b", r" ${1} ${2} "),
    (r"(?i)\b(got)(ta)\b", r" ${1} ${2} "),
    (r"(?i)\b(lem)(me)\b", r" ${1} ${2} "),
    (r"(?i)\b(more)('n)\b", r" ${1} ${2} "),
    (r"(?i)\b(wan)(na)([" + _WS + r"])", r" ${1} ${2} ${3}"),
    # CONTRACTIONS3
    (r"(?i) ('t)(is)\b", r" ${1} ${2} "),
    (r"(?i) ('t)(was)\b", r" ${1} ${2} "),
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
    return text.str.extract_all(r"[^" + _WS + r"]+")


def char_tokens(text: pl.Expr) -> pl.Expr:
    """One token per character, runs of white space folded into one space."""
    return text.str.replace_all(r"[" + _WS + r"]+", " ").str.strip_chars(" ").str.split("")


def tokenize(frame: pl.DataFrame, clean: CleanParams, tokenize: TokenizeParams) -> pl.DataFrame:
    """``(label, text)`` -> ``(label, tokens)``."""
    text = clean_text(pl.col("text"), clean)
    tokens = word_tokens(text) if tokenize.level == "word" else char_tokens(text)
    if clean.replace_urls and tokenize.level == "word":
        tokens = tokens.list.eval(
            pl.when(pl.element() == _URL_PLACEHOLDER).then(pl.lit(URL_TOKEN)).otherwise(pl.element())
        )
    return frame.select(pl.col("label"), tokens.alias("tokens"))


def clean_file(source, target, clean: CleanParams, level: TokenizeParams) -> int:
    if not source.exists():
        raise StageError(f"{source}: not found (run the ingest stage first: dvc repro ingest)")
    reviews = pq.ParquetFile(source)
    rows = 0
    with (
        pq.ParquetWriter(target, TOKEN_SCHEMA, compression="zstd") as writer,
        tqdm(
            total=reviews.metadata.num_rows,
            unit=" reviews",
            unit_scale=True,
            desc=f"clean {source.stem}",
            leave=False,
            disable=None,
        ) as progress,
    ):
        for batch in reviews.iter_batches(batch_size=BATCH_ROWS):
            tokens = tokenize(pl.from_arrow(batch), clean, level)
            writer.write_table(tokens.to_arrow().cast(TOKEN_SCHEMA))
            rows += len(tokens)
            progress.update(len(tokens))
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
