"""pretrain: train-split tokens -> a start for the classifier, learned from text alone (no labels).

Five kinds (``pretrain.kind``). All but ``vectors`` read the clean stage's train tokens plus
``pretrain.extra_text`` (a file, or every ``*.txt``, ``*.bz2`` and ``*.gz`` file of a folder;
fastText-format lines lose their label, other lines are one text each), cleaned and tokenized as
the clean stage does; the committed ``data/extra`` holds none:

- ``word2vec``: gensim's word2vec (skip-gram with negative sampling by default), streamed from
  Parquet each epoch (memory does not grow with the corpus), keeping only the vocabulary's
  tokens, so row ``i`` of the output is the vector of vocabulary id ``i``. With one worker thread
  (``pretrain.workers``, the default) the vectors are the same bytes on every run (gensim seeds
  from ``pretrain.seed``). ``train.init: word2vec`` starts the classifier's embedding from them.
- ``vectors``: general-purpose word vectors someone else learned on far more text, read from
  ``pretrain.vectors`` (a GloVe ``.txt`` or fastText ``.vec`` file, plain or ``.gz``/``.bz2``, or
  a folder holding one; gensim reads it), row ``i`` the vector of vocabulary id ``i``, or of its
  lower case when the file has no vector for the token as it is. For small datasets (short
  texts), whose own text teaches word2vec little. ``train.init: word2vec`` starts from them.
- ``word2vec+vectors``: the file's vectors and word2vec's side by side (the file's dimensions
  first, word2vec learning the rest of ``pretrain.vector_size``), each scaled to unit spread; a
  token one part lacks gets zeros there.
- ``auto``: ``word2vec+vectors`` when the text (train split and extra text) has fewer words than
  ``pretrain.small_text_words`` (short texts, small datasets) and ``pretrain.vectors`` holds a
  file; else ``word2vec`` (with a warning when the text is small but no file is there).
- ``lm``: an LSTM language model (pipeline.model.language_model), forward and, with
  ``pretrain.bidirectional``, backward, over the vocabulary's ids (other tokens are ``<unk>``);
  its training perplexity is printed per epoch. ``train.init: lm`` starts the classifier's
  embedding and first LSTM layer from it. The same bytes on every run on a CPU.

Writes ``data/processed/pretrained/`` (pipeline.data.pretrained: ``word2vec.npy`` and
``word2vec_known.npy``, or ``lm.npz``) and ``metrics/pretrain.json`` (word2vec: coverage and the
loss per corpus word of the first and last epoch; vectors: coverage and the file's words; lm:
the perplexity of every epoch).
"""

from __future__ import annotations

from pipeline.core.cli import StageError, answer_help, run_main, stage_params
from pipeline.core.cpu_math import pin_code_paths

if __name__ == "__main__":  # run as a stage, not imported: nothing global changes on import
    answer_help(__doc__)  # at once: the imports below take seconds
    pin_code_paths()  # before NumPy and PyTorch load: they pick their code paths then

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.utils import RULE_DISCARD, RULE_KEEP
from gensim.utils import open as gensim_open

from pipeline.core import paths
from pipeline.core.params import CleanParams, PretrainParams, TokenizeParams
from pipeline.data.files import parquet_batches, reading, write_json
from pipeline.data.pretrained import save_language_model, save_vectors
from pipeline.data.rawtext import decode_lines, read_line_blocks, without_fasttext_label
from pipeline.data.text import SPECIALS, load_vocab, text_tokens, token_ids
from pipeline.model.devices import pick_device
from pipeline.model.language_model import train_language_model

BATCH_ROWS = 20_000
EXTRA_SUFFIXES = (".txt", ".bz2", ".gz")
VECTORS_SUFFIXES = tuple(f"{kind}{packed}" for kind in (".txt", ".vec") for packed in ("", ".gz", ".bz2"))
TOKENS_SCHEMA = pa.schema([("tokens", pa.large_list(pa.large_string()))])


class TokenLists:
    """The token lists of tokens Parquet files, read again on every pass (gensim iterates
    once to count and once per epoch)."""

    def __init__(self, *files: Path):
        self.files = files

    def __iter__(self) -> Iterator[list[str]]:
        for path in self.files:
            for batch in parquet_batches(path, BATCH_ROWS, columns=["tokens"]):
                yield from batch.column("tokens").to_pylist()

    def words(self) -> int:
        """The number of tokens, counted in Arrow (no Python lists)."""
        return sum(
            len(batch.column("tokens").flatten())
            for path in self.files
            for batch in parquet_batches(path, BATCH_ROWS, columns=["tokens"])
        )


def extra_text_files(location: Path) -> list[Path]:
    """The files ``pretrain.extra_text`` names: the file itself, or a folder's text files."""
    if not location.exists():
        raise StageError(f"{location}: not found (pretrain.extra_text names a file or a folder of text files)")
    if location.is_file():
        return [location]
    return sorted(path for path in location.rglob("*") if path.is_file() and path.name.endswith(EXTRA_SUFFIXES))


