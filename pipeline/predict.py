"""predict: raw review text -> probability of "positive" and a label, with a trained model.

    python -m pipeline.predict "Great value, works as described." "Broke after a week."
    python -m pipeline.predict --file reviews.txt        # one review per line; --file - reads stdin
    python -m pipeline.predict --model-uri models:/lstm-sentiment/1 "..."   # a model from MLflow

By default it uses the train stage's output, models/model.pt, which holds the weights, the
vocabulary and the preprocessing settings the model was trained with: the text goes through
the same code as the pipeline's (pipeline.clean's cleaning and tokenizer, pipeline.encode's
ids and padding), never a copy of it. The MLflow model (pipeline.mlflow_model) wraps the same
``TextClassifier``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl
import torch

from pipeline import paths
from pipeline.clean import text_tokens
from pipeline.common import StageError, run_main
from pipeline.encode import pad_and_truncate, token_ids
from pipeline.params import CleanParams, EncodeParams, Params, TokenizeParams, load_params
from pipeline.train import model_from_payload, read_model_file, score

BATCH_SIZE = 256


def preprocessing_settings(params: Params, manifest: dict) -> dict:
    """What turns raw text into model input: stored in model.pt by the train stage. The encode
    settings come from the shards' manifest (what the model was really trained on)."""
    return {
        "clean": asdict(params.clean),
        "tokenize": asdict(params.tokenize),
        "encode": {key: manifest[key] for key in ("seq_len", "truncate", "pad")},
    }


class TextClassifier:
    """A trained model plus its vocabulary and preprocessing: review strings in, probabilities out."""

    def __init__(self, payload: dict, device: str | torch.device = "cpu", batch_size: int = BATCH_SIZE):
        if "vocab" not in payload or "preprocessing" not in payload:
            raise StageError("the model file has no vocabulary or preprocessing settings: retrain it (dvc repro train)")
        self.model = model_from_payload(payload, device)
        self.vocab: list[str] = payload["vocab"]
        settings = payload["preprocessing"]
        self.clean = CleanParams(**settings["clean"])
        self.tokenize = TokenizeParams(**settings["tokenize"])
        self.encode = EncodeParams(**settings["encode"])
        self.device = torch.device(device)
        self.batch_size = batch_size

    @classmethod
    def from_file(cls, path: str | Path = paths.MODEL_FILE, device: str | torch.device = "cpu") -> TextClassifier:
        return cls(read_model_file(path), device)

    def encode_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [rows, seq_len], lengths)`` exactly as the ingest, clean and encode stages make them."""
        # (ingest strips each line; the tokenizer ignores surrounding white space and line breaks
        # anyway, so raw text needs nothing more: tests/test_predict.py checks both)
        frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
        tokens = text_tokens(pl.col("text"), self.clean, self.tokenize)
        ids = frame.select(token_ids(tokens, self.vocab).alias("ids"))["ids"]
        return pad_and_truncate(ids, self.encode)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Probability that each review is positive, in the order given."""
        if not texts:
            return np.zeros(0, np.float32)
        ids, lengths = self.encode_texts(texts)
        logits = score(
            self.model,
            torch.from_numpy(ids).to(self.device),
            lengths.astype(np.int64),
            self.encode.pad,
            self.batch_size,
        )
        return torch.sigmoid(logits).cpu().numpy()


def read_reviews(texts: list[str], file: str | None) -> list[str]:
    if file is not None:
        if file == "-":
            texts = texts + sys.stdin.read().splitlines()
        else:
            path = Path(file)
            if not path.is_file():
                raise StageError(f"{file}: no such file")
            texts = texts + path.read_text(encoding="utf-8", errors="replace").splitlines()
    elif not texts and not sys.stdin.isatty():
        texts = sys.stdin.read().splitlines()
    if not texts:
        raise StageError("no reviews given: pass them as arguments, with --file PATH, or on stdin (--file -)")
    empty = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise StageError(f"review {empty[0]} is empty ({len(empty)} empty in all): give each review some text")
    return texts


def predict_with_mlflow(model_uri: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    import mlflow
    import pandas as pd

    from pipeline.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as err:  # MLflow raises several types for a bad URI
        raise StageError(f"cannot load MLflow model {model_uri!r}: {str(err).splitlines()[0]}") from None
    result = model.predict(pd.DataFrame({"text": texts}))
    return result["probability"].to_numpy(), result["label"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="reviews to score (or use --file, or stdin)")
    parser.add_argument("--file", help="a file with one review per line; '-' for stdin")
    parser.add_argument("--model", type=Path, default=paths.MODEL_FILE, help="model file (default: %(default)s)")
    parser.add_argument("--model-uri", help="an MLflow model URI instead, e.g. models:/lstm-sentiment/1")
    parser.add_argument(
        "--threshold", type=float, help="probability above which a review is positive (default: evaluate.threshold)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per review instead of a table")
    args = parser.parse_args()

    texts = read_reviews(args.texts, args.file)
    if args.model_uri:
        probs, labels = predict_with_mlflow(args.model_uri, texts)
        if args.threshold is not None:
            labels = (probs >= args.threshold).astype(int)
    else:
        threshold = args.threshold
        if threshold is None:
            threshold = load_params().evaluate.threshold if Path("params.yaml").exists() else 0.5
        probs = TextClassifier.from_file(args.model).predict_proba(texts)
        labels = (probs >= threshold).astype(int)
    for text, prob, label in zip(texts, probs, labels, strict=True):
        sentiment = "positive" if label else "negative"
        if args.json:
            print(
                json.dumps(
                    {"text": text, "probability": round(float(prob), 6), "label": int(label), "sentiment": sentiment}
                )
            )
        else:
            shown = text if len(text) <= 70 else text[:67] + "..."
            print(f"{sentiment:8}  {prob:.4f}  {shown}")


if __name__ == "__main__":
    run_main(main)
