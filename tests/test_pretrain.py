"""The pretrain stage: word2vec vectors aligned to vocabulary ids, the same bytes in every process,
general-purpose vectors read from GloVe and fastText files, and a classifier that starts from them."""

import bz2
import gzip
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import torch

from pipeline.core.cli import StageError
from pipeline.core.params import CleanParams, PretrainParams, TokenizeParams, TrainParams
from pipeline.data.pretrained import load_pretrained, save_vectors
from pipeline.model.language_model import LanguageModel, train_language_model
from pipeline.model.network import LSTMClassifier, ModelConfig, start_embedding, start_from
from pipeline.pretrain import (
    check_width,
    extra_text_files,
    read_vectors,
    side_by_side,
    tokenize_extra_text,
    vectors_file,
    word2vec,
)
from pipeline.train import train_model
from tests.conftest import REPO
from tests.test_train import small_run

ANIMALS = ["cat", "dog", "horse", "cow"]
TOOLS = ["hammer", "saw", "drill", "wrench"]


def topic_corpus(rows: int, seed: int = 0) -> list[list[str]]:
    """Sentences about animals or about tools, never both: word2vec must put each group together."""
    rng = np.random.default_rng(seed)
    return [list(rng.choice(ANIMALS if rng.random() < 0.5 else TOOLS, 8)) for _ in range(rows)]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_vectors_are_aligned_to_vocabulary_ids():
    # ids in an order unrelated to the corpus; "unseen" is in the vocabulary but not the corpus
    vocab = ["<pad>", "<unk>", "saw", "cat", "unseen", "drill", "cow", "hammer", "dog", "wrench", "horse"]
    params = PretrainParams(vector_size=16, epochs=20)
    vectors, known, metrics = word2vec(topic_corpus(400), vocab, params)
    assert vectors.shape == (11, 16) and vectors.dtype == np.float32
    assert known.tolist() == [False, False, True, True, False, True, True, True, True, True, True]
    assert not vectors[~known].any()  # no vector: zeros
    ids = {token: i for i, token in enumerate(vocab)}
    for group, other in ((ANIMALS, TOOLS), (TOOLS, ANIMALS)):
        inside = np.mean([cosine(vectors[ids[a]], vectors[ids[b]]) for a in group for b in group if a != b])
        across = np.mean([cosine(vectors[ids[a]], vectors[ids[b]]) for a in group for b in other])
        assert inside > across + 0.3, (inside, across)
    assert metrics["vocab_coverage"] == pytest.approx(8 / 9, abs=1e-6) and metrics["corpus_words"] == 3200
    assert metrics["loss_last_epoch"] < metrics["loss_first_epoch"]


def test_the_stage_writes_the_same_bytes_in_every_process(tmp_path):
    (tmp_path / "data" / "interim" / "tokens").mkdir(parents=True)
    (tmp_path / "data" / "processed").mkdir(parents=True)
    pl.DataFrame({"label": [1] * 300, "tokens": topic_corpus(300)}).write_parquet(
        tmp_path / "data" / "interim" / "tokens" / "train.parquet"
    )
    vocab = ["<pad>", "<unk>", *ANIMALS, *TOOLS]
    (tmp_path / "data" / "processed" / "vocab.json").write_text(json.dumps({"tokens": vocab}))
    (tmp_path / "params.yaml").write_text("pretrain:\n  vector_size: 8\n  epochs: 2\n")
    (tmp_path / "data" / "extra").mkdir()
    (tmp_path / "data" / "extra" / "README.md").write_text("cat dog horse cow")  # not a text file: skipped
    digests = []
    for hash_seed in ("1", "2"):  # Python's str hash differs between these processes
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.pretrain"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert "pretrain: skipgram vectors of 8 for 100.00% of the vocabulary" in result.stdout
        outputs = sorted((tmp_path / "data" / "processed" / "pretrained").iterdir())
        digests.append({path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in outputs})
    assert digests[0] == digests[1] and set(digests[0]) == {"word2vec.npy", "word2vec_known.npy"}


GLOVE = {"the": [0.5, -1.0, 2.0], "good": [1.0, 2.0, 3.0], "great": [1.5, 2.5, 3.5], "bad": [-1.0, -2.0, -3.0]}


