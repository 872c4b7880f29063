"""predict: raw review text -> probability of "positive" and a label, with a trained model.

    python -m pipeline.predict "Great value, works as described." "Broke after a week."
    python -m pipeline.predict --file reviews.txt        # one review per line; --file - reads stdin
    python -m pipeline.predict --file new.csv --text-column review --output scored.parquet
    python -m pipeline.predict --model-uri models:/lstm-sentiment/1 "..."   # a model from MLflow

By default it uses the train stage's output, models/model.pt, which holds the weights, the
vocabulary, the preprocessing and the decision threshold the model was trained with: the text
goes through the pipeline's own code (pipeline.data.text), and nothing is read from params.yaml, so
it gives the same answers from any directory. The MLflow model (pipeline.tracking.pyfunc),
evaluate and the score stage use the same ``pipeline.model.inference.Predictor``.

``--file`` also reads the tables ingest reads (CSV, TSV, JSON Lines, Parquet; by their name or
``--format``) with the text in ``--text-column``. With ``--output X.parquet`` the reviews are
scored a batch at a time into Parquet, one row per input row, as the score stage writes
``data/predictions/scored.parquet`` (``--keep-column`` copies an id column).
"""

from __future__ import annotations

from pipeline.core.cpu_math import pin_code_paths

if __name__ == "__main__":  # the stages' code paths, so that the answers are the same bits as evaluate's and score's
    pin_code_paths()  # before NumPy and PyTorch load: they pick their code paths then

import argparse
import json
import sys
from pathlib import Path

from pipeline.core import paths
from pipeline.core.cli import StageError, run_main
from pipeline.data.tables import FORMATS, Columns, file_format, review_batches
from pipeline.model.decision import labels_at, sentiments


def read_reviews(texts: list[str], file: str | None, columns: Columns, fmt: str) -> list[str]:
    if file is not None:
        if file == "-":
            texts = texts + sys.stdin.read().splitlines()
        elif file_format(Path(file), fmt) != "fasttext":
            texts = texts + [text or "" for batch in review_batches(Path(file), fmt, columns) for text in batch["text"]]
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
    if threshold is not None and "probabilities" in result:
        raise StageError("--threshold is for a two-class model: this one picks the most probable of its classes")
    if threshold is not None:
        known = [label is not None for label in result["label"]]  # None: no known words
        labels = labels_at([p if k else 0.0 for p, k in zip(result["probability"], known, strict=True)], threshold)
        result["label"] = [int(label) if k else None for label, k in zip(labels, known, strict=True)]
        result["sentiment"] = [
            s if k else old for s, k, old in zip(sentiments(labels), known, result["sentiment"], strict=True)
        ]
    return result


def write_scores(args: argparse.Namespace, columns: Columns) -> None:
    if args.file in (None, "-") or args.texts:
        raise StageError("--output scores a file: give it with --file PATH (not stdin or arguments)")
    if args.model_uri or args.threshold is not None:
        raise StageError("--output scores with the model file (--model) at its own threshold")
    if not Path(args.file).is_file():
        raise StageError(f"{args.file}: no such file")
    from pipeline.model.inference import Predictor
    from pipeline.model.scoring import score_file

    counts = score_file(Predictor.from_path(args.model), Path(args.file), args.format, columns, args.output)
    unscored = f", {counts['unscored']} without a score (see their sentiment)" if counts["unscored"] else ""
    print(f"{counts['rows']} reviews scored{unscored} -> {args.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="reviews to score (or use --file, or stdin)")
    parser.add_argument("--file", help="reviews, one per line, or a CSV/TSV/JSON Lines/Parquet table; '-': stdin")
    parser.add_argument("--model", type=Path, default=paths.MODEL_FILE, help="model file (default: %(default)s)")
    parser.add_argument("--model-uri", help="an MLflow model URI instead, e.g. models:/lstm-sentiment/1")
    parser.add_argument(
        "--threshold", type=float, help="probability from which a review is positive (default: the model's own)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per review instead of a table")
    parser.add_argument("--output", type=Path, help="write the scores of --file to this Parquet file instead")
    parser.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="--file's format (default: auto)")
    parser.add_argument("--text-column", default="text", help="a table's text column (default: %(default)s)")
    parser.add_argument("--title-column", help="a table's title column, joined before the text as 'title: text'")
    parser.add_argument("--keep-column", action="append", default=[], help="a column of --file to copy to --output")
    args = parser.parse_args()

    flags = ("--text-column", "--title-column", "", "--keep-column")
    columns = Columns(args.text_column, args.title_column, keep=tuple(args.keep_column), named_by=flags)
    if args.output is not None:
        write_scores(args, columns)
        return
    texts = read_reviews(args.texts, args.file, columns, args.format)
    if args.model_uri:
        result = predict_with_mlflow(args.model_uri, texts, args.threshold)
    else:
        from pipeline.model.inference import Predictor

        predictor = Predictor.from_path(args.model)
        if args.threshold is not None and "probabilities" in predictor.output_columns():
            raise StageError("--threshold is for a two-class model: this one picks the most probable of its classes")
        result = predictor.predict(texts, args.threshold)
    each_class = result.get("probabilities", [None] * len(texts))
    rows = zip(texts, result["probability"], result["label"], result["sentiment"], each_class, strict=True)
    for text, prob, label, sentiment, probs in rows:
        known = label is not None
        if args.json:
            record = {"text": text, "probability": round(prob, 6) if known else None, "label": label}
            record["sentiment"] = sentiment
            if "probabilities" in result:
                record["probabilities"] = [round(p, 6) for p in probs] if known else None
            print(json.dumps(record))
        else:
            shown = text if len(text) <= 70 else text[:67] + "..."
            print(f"{sentiment:8}  {prob:.4f}  {shown}" if known else f"{sentiment}  {shown}")


if __name__ == "__main__":
    run_main(main)
