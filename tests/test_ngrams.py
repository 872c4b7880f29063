"""The n-gram model and its blend with the LSTM: what it learns, that raw text scores as the
stage's tokens do, how the blend weight is chosen, and that every way of scoring returns the blend."""

import numpy as np
import polars as pl
import pytest
import torch

from pipeline.clean import tokenize
from pipeline.core.params import EvaluateParams, Params
from pipeline.data.text import Preprocessing
from pipeline.evaluate import blended, check_raw_text_path, score_test_split
from pipeline.model.inference import Predictor
from pipeline.model.model_file import load_model_file, save_model_file
from pipeline.model.network import LSTMClassifier, ModelConfig
from pipeline.model.ngrams import (
    BLEND_GRID,
    NgramModel,
    blend,
    blend_on_validation,
    choose_blend_weight,
    fit_ngram_model,
    hashed_ngrams,
    log_loss,
)
from tests.test_predict import TEXTS, VOCAB, pyfunc_predictions


def negation_reviews(rows: int, seed: int) -> tuple[list[list[str]], np.ndarray]:
    """Filler words around "good" or "bad", half of them negated ("not good" is negative): no
    weighting of single words tells the classes apart, pairs of words do."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(50)]
    reviews, labels = [], []
    for _ in range(rows):
        word, negated = rng.choice(["good", "bad"]), rng.random() < 0.5
        phrase = ["not", word] if negated else [word]
        words = list(rng.choice(filler, 4)) + phrase + list(rng.choice(filler, 4))
        if not negated:
            words.insert(int(rng.integers(0, 4)), "not")  # "not" away from the word: its count says nothing
        reviews.append(words)
        labels.append(int((word == "good") != negated))
    return reviews, np.array(labels)


def accuracy(model: NgramModel, reviews, labels) -> float:
    return float(np.mean((model.probabilities(reviews) >= 0.5) == labels))


def test_bigrams_learn_negation_that_single_words_cannot():
    train, train_labels = negation_reviews(2000, seed=1)
    test, test_labels = negation_reviews(500, seed=2)
    unigrams, _ = fit_ngram_model(train, train_labels, 1, 2**16, 1.0, 1000)
    bigrams, converged = fit_ngram_model(train, train_labels, 2, 2**16, 1.0, 1000)
    assert converged
    assert accuracy(bigrams, test, test_labels) >= 0.98
    assert accuracy(unigrams, test, test_labels) <= 0.7  # chance is 0.5


def test_a_reviews_probability_does_not_depend_on_the_others_scored_with_it():
    train, labels = negation_reviews(500, seed=3)
    model, _ = fit_ngram_model(train, labels, 3, 2**12, 1.0, 1000)
    together = model.probabilities(train[:50])
    alone = np.array([model.probabilities([review])[0] for review in train[:50]])
    np.testing.assert_array_equal(together, alone)
    assert hashed_ngrams([["a", "b"]], 2, 2**12).nnz == 3  # a, b and "a b"


def test_raw_text_scores_as_the_clean_stages_tokens_do():
    params = Params()
    reviews = pl.DataFrame({"label": [1, 0, 1, 0, 1], "text": [" ".join(t.splitlines()).strip() for t in TEXTS]})
    stage_tokens = tokenize(reviews, params.clean, params.tokenize)["tokens"].to_list()
    model, _ = fit_ngram_model(stage_tokens, reviews["label"].to_numpy(), 3, 2**12, 1.0, 1000)
    preprocessing = Preprocessing(params.clean, params.tokenize, 12, "keep_last", "left")
    raw = model.probabilities(preprocessing.token_series(TEXTS).to_list())
    np.testing.assert_array_equal(raw, model.probabilities(stage_tokens))
    assert len(np.unique(raw)) == 5  # five different reviews, five different answers


def test_blend_weight_zero_is_the_lstm_bit_for_bit_and_one_is_the_n_gram_model():
    rng = np.random.default_rng(0)
    lstm, ngrams = rng.random(100, dtype=np.float32), rng.random(100)
    assert blend(lstm, ngrams, 0.0) is lstm
    np.testing.assert_array_equal(blend(lstm, ngrams, 1.0), ngrams.astype(np.float32))
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    expected = 1 / (1 + np.exp(-(0.75 * logit(lstm.astype(np.float64)) + 0.25 * logit(ngrams))))
    np.testing.assert_allclose(blend(lstm, ngrams, 0.25), expected, rtol=1e-6)


def test_the_weight_goes_to_the_part_that_knows_and_between_when_both_do():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000).astype(np.float64)
    knowing = lambda: np.clip(np.where(labels == 1, 0.8, 0.2) + rng.normal(0, 0.15, 4000), 0.01, 0.99)  # noqa: E731
    noise = rng.random(4000)
    assert choose_blend_weight(labels, noise.astype(np.float32), knowing()) >= 0.9
    assert choose_blend_weight(labels, knowing().astype(np.float32), noise) <= 0.1
    both = blend_on_validation(labels, knowing().astype(np.float32), knowing(), 0.5)
    assert 0.3 <= both["blend_weight"] <= 0.7  # independent errors of equal size: near half each
    assert set(both) == {"blend_weight", "blend_val_loss", "blend_val_accuracy"}


def test_a_validation_split_too_small_to_tell_weights_apart_keeps_them_equal():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 80).astype(np.float64)
    signal = np.where(labels == 1, 0.75, 0.25)
    lstm = np.clip(signal + rng.normal(0, 0.1, 80), 0.01, 0.99).astype(np.float32)
    ngrams = np.clip(signal + rng.normal(0, 0.2, 80), 0.01, 0.99)
    losses = [log_loss(labels, blend(lstm, ngrams, w)) for w in BLEND_GRID]
    lowest = float(BLEND_GRID[int(np.argmin(losses))])
    assert lowest < 0.4  # the lowest loss alone would lean on the LSTM
    assert choose_blend_weight(labels, lstm, ngrams) == 0.5  # but 80 reviews cannot tell it from 0.5
    many = np.repeat(labels, 100), np.repeat(lstm, 100), np.repeat(ngrams, 100)
    assert lowest <= choose_blend_weight(*many) < 0.5  # 8,000 can: the same lean, nearer its lowest loss


def model_files(tmp_path, weight: float):
    """The same LSTM saved alone and with an n-gram model at ``weight``."""
    torch.manual_seed(0)
    lstm = LSTMClassifier(ModelConfig(vocab_size=len(VOCAB), embedding_dim=8, hidden_sizes=(8,), pad="left"))
    params = Params()
    preprocessing = Preprocessing(params.clean, params.tokenize, 12, "keep_last", "left")
    tokens = preprocessing.token_series(TEXTS).to_list()
    ngrams, _ = fit_ngram_model(tokens, np.array([1, 0, 1, 0, 1]), 3, 2**12, 1.0, 1000)
    save_model_file(tmp_path / "lstm.pt", lstm, VOCAB, preprocessing, 0.5)
    save_model_file(tmp_path / "blend.pt", lstm, VOCAB, preprocessing, 0.5, ngrams, weight)
    return tmp_path / "lstm.pt", tmp_path / "blend.pt"


def test_the_predictor_returns_the_blend_and_at_weight_zero_the_lstm_alone(tmp_path):
    lstm_path, blend_path = model_files(tmp_path, 0.6)
    lstm = Predictor.from_path(lstm_path).probabilities(TEXTS)
    predictor = Predictor.from_path(blend_path)
    ngrams = predictor.file.ngrams.probabilities(predictor.file.preprocessing.token_series(TEXTS).to_list())
    np.testing.assert_allclose(predictor.probabilities(TEXTS), blend(lstm, ngrams, 0.6), rtol=1e-6)
    assert not np.allclose(blend(lstm, ngrams, 0.6), 0.4 * lstm + 0.6 * ngrams, atol=1e-4)  # logits, not probabilities
    assert not np.allclose(lstm, ngrams, atol=1e-3)  # the two parts differ: the blend is seen

    _, at_zero = model_files(tmp_path, 0.0)
    np.testing.assert_array_equal(Predictor.from_path(at_zero).probabilities(TEXTS), lstm)


def test_evaluate_the_predictor_and_the_mlflow_model_give_the_same_blend(tmp_path):
    _, blend_path = model_files(tmp_path, 0.6)
    model_file = load_model_file(blend_path)
    ids, lengths = model_file.preprocessing.encode(TEXTS, model_file.vocab)
    labels = np.array([1, 0, 1, 0, 1])
    lstm = score_test_split(model_file, ids, labels, lengths, EvaluateParams())
    by_evaluate, parts = blended(model_file, lstm, TEXTS, labels)
    assert parts["blend_weight"] == 0.6 and {"lstm_accuracy", "ngram_accuracy"} <= set(parts)
    assert parts["ngram_accuracy"] == 1.0  # fitted on these very reviews
    check_raw_text_path(model_file, TEXTS, by_evaluate)  # evaluate's own check passes
    by_pyfunc = pyfunc_predictions(blend_path, tmp_path, TEXTS)["probability"]
    np.testing.assert_allclose(by_pyfunc, by_evaluate, atol=1e-6)
    np.testing.assert_allclose(Predictor(model_file).probabilities(TEXTS), by_evaluate, atol=1e-6)


def test_a_model_file_of_the_lstm_alone_scores_as_before(tmp_path):
    lstm_path, _ = model_files(tmp_path, 0.6)
    model_file = load_model_file(lstm_path)
    assert model_file.ngrams is None
    lstm = np.array([0.3, 0.7], np.float32)
    probs, parts = blended(model_file, lstm, TEXTS[:2], np.array([0, 1]))
    assert probs is lstm and parts == {}


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_the_blend_weights_ends_are_each_part_alone_through_the_predictor(tmp_path, weight):
    lstm_path, blend_path = model_files(tmp_path, weight)
    predictor = Predictor.from_path(blend_path)
    expected = (
        Predictor.from_path(lstm_path).probabilities(TEXTS)
        if weight == 0
        else predictor.file.ngrams.probabilities(predictor.file.preprocessing.token_series(TEXTS).to_list())
    )
    np.testing.assert_allclose(predictor.probabilities(TEXTS), expected, rtol=1e-6)
