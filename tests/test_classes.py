"""More than two classes, end to end: 3 sentiments from a CSV with a test file, 5 ordinal star
ratings from one header-less TSV that ingest splits; each learned through ``dvc repro`` in a copy
of the committed tree, reported per class, served with each class's probability."""

import json
import random
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import yaml

from pipeline.model.inference import Predictor
from pipeline.report.metrics import multiclass_metrics
from tests.conftest import BIN, committed_tree, run
from tests.test_pipeline_e2e import SCORE_IN_FRESH_PROCESS

WORDS = {  # words of each class, from the lowest
    3: [["awful", "terrible", "broken"], ["okay", "average", "ordinary"], ["great", "superb", "lovely"]],
    5: [["awful", "broken"], ["poor", "weak"], ["okay", "average"], ["good", "nice"], ["superb", "perfect"]],
}
THINGS = ["the battery", "the screen", "the case", "the sound", "the price", "the cable"]


def review(rng: random.Random, label: int, classes: int) -> str:
    """The last clause decides: an earlier one names another class's word ("at first ... but"),
    so the bag of words alone is ambiguous and the order is what tells them apart."""
    words = WORDS[classes]
    other = rng.choice([c for c in range(classes) if c != label])
    thing, later = rng.sample(THINGS, 2)
    filler = rng.choice(["i bought it last week", "it came in a box", "my friend has one too", "it arrived on time"])
    return (
        f"{filler}. at first {thing} seemed {rng.choice(words[other])}, "
        f"but in the end {later} is {rng.choice(words[label])}."
    )


def rows(classes: int, count: int, seed: int, noise: float = 0.1) -> list[tuple[int, str]]:
    """``count`` reviews, a share ``noise`` of them labelled at random (as real labels are noisy)."""
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        label = rng.randrange(classes)
        text = review(rng, label, classes)
        result.append((rng.randrange(classes) if rng.random() < noise else label, text))
    return result


def repro(root, env, data: dict) -> str:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"] |= data
    params["train"] |= {"epochs": 4, "lr": 0.01}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return run([str(BIN / "dvc"), "repro"], root, env)


def pyfunc_scores(root, env, tmp_path, texts: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCORE_IN_FRESH_PROCESS, f"sqlite:///{root / 'mlflow.db'}", "models:/lstm-sentiment/1"],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def check_learned(root, names: tuple[str, ...], test_labels: list[int], output: str) -> dict:
    metrics = json.loads((root / "metrics" / "eval.json").read_text())
    majority = max(np.bincount(test_labels)) / len(test_labels)
    assert metrics["accuracy"] > majority + 0.4, (metrics["accuracy"], majority)
    assert metrics["f1"] > 0.6 and metrics["weighted_f1"] > 0.6
    keys = [name.replace(" ", "_") for name in names]
    matrix = [[metrics[f"confusion_{a}_as_{b}"] for b in keys] for a in keys]
    assert sum(map(sum, matrix)) == metrics["rows"]
    assert all(metrics[f"f1_{key}"] > 0.5 for key in keys)
    assert 0 <= metrics["ece"] < 0.2 and metrics["roc_auc"] > 0.8
    assert f"evaluate: accuracy {metrics['accuracy']:.4f}" in output
    assert f"{len(names)} classes, macro F1 {metrics['f1']:.4f}" in output
    ngrams = json.loads((root / "metrics" / "ngrams.json").read_text())
    assert ngrams == {"fitted": False, "classes": len(names)}
    baseline = json.loads((root / "metrics" / "baseline.json").read_text())
    assert baseline["test_accuracy"] > majority  # the multinomial TF-IDF model learns something too
    return metrics


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    env = committed_tree(root)
    for split, count, seed in (("train", 3000, 1), ("test", 800, 2)):
        frame = pl.DataFrame(rows(3, count, seed), schema=["stars", "review"], orient="row")
        frame.with_columns(pl.col("stars").replace_strict({0: "Negative", 1: "Neutral", 2: "Positive"})).write_csv(
            root / f"{split}.csv"
        )
    classes = [{"name": n, "labels": [n]} for n in ("negative", "neutral", "positive")]
    output = repro(
        root,
        env,
        {
            "train": "train.csv",
            "test": "test.csv",
            "text_column": "review",
            "label_column": "stars",
            "classes": classes,
            "score": ["test.csv"],
        },
    )
    return root, env, output


def test_three_classes_are_learned_reported_and_served_with_each_class_probability(three_classes, tmp_path):
    root, env, output = three_classes
    test = pl.read_csv(root / "test.csv")
    names = ("negative", "neutral", "positive")
    predictions = pl.read_parquet(root / "data" / "predictions" / "test.parquet")
    check_learned(root, names, predictions["label"].to_list(), output)
    assert "train: 3 classes: the n-gram blend is for two, so the model is the LSTM alone" in output

    predictor = Predictor.from_path(root / "models" / "model.pt")
    assert predictor.file.classes == names
    texts = test["review"].to_list()
    expected = predictor.predict(texts)
    probs = np.array(expected["probabilities"])
    assert probs.shape == (len(texts), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)
    assert expected["label"] == probs.argmax(axis=1).tolist()
    assert expected["sentiment"] == [names[i] for i in expected["label"]]
    np.testing.assert_allclose(expected["probability"], probs.max(axis=1))

    served = pyfunc_scores(root, env, tmp_path, texts[:50])
    np.testing.assert_allclose(np.array(served["probabilities"]), probs[:50], atol=1e-6)
    assert served["sentiment"] == expected["sentiment"][:50]

    scored = pl.read_parquet(root / "data" / "predictions" / "scored.parquet")
    assert scored.columns == ["row", "probability", "label", "sentiment", "probabilities"]
    assert scored["label"].to_list() == expected["label"]
    np.testing.assert_allclose(np.array(scored["probabilities"].to_list()), probs, atol=1e-6)

    # evaluate's report is the metrics module's, on the test half it scored
    metrics = json.loads((root / "metrics" / "eval.json").read_text())
    assert metrics["rows"] == len(predictions)
    assert "mae_classes" not in metrics  # the classes are not ordinal here


