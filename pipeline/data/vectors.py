"""The pretrain stage's word vectors on disk (NumPy only; pipeline.model.network.start_embedding uses them).

``data/processed/pretrained/word2vec.npy``: float32 ``[vocab size, dim]``, row ``i`` the vector of
vocabulary id ``i``; ``word2vec_known.npy``: which ids have one (``<pad>``, ``<unk>`` and tokens
word2vec never kept have none).
"""

from __future__ import annotations

import numpy as np

from pipeline.core import paths
from pipeline.core.cli import StageError
from pipeline.core.params import TrainParams
from pipeline.data.files import atomic_path


def save_vectors(vectors: np.ndarray, known: np.ndarray) -> None:
    with atomic_path(paths.PRETRAINED_DIR) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        np.save(tmp_dir / "word2vec.npy", vectors.astype(np.float32), allow_pickle=False)
        np.save(tmp_dir / "word2vec_known.npy", known.astype(bool), allow_pickle=False)


def load_pretrained(params: TrainParams, vocab_size: int) -> np.ndarray | None:
    """The pretrain stage's vectors for ``train.init: word2vec`` (rows by vocabulary id; NaN where
    word2vec never saw the token), else None."""
    if params.init == "random":
        return None
    folder = paths.PRETRAINED_DIR
    if not (folder / "word2vec.npy").exists():
        raise StageError(f"{folder}/word2vec.npy: not found (run the pretrain stage first: dvc repro pretrain)")
    vectors = np.load(folder / "word2vec.npy", allow_pickle=False)
    if vectors.shape[1] != params.embedding_dim:
        raise StageError(
            f"train.embedding_dim is {params.embedding_dim} but the word2vec vectors have {vectors.shape[1]} "
            "dimensions: set pretrain.vector_size to the same value"
        )
    if vectors.shape[0] != vocab_size:
        raise StageError(
            f"the word2vec vectors cover {vectors.shape[0]} tokens, the vocabulary {vocab_size}: "
            "re-run the pretrain stage (dvc repro pretrain)"
        )
    vectors[~np.load(folder / "word2vec_known.npy", allow_pickle=False)] = np.nan
    return vectors
