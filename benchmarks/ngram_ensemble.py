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
import statistics
import sys
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import yaml
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.data.shards import validation_mask  # noqa: E402
from pipeline.model.inference import Predictor  # noqa: E402


def nb_logistic_regression(work: Path, ngram_max: int, C: float, test_rows: np.ndarray) -> np.ndarray:
    """The n-gram model's positive-class probability for ``test_rows`` of the test tokens."""
    train, test = (pl.read_parquet(work / "data/interim/tokens" / f"{split}.parquet") for split in ("train", "test"))
    as_is = lambda tokens: tokens  # noqa: E731  the clean stage already tokenized
    vectorizer = CountVectorizer(
        tokenizer=as_is, preprocessor=as_is, token_pattern=None, lowercase=False,
        ngram_range=(1, ngram_max), binary=True, dtype=np.float32,
    )  # fmt: skip
    features = vectorizer.fit_transform(train["tokens"].to_list())
    labels = train["label"].to_numpy()
    positive = np.asarray(features[labels == 1].sum(axis=0)).ravel() + 1.0  # add-one smoothing
    negative = np.asarray(features[labels == 0].sum(axis=0)).ravel() + 1.0
    ratio = np.log((positive / positive.sum()) / (negative / negative.sum())).astype(np.float32)
    classifier = LogisticRegression(C=C, max_iter=2000).fit(features.multiply(ratio).tocsr(), labels)
    scored = vectorizer.transform(test["tokens"].gather(test_rows).to_list()).multiply(ratio).tocsr()
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
    work = args.work.resolve()
    encode = yaml.safe_load((work / "params.yaml").read_text())["encode"]
    reviews = pl.read_parquet(work / "data/interim/reviews/test.parquet", columns=["text", "label"])
    test_rows = np.flatnonzero(~validation_mask(len(reviews), encode["val_fraction"], encode["seed"]))
    texts, labels = reviews["text"].gather(test_rows).to_list(), reviews["label"].gather(test_rows).to_numpy()

    ngrams = nb_logistic_regression(work, args.ngram_max, args.C, test_rows)
    print(f"n-gram model (1-{args.ngram_max}-grams, C {args.C}): test accuracy {np.mean((ngrams > 0.5) == labels):.4f}")
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    alone, averaged = [], []
    for prefix in args.runs:
        predictor = Predictor.from_path(logged_model(client, prefix))
        lstm = predictor.probabilities(texts)
        alone.append(np.mean((lstm > predictor.threshold) == labels))
        averaged.append(np.mean(((lstm + ngrams) / 2 > 0.5) == labels))
        print(f"  run {prefix}: LSTM {alone[-1]:.4f}, average with the n-gram model {averaged[-1]:.4f}", flush=True)
    for name, values in (("LSTM", alone), ("average", averaged)):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name}: mean {statistics.mean(values):.4f}, sd {spread:.4f} over {len(values)} runs")


if __name__ == "__main__":
    main()
