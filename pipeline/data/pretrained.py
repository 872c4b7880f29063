"""The pretrain stage's output on disk (NumPy only; pipeline.model.network.start_from uses it).

With ``pretrain.kind: word2vec``, ``vectors`` or ``word2vec+vectors``:
``data/processed/pretrained/word2vec.npy``, float32
``[vocab size, dim]``, row ``i`` the vector of vocabulary id ``i``, and ``word2vec_known.npy``,
which ids have one (``<pad>``, ``<unk>`` and tokens word2vec never kept or the vectors file
lacks have none).

With ``pretrain.kind: lm``: ``lm.npz``, the language model's embedding (rows by vocabulary id)
and first LSTM layer of each direction, each array under the name of the classifier's parameter
it starts (``embedding.weight``, ``forward_layers.0.weight_ih_l0``, ...).
"""

from __future__ import annotations

import numpy as np

from pipeline.core import paths
from pipeline.core.cli import StageError
from pipeline.core.params import TrainParams
from pipeline.data.files import atomic_path, reading

LM_FILE = "lm.npz"


def save_vectors(vectors: np.ndarray, known: np.ndarray) -> None:
    with atomic_path(paths.PRETRAINED_DIR) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        np.save(tmp_dir / "word2vec.npy", vectors.astype(np.float32), allow_pickle=False)
        np.save(tmp_dir / "word2vec_known.npy", known.astype(bool), allow_pickle=False)


def save_language_model(weights: dict[str, np.ndarray]) -> None:
    with atomic_path(paths.PRETRAINED_DIR) as tmp_dir:
        tmp_dir.mkdir(parents=True)
        np.savez(tmp_dir / LM_FILE, **{name: array.astype(np.float32) for name, array in weights.items()})


def load_pretrained(params: TrainParams, vocab_size: int) -> np.ndarray | dict[str, np.ndarray] | None:
    """What ``train.init`` starts from: the word vectors (rows by vocabulary id; NaN where
    word2vec never saw the token), the language model's weights by parameter name, or None."""
    if params.init == "random":
        return None
    if params.init == "lm":
        return load_language_model(vocab_size)
    folder = paths.PRETRAINED_DIR
    if not (folder / "word2vec.npy").exists():
        raise StageError(
            f"{folder}/word2vec.npy: not found (train.init: word2vec needs pretrain.kind: word2vec, vectors or "
            "word2vec+vectors; "
            "then run the pretrain stage: dvc repro pretrain)"
        )
    with reading(folder / "word2vec.npy"):
        vectors = np.load(folder / "word2vec.npy", allow_pickle=False)
    if vectors.shape[1] != params.embedding_dim:
        raise StageError(
            f"train.embedding_dim is {params.embedding_dim} but the pretrain stage's vectors have "
            f"{vectors.shape[1]} dimensions: set pretrain.vector_size to the same value"
        )
    if vectors.shape[0] != vocab_size:
        raise StageError(
            f"the pretrain stage's vectors cover {vectors.shape[0]} tokens, the vocabulary {vocab_size}: "
            "re-run the pretrain stage (dvc repro pretrain)"
        )
    with reading(folder / "word2vec_known.npy"):
        vectors[~np.load(folder / "word2vec_known.npy", allow_pickle=False)] = np.nan
    return vectors


def load_language_model(vocab_size: int) -> dict[str, np.ndarray]:
    path = paths.PRETRAINED_DIR / LM_FILE
    if not path.exists():
        raise StageError(
            f"{path}: not found (train.init: lm needs pretrain.kind: lm; "
            "then run the pretrain stage: dvc repro pretrain)"
        )
    with reading(path), np.load(path, allow_pickle=False) as arrays:
        weights = {name: arrays[name] for name in arrays.files}
    rows = weights["embedding.weight"].shape[0] if "embedding.weight" in weights else None
    if rows != vocab_size:
        raise StageError(
            f"{path}: the language model covers {rows} tokens, the vocabulary {vocab_size}: "
            "re-run the pretrain stage (dvc repro pretrain)"
        )
    return weights
