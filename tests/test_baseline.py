import numpy as np

from pipeline.baseline import fit_baseline
from pipeline.core.params import BaselineParams


def negation_reviews(rows: int, seed: int):
    """Polarity word flipped by "not" just before it: needs bigrams, unigrams cannot see it."""
    rng = np.random.default_rng(seed)
    filler = ["the", "movie", "was", "a", "plot", "and"]
    docs, labels = [], []
    for _ in range(rows):
        good, negated = rng.random() < 0.5, rng.random() < 0.5
        doc = list(rng.choice(filler, 3)) + (["not"] if negated else ["really"]) + ["good" if good else "bad"]
        docs.append(doc + list(rng.choice(filler, 2)))
        labels.append(int(good != negated))
    return docs, np.array(labels)


def accuracy(params: BaselineParams) -> float:
    train_docs, train_labels = negation_reviews(2000, 0)
    test_docs, test_labels = negation_reviews(500, 1)
    vectorizer, classifier = fit_baseline(train_docs, train_labels, params)
    return float((classifier.predict(vectorizer.transform(test_docs)) == test_labels).mean())


def test_bigrams_learn_negation_and_unigrams_cannot():
    assert accuracy(BaselineParams(ngram_max=2)) >= 0.99
    assert accuracy(BaselineParams(ngram_max=1)) < 0.6


def test_tokens_are_used_as_given_not_re_tokenized():
    vectorizer, _ = fit_baseline([["<url>", "don't"], ["<url>", "ok"]], np.array([0, 1]), BaselineParams(min_df=1))
    assert {"<url>", "don't", "<url> don't"} <= set(vectorizer.vocabulary_)