def tokenize_extra_text(
    files: list[Path], target: Path, clean: CleanParams, tokenize: TokenizeParams, max_chars: int
) -> int:
    """Clean and tokenize unlabelled text files into one tokens Parquet file; returns its rows.
    A leading fastText label is dropped; lines that are not UTF-8, longer than ``max_chars``
    (``data.max_chars``, as ingest) or hold no tokens are skipped."""
    rows = 0
    with pq.ParquetWriter(target, TOKENS_SCHEMA, compression="lz4") as writer:
        for path in files:
            for lines in read_line_blocks(path):
                texts = decode_lines(pl.from_arrow(lines)).drop_nulls()
                texts = texts.filter(texts.str.len_chars() <= max_chars)
                text = without_fasttext_label(pl.col("text"))
                frame = pl.DataFrame({"text": texts}).select(text_tokens(text, clean, tokenize).alias("tokens"))
                frame = frame.filter(pl.col("tokens").list.len() > 0)
                writer.write_table(frame.to_arrow().cast(TOKENS_SCHEMA))
                rows += len(frame)
    return rows


def coverage(known: np.ndarray) -> float:
    """The share of the vocabulary's tokens (not ``<pad>`` or ``<unk>``) that have a vector."""
    return round(float(known[len(SPECIALS) :].mean()) if len(known) > len(SPECIALS) else 0.0, 6)


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
        "vocab_coverage": coverage(known),
        "corpus_words": int(model.corpus_total_words),
        # negative-sampling loss per corpus word, comparable across corpora
        "loss_first_epoch": round(losses.losses[0] / max(model.corpus_total_words, 1), 6),
        "loss_last_epoch": round(losses.losses[-1] / max(model.corpus_total_words, 1), 6),
    }
    return vectors, known, metrics


def vectors_in(folder: Path) -> list[Path]:
    """The vectors files of a folder (none if it is not one)."""
    return sorted(p for p in folder.glob("*") if p.name.endswith(VECTORS_SUFFIXES)) if folder.is_dir() else []


def vectors_file(location: Path) -> Path:
    """The file ``pretrain.vectors`` names: the file itself, or the one vectors file of a folder."""
    if location.is_file():
        return location
    found = vectors_in(location)
    if len(found) != 1:
        what = "not found" if not location.exists() else f"holds {len(found)} vectors files, not one"
        raise StageError(
            f"{location}: {what} (pretrain.kind vectors and word2vec+vectors read pretrain.vectors: a GloVe .txt or "
            "fastText .vec file, or a folder with one)"
        )
    return found[0]


def has_header(path: Path) -> bool:
    """fastText's .vec (and word2vec's text format) start with "<words> <dimensions>"; GloVe's do not."""
    with gensim_open(path, "rb") as file:
        first = file.readline().split()
    return len(first) == 2 and all(field.isdigit() for field in first)


