"""A short-text sentiment dataset from Amazon reviews: each review's title alone, with its review's label.

    uv run python benchmarks/short_text.py ../shared/data/amazon_polarity /tmp/amazon-titles
    uv run python benchmarks/accuracy.py /tmp/amazon-titles --recipe recipes/real-data.yaml --seeds 1 2 3

Amazon's fastText lines are ``__label__N <title>: <review text>``. The titles ("Great album",
"Broke after a week", a few words each) stand in for short sentences such as single-sentence
movie reviews. Writes ``train.ft.txt.bz2`` and ``test.ft.txt.bz2`` (the same train/test rows as
the source, titles only; lines whose title is empty are left out and counted) and
``bodies.txt``, the train split's review texts without labels or titles, to try as
``pretrain.extra_text``.
"""

from __future__ import annotations

import argparse
import bz2
import sys
from pathlib import Path


def split_line(line: str) -> tuple[str, str, str] | None:
    """``(label, title, body)`` of one Amazon fastText line, or None if it has no title."""
    label, _, rest = line.rstrip("\n").partition(" ")
    title, separator, body = rest.partition(": ")
    if not separator or not title.strip():
        return None
    return label, title.strip(), body.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder with Amazon's train.ft.txt.bz2 and test.ft.txt.bz2")
    parser.add_argument("out", type=Path, help="folder to write the titles dataset to")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        source = args.source / f"{split}.ft.txt.bz2"
        if not source.exists():
            sys.exit(f"{source}: not found")
        kept = dropped = 0
        with (
            bz2.open(source, "rt", encoding="utf-8") as lines,
            bz2.open(args.out / f"{split}.ft.txt.bz2", "wt", encoding="utf-8") as titles,
        ):
            bodies = (args.out / "bodies.txt").open("w", encoding="utf-8") if split == "train" else None
            for line in lines:
                parts = split_line(line)
                if parts is None:
                    dropped += 1
                    continue
                label, title, body = parts
                titles.write(f"{label} {title}\n")
                if bodies is not None and body:
                    bodies.write(body + "\n")
                kept += 1
            if bodies is not None:
                bodies.close()
        print(f"{split}: {kept} titles written, {dropped} lines without a title left out")


if __name__ == "__main__":
    main()
