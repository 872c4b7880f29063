"""evaluate: trained model + test shards -> metrics/eval.json, plot data, predictions, MLflow model.

The report (pipeline.report.metrics), at the decision threshold stored in the model file: loss (BCE),
accuracy, precision, recall, F1, ROC AUC, PR AUC (average precision), expected calibration
error, the confusion matrix and accuracy by review length (``evaluate.length_buckets``), as flat
keys in ``metrics/eval.json``; for a model blended with an n-gram model these are the blend's,
and ``lstm_accuracy``, ``ngram_accuracy`` and ``blend_weight`` say what each part brings.
Plot data for ``dvc plots show`` under ``plots/``: ``roc.csv``,
``pr.csv``, ``confusion.csv``, ``calibration.csv`` (reliability curve) and
``length_buckets.csv``. Every test review's probability is kept in
``data/predictions/test.parquet``.

On the MLflow run that trained this very model file (pipeline.tracking.evaluation_run) it logs
the metrics as ``test_*``, the report as PNG figures, the test shards as a dataset, and the
raw-text pyfunc model (pipeline.tracking.pyfunc), registered as ``mlflow.registered_model`` after
checking that it scores raw test reviews as the shards do; the new version takes the alias
``@champion`` unless the champion scored better (by ``mlflow.champion_margin``) on the same
test reviews.
"""

from __future__ import annotations

from pipeline.core.cli import StageError, answer_help, run_main, stage_params
from pipeline.core.cpu_math import pin_code_paths

if __name__ == "__main__":  # run as a stage, not imported: nothing global changes on import
    answer_help(__doc__)  # at once: the imports below take seconds
    pin_code_paths()  # before NumPy and PyTorch load: they pick their code paths then

import hashlib

import numpy as np
import polars as pl

from pipeline.core import paths
from pipeline.core.params import EvaluateParams, Params
from pipeline.data.files import atomic_path, reading, write_json
from pipeline.data.shards import load_split, rows_of_test_split
from pipeline.model.batching import Split, keep_ids_on_host
from pipeline.model.decision import chosen_probability, labels_at
from pipeline.model.devices import pick_device
from pipeline.model.inference import Predictor, evaluate_split
from pipeline.model.model_file import ModelFile, load_model_file
from pipeline.model.ngrams import blend
from pipeline.report.metrics import evaluation_report

RAW_TEXT_CHECK_ROWS = 256  # test reviews re-scored from raw text to check the logged model


def score_test_split(
    model_file: ModelFile, ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, params: EvaluateParams
) -> np.ndarray:
    """The positive-class probability of every encoded test row, in order."""
    device = pick_device(params.device)
    split = Split.from_numpy(ids, labels, lengths, device, keep_ids_on_host("auto", ids.nbytes, device))
    return evaluate_split(model_file.build(device), split, params.batch_size)[1]


def blended(model_file: ModelFile, lstm: np.ndarray, texts: list[str], labels: np.ndarray) -> tuple[np.ndarray, dict]:
    """The model's probabilities (the LSTM's blended with the n-gram model's, when the file has
    one) and each part's accuracy; the n-gram model scores the raw texts, as the logged model will."""
    if model_file.ngrams is None:
        return lstm, {}
    ngrams = model_file.ngrams.probabilities(model_file.preprocessing.token_series(texts).to_list())
    correct = lambda probs: round(float(np.mean(labels_at(probs, model_file.threshold) == labels)), 6)  # noqa: E731
    parts = {"lstm_accuracy": correct(lstm), "ngram_accuracy": correct(ngrams), "blend_weight": model_file.blend_weight}
    return blend(lstm, ngrams, model_file.blend_weight), parts


def check_raw_text_path(model_file: ModelFile, texts: list[str], expected: np.ndarray) -> None:
    """The logged model scores raw text; it must agree with the shards-based scores."""
    worst = float(np.abs(Predictor(model_file).probabilities(texts) - expected).max())
    if worst > 1e-4:
        raise StageError(
            f"the raw-text model disagrees with the encoded test split by up to {worst:.2g}: "
            "the preprocessing in model.pt does not match the shards (re-run the pipeline: dvc repro)"
        )


