from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.core.cli import StageError
from pipeline.core.params import TrainParams
from pipeline.model.adversarial import perturbation
from pipeline.model.batching import Split, batch_to_device, epoch_batches, keep_ids_on_host, trim_batch
from pipeline.model.checkpoint import fingerprint
from pipeline.model.devices import autocast_dtype, first_working_autocast
from pipeline.model.inference import evaluate_split
from pipeline.model.network import LSTMClassifier, ModelConfig
from pipeline.model.optimization import make_scheduler
from pipeline.train import train_model


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


@pytest.mark.parametrize("bucket", [True, False])
def test_training_learns_negation_on_cpu_and_keeps_the_best_weights(bucket):
    torch.set_num_threads(2)
    train = Split.from_numpy(*negation_task(3000, 0), torch.device("cpu"))
    val = Split.from_numpy(*negation_task(500, 1), torch.device("cpu"))
    config = ModelConfig(vocab_size=10, embedding_dim=16, hidden_sizes=(16,), dropout=0.0)
    params = TrainParams(batch_size=64, epochs=4, lr=0.01, eval_every=20, bucket_by_length=bucket)
    rows = []
    model, history, summary, speed = train_model(train, val, config, params, on_eval=rows.append)
    assert rows == history and len(history) > params.epochs  # periodic + per-epoch validation
    assert summary["best_val_loss"] == round(min(h["val_loss"] for h in history), 6)
    assert summary["best_val_accuracy"] >= 0.95
    assert summary["steps"] == 4 * int(np.ceil(3000 / 64))
    assert summary["samples_seen"] == 4 * 3000 and summary["epochs_run"] == 4 and not summary["stopped_early"]
    assert speed["samples_per_second"] > 0


def test_training_is_deterministic_for_a_seed():
    train = Split.from_numpy(*negation_task(300, 0), torch.device("cpu"))
    val = Split.from_numpy(*negation_task(100, 1), torch.device("cpu"))
    config = ModelConfig(vocab_size=10, embedding_dim=8, hidden_sizes=(8,))
    params = TrainParams(batch_size=32, epochs=1)
    first = train_model(train, val, config, params)[1]
    second = train_model(train, val, config, params)[1]
    assert first == second


def test_trim_batch_keeps_only_columns_some_review_uses():
    ids = torch.tensor([[0, 0, 0, 5, 6], [0, 0, 0, 0, 7]])
    assert trim_batch(ids, 2, "left").tolist() == [[5, 6], [0, 7]]
    assert trim_batch(ids.flip(1), 2, "right").tolist() == [[6, 5], [7, 0]]
    assert trim_batch(torch.zeros(2, 5), 0, "left").shape == (2, 1)  # empty reviews keep one column


