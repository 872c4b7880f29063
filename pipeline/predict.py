"""predict: raw review text -> probability of "positive" and a label, with a trained model.

    python -m pipeline.predict "Great value, works as described." "Broke after a week."
    python -m pipeline.predict --file reviews.txt        # one review per line; --file - reads stdin
    python -m pipeline.predict --model-uri models:/lstm-sentiment/1 "..."   # a model from MLflow

By default it uses the train stage's output, models/model.pt, which holds the weights, the
vocabulary, the preprocessing and the decision threshold the model was trained with: the text
goes through the pipeline's own code (pipeline.data.text), and nothing is read from params.yaml, so
it gives the same answers from any directory. The MLflow model (pipeline.tracking.pyfunc) and
evaluate use the same ``pipeline.model.inference.Predictor``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.core import paths
from pipeline.core.cli import StageError, run_main
from pipeline.model.decision import labels_at, sentiments


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


def predict_with_mlflow(model_uri: str, texts: list[str], threshold: float | None) -> dict[str, list]:
    import mlflow
    import pandas as pd

    from pipeline.tracking.store import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as err:  # MLflow raises several types for a bad URI
        raise StageError(f"cannot load MLflow model {model_uri!r}: {str(err).splitlines()[0]}") from None
    result = model.predict(pd.DataFrame({"text": texts})).to_dict(orient="list")
    if threshold is not None:
        known = [label is not None for label in result["label"]]  # None: no known words
        labels = labels_at([p if k else 0.0 for p, k in zip(result["probability"], known, strict=True)], threshold)
        result["label"] = [int(label) if k else None for label, k in zip(labels, known, strict=True)]
        result["sentiment"] = [
            s if k else old for s, k, old in zip(sentiments(labels), known, result["sentiment"], strict=True)
        ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="reviews to score (or use --file, or stdin)")
    parser.add_argument("--file", help="a file with one review per line; '-' for stdin")
    parser.add_argument("--model", type=Path, default=paths.MODEL_FILE, help="model file (default: %(default)s)")
    parser.add_argument("--model-uri", help="an MLflow model URI instead, e.g. models:/lstm-sentiment/1")
    parser.add_argument(
        "--threshold", type=float, help="probability from which a review is positive (default: the model's own)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per review instead of a table")
    args = parser.parse_args()

    texts = read_reviews(args.texts, args.file)
    if args.model_uri:
        result = predict_with_mlflow(args.model_uri, texts, args.threshold)
    else:
        from pipeline.model.inference import Predictor

        result = Predictor.from_path(args.model).predict(texts, args.threshold)
    rows = zip(texts, result["probability"], result["label"], result["sentiment"], strict=True)
    for text, prob, label, sentiment in rows:
        known = label is not None
        if args.json:
            prob = round(prob, 6) if known else None
            print(json.dumps({"text": text, "probability": prob, "label": label, "sentiment": sentiment}))
        else:
            shown = text if len(text) <= 70 else text[:67] + "..."
            print(f"{sentiment:8}  {prob:.4f}  {shown}" if known else f"{sentiment}  {shown}")


if __name__ == "__main__":
    run_main(main)