def main() -> None:
    from pipeline.tracking.store import use_experiment

    params, _ = stage_params(__doc__)
    experiment_id = use_experiment(params.mlflow.experiment)  # an unusable store stops us before any output
    model_file = load_model_file(paths.MODEL_FILE)
    ids, labels, lengths, manifest = load_split(paths.SHARDS_DIR, "test")
    if len(labels) == 0:
        raise StageError("the test split is empty: nothing to evaluate")
    review_rows = rows_of_test_split(manifest)
    with reading(paths.REVIEWS_DIR / "test.parquet"):
        texts = pl.read_parquet(paths.REVIEWS_DIR / "test.parquet", columns=["text"])["text"].gather(review_rows)
    lstm = score_test_split(model_file, ids, labels, lengths, params.evaluate)
    probs, parts = blended(model_file, lstm, texts.to_list(), labels)
    result, tables = evaluation_report(
        labels,
        probs,
        lengths,
        model_file.threshold,
        params.evaluate.length_buckets,
        model_file.classes,
        params.data.ordinal,
    )
    result |= parts
    write_json(paths.METRICS_DIR / "eval.json", result)
    for name, table in tables.items():
        with atomic_path(paths.PLOTS_DIR / name) as tmp:
            table.write_csv(tmp)

    predicted = labels_at(probs, model_file.threshold)
    predictions = pl.DataFrame(
        {
            "review": review_rows.astype(np.int64),  # row in data/interim/reviews/test.parquet
            "label": labels.astype(np.int8),
            # two classes: the positive class's; more: the chosen class's
            "probability": chosen_probability(probs, predicted),
            "predicted": predicted.astype(np.int8),
            "length": lengths,
        }
    )
    with atomic_path(paths.PREDICTIONS_FILE) as tmp:
        predictions.write_parquet(tmp)

    sample_texts = texts.head(RAW_TEXT_CHECK_ROWS).to_list()
    check_raw_text_path(model_file, sample_texts, probs[: len(sample_texts)])

    registry = log_report(
        params,
        experiment_id,
        result,
        tables,
        sample_texts[:2],
        manifest,
        test_split_digest(texts, labels),
        model_file.classes,
    )
    f1 = "F1" if probs.ndim == 1 else f"{len(model_file.classes)} classes, macro F1"
    print(
        f"evaluate: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}, {f1} {result['f1']:.4f}, "
        f"ROC AUC {result['roc_auc']}, ECE {result['ece']:.4f} on {result['rows']} test reviews"
    )
    if parts:
        print(
            f"evaluate: the LSTM alone {parts['lstm_accuracy']:.4f}, the n-gram model alone "
            f"{parts['ngram_accuracy']:.4f}, blended at weight {parts['blend_weight']:.2f}"
        )
    if registry:
        print(f"evaluate: {registry}")


def test_split_digest(texts: pl.Series, labels: np.ndarray) -> str:
    """sha256 of the test reviews (raw texts and labels, in order): which reviews an accuracy was
    measured on, whatever the vocabulary, truncation or padding."""
    digest = hashlib.sha256(labels.astype(np.int8).tobytes())
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()


def log_report(
    params: Params,
    experiment_id: str,
    result: dict,
    tables: dict,
    example_texts: list[str],
    manifest: dict,
    test_split: str,
    names: tuple[str, ...],
) -> str | None:
    from pipeline.report.figures import report_figures
    from pipeline.tracking.evaluation_run import log_evaluation

    history_file = paths.PLOTS_DIR / "training.csv"
    history = pl.read_csv(history_file) if history_file.exists() else None
    figures = report_figures(
        result,
        tables.get("roc.csv"),
        tables.get("pr.csv"),
        tables["calibration.csv"],
        tables["length_buckets.csv"],
        history,
        names,
    )
    return log_evaluation(params, experiment_id, result, figures, example_texts, manifest, test_split, names)


if __name__ == "__main__":
    run_main(main)