def read_vectors(path: Path, vocab: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(vectors [len(vocab), the file's dimensions], known [len(vocab)], metrics)`` from a vectors
    file: each token's own vector, else its lower case's (GloVe's common files are lower case)."""
    try:
        words = KeyedVectors.load_word2vec_format(path, binary=False, no_header=not has_header(path))
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as error:
        raise StageError(f"{path}: not a GloVe .txt or fastText .vec file ({error})") from None
    vectors = np.zeros((len(vocab), words.vector_size), np.float32)
    known = np.zeros(len(vocab), bool)
    for token_id, token in enumerate(vocab[len(SPECIALS) :], len(SPECIALS)):
        for form in (token, token.lower()):
            if form in words.key_to_index:
                vectors[token_id], known[token_id] = words[form], True
                break
    metrics = {
        "vocab_coverage": coverage(known),
        "vectors_file_words": len(words),
    }
    return vectors, known, metrics


def check_width(path: Path, width: int, params: PretrainParams) -> None:
    """The file's vectors must fill ``vector_size`` (kind vectors) or leave word2vec some of it."""
    if params.kind == "vectors" and width != params.vector_size:
        raise StageError(
            f"{path} holds {width}-dimensional vectors: set pretrain.vector_size and train.embedding_dim to {width}"
        )
    if params.kind == "word2vec+vectors" and width >= params.vector_size:
        raise StageError(
            f"{path} holds {width}-dimensional vectors and pretrain.vector_size is {params.vector_size}: "
            "with kind word2vec+vectors word2vec learns the dimensions past the file's, so set it higher"
        )


def side_by_side(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of the same ids joined column-wise, each part first scaled to unit spread (so that
    neither dwarfs the other); a token one part lacks gets zeros there, and is known if any part knows it."""
    scaled = [vectors / (vectors[known].std() if known.any() else 1.0) for vectors, known in parts]
    return np.concatenate(scaled, axis=1).astype(np.float32), np.logical_or.reduce([known for _, known in parts])


def stream_ids(files: list[Path], vocab: list[str]) -> np.ndarray:
    """Every text's token ids, one text after another, as one int32 array."""
    parts = []
    for path in files:
        with reading(path):
            for batch in parquet_batches(path, BATCH_ROWS, columns=["tokens"]):
                tokens = pl.from_arrow(batch).select(token_ids(pl.col("tokens"), vocab).explode())
                parts.append(tokens.to_series().drop_nulls().to_numpy())
    return np.concatenate(parts) if parts else np.zeros(0, np.int32)


def language_model(files: list[Path], vocab: list[str], params: PretrainParams) -> dict:
    """Train the language model and save its weights; returns its metrics."""
    ids = stream_ids(files, vocab)
    if len(ids) < 2 * (params.bptt + 1):
        raise StageError(f"{len(ids)} tokens of text are too few to train a language model (pretrain.kind: lm)")
    model, perplexities = train_language_model(ids, len(vocab), params, pick_device("auto"))
    save_language_model(model.transferable())
    return {"corpus_words": len(ids)} | {f"perplexity_epoch_{i}": round(p, 3) for i, p in enumerate(perplexities, 1)}


def file_vectors(params: PretrainParams, vocab: list[str]) -> tuple[np.ndarray, np.ndarray, dict, str]:
    """``read_vectors``' answer for ``pretrain.vectors``' file, and a line that says what it gave."""
    path = vectors_file(Path(params.vectors))
    read, known, metrics = read_vectors(path, vocab)
    check_width(path, read.shape[1], params)
    line = (
        f"{read.shape[1]}-dimensional vectors from {path.name} ({metrics['vectors_file_words']:,} words) "
        f"for {metrics['vocab_coverage']:.2%} of the vocabulary"
    )
    return read, known, metrics, line


def auto_kind(sentences: TokenLists, params: PretrainParams) -> str:
    """``word2vec+vectors`` when the text is small and ``pretrain.vectors`` holds a file, else
    ``word2vec``: word2vec learns little from small text, and general vectors beside it then help;
    on text of millions of words its own vectors did as well alone (benchmarks/RESULTS.md)."""
    words = sentences.words()
    if words >= params.small_text_words:
        print(f"pretrain: {words:,} words of text, at least pretrain.small_text_words: word2vec alone")
        return "word2vec"
    location = Path(params.vectors)
    if location.is_dir() and not vectors_in(location):
        print(
            f"pretrain: warning: {words:,} words of text are few for word2vec alone and {location} holds no vectors "
            "file, so word2vec learns all the vectors (put a GloVe .txt or fastText .vec file there to add "
            "general-purpose vectors beside them)",
            file=sys.stderr,
        )
        return "word2vec"
    print(f"pretrain: {words:,} words of text, under pretrain.small_text_words: the file's vectors beside word2vec's")
    return "word2vec+vectors"


def main() -> None:
    params, _ = stage_params(__doc__)
    pretrain = params.pretrain
    source = paths.TOKENS_DIR / "train.parquet"
    if not source.exists():
        raise StageError(f"{source}: not found (run the clean stage first: dvc repro clean)")
    vocab = load_vocab(paths.VOCAB_FILE)
    if pretrain.kind == "vectors":
        read, read_known, read_metrics, from_file = file_vectors(pretrain, vocab)
        save_vectors(read, read_known)
        write_json(paths.METRICS_DIR / "pretrain.json", read_metrics)
        print(f"pretrain: {from_file}")
        return
    extra_files = extra_text_files(Path(pretrain.extra_text))
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "extra.parquet"
        extra_rows = tokenize_extra_text(extra_files, extra, params.clean, params.tokenize, params.data.max_chars)
        if pretrain.kind == "lm":
            metrics = language_model([source, extra], vocab, pretrain)
        else:
            sentences = TokenLists(source, extra)
            if pretrain.kind == "auto":
                pretrain = pretrain.model_copy(update={"kind": auto_kind(sentences, pretrain)})
            learned = pretrain.vector_size
            if pretrain.kind == "word2vec+vectors":
                read, read_known, read_metrics, from_file = file_vectors(pretrain, vocab)
                learned -= read.shape[1]
            vectors, known, metrics = word2vec(sentences, vocab, pretrain.model_copy(update={"vector_size": learned}))
            if pretrain.kind == "word2vec+vectors":
                vectors, known = side_by_side((read, read_known), (vectors, known))
                metrics |= {
                    "vectors_file_coverage": read_metrics["vocab_coverage"],
                    "vectors_file_words": read_metrics["vectors_file_words"],
                }
            save_vectors(vectors, known)
    metrics.update(extra_files=len(extra_files), extra_texts=extra_rows)
    write_json(paths.METRICS_DIR / "pretrain.json", metrics)
    corpus = f"from {metrics['corpus_words']} tokens (train split and {extra_rows} extra texts)"
    if pretrain.kind == "lm":
        first, last = metrics["perplexity_epoch_1"], metrics[f"perplexity_epoch_{pretrain.epochs}"]
        print(f"pretrain: a language model {corpus}; training perplexity {first:.1f} -> {last:.1f}")
        return
    if pretrain.kind == "word2vec+vectors":
        print(f"pretrain: {from_file}, then")
    print(
        f"pretrain: {pretrain.method} vectors of {learned} for {metrics['vocab_coverage']:.2%} of the vocabulary, "
        f"{corpus}; loss per word {metrics['loss_first_epoch']:.4f} -> {metrics['loss_last_epoch']:.4f}"
    )


if __name__ == "__main__":
    run_main(main)