@pytest.mark.parametrize("bucket", [True, False])
def test_epoch_batches_cover_every_row_once_and_bucketing_groups_similar_lengths(bucket):
    lengths = np.random.default_rng(0).integers(1, 200, 10_000)
    batches = epoch_batches(lengths, 100, bucket, torch.Generator().manual_seed(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(10_000))
    assert all(len(b) == 100 for b in batches)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])  # longest - shortest, i.e. padding left after trimming
    assert (spread < 20) if bucket else (spread > 150)
    again = epoch_batches(lengths, 100, bucket, torch.Generator().manual_seed(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def small_run(**overrides):
    train = Split.from_numpy(*negation_task(320, 0), torch.device("cpu"))
    val = Split.from_numpy(*negation_task(64, 1), torch.device("cpu"))
    config = ModelConfig(vocab_size=10, embedding_dim=8, hidden_sizes=(8,))
    # model_copy does not validate: the tests may ask for what params.yaml may not (lr 0: frozen weights)
    return train, val, config, TrainParams(batch_size=32, epochs=3, eval_every=4).model_copy(update=overrides)


def test_ids_kept_on_the_host_train_exactly_as_ids_on_the_device():
    """The host path (batches gathered on the host and copied over, for data too big for the GPU)
    must feed every step the same ids: same history, same weights, same scores."""
    train, val, config, params = small_run(lr_schedule="cosine")
    on_device = train_model(train, val, config, params)
    host_train = Split.from_numpy(*negation_task(320, 0), torch.device("cpu"), ids_on_host=True)
    host_val = Split.from_numpy(*negation_task(64, 1), torch.device("cpu"), ids_on_host=True)
    on_host = train_model(host_train, host_val, config, params)
    assert on_host[1] == on_device[1] and on_host[2] == on_device[2]
    for name, tensor in on_device[0].state_dict().items():
        assert torch.equal(on_host[0].state_dict()[name], tensor), name
    share = np.arange(1, 64, 2)  # a process's share of the validation rows under torchrun
    host_loss, host_probs = evaluate_split(on_host[0], host_val.share(1, 2), 5)
    device_loss, device_probs = evaluate_split(on_device[0], val.rows(share), 5)
    assert host_loss == device_loss and np.array_equal(host_probs, device_probs) and len(host_probs) == 32


def test_batch_to_device_gathers_the_rows_and_keeps_only_the_used_columns():
    ids = torch.arange(24, dtype=torch.int32).reshape(4, 6)
    batch = batch_to_device(ids, np.array([3, 1]), 2, "left", torch.device("cpu"))
    assert batch.tolist() == [[22, 23], [10, 11]]
    assert batch_to_device(ids, np.array([0]), 3, "right", torch.device("cpu")).tolist() == [[0, 1, 2]]


def test_data_placement_auto_keeps_ids_on_the_gpu_only_when_they_take_at_most_half_its_free_memory(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert keep_ids_on_host("host", 10, cpu) and not keep_ids_on_host("device", 10**15, gpu)
    assert not keep_ids_on_host("auto", 10**15, cpu)  # on a CPU there is only the host
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (8_000, 80_000))  # (free, total) bytes
    assert not keep_ids_on_host("auto", 4_000, gpu)
    assert keep_ids_on_host("auto", 4_001, gpu)


def test_a_checkpoint_resumes_after_changing_only_where_the_data_lives():
    params, manifest = TrainParams(), {"vocab_size": 10}
    same = fingerprint(params.model_copy(update={"data_placement": "host", "resume": True}), manifest)
    assert fingerprint(params, manifest) == same
    assert fingerprint(params.model_copy(update={"lr": 0.1}), manifest) != same


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path):
    train, val, config, params = small_run(lr_schedule="cosine")
    full_model, full_history, full_summary, _ = train_model(train, val, config, params)

    checkpoint = tmp_path / "checkpoint.pt"
    seen = []

    def interrupt_mid_epoch(row):
        seen.append(row)
        if len(seen) == 4:  # validations at steps 4, 8, 10 (end of epoch 1), 12: stop inside epoch 2
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(train, val, config, params, interrupt_mid_epoch, checkpoint, "same")
    assert torch.load(checkpoint, weights_only=True)["state"]["step"] == 12

    replayed = []
    resumed = train_model(
        train, val, config, params.model_copy(update={"resume": True}), replayed.append, checkpoint, "same"
    )
    model, history, summary, _ = resumed
    assert history == full_history and replayed == full_history  # restored rows are logged again
    assert summary == full_summary
    for name, tensor in full_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name

    # a checkpoint written with other params or data is not resumed: training starts over
    fresh = train_model(
        train,
        val,
        config,
        params.model_copy(update={"resume": True}),
        checkpoint=checkpoint,
        checkpoint_fingerprint="other",
    )
    assert fresh[1] == full_history


def test_patience_stops_training_when_validation_stops_improving():
    train, val, config, params = small_run(lr=0.0, epochs=5, eval_every=0, patience=1)  # lr 0: val loss frozen
    _, history, summary, _ = train_model(train, val, config, params)
    assert summary["stopped_early"] and summary["epochs_run"] == 2 and len(history) == 2
    assert summary["best_step"] == 10 and summary["samples_seen"] == 2 * 320


def test_cosine_schedule_decays_the_learning_rate_to_zero():
    train, val, config, params = small_run(lr=0.01, lr_schedule="cosine")
    history = train_model(train, val, config, params)[1]
    lrs = [row["lr"] for row in history]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 0.01 and lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_plateau_schedule_halves_the_learning_rate_when_validation_stalls():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = make_scheduler(optimizer, TrainParams(lr_schedule="plateau"), total_steps=10)
    for val_loss in (1.0, 0.9, 0.95):
        scheduler.step(val_loss)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_precision_on_a_cpu_is_fp32_and_low_precision_asks_for_a_gpu():
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    with pytest.raises(StageError, match="needs a CUDA device"):
        autocast_dtype("bf16", torch.device("cpu"))


def test_divergence_is_a_clear_error():
    train = Split.from_numpy(*negation_task(64, 0), torch.device("cpu"))
    train.labels[:] = float("nan")  # stands in for a blow-up: every loss is NaN
    val = Split.from_numpy(*negation_task(16, 1), torch.device("cpu"))
    with pytest.raises(StageError, match="diverged"):
        train_model(train, val, ModelConfig(vocab_size=10), TrainParams(epochs=1))


def ddp_task():
    """640 rows in batches of 64 (32 per process): every process's share is the same size, so
    DDP's average of per-process mean gradients is the single-process mean gradient."""
    train = Split.from_numpy(*negation_task(640, 0), torch.device("cpu"))
    val = Split.from_numpy(*negation_task(101, 1), torch.device("cpu"))
    config = ModelConfig(vocab_size=10, embedding_dim=8, hidden_sizes=(8,), dropout=0.0)
    return train, val, config, TrainParams(batch_size=64, epochs=2, lr=0.01, eval_every=5)


def test_two_process_torchrun_training_matches_single_process(tmp_path):
    import subprocess
    import sys

    result = tmp_path / "ddp.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = subprocess.run(
        [*command, str(Path(__file__).parent / "ddp_check.py"), str(result)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ddp, other_rank = (torch.load(f"{result}.rank{rank}", weights_only=True) for rank in (0, 1))
    for name, tensor in ddp["state_dict"].items():  # DDP kept both processes' weights identical
        assert torch.equal(other_rank["state_dict"][name], tensor), name
    torch.set_num_threads(1)
    model, history, summary, _ = train_model(*ddp_task())
    assert ddp["summary"]["samples_seen"] == summary["samples_seen"] == 2 * 640  # each row once per epoch
    assert ddp["summary"]["steps"] == summary["steps"] == 20
    assert [row["step"] for row in ddp["history"]] == [row["step"] for row in history]
    for name, tensor in model.state_dict().items():  # and the same as one process's
        torch.testing.assert_close(ddp["state_dict"][name], tensor, atol=1e-4, rtol=1e-4)
    for ours, theirs in zip(history, ddp["history"], strict=True):  # validation all-reduced over both shares
        assert theirs["val_loss"] == pytest.approx(ours["val_loss"], abs=1e-5)
        assert theirs["val_accuracy"] == pytest.approx(ours["val_accuracy"])


def test_evaluate_split_scores_in_length_order_but_returns_rows_in_their_own_order():
    from pipeline.model.network import LSTMClassifier

    ids, labels, lengths = negation_task(50, 3)
    model = LSTMClassifier(ModelConfig(vocab_size=10, embedding_dim=8, hidden_sizes=(8,))).eval()
    loss, probs = evaluate_split(model, Split.from_numpy(ids, labels, lengths, torch.device("cpu")), 7)
    with torch.no_grad():
        logits = model(torch.from_numpy(ids))
    np.testing.assert_allclose(probs, torch.sigmoid(logits).numpy(), atol=1e-6)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(labels).float())
    assert loss == pytest.approx(float(expected), abs=1e-6)


class FailsUnder(torch.nn.Module):
    """Stands in for an LSTM whose kernels lack some autocast dtypes (old cuDNN and bf16)."""

    def __init__(self, *failing):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.failing = failing

    def forward(self, ids):
        if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") in self.failing:
            raise RuntimeError("\"_thnn_fused_lstm_cell_cuda\" not implemented for 'BFloat16'\ndetails")
        return self.weight * ids.float().sum(dim=1)


def test_auto_precision_falls_back_when_a_dtype_does_not_run(capsys):
    ids, cpu = torch.ones(2, 3, dtype=torch.long), torch.device("cpu")
    assert first_working_autocast(FailsUnder(), ids, cpu, torch.bfloat16) is torch.bfloat16
    assert first_working_autocast(FailsUnder(torch.bfloat16), ids, cpu, torch.bfloat16) is torch.float16
    assert "torch.bfloat16 autocast does not run here" in capsys.readouterr().out
    model = FailsUnder(torch.bfloat16, torch.float16)
    assert first_working_autocast(model, ids, cpu, torch.bfloat16) is None
    assert model.weight.grad is None  # the probe leaves no gradient behind


def test_a_corrupt_checkpoint_stops_resume_with_one_line(tmp_path):
    train, val, config, params = small_run(epochs=1)
    checkpoint = tmp_path / "checkpoint.pt"
    train_model(train, val, config, params, checkpoint=checkpoint, checkpoint_fingerprint="same")
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # a write cut short
    with pytest.raises(StageError) as error:
        train_model(
            train,
            val,
            config,
            params.model_copy(update={"resume": True}),
            checkpoint=checkpoint,
            checkpoint_fingerprint="same",
        )
    assert str(error.value) == (
        f"{checkpoint}: not a readable checkpoint (truncated or corrupt?): delete it to train from scratch"
    )


def test_the_adversarial_push_follows_the_gradient_with_epsilon_norm_per_review():
    embedding = torch.nn.Embedding(10, 4)
    with torch.no_grad():
        embedding.weight.mul_(3.0)  # the push is in units of the embedding's spread
    embedded = torch.zeros(2, 3, 4, requires_grad=True)
    (embedded[0].sum() * 2 + (embedded[1] ** 2 + embedded[1]).sum() * 1e-6).backward()
    push = perturbation(embedded, 0.5, embedding)
    spread = embedding.weight.std().item()
    norms = push.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((2,), 0.5 * spread))  # however small the gradient
    assert torch.allclose(push[0], torch.full((3, 4), 0.5 * spread / 12**0.5))  # along it


def test_adversarial_training_runs_each_batch_twice_still_learns_and_changes_the_weights(monkeypatch):
    train = Split.from_numpy(*negation_task(3000, 0), torch.device("cpu"))
    val = Split.from_numpy(*negation_task(500, 1), torch.device("cpu"))
    config = ModelConfig(vocab_size=10, embedding_dim=16, hidden_sizes=(16,), dropout=0.0)
    params = TrainParams(batch_size=64, epochs=4, lr=0.01)
    plain = train_model(train, val, config, params)
    passes = []  # the embedding's forward passes, True in training mode
    original = LSTMClassifier.__init__

    def counted(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.embedding.register_forward_hook(lambda module, inputs, output: passes.append(module.training))

    monkeypatch.setattr(LSTMClassifier, "__init__", counted)
    adversarial = train_model(train, val, config, params.model_copy(update={"adversarial_epsilon": 1.0}))
    assert sum(passes) == 2 * adversarial[2]["steps"]
    assert adversarial[2]["best_val_accuracy"] >= 0.95
    assert not torch.equal(adversarial[0].embedding.weight, plain[0].embedding.weight)
