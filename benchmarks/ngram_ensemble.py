"""What averaging trained LSTMs with an n-gram model would add: an offline check, not a pipeline option.

    uv run python benchmarks/ngram_ensemble.py /tmp/lstm-sentiment-accuracy/imdb --runs 06c58256 ce20c3c9 ad1298a3

WORK is a work folder of benchmarks/accuracy.py after its runs; RUNS are the MLflow run ids (or
their first characters) of training runs in it (``mlflow ui`` there lists them, with their
params). Each run's logged model scores the test split's raw reviews. The n-gram model is a
logistic regression on naive-Bayes-weighted binary 1- to ``--ngram-max``-grams of the clean
tokens (Wang & Manning's NBSVM with a logistic loss), fitted on the train split. Prints the
n-gram model's test accuracy, then per run the LSTM's and the average's (the two probabilities,
weight one half each: nothing tuned on the test half), then the mean and sample standard
deviation over the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.baseline import read_tokens  # noqa: E402
from pipeline.core import paths  # noqa: E402
from pipeline.data.shards import read_manifest, rows_of_test_split  # noqa: E402
from pipeline.model.decision import labels_at  # noqa: E402
from pipeline.model.inference import Predictor  # noqa: E402


def nb_logistic_regression(ngram_max: int, C: float, test_rows: np.ndarray) -> np.ndarray:
    """The n-gram model's positive-class probability for ``test_rows`` of the test tokens."""
    (train_tokens, labels), (test_tokens, _) = read_tokens("train"), read_tokens("test")
    as_is = lambda tokens: tokens  # noqa: E731  the clean stage already tokenized
    vectorizer = CountVectorizer(
        tokenizer=as_is, preprocessor=as_is, token_pattern=None, lowercase=False,
        ngram_range=(1, ngram_max), binary=True, dtype=np.float32,
    )  # fmt: skip
    features = vectorizer.fit_transform(train_tokens)
    positive = np.asarray(features[labels == 1].sum(axis=0)).ravel() + 1.0  # add-one smoothing
    negative = np.asarray(features[labels == 0].sum(axis=0)).ravel() + 1.0
    ratio = np.log((positive / positive.sum()) / (negative / negative.sum())).astype(np.float32)
    classifier = LogisticRegression(C=C, max_iter=2000).fit(features.multiply(ratio).tocsr(), labels)
    scored = vectorizer.transform([test_tokens[row] for row in test_rows]).multiply(ratio).tocsr()
    return classifier.predict_proba(scored)[:, 1]


def logged_model(client: mlflow.MlflowClient, prefix: str) -> Path:
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = [run for run in client.search_runs(experiments, max_results=1000) if run.info.run_id.startswith(prefix)]
    if len(runs) != 1:
        sys.exit(f"{prefix}: {len(runs)} runs start with it, need exactly one")
    run = runs[0]
    models = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    if not models:
        sys.exit(f"{prefix}: the run logged no model")
    return Path(mlflow.artifacts.download_artifacts(f"{models[0].artifact_location}/artifacts/model.pt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="a work folder of benchmarks/accuracy.py")
    parser.add_argument("--runs", nargs="+", required=True, help="MLflow run ids (or their first characters)")
    parser.add_argument("--ngram-max", type=int, default=3)
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the n-gram model")
    args = parser.parse_args()
    os.chdir(args.work)  # the pipeline's paths are relative to the work folder
    test_rows = rows_of_test_split(read_manifest(paths.SHARDS_DIR))  # the rows evaluate scores
    reviews = pl.read_parquet(paths.REVIEWS_DIR / "test.parquet", columns=["text", "label"])[test_rows]
    texts, labels = reviews["text"].to_list(), reviews["label"].to_numpy()

    ngrams = nb_logistic_regression(args.ngram_max, args.C, test_rows)
    print(f"n-gram model (1-{args.ngram_max}-grams, C {args.C}): test accuracy {np.mean((ngrams > 0.5) == labels):.4f}")
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    client = mlflow.MlflowClient()
    alone, averaged = [], []
    for prefix in args.runs:
        predictor = Predictor.from_path(logged_model(client, prefix))
        lstm = predictor.probabilities(texts)
        alone.append(np.mean(labels_at(lstm, predictor.threshold) == labels))
        averaged.append(np.mean(labels_at((lstm + ngrams) / 2, 0.5) == labels))
        print(f"  run {prefix}: LSTM {alone[-1]:.4f}, average with the n-gram model {averaged[-1]:.4f}", flush=True)
    for name, values in (("LSTM", alone), ("average", averaged)):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name}: mean {statistics.mean(values):.4f}, sd {spread:.4f} over {len(values)} runs")


if __name__ == "__main__":
    main()
