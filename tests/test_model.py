import pytest
import torch
from torch import nn

from pipeline.core import cpu_math
from pipeline.model.network import LSTMClassifier, ModelConfig, lstm_from_scratch, reverse_real_tokens, to_right_padding


def padded(docs, seq_len, side):
    ids = torch.zeros(len(docs), seq_len, dtype=torch.long)
    for row, doc in enumerate(docs):
        if side == "left":
            ids[row, seq_len - len(doc) :] = torch.tensor(doc)
        else:
            ids[row, : len(doc)] = torch.tensor(doc)
    return ids


DOCS = [[3, 4, 5], [7], [2, 9, 9, 9, 4, 5], [6, 6]]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("hidden_sizes", [(8,), (8, 5)])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
def test_output_is_one_logit_per_review(bidirectional, hidden_sizes, pooling):
    config = ModelConfig(12, embedding_dim=6, hidden_sizes=hidden_sizes, bidirectional=bidirectional, pooling=pooling)
    model = LSTMClassifier(config)
    logits = model(padded(DOCS, 10, "left"))
    assert logits.shape == (4,) and logits.dtype == torch.float32
    directions = 2 if bidirectional else 1
    pooled = 3 if pooling == "concat" else 1
    assert model.head.in_features == hidden_sizes[-1] * directions * pooled
    assert [layer.hidden_size for layer in model.forward_layers] == list(hidden_sizes)
    assert [layer.input_size for layer in model.forward_layers] == [6, 8 * directions][: len(hidden_sizes)]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("hidden_sizes", [(8,), (8, 5)])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
def test_padding_side_length_and_batch_neighbours_do_not_change_a_logit(bidirectional, hidden_sizes, pooling):
    torch.manual_seed(0)
    config = ModelConfig(
        12, embedding_dim=6, hidden_sizes=hidden_sizes, bidirectional=bidirectional, pooling=pooling, pad="left"
    )
    left = LSTMClassifier(config).eval()
    right = LSTMClassifier(ModelConfig(**{**config.to_dict(), "pad": "right"})).eval()
    right.load_state_dict(left.state_dict())
    batch = left(padded(DOCS, 8, "left"))
    alone = torch.stack([left(padded([doc], len(doc), "left"))[0] for doc in DOCS])
    torch.testing.assert_close(batch, alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(batch, right(padded(DOCS, 20, "right")), atol=1e-6, rtol=0)


def test_word_order_reaches_the_output():
    model = LSTMClassifier(ModelConfig(vocab_size=12, hidden_sizes=(8,), embedding_dim=6)).eval()
    a, b = model(padded([[3, 4, 5], [5, 4, 3]], 5, "left"))
    assert not torch.isclose(a, b)


def test_to_right_padding_and_reverse_real_tokens():
    ids = torch.tensor([[0, 0, 1, 2], [3, 4, 5, 6]])
    right = to_right_padding(ids, torch.tensor([2, 4]))
    assert right.tolist() == [[1, 2, 0, 0], [3, 4, 5, 6]]
    x = right.unsqueeze(2).float()
    reversed_ = reverse_real_tokens(x, torch.tensor([2, 4]))
    assert reversed_.squeeze(2).tolist() == [[2, 1, 0, 0], [6, 5, 4, 3]]
    assert torch.equal(reverse_real_tokens(reversed_, torch.tensor([2, 4])), x)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
def test_empty_review_still_gets_a_logit(pooling):
    config = ModelConfig(vocab_size=12, hidden_sizes=(4,), embedding_dim=4, bidirectional=True, pooling=pooling)
    model = LSTMClassifier(config).eval()
    assert torch.isfinite(model(torch.zeros(2, 5, dtype=torch.long))).all()


def test_pooling_reads_the_layer_outputs_it_says():
    x = torch.tensor([[[1.0], [3.0], [-9.0]], [[2.0], [0.0], [4.0]]])  # [batch 2, time 3, features 1]
    lengths = torch.tensor([2, 3])  # right padded: row 0's third step is padding
    kinds = ("last", "mean", "max", "concat")
    pool = {p: LSTMClassifier(ModelConfig(4, hidden_sizes=(1,), pooling=p)).pool for p in kinds}
    assert pool["last"](x, lengths).flatten().tolist() == [3.0, 4.0]
    assert pool["mean"](x, lengths).flatten().tolist() == [2.0, 2.0]
    assert pool["max"](x, lengths).flatten().tolist() == [3.0, 4.0]
    assert pool["concat"](x, lengths).tolist() == [[3.0, 3.0, 2.0], [4.0, 4.0, 2.0]]  # last, max, mean


def test_config_from_a_saved_dict_keeps_tuple_widths():
    config = ModelConfig(vocab_size=5, hidden_sizes=[128, 64])
    assert config.hidden_sizes == (128, 64) and ModelConfig(**config.to_dict()) == config


@pytest.mark.parametrize("inputs,hidden", [(3, 5), (6, 4)])
def test_from_scratch_lstm_matches_torch_nn_lstm(inputs, hidden):
    """The gate equations in lstm_from_scratch are what nn.LSTM (and so the classifier) computes."""
    torch.manual_seed(1)
    layer = nn.LSTM(inputs, hidden, batch_first=True)
    x = torch.randn(4, 7, inputs)
    expected, _ = layer(x)
    ours = lstm_from_scratch(x, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    wrong_order = torch.cat(layer.weight_ih_l0.chunk(4)[::-1])  # gates read in the wrong order must not pass
    assert not torch.allclose(
        lstm_from_scratch(x, wrong_order, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0), expected, atol=1e-3
    )


def test_embedding_dropout_is_random_in_training_and_off_in_evaluation():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=20, embedding_dim=8, hidden_sizes=(8,), dropout=0.0, embedding_dropout=0.5)
    model = LSTMClassifier(config)
    ids = torch.randint(2, 20, (4, 6))
    model.eval()
    assert torch.equal(model(ids), model(ids))
    model.train()
    assert not torch.equal(model(ids), model(ids))
    without = LSTMClassifier(ModelConfig(vocab_size=20, embedding_dim=8, hidden_sizes=(8,), dropout=0.0))
    without.load_state_dict(model.state_dict())  # same weights: the dropout adds no parameters
    without.train()
    assert torch.equal(without(ids), without(ids))


@pytest.mark.parametrize(("math", "inside"), [("portable", False), ("native", True)])
def test_onednn_is_switched_off_inside_the_lstm_only_and_only_on_the_portable_paths(monkeypatch, math, inside):
    monkeypatch.setattr(cpu_math, "portable", lambda: math == "portable")
    model = LSTMClassifier(ModelConfig(vocab_size=10, bidirectional=True))
    seen = []
    for layer in [*model.forward_layers, *model.backward_layers]:
        layer.register_forward_pre_hook(lambda module, args: seen.append(torch.backends.mkldnn.enabled))
    assert torch.backends.mkldnn.enabled
    model(torch.tensor([[0, 3, 4], [5, 6, 7]]))
    assert seen == [inside, inside]
    assert torch.backends.mkldnn.enabled  # the rest of the process keeps PyTorch's default