def write_glove(path, words=GLOVE):
    """GloVe's text format: one "word v1 v2 ..." line per word, no header."""
    path.write_text("".join(f"{word} {' '.join(map(str, vector))}\n" for word, vector in words.items()))


def write_fasttext(path, words=GLOVE):
    """fastText's .vec format, gzipped: a "<words> <dimensions>" header, then GloVe's lines."""
    lines = [f"{len(words)} 3\n"] + [f"{word} {' '.join(map(str, vector))}\n" for word, vector in words.items()]
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.writelines(lines)


def test_vectors_files_give_each_vocabulary_id_its_row(tmp_path):
    vocab = ["<pad>", "<unk>", "bad", "Good", "unseen", "the", "great"]  # "Good": the file has only "good"
    write_glove(tmp_path / "glove.txt")
    write_fasttext(tmp_path / "wiki.vec.gz", {**GLOVE, "Good": [9.0, 9.0, 9.0]})
    vectors, known, metrics = read_vectors(tmp_path / "glove.txt", vocab)
    assert vectors.dtype == np.float32 and known.tolist() == [False, False, True, True, False, True, True]
    np.testing.assert_array_equal(vectors[[2, 3, 5, 6]], [GLOVE["bad"], GLOVE["good"], GLOVE["the"], GLOVE["great"]])
    assert not vectors[~known].any()
    assert metrics == {"vocab_coverage": 0.8, "vectors_file_words": 4}
    cased, _, metrics = read_vectors(tmp_path / "wiki.vec.gz", vocab)  # the token as it is comes first
    assert cased[3].tolist() == [9.0, 9.0, 9.0] and np.array_equal(cased[[2, 5, 6]], vectors[[2, 5, 6]])
    assert metrics["vectors_file_words"] == 5


def test_vectors_files_that_do_not_fit_stop_with_one_line(tmp_path):
    write_glove(tmp_path / "glove.txt")
    with pytest.raises(StageError) as error:
        check_width(tmp_path / "glove.txt", 3, PretrainParams(kind="vectors", vector_size=50))
    assert str(error.value) == (
        f"{tmp_path / 'glove.txt'} holds 3-dimensional vectors: set pretrain.vector_size and train.embedding_dim to 3"
    )
    with pytest.raises(StageError, match="vector_size is 3: with kind word2vec.vectors word2vec learns the dim"):
        check_width(tmp_path / "glove.txt", 3, PretrainParams(kind="word2vec+vectors", vector_size=3))
    check_width(tmp_path / "glove.txt", 3, PretrainParams(kind="word2vec+vectors", vector_size=4))
    (tmp_path / "ragged.txt").write_text("good 1.0 2.0 3.0\nbad 1.0 two 3.0\n")
    with pytest.raises(StageError, match=r"ragged.txt: not a GloVe .txt or fastText .vec file \("):
        read_vectors(tmp_path / "ragged.txt", ["<pad>", "<unk>", "good"])
    assert vectors_file(tmp_path / "glove.txt") == tmp_path / "glove.txt"
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "README.md").write_text("not vectors")
    write_fasttext(tmp_path / "one" / "cc.en.vec.gz")
    assert vectors_file(tmp_path / "one") == tmp_path / "one" / "cc.en.vec.gz"
    write_glove(tmp_path / "one" / "glove.txt")
    with pytest.raises(
        StageError, match=r"one: holds 2 vectors files, not one \(pretrain.kind vectors and word2vec.vectors read"
    ):
        vectors_file(tmp_path / "one")
    with pytest.raises(
        StageError, match=r"missing: not found \(pretrain.kind vectors and word2vec.vectors read pretrain.vectors"
    ):
        vectors_file(tmp_path / "missing")


