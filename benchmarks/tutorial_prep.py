"""The reference tutorial's preprocessing, re-implemented faithfully as the speed baseline.

Everything in memory, one Python loop per review: read all lines, lowercase, digits -> 0,
URLs -> <url>, tokenize each review with NLTK (``NLTKWordTokenizer``, the word step of
``nltk.word_tokenize``: the full function needs Punkt data we do not download), count with a
``Counter``, keep words seen more than once, map to ids and left-pad with a per-row NumPy loop.
Its one bug that changes results (unknown words mapped to the pad id 0) is kept: it is the
baseline, not our pipeline.

    uv run python benchmarks/tutorial_prep.py TRAIN.bz2 TEST.bz2
"""

from __future__ import annotations

import bz2
import re
import sys
import time
from collections import Counter

import numpy as np
from nltk.tokenize import NLTKWordTokenizer

URL = re.compile(r"([^ ]+(?<=\.[a-z]{3}))")  # the tutorial's (broken) URL pattern


def read_reviews(path: str) -> tuple[list[int], list[str]]:
    with bz2.BZ2File(path) as f:
        lines = [line.decode("utf-8") for line in f.readlines()]
    labels = [0 if line.split(" ")[0] == "__label__1" else 1 for line in lines]
    sentences = [line.split(" ", 1)[1][:-1].lower() for line in lines]
    sentences = [re.sub(r"\d", "0", s) for s in sentences]
    sentences = [
        URL.sub("<url>", s) if "www." in s or "http:" in s or "https:" in s or ".com" in s else s for s in sentences
    ]
    return labels, sentences


def pad_input(sentences: list[list[int]], seq_len: int) -> np.ndarray:
    features = np.zeros((len(sentences), seq_len), dtype=int)
    for row, review in enumerate(sentences):
        if len(review) != 0:
            features[row, -len(review) :] = np.array(review)[:seq_len]
    return features


def tutorial_prep(train_path: str, test_path: str, seq_len: int = 200) -> dict:
    train_labels, train_sentences = read_reviews(train_path)
    test_labels, test_sentences = read_reviews(test_path)
    tokenizer = NLTKWordTokenizer()
    words: Counter = Counter()
    for i, sentence in enumerate(train_sentences):
        train_sentences[i] = []
        for word in tokenizer.tokenize(sentence):
            words.update([word.lower()])
            train_sentences[i].append(word)
    words = {k: v for k, v in words.items() if v > 1}
    vocab = ["_PAD", "_UNK"] + sorted(words, key=words.get, reverse=True)
    word2idx = {word: i for i, word in enumerate(vocab)}
    for i, sentence in enumerate(train_sentences):
        train_sentences[i] = [word2idx[w] if w in word2idx else 0 for w in sentence]
    for i, sentence in enumerate(test_sentences):
        test_sentences[i] = [word2idx[w] if w in word2idx else 0 for w in tokenizer.tokenize(sentence)]
    train = pad_input(train_sentences, seq_len)
    test = pad_input(test_sentences, seq_len)
    return {
        "train": train,
        "test": test,
        "train_labels": np.array(train_labels),
        "test_labels": np.array(test_labels),
        "vocab_size": len(vocab),
    }


if __name__ == "__main__":
    start = time.perf_counter()
    result = tutorial_prep(sys.argv[1], sys.argv[2])
    seconds = time.perf_counter() - start
    rows = len(result["train"]) + len(result["test"])
    print(f"tutorial-style prep: {rows} reviews in {seconds:.1f} s ({rows / seconds:.0f} reviews/s)")
