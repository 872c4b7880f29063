"""Compare our Polars word tokenizer with NLTK's NLTKWordTokenizer, document by document.

Both get the same cleaned text (our ``clean`` step, URLs left in place so that both see the
same string); prints the share of documents with identical token lists and the first
differing examples.

    uv run python benchmarks/tokenizer_parity.py ../shared/data/amazon_polarity/train.ft.txt.bz2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl
from nltk.tokenize import NLTKWordTokenizer

from pipeline.core.params import CleanParams
from pipeline.data.rawtext import read_line_blocks
from pipeline.data.text import clean_text, word_tokens
from pipeline.ingest import parse_lines


def compare(texts: pl.Series, clean: CleanParams, show: int = 5) -> dict:
    cleaned = pl.DataFrame({"text": texts}).select(clean_text(pl.col("text"), clean))["text"]
    start = time.perf_counter()
    ours = pl.DataFrame({"text": cleaned}).select(word_tokens(pl.col("text")).alias("tokens"))["tokens"].to_list()
    ours_s = time.perf_counter() - start
    nltk_tokenizer = NLTKWordTokenizer()
    start = time.perf_counter()
    theirs = [nltk_tokenizer.tokenize(t) for t in cleaned]
    nltk_s = time.perf_counter() - start
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    for i in differing[:show]:
        a, b = ours[i], theirs[i]
        k = next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        print(f"  doc {i}: ours {a[max(0, k - 3) : k + 4]} vs nltk {b[max(0, k - 3) : k + 4]}")
    return {
        "documents": len(ours),
        "identical": len(ours) - len(differing),
        "identical_share": 1 - len(differing) / max(len(ours), 1),
        "ours_seconds": ours_s,
        "nltk_seconds": nltk_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="fastText-format review files (.bz2 or text)")
    parser.add_argument("--show", type=int, default=5, help="differing examples to print per file")
    parser.add_argument("--keep-case", action="store_true", help="do not lowercase before tokenizing")
    args = parser.parse_args()
    clean = CleanParams(lowercase=not args.keep_case, replace_urls=False)
    worst = 1.0
    for path in args.files:
        texts = pl.concat([parse_lines(pl.from_arrow(block))[0]["text"] for block in read_line_blocks(path)])
        print(f"{path}:")
        result = compare(texts, clean, args.show)
        worst = min(worst, result["identical_share"])
        print(
            f"  {result['identical']}/{result['documents']} documents identical "
            f"({result['identical_share']:.4%}); ours {result['ours_seconds']:.2f}s, "
            f"NLTK {result['nltk_seconds']:.2f}s"
        )
    sys.exit(0 if worst >= 0.995 else 1)


if __name__ == "__main__":
    main()
