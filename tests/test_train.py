import numpy as np
import torch

from pipeline.model import ModelConfig
from pipeline.params import TrainParams
from pipeline.train import Split, load_model, save_model, train_model, trim_batch


def negation_task(rows: int, seed: int):
    """Label = adjective polarity, flipped by a preceding "not": unlearnable by bag of words.
    ids: 2 good, 3 bad, 4 not, 5..9 filler; left padded to 12."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((rows, 12), np.int32)
    labels = np.zeros(rows, np.int8)
    lengths = np.zeros(rows, np.int32)
    for row in range(rows):
        negated, good = rng.random() < 0.5, rng.random() < 0.5
        doc = list(rng.integers(5, 10, rng.integers(0, 4))) + ([4] if negated else []) + [2 if good else 3]
        doc += list(rng.integers(5, 10, rng.integers(0, 3)))
        ids[row, 12 - len(doc) :] = doc
        labels[row] = good != negated
        lengths[row] = len(doc)
    return ids, labels, lengths


def test_training_learns_negation_on_cpu_and_keeps_the_best_weights():
    torch.set_num_threads(2)
    train = Split.from_numpy(*negation_task(3000, 0), torch.device("cpu"))
    val = Split.from_numpy(*negation_task(500, 1), torch.device("cpu"))
    config = ModelConfig(vocab_size=10, embedding_dim=16, hidden_size=16, dropout=0.0)
    params = TrainParams(batch_size=64, epochs=4, lr=0.01, eval_every=20)
    rows = []
    model, history, summary, speed = train_model(train, val, config, params, on_eval=rows.append)
    assert rows == history and len(history) > params.epochs  # periodic + per-epoch validation
    assert summary["best_val_loss"] == round(min(h["val_loss"] for h in history), 6)
    assert summary["best_val_accuracy"] >= 0.95
    assert summary["steps"] == 4 * int(np.ceil(3000 / 64))
    assert speed["samples_per_second"] > 0


def test_training_is_deterministic_for_a_seed():
    train = Split.from_numpy(*negation_task(300, 0), torch.device("cpu"))
    val = Split.from_numpy(*negation_task(100, 1), torch.device("cpu"))
    config = ModelConfig(vocab_size=10, embedding_dim=8, hidden_size=8)
    params = TrainParams(batch_size=32, epochs=1)
    first = train_model(train, val, config, params)[1]
    second = train_model(train, val, config, params)[1]
    assert first == second


def test_trim_batch_keeps_only_columns_some_review_uses():
    ids = torch.tensor([[0, 0, 0, 5, 6], [0, 0, 0, 0, 7]])
    assert trim_batch(ids, torch.tensor([2, 1]), "left").tolist() == [[5, 6], [0, 7]]
    assert trim_batch(ids.flip(1), torch.tensor([2, 1]), "right").tolist() == [[6, 5], [7, 0]]


def test_saved_model_loads_with_weights_only_and_predicts_the_same(tmp_path):
    from pipeline.model import LSTMClassifier

    model = LSTMClassifier(ModelConfig(vocab_size=10, embedding_dim=8, hidden_size=8, bidirectional=True)).eval()
    save_model(model, tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["config"]["bidirectional"] is True
    loaded = load_model(tmp_path / "model.pt")
    ids = torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]])
    torch.testing.assert_close(loaded(ids), model(ids))


def test_divergence_is_a_clear_error():
    import pytest

    from pipeline.common import StageError

    train = Split.from_numpy(*negation_task(64, 0), torch.device("cpu"))
    train.labels[:] = float("nan")  # stands in for a blow-up: every loss is NaN
    val = Split.from_numpy(*negation_task(16, 1), torch.device("cpu"))
    with pytest.raises(StageError, match="diverged"):
        train_model(train, val, ModelConfig(vocab_size=10), TrainParams(epochs=1))