def test_five_ordinal_star_classes_from_one_headerless_file_are_split_learned_and_scored_in_classes(tmp_path):
    root = tmp_path / "five"
    root.mkdir()
    env = committed_tree(root)
    data = rows(5, 4000, 3)
    (root / "stars.tsv").write_text("".join(f"r{i}\t{label + 1}\t{text}\n" for i, (label, text) in enumerate(data)))
    names = tuple(f"{n} stars" for n in range(1, 6))
    output = repro(
        root,
        env,
        {
            "train": "stars.tsv",
            "test": "stars.tsv",
            "header": False,
            "columns": ["id", "stars", "text"],
            "label_column": "stars",
            "classes": [{"name": name, "labels": [i + 1]} for i, name in enumerate(names)],
            "ordinal": True,
        },
    )
    ingest = json.loads((root / "metrics" / "ingest.json").read_text())
    assert ingest["train"]["rows"] == 4000 and ingest["split"]["test_rows"] + ingest["split"]["train_rows"] == 4000
    assert "ingest: no test file: 20% of each class held out as the test split (seed 42)" in output
    counts = np.bincount([label for label, _ in data], minlength=5)
    assert ingest["split"]["test_rows"] == sum(round(0.2 * n) for n in counts)

    predictions = pl.read_parquet(root / "data" / "predictions" / "test.parquet")
    metrics = check_learned(root, names, predictions["label"].to_list(), output)
    errors = (predictions["predicted"] - predictions["label"]).abs()
    assert metrics["mae_classes"] == pytest.approx(errors.mean(), abs=1e-6)
    assert metrics["accuracy_within_1"] >= metrics["accuracy"]
    assert Predictor.from_path(root / "models" / "model.pt").file.classes == names


def test_the_multiclass_report_counts_each_class_and_its_confusions():
    labels = np.array([0, 0, 1, 2, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2], [0, 0, 1.0]])
    report = multiclass_metrics(labels, probs, ("bad", "so so", "good"), ordinal=True)
    assert report["accuracy"] == round(4 / 6, 6)
    assert report["confusion_bad_as_so_so"] == 1 and report["confusion_good_as_bad"] == 1
    assert report["recall_good"] == round(2 / 3, 6) and report["precision_so_so"] == 0.5
    assert report["rows_good"] == 3 and report["rows"] == 6
    assert report["mae_classes"] == round((1 + 2) / 6, 6) and report["accuracy_within_1"] == round(5 / 6, 6)
    assert report["loss"] == round(float(-np.mean(np.log(np.clip([0.8, 0.2, 0.8, 0.8, 0.2, 1.0], 1e-7, 1)))), 6)


def test_a_model_file_keeps_its_classes_and_a_two_class_file_is_as_before(tmp_path):
    import torch

    from pipeline.core.cli import StageError
    from pipeline.model.model_file import load_model_file, save_model_file
    from pipeline.model.network import LSTMClassifier, ModelConfig
    from tests.test_tables import tiny_predictor

    binary = tiny_predictor().file
    vocab, preprocessing = binary.vocab, binary.preprocessing
    torch.manual_seed(0)
    model = LSTMClassifier(ModelConfig(vocab_size=len(vocab), embedding_dim=4, hidden_sizes=(4,), num_classes=3))
    names = ("bad", "so so", "good")
    save_model_file(tmp_path / "three.pt", model, vocab, preprocessing, 0.5, classes=names)
    loaded = load_model_file(tmp_path / "three.pt")
    assert loaded.classes == names and loaded.config.num_classes == 3
    result = Predictor(loaded).predict(["good film", "bad film ."])
    assert result["sentiment"] == [names[i] for i in result["label"]]
    np.testing.assert_allclose(np.sum(result["probabilities"], axis=1), 1, atol=1e-6)

    two = LSTMClassifier(binary.config)
    save_model_file(tmp_path / "two.pt", two, vocab, preprocessing, 0.5)
    payload = torch.load(tmp_path / "two.pt", weights_only=True)
    assert "classes" not in payload and "num_classes" not in payload["model"]  # the bytes of before
    assert set(Predictor.from_path(tmp_path / "two.pt").predict(["good film"])) == {"probability", "label", "sentiment"}

    payload = torch.load(tmp_path / "three.pt", weights_only=True)
    payload["classes"] = ["bad", "good"]
    torch.save(payload, tmp_path / "damaged.pt")
    with pytest.raises(StageError) as error:
        load_model_file(tmp_path / "damaged.pt")
    assert str(error.value) == (
        f"{tmp_path / 'damaged.pt'}: its class names do not match its 3 classes: "
        "re-run the train stage: dvc repro train"
    )
