"""ngrams: the n-gram model blended with the LSTM, fitted on the train split's tokens.

NB-weighted binary word 1- to ``ngrams.ngram_max``-grams, hashed into ``ngrams.buckets``
weights, into a logistic regression (pipeline.model.ngrams). Fitted on the clean stage's train
tokens and scored on the LSTM's validation and test rows (the test file split by
``encode.val_fraction`` and ``encode.seed``, as the encode stage does). Writes
``data/processed/ngrams/`` (the weights, the bias, the validation rows' probabilities, from which
train chooses the blend weight) and ``metrics/ngrams.json`` (``val_*`` and ``test_*``). With more
than two classes it fits nothing and says so (the model is then the LSTM alone).
"""

from __future__ import annotations

from pipeline.core.cli import StageError, answer_help, run_main, stage_params
from pipeline.core.cpu_math import pin_code_paths

if __name__ == "__main__":  # run as a stage, not imported: nothing global changes on import
    answer_help(__doc__)  # at once: the imports below take seconds
    pin_code_paths()  # before NumPy and scikit-learn load: they pick their code paths then

import json
import sys

import numpy as np

from pipeline.core import paths
from pipeline.data.files import atomic_path, write_json
from pipeline.data.shards import validation_mask
from pipeline.data.text import read_tokens
from pipeline.model.ngrams import fit_ngram_model, save_ngram_stage
from pipeline.report.metrics import classification_metrics


def main() -> None:
    params, _ = stage_params(__doc__)
    settings = params.ngrams
    classes = len(params.data.classes)
    if classes > 2:  # NB log-count ratios are one class against the other
        with atomic_path(paths.NGRAMS_DIR) as tmp:
            tmp.mkdir(parents=True)
            (tmp / "model.json").write_text(json.dumps({"fitted": False, "classes": classes}) + "\n")
        write_json(paths.METRICS_DIR / "ngrams.json", {"fitted": False, "classes": classes})
        print(
            f"ngrams: {classes} classes: the n-gram model is for two, so none is fitted (the model is the LSTM alone)"
        )
        return
    train_tokens, train_labels = read_tokens(paths.TOKENS_DIR / "train.parquet")
    test_tokens, test_labels = read_tokens(paths.TOKENS_DIR / "test.parquet")
    if len(np.unique(train_labels)) < 2:
        raise StageError("the train split has a single class: the n-gram model needs both")
    model, converged = fit_ngram_model(
        train_tokens, train_labels, settings.ngram_max, settings.buckets, settings.C, settings.max_iter
    )
    if not converged:
        print(
            f"ngrams: warning: the logistic regression did not converge in {settings.max_iter} iterations "
            "(raise ngrams.max_iter)",
            file=sys.stderr,
        )
    is_val = validation_mask(len(test_labels), params.encode.val_fraction, params.encode.seed)
    probs = model.probabilities(test_tokens)
    with atomic_path(paths.NGRAMS_DIR) as tmp:
        save_ngram_stage(tmp, model, probs[is_val])

    result = {"buckets": settings.buckets, "buckets_used": int(np.count_nonzero(model.weights))}
    for prefix, rows in (("val", is_val), ("test", ~is_val)):
        scored = classification_metrics(test_labels[rows], probs[rows])
        result.update({f"{prefix}_{k}": v for k, v in scored.items() if k in ("loss", "accuracy", "f1", "roc_auc")})
    write_json(paths.METRICS_DIR / "ngrams.json", result)
    print(
        f"ngrams (NB-weighted 1-{settings.ngram_max}-grams + logistic regression, {result['buckets_used']} of "
        f"{settings.buckets} buckets used): val accuracy {result['val_accuracy']:.4f}, "
        f"test accuracy {result['test_accuracy']:.4f}"
    )


if __name__ == "__main__":
    run_main(main)
