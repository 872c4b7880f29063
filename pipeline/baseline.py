"""baseline: TF-IDF + logistic regression on the same tokens and splits as the LSTM.

The model a user would try first: scikit-learn's ``TfidfVectorizer`` over the clean stage's
tokens (word n-grams up to ``baseline.ngram_max``) and ``LogisticRegression``. It trains on the
train split and is scored on exactly the LSTM's validation and test rows (the test file split
by ``encode.val_fraction`` and ``encode.seed``, as the encode stage does), so the two compare
like for like. Writes ``metrics/baseline.json`` (``val_*`` and ``test_*``), every scored review's
probability in ``data/predictions/baseline.parquet``, and logs a run named
``tfidf-logreg`` in the LSTM's MLflow experiment, with the same ``test_*`` metric names.
"""

from __future__ import annotations

from pipeline.core.cli import StageError, answer_help, run_main, stage_params
from pipeline.core.cpu_math import pin_code_paths

if __name__ == "__main__":  # run as a stage, not imported: nothing global changes on import
    answer_help(__doc__)  # at once: the imports below take seconds
    pin_code_paths()  # before NumPy and PyTorch load: they pick their code paths then

import numpy as np
import polars as pl
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from pipeline.core import paths
from pipeline.core.params import BaselineParams
from pipeline.data.files import atomic_path, write_json
from pipeline.data.shards import validation_mask
from pipeline.data.text import read_tokens
from pipeline.report.metrics import classification_metrics, multiclass_metrics

RUN_NAME = "tfidf-logreg"


def _tokens(documents):
    return documents  # the clean stage already tokenized: the vectorizer gets token lists


def fit_baseline(
    train_tokens: list[list[str]], train_labels: np.ndarray, params: BaselineParams
) -> tuple[TfidfVectorizer, LogisticRegression]:
    vectorizer = TfidfVectorizer(
        analyzer="word",
        tokenizer=_tokens,
        preprocessor=_tokens,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, params.ngram_max),
        min_df=params.min_df,
        max_features=params.max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    features = vectorizer.fit_transform(train_tokens)
    classifier = LogisticRegression(C=params.C, max_iter=params.max_iter)
    classifier.fit(features, train_labels)
    return vectorizer, classifier


def main() -> None:
    from pipeline.tracking.store import log_baseline, use_experiment

    params, _ = stage_params(__doc__)
    use_experiment(params.mlflow.experiment)  # an unusable store stops us before any output
    train_tokens, train_labels = read_tokens(paths.TOKENS_DIR / "train.parquet")
    test_tokens, test_labels = read_tokens(paths.TOKENS_DIR / "test.parquet")
    if len(np.unique(train_labels)) < 2:
        raise StageError("the train split has a single class: logistic regression needs both")
    vectorizer, classifier = fit_baseline(train_tokens, train_labels, params.baseline)

    is_val = validation_mask(len(test_labels), params.encode.val_fraction, params.encode.seed)
    probs = classifier.predict_proba(vectorizer.transform(test_tokens))  # multinomial for more than two classes
    names = params.data.class_names()
    probs = probs[:, 1] if len(names) == 2 else probs
    result = {"vocabulary": len(vectorizer.vocabulary_)}
    for prefix, rows in (("val", is_val), ("test", ~is_val)):
        if len(names) == 2:
            scored = classification_metrics(test_labels[rows], probs[rows])
        else:
            scored = multiclass_metrics(test_labels[rows], probs[rows], names, params.data.ordinal)
        result.update({f"{prefix}_{k}": v for k, v in scored.items() if k in ("loss", "accuracy", "f1", "roc_auc")})
    write_json(paths.METRICS_DIR / "baseline.json", result)
    columns = {"split": np.where(is_val, "val", "test"), "label": test_labels.astype(np.int8)}
    if len(names) == 2:
        columns["probability"] = probs
    else:  # the chosen class and its probability
        columns |= {"predicted": probs.argmax(axis=1).astype(np.int8), "probability": probs.max(axis=1)}
    predictions = pl.DataFrame(columns)
    with atomic_path(paths.BASELINE_PREDICTIONS_FILE) as tmp:
        predictions.write_parquet(tmp)

    log_baseline(params, RUN_NAME, result)
    print(
        f"baseline (TF-IDF + logistic regression, {result['vocabulary']} features): "
        f"val accuracy {result['val_accuracy']:.4f}, test accuracy {result['test_accuracy']:.4f}"
    )


if __name__ == "__main__":
    run_main(main)