def test_side_by_side_scales_each_part_and_knows_a_token_either_part_knows():
    file_part = (np.array([[0, 0], [2, 4], [0, 0]], np.float32), np.array([False, True, False]))
    learned = (np.array([[0], [0.1], [0.3]], np.float32), np.array([False, True, True]))
    vectors, known = side_by_side(file_part, learned)
    assert known.tolist() == [False, True, True] and vectors.shape == (3, 3)
    np.testing.assert_allclose(vectors[1:, :2], [[2 / 1.0, 4 / 1.0], [0, 0]])  # std of [2, 4]: 1
    np.testing.assert_allclose(vectors[1:, 2], [1.0, 3.0])  # std of [0.1, 0.3]: 0.1


def test_the_vectors_stage_writes_what_train_starts_from(tmp_path, monkeypatch):
    (tmp_path / "data" / "interim" / "tokens").mkdir(parents=True)
    (tmp_path / "data" / "processed").mkdir(parents=True)
    pl.DataFrame({"label": [1], "tokens": [["good", "film"]]}).write_parquet(
        tmp_path / "data" / "interim" / "tokens" / "train.parquet"
    )
    vocab = ["<pad>", "<unk>", "good", "film", "bad"]
    (tmp_path / "data" / "processed" / "vocab.json").write_text(json.dumps({"tokens": vocab}))
    write_glove(tmp_path / "glove.txt")
    (tmp_path / "params.yaml").write_text(
        f"pretrain:\n  kind: vectors\n  vectors: {tmp_path / 'glove.txt'}\n  vector_size: 3\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.pretrain"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "pretrain: 3-dimensional vectors from glove.txt (4 words) for 66.67% of the vocabulary\n"
    assert json.loads((tmp_path / "metrics" / "pretrain.json").read_text()) == {
        "vocab_coverage": 0.666667,
        "vectors_file_words": 4,
    }
    monkeypatch.chdir(tmp_path)
    start = load_pretrained(TrainParams(init="word2vec", embedding_dim=3), len(vocab))
    np.testing.assert_array_equal(start[[2, 4]], [GLOVE["good"], GLOVE["bad"]])
    assert np.isnan(start[[0, 1, 3]]).all()  # no vector: the embedding keeps its random start there

    # word2vec+vectors: the file's 3 dimensions, then word2vec's 5 learned on the text
    (tmp_path / "data" / "extra").mkdir()
    (tmp_path / "params.yaml").write_text(
        f"pretrain:\n  kind: word2vec+vectors\n  vectors: {tmp_path / 'glove.txt'}\n  vector_size: 8\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.pretrain"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "pretrain: 3-dimensional vectors from glove.txt (4 words) for 66.67% of the vocabulary, then\n"
        "pretrain: skipgram vectors of 5 for 66.67% of the vocabulary, from 2 tokens"
    )
    both = load_pretrained(TrainParams(init="word2vec", embedding_dim=8), len(vocab))
    np.testing.assert_allclose(both[[2, 4], :3], start[[2, 4]] / start[[2, 4]].std(), rtol=1e-6)
    assert np.isnan(both[[0, 1]]).all() and not np.isnan(both[[2, 3]]).any()
    assert not both[4, 3:].any()  # "bad" is not in the text: word2vec's part is zeros
    metrics = json.loads((tmp_path / "metrics" / "pretrain.json").read_text())
    assert metrics["vectors_file_coverage"] == 0.666667 and metrics["vectors_file_words"] == 4

    # auto: the same side by side when the text (2 words) is under pretrain.small_text_words ...
    def auto(vectors, small_text_words):
        (tmp_path / "params.yaml").write_text(
            f"pretrain:\n  kind: auto\n  vectors: {vectors}\n  vector_size: 8\n  small_text_words: {small_text_words}\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.pretrain"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result, load_pretrained(TrainParams(init="word2vec", embedding_dim=8), len(vocab))

    result, small = auto(tmp_path / "glove.txt", 3)
    assert result.stdout.startswith(
        "pretrain: 2 words of text, under pretrain.small_text_words: the file's vectors beside word2vec's\n"
        "pretrain: 3-dimensional vectors from glove.txt"
    )
    np.testing.assert_array_equal(small, both)
    # ... word2vec alone at or over it ...
    result, large = auto(tmp_path / "glove.txt", 2)
    assert result.stdout.startswith(
        "pretrain: 2 words of text, at least pretrain.small_text_words: word2vec alone\n"
        "pretrain: skipgram vectors of 8 for 66.67% of the vocabulary"
    )
    assert "vectors_file_words" not in json.loads((tmp_path / "metrics" / "pretrain.json").read_text())
    # ... and alone, with a warning, when the text is small but the folder holds no vectors file
    result, fallback = auto(tmp_path / "data" / "extra", 3)
    assert "holds no vectors file, so word2vec learns all the vectors" in result.stderr
    np.testing.assert_array_equal(fallback, large)


def test_extra_text_is_cleaned_tokenized_and_widens_what_the_vectors_cover(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = tmp_path / "data" / "extra"
    (extra / "more").mkdir(parents=True)
    (extra / "README.md").write_text("not read\n")
    fasttext_lines = b"\xef\xbb\xbf__label__2 A Saw, a DRILL!\n__label__1 <b>Cow</b>\n"  # opens with a BOM
    (extra / "reviews.ft.txt.bz2").write_bytes(bz2.compress(fasttext_lines))
    (extra / "more" / "plain.txt").write_bytes(b"wrench   hammer\r\n\n\xff\xfe broken\nit's 42\n")
    files = extra_text_files(extra)
    assert [path.relative_to(extra).as_posix() for path in files] == ["more/plain.txt", "reviews.ft.txt.bz2"]
    rows = tokenize_extra_text(files, tmp_path / "extra.parquet", CleanParams(), TokenizeParams(), 100_000)
    tokens = pl.read_parquet(tmp_path / "extra.parquet")["tokens"].to_list()
    # the empty line and the line that is not UTF-8 are skipped; fastText labels are dropped (after a BOM too)
    assert tokens == [["wrench", "hammer"], ["it", "'s", "00"], ["a", "saw", ",", "a", "drill", "!"], ["cow"]]
    assert rows == 4
    assert extra_text_files(extra / "more" / "plain.txt") == [extra / "more" / "plain.txt"]
    with pytest.raises(StageError) as error:
        extra_text_files(tmp_path / "missing")
    assert str(error.value) == (
        f"{tmp_path / 'missing'}: not found (pretrain.extra_text names a file or a folder of text files)"
    )

    # "wrench" is only in the extra text: with it, the vocabulary's every word gets a vector
    vocab = ["<pad>", "<unk>", *ANIMALS, *TOOLS]
    corpus = [sentence for sentence in topic_corpus(300) if "wrench" not in sentence]
    params = PretrainParams(vector_size=8, epochs=2)
    known_without = word2vec(corpus, vocab, params)[1]
    known_with = word2vec(corpus + tokens, vocab, params)[1]
    assert not known_without[vocab.index("wrench")] and known_with[2:].all()


def test_start_embedding_copies_known_rows_rescaled_and_keeps_the_others():
    torch.manual_seed(0)
    model = LSTMClassifier(ModelConfig(vocab_size=5, embedding_dim=4))
    before = model.embedding.weight.detach().clone()
    vectors = np.arange(20, dtype=np.float32).reshape(5, 4) / 10
    vectors[[0, 1, 3]] = np.nan  # <pad>, <unk> and a token word2vec did not keep
    start_embedding(model, vectors)
    after = model.embedding.weight.detach()
    known = vectors[[2, 4]]
    np.testing.assert_allclose(after[[2, 4]].numpy(), known / known.std(), rtol=1e-6)
    assert torch.equal(after[[0, 1, 3]], before[[0, 1, 3]])


def test_training_starts_from_the_pretrained_vectors(tmp_path):
    train, val, config, params = small_run(lr=0.0, epochs=1)  # lr 0: the start is the end
    vectors = np.random.default_rng(0).normal(size=(config.vocab_size, config.embedding_dim)).astype(np.float32)
    vectors[:2] = np.nan
    pretrained = train_model(train, val, config, params.model_copy(update={"init": "word2vec"}), pretrained=vectors)[0]
    random = train_model(train, val, config, params)[0]
    embedding = pretrained.embedding.weight.detach().numpy()
    np.testing.assert_allclose(embedding[2:], vectors[2:] / vectors[2:].std(), rtol=1e-5)
    assert not np.allclose(embedding[2:], random.embedding.weight.detach().numpy()[2:])
    assert torch.equal(pretrained.forward_layers[0].weight_ih_l0, random.forward_layers[0].weight_ih_l0)


def test_load_pretrained_says_what_to_do_when_the_vectors_do_not_fit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = TrainParams(init="word2vec", embedding_dim=8)
    with pytest.raises(StageError, match=r"word2vec.npy: not found \(train.init: word2vec needs pretrain.kind"):
        load_pretrained(params, 10)
    save_vectors(np.ones((10, 4), np.float32), np.ones(10, bool))
    with pytest.raises(StageError) as error:
        load_pretrained(params, 10)
    assert str(error.value) == (
        "train.embedding_dim is 8 but the pretrain stage's vectors have 4 dimensions: "
        "set pretrain.vector_size to the same value"
    )
    with pytest.raises(StageError, match="cover 10 tokens, the vocabulary 12: re-run the pretrain stage"):
        load_pretrained(params.model_copy(update={"embedding_dim": 4}), 12)
    assert load_pretrained(TrainParams(), 10) is None
    loaded = load_pretrained(params.model_copy(update={"embedding_dim": 4}), 10)
    assert loaded.shape == (10, 4) and not np.isnan(loaded).any()


def counting_corpus(texts: int, vocab_size: int, seed: int = 0) -> list[list[str]]:
    """Texts that count up from a random word (w3 w4 w5 ...; after the last word, the first):
    after the first word each next word, and before it each previous one, is certain."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(2, vocab_size)]
    return [[words[(start + k) % len(words)] for k in range(12)] for start in rng.integers(0, len(words), texts)]


def lm_params(**overrides) -> PretrainParams:
    settings = dict(kind="lm", vector_size=8, hidden_size=16, bptt=12, batch_size=8, epochs=4, lr=0.02, dropout=0.0)
    return PretrainParams(**(settings | overrides))


def test_the_language_model_learns_the_text_in_both_directions():
    vocab_size = 20
    ids = np.array([int(word[1:]) for text in counting_corpus(200, vocab_size) for word in text], np.int32)
    model, perplexities = train_language_model(ids, vocab_size, lm_params(epochs=10), torch.device("cpu"))
    # 18 words: a model that learned nothing sits near perplexity 18; one that counts, near 1.3 (each
    # text starts at random: 1 word in 12 cannot be foreseen)
    assert perplexities[0] > 5 and perplexities[-1] < 1.8, perplexities
    model.eval()
    with torch.no_grad():
        sequence = torch.tensor([[5, 6, 7, 8, 9]])
        for direction, inputs, target in ((0, sequence, 10), (1, sequence.flip(1), 4)):
            out, _ = model.directions()[direction](model.embedding(inputs))
            assert model.heads[direction].predict(out[:, -1]).item() == target
    weights = model.transferable()
    config = ModelConfig(vocab_size=vocab_size, embedding_dim=8, hidden_sizes=(16, 4), bidirectional=True)
    classifier = LSTMClassifier(config)
    assert set(weights) <= set(classifier.state_dict())
    assert {"embedding.weight", "forward_layers.0.weight_hh_l0", "backward_layers.0.bias_ih_l0"} <= set(weights)


def test_a_frozen_or_slower_pretrained_start_moves_less_than_the_rest():
    train, val, config, params = small_run(lr=0.03, epochs=4)  # learns: the best weights are late ones
    weights = LanguageModel(config.vocab_size, lm_params(hidden_size=8, bidirectional=False)).transferable()

    def moved(**options) -> dict[str, float]:
        """How far each parameter ended from its pretrained start (the head: from 0)."""
        options["init"] = "lm"
        model = train_model(train, val, config, params.model_copy(update=options), pretrained=weights)[0]
        state = model.state_dict()
        return {name: float(np.abs(state[name].numpy() - weights.get(name, 0)).max()) for name in state}

    frozen = moved(freeze_pretrained_epochs=4)  # frozen for the whole run: the start is the end
    assert frozen["embedding.weight"] == 0 and frozen["forward_layers.0.weight_ih_l0"] == 0
    assert moved(freeze_pretrained_epochs=1)["embedding.weight"] > 0  # learns from the second epoch
    plain, slower = moved(), moved(pretrained_lr_factor=0.1)
    assert 0 < slower["forward_layers.0.weight_hh_l0"] < plain["forward_layers.0.weight_hh_l0"] / 3
    assert slower["head.weight"] > 0


def test_training_starts_from_the_language_model_and_says_when_it_does_not_fit():
    train, val, config, params = small_run(lr=0.0, epochs=1)  # lr 0: the start is the end
    forward_only = lm_params(vector_size=config.embedding_dim, hidden_size=8, bidirectional=False)
    lm = LanguageModel(config.vocab_size, forward_only)
    weights = lm.transferable()
    started = train_model(train, val, config, params.model_copy(update={"init": "lm"}), pretrained=weights)[0]
    random = train_model(train, val, config, params)[0]
    for name, array in weights.items():
        assert np.array_equal(started.state_dict()[name].numpy(), array), name
        assert not np.array_equal(random.state_dict()[name].numpy(), array), name
    assert torch.equal(started.head.weight, random.head.weight)  # not in the language model: its random start

    with pytest.raises(StageError) as error:
        start_from(LSTMClassifier(ModelConfig(vocab_size=10, embedding_dim=8, hidden_sizes=(12,))), weights)
    assert str(error.value) == (
        "the language model's forward_layers.0.weight_ih_l0 is [32, 8], the classifier's [48, 8]: set "
        "pretrain.vector_size to train.embedding_dim and pretrain.hidden_size to the first train.hidden_size "
        "(then dvc repro pretrain)"
    )
    with pytest.raises(StageError) as error:
        bidirectional = ModelConfig(vocab_size=10, embedding_dim=8, hidden_sizes=(8,), bidirectional=True)
        start_from(LSTMClassifier(bidirectional), weights)
    assert str(error.value) == (
        "train.bidirectional is true but the language model reads forward only: "
        "set pretrain.bidirectional: true (then dvc repro pretrain)"
    )


def test_the_lm_stage_writes_the_same_bytes_every_run_and_train_reads_them(tmp_path, monkeypatch):
    (tmp_path / "data" / "interim" / "tokens").mkdir(parents=True)
    (tmp_path / "data" / "processed").mkdir(parents=True)
    (tmp_path / "data" / "extra").mkdir()
    texts = counting_corpus(60, 12)
    pl.DataFrame({"label": [1] * 60, "tokens": texts}).write_parquet(
        tmp_path / "data" / "interim" / "tokens" / "train.parquet"
    )
    vocab = ["<pad>", "<unk>", *[f"w{i}" for i in range(2, 11)]]  # w11 is not in it: <unk>
    (tmp_path / "data" / "processed" / "vocab.json").write_text(json.dumps({"tokens": vocab}))
    (tmp_path / "params.yaml").write_text(
        "pretrain:\n  kind: lm\n  vector_size: 8\n  hidden_size: 8\n  bptt: 10\n  batch_size: 4\n  epochs: 2\n"
    )
    digests = []
    for _ in range(2):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.pretrain"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert "pretrain: a language model from 720 tokens (train split and 0 extra texts); training perplexity" in (
            result.stdout
        )
        digests.append(hashlib.sha256((tmp_path / "data/processed/pretrained/lm.npz").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    metrics = json.loads((tmp_path / "metrics" / "pretrain.json").read_text())
    assert metrics["corpus_words"] == 720 and metrics["perplexity_epoch_2"] < metrics["perplexity_epoch_1"]

    monkeypatch.chdir(tmp_path)
    params = TrainParams(init="lm", embedding_dim=8, hidden_size=8, bidirectional=True)
    weights = load_pretrained(params, len(vocab))
    assert weights["embedding.weight"].shape == (11, 8) and "backward_layers.0.weight_hh_l0" in weights
    with pytest.raises(StageError, match="covers 11 tokens, the vocabulary 12: re-run the pretrain stage"):
        load_pretrained(params, 12)
    with pytest.raises(StageError, match=r"word2vec.npy: not found \(train.init: word2vec needs pretrain.kind"):
        load_pretrained(params.model_copy(update={"init": "word2vec"}), len(vocab))
