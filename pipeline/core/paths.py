"""Where each stage reads and writes, relative to the repository root (as in dvc.yaml)."""

from pathlib import Path

SPLITS = ("train", "test")

REVIEWS_DIR = Path("data/interim/reviews")  # ingest: {train,test}.parquet, rejects.parquet
TOKENS_DIR = Path("data/interim/tokens")  # clean: {train,test}.parquet
VOCAB_FILE = Path("data/processed/vocab.json")
SHARDS_DIR = Path("data/processed/shards")  # encode: {train,val,test}/ + manifest.json
PRETRAINED_DIR = Path("data/processed/pretrained")  # pretrain: word2vec.npy + word2vec_known.npy, or lm.npz
NGRAMS_DIR = Path("data/processed/ngrams")  # ngrams: weights.npy, validation.npy, model.json
MODEL_FILE = Path("models/model.pt")
CHECKPOINT_FILE = Path("models/checkpoint.pt")  # train: for train.resume; not a DVC output
RUN_ID_FILE = Path("models/mlflow-run.json")  # train: its MLflow run, for evaluate; not a DVC output
PENDING_DIR = Path("models/mlflow-pending")  # train: what MLflow did not take (pipeline.tracking.training_run)
PREDICTIONS_FILE = Path("data/predictions/test.parquet")  # evaluate: per test review
BASELINE_PREDICTIONS_FILE = Path("data/predictions/baseline.parquet")  # baseline: per val/test review
SCORED_FILE = Path("data/predictions/scored.parquet")  # score: per review of data.score

METRICS_DIR = Path("metrics")
PLOTS_DIR = Path("plots")

# the stage that writes each of the pipeline's own files: the cure when one is missing or damaged
MADE_BY = {
    REVIEWS_DIR: "ingest",
    TOKENS_DIR: "clean",
    VOCAB_FILE: "vocab",
    SHARDS_DIR: "encode",
    PRETRAINED_DIR: "pretrain",
    NGRAMS_DIR: "ngrams",
    MODEL_FILE: "train",
}


def made_by(path: str | Path) -> str | None:
    path = Path(path)
    return next((stage for out, stage in MADE_BY.items() if path == out or out in path.parents), None)
