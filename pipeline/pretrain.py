"""pretrain: train-split tokens -> word vectors aligned to the vocabulary (self-supervised, no labels).

gensim's word2vec (skip-gram with negative sampling by default) reads the clean stage's train
tokens, streamed from Parquet each epoch (memory does not grow with the corpus), keeping only
the vocabulary's tokens, so row ``i`` of the output is the vector of vocabulary id ``i``. With
``train.init: word2vec`` the classifier starts its embedding from them. With one worker thread
(``pretrain.workers``, the default) the vectors are the same bytes on every run (gensim seeds
from ``pretrain.seed``); more threads are faster but share the work differently each time.

Writes ``data/processed/pretrained/word2vec.npy`` (float32 ``[vocab size, vector_size]``),
``word2vec_known.npy`` (bool: ids word2vec saw; ``<pad>`` and ``<unk>`` never) and
``metrics/pretrain.json`` (coverage, and the loss per corpus word of the first and last epoch).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.utils import RULE_DISCARD, RULE_KEEP

from pipeline import paths
from pipeline.cli import StageError, run_main, stage_params
from pipeline.files import parquet_batches, write_json
from pipeline.params import PretrainParams
from pipeline.text import SPECIALS, load_vocab
from pipeline.vectors import save_vectors

BATCH_ROWS = 20_000


class TokenLists:
    """The token lists of a tokens Parquet file, read again on every pass (gensim iterates
    once to count and once per epoch)."""

    def __init__(self, path: Path):
        self.path = path

    def __iter__(self) -> Iterator[list[str]]:
        for batch in parquet_batches(self.path, BATCH_ROWS, columns=["tokens"]):
            yield from batch.column("tokens").to_pylist()


class EpochLosses(CallbackAny2Vec):
    """Each epoch's training loss. gensim sums it in float32 over the whole run, which stops
    growing once large (gensim issue 2617), so the sum is read and reset after every epoch."""

    def __init__(self):
        self.losses: list[float] = []

    def on_epoch_end(self, model):
        self.losses.append(model.get_latest_training_loss())
        model.running_training_loss = 0.0


def word2vec(sentences, vocab: list[str], params: PretrainParams) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(vectors [len(vocab), vector_size], known [len(vocab)], metrics)`` for ``vocab``'s ids."""
    wanted = set(vocab[len(SPECIALS) :])
    losses = EpochLosses()
    model = Word2Vec(
        sentences,
        vector_size=params.vector_size,
        window=params.window,
        sg=1 if params.method == "skipgram" else 0,
        negative=params.negative,
        epochs=params.epochs,
        min_count=1,
        trim_rule=lambda word, count, min_count: RULE_KEEP if word in wanted else RULE_DISCARD,
        workers=params.workers,
        seed=params.seed,
        compute_loss=True,
        callbacks=[losses],
    )
    vectors = np.zeros((len(vocab), params.vector_size), np.float32)
    known = np.zeros(len(vocab), bool)
    for token_id, token in enumerate(vocab):
        if token in wanted and token in model.wv.key_to_index:
            vectors[token_id] = model.wv[token]
            known[token_id] = True
    metrics = {
        "vocab_coverage": round(float(known[len(SPECIALS) :].mean()) if len(vocab) > len(SPECIALS) else 0.0, 6),
        "corpus_words": int(model.corpus_total_words),
        # negative-sampling loss per corpus word, comparable across corpora
        "loss_first_epoch": round(losses.losses[0] / max(model.corpus_total_words, 1), 6),
        "loss_last_epoch": round(losses.losses[-1] / max(model.corpus_total_words, 1), 6),
    }
    return vectors, known, metrics


def main() -> None:
    params, _ = stage_params(__doc__)
    source = paths.TOKENS_DIR / "train.parquet"
    if not source.exists():
        raise StageError(f"{source}: not found (run the clean stage first: dvc repro clean)")
    vocab = load_vocab(paths.VOCAB_FILE)
    vectors, known, metrics = word2vec(TokenLists(source), vocab, params.pretrain)
    save_vectors(vectors, known)
    write_json(paths.METRICS_DIR / "pretrain.json", metrics)
    print(
        f"pretrain: {params.pretrain.method} vectors of {params.pretrain.vector_size} for "
        f"{metrics['vocab_coverage']:.2%} of the vocabulary, from {metrics['corpus_words']} train tokens; "
        f"loss per word {metrics['loss_first_epoch']:.4f} -> {metrics['loss_last_epoch']:.4f}"
    )


if __name__ == "__main__":
    run_main(main)
